"""The hand-over between the decoder function and the worker for foraging_sessions.

The decoder (:func:`stage_sessions`, in ``functions/decoder``) reads the pickle from
the behavior bucket, decodes it (:mod:`bdc_sync.sessions_decoder`) and writes the
staging parquet to ``STAGING_KEY`` in the cache bucket, outside ``data-asset-cache/``:
its role may write that key and no other. The worker (:func:`staged_sessions`) invokes
the decoder through the Lambda API (``DECODER_FUNCTION``), checks the staged object's
SHA-256 against the decoder's answer and reads it with pyarrow; this module imports
neither pandas nor the unpickler.
"""

from __future__ import annotations

import io
import json
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
from botocore.config import Config

from bdc_sync.framework import MissingInput, UnusableInput
from bdc_sync.settings import Settings
from bdc_sync.store import ObjectStore, parquet_bytes, sha256_hex

SESSIONS_KEY = "foraging_nwb_bonsai_processed/df_sessions.pkl"
# Outside data-asset-cache/: nothing the client or the registry reads.
STAGING_KEY = "bdc-staging/foraging_sessions/sessions.parquet"


def stage_sessions(settings: Settings) -> dict[str, Any]:
    """Decode the pickle into the staging parquet (the decoder function's work)."""
    from bdc_sync.safe_pickle import UnsafePickle
    from bdc_sync.sessions_decoder import decode_sessions

    found = ObjectStore(settings.behavior_bucket).get_bytes(SESSIONS_KEY)
    if found is None:
        where = f"s3://{settings.behavior_bucket}/{SESSIONS_KEY}"
        return {"status": "missing", "reason": f"{where} does not exist"}
    body, etag = found
    try:
        table = decode_sessions(body, max_bytes=settings.sessions_pickle_max_bytes)
    except (UnsafePickle, ValueError) as exc:
        return {"status": "refused", "reason": str(exc)[:1000], "pickle_etag": etag}
    data = parquet_bytes(table)
    ObjectStore(settings.cache_bucket).put_bytes(STAGING_KEY, data)
    return {"status": "staged", "sha256": sha256_hex(data), "rows": table.num_rows, "pickle_etag": etag}


def _invoke_decoder(settings: Settings) -> dict[str, Any]:
    # botocore waits 60 s for an answer by default; the decoder may run up to its 300 s timeout.
    client = boto3.client("lambda", config=Config(read_timeout=330, retries={"max_attempts": 1}))
    response = client.invoke(
        FunctionName=settings.decoder_function, InvocationType="RequestResponse", Payload=b"{}"
    )
    payload = response["Payload"].read()
    if response.get("FunctionError"):
        raise RuntimeError(f"decoder function failed: {payload[:1000].decode(errors='replace')}")
    answer: dict[str, Any] = json.loads(payload)  # the decoder's handler returns a JSON object
    return answer


def staged_sessions(settings: Settings) -> pa.Table:
    """The staging table of the current pickle, decoded by the decoder function.

    Without a decoder function (unit tests with in-process moto) the decoding runs here.
    """
    answer = _invoke_decoder(settings) if settings.decoder_function else stage_sessions(settings)
    if answer["status"] == "missing":
        raise MissingInput(answer["reason"])
    if answer["status"] != "staged":
        raise UnusableInput(f"df_sessions.pkl refused: {answer['reason']}")
    found = ObjectStore(settings.cache_bucket).get_bytes(STAGING_KEY)
    if found is None or sha256_hex(found[0]) != answer["sha256"]:
        raise RuntimeError(f"staged sessions at {STAGING_KEY} are not the ones the decoder wrote")
    return pq.ParquetFile(io.BytesIO(found[0])).read()
