"""Asking a deployed stack to rebuild named tables now (the dispatcher Lambda's manual run)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

from biodata_cache import catalog
from biodata_cache.config import ENV_DISPATCHER
from biodata_cache.errors import RebuildError


def start_rebuild(
    tables: Iterable[str],
    *,
    function_name: str | None = None,
    lambda_client: Any = None,
) -> dict[str, Any]:
    """Start a run that rebuilds ``tables``; returns the dispatcher's answer.

    Args:
        tables: Table names (checked against the catalog before anything is sent).
        function_name: The dispatcher Lambda (name or ARN); default
            ``BIODATA_CACHE_DISPATCHER``.
        lambda_client: A boto3 Lambda client to use (default: a new one).

    Returns:
        ``{"ok": True, "run_id": ..., "tables": [...], "enqueued": [...]}``.

    Raises:
        UnknownTableError: a name the catalog does not know.
        RebuildError: no function named, the invocation failed, or the dispatcher
            refused the request (its reason is in the message).
    """
    names = list(dict.fromkeys(tables))
    if not names:
        raise RebuildError("name at least one table to rebuild")
    for name in names:
        catalog.get_spec(name)
    function = function_name or os.environ.get(ENV_DISPATCHER, "").strip()
    if not function:
        raise RebuildError(
            f"no dispatcher Lambda named: pass --function NAME (function_name=) or set {ENV_DISPATCHER}"
        )
    if lambda_client is None:
        import boto3

        lambda_client = boto3.client("lambda")
    try:
        response = lambda_client.invoke(
            FunctionName=function,
            InvocationType="RequestResponse",
            Payload=json.dumps({"tables": names}).encode(),
        )
    except Exception as exc:  # botocore errors: no such function, no permission, no network
        raise RebuildError(f"could not invoke the dispatcher {function!r}: {exc}") from None
    raw = response["Payload"].read()
    try:
        answer = json.loads(raw) if raw else {}
    except ValueError:
        raise RebuildError(f"the dispatcher {function!r} answered with non-JSON: {raw[:200]!r}") from None
    if response.get("FunctionError"):
        message = answer.get("errorMessage", answer) if isinstance(answer, dict) else answer
        raise RebuildError(f"the dispatcher {function!r} failed: {message}")
    if not isinstance(answer, dict) or not answer.get("ok"):
        error = answer.get("error", answer) if isinstance(answer, dict) else answer
        raise RebuildError(f"the dispatcher {function!r} refused the request: {error}")
    return answer
