"""Decoder: the behavior team's df_sessions.pkl → one staging parquet of plain values.

The only function that unpickles. Its role can read that one object and write that one
staging key, nothing else, so a pickle that got past the allowlist unpickler still could
not change a table or read another bucket. The event names no bucket or key: both are
fixed by the deployment. Returns ``{"status": "staged", ...}`` with the staged object's
SHA-256 (the worker checks it), or ``{"status": "refused", "reason": ...}``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from bdc_sync.lambda_logging import route_logs_through
from bdc_sync.sessions_staging import stage_sessions
from bdc_sync.settings import settings_from_env

logger = Logger()
# The layer's `logging.getLogger(__name__)` loggers log as this one does (JSON, LogLevel).
route_logs_through(logger)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    answer = stage_sessions(settings_from_env())
    logger.info("decoded df_sessions.pkl", extra={k: v for k, v in answer.items() if k != "reason"})
    if answer["status"] != "staged":
        logger.error("df_sessions.pkl refused", extra={"reason": answer["reason"]})
    return answer
