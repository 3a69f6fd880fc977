"""Configuration of the sync Lambdas, read from the environment once per process.

Every variable here is set by ``template.yaml`` in AWS and by the local stack on one
machine; a test checks that the template sets each of them.
"""

from __future__ import annotations

import os

from pydantic import BaseModel, Field

from biodata_cache import layout


class Settings(BaseModel):
    """What the sync code needs to know about its deployment."""

    cache_bucket: str = Field(description="Bucket that holds data-asset-cache/")
    work_queue_url: str = Field(default="", description="SQS queue of table/chunk work items")
    finalize_queue_url: str = Field(default="", description="SQS queue of runs to finalize")
    run_ledger_table: str = Field(default="", description="DynamoDB table of runs and outcomes")
    docdb_host: str = Field(default="api.allenneuraldynamics.org", description="DocDB REST host")
    # The local stand-in speaks plain HTTP; AWS deployments never set this.
    docdb_plain_http: bool = False
    source_bucket: str = "aind-open-data"
    behavior_bucket: str = "aind-behavior-data"
    # Must equal the work queue's redrive maxReceiveCount: on the last receive a
    # failing table is recorded as failed before its message goes to the DLQ.
    max_receives: int = 3
    # How long a worker may hold a table before another delivery may take it over;
    # the worker's Lambda timeout.
    worker_timeout_seconds: int = 900
    # Days a run stays in the ledger (DynamoDB TTL).
    ledger_ttl_days: int = 30
    # How long a scheduled run keeps later scheduled runs coalesced into it when it
    # never finalizes (a crashed or stuck run must not block the schedule forever).
    # Longer than any healthy run: its tables' retries (max_receives x worker timeout)
    # along the longest dependency chain.
    scheduled_run_slot_seconds: int = 3 * 3600
    # Concurrent DocDB requests one worker may make. One, as the old job made them
    # against the same service "to avoid overloading" it: that is all the service is
    # known to bear. The run then has at most WorkerMaxConcurrency (32) requests in
    # flight, not 128; raise it once the canary and the run reports' 429/5xx counts
    # show headroom (bench/docdb_limits.py measures what the cap costs).
    docdb_max_concurrency: int = 1
    # Retries of a throttled (429) or failed (5xx) DocDB request, with exponential
    # backoff from docdb_backoff_seconds (full jitter), capped at 20 s a wait.
    docdb_retries: int = 6
    docdb_backoff_seconds: float = 0.5
    # Largest df_sessions.pkl the decoder accepts (bytes, and bytes of strings counted
    # once per reference); today's real file is a few tens of MB.
    sessions_pickle_max_bytes: int = 1 << 30
    # The function that unpickles df_sessions.pkl (its own role); empty: decode in-process.
    decoder_function: str = ""
    version_folder: str = Field(default_factory=layout.package_folder)


_ENV = {
    "cache_bucket": "CACHE_BUCKET",
    "work_queue_url": "WORK_QUEUE_URL",
    "finalize_queue_url": "FINALIZE_QUEUE_URL",
    "run_ledger_table": "RUN_LEDGER_TABLE",
    "docdb_host": "DOCDB_HOST",
    "docdb_plain_http": "DOCDB_PLAIN_HTTP",
    "source_bucket": "SOURCE_BUCKET",
    "behavior_bucket": "BEHAVIOR_BUCKET",
    "max_receives": "MAX_RECEIVES",
    "worker_timeout_seconds": "WORKER_TIMEOUT_SECONDS",
    "ledger_ttl_days": "LEDGER_TTL_DAYS",
    "docdb_max_concurrency": "DOCDB_MAX_CONCURRENCY",
    "docdb_retries": "DOCDB_RETRIES",
    "docdb_backoff_seconds": "DOCDB_BACKOFF_SECONDS",
    "sessions_pickle_max_bytes": "SESSIONS_PICKLE_MAX_BYTES",
    "decoder_function": "DECODER_FUNCTION",
}

# The environment variables the code reads; the template test checks them.
ENVIRONMENT_VARIABLES: tuple[str, ...] = tuple(_ENV.values())


def settings_from_env(environ: dict[str, str] | None = None) -> Settings:
    """Build Settings from environment variables (unset ones take their defaults)."""
    env = os.environ if environ is None else environ
    values = {field: env[name] for field, name in _ENV.items() if env.get(name)}
    return Settings(**values)


def get_settings() -> Settings:
    """The settings of this invocation.

    Read anew each time (it costs microseconds) so that one process can serve
    several local stacks in a row, as the tests do.
    """
    return settings_from_env()
