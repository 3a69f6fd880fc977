"""Configuration of the sync Lambdas, read from the environment once per container.

``Settings`` is a pydantic-settings model: each field is read from the environment
variable of its name in capitals (``cache_bucket`` from ``CACHE_BUCKET``); an unset or
empty variable leaves the default. Every variable is set by ``template.yaml`` in AWS
and by the local stack on one machine; a test checks that the template sets each of
``ENVIRONMENT_VARIABLES``. Fields marked ``FIXED`` are not deployment settings and are
never read from the environment (a test or a script may still pass them).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from biodata_cache import layout

# json_schema_extra of a field that the environment does not set.
FIXED: dict[str, Any] = {"environment": False}


def _from_environment(field: FieldInfo) -> bool:
    extra = field.json_schema_extra
    return not (isinstance(extra, dict) and extra.get("environment") is False)


class _DeploymentEnvironment(EnvSettingsSource):
    """The environment, for the fields it may set only."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        if not _from_environment(field):
            return None, field_name, False
        return super().get_field_value(field, field_name)


class Settings(BaseSettings):
    """What the sync code needs to know about its deployment."""

    model_config = SettingsConfigDict(case_sensitive=False, env_ignore_empty=True, extra="forbid")

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
    scheduled_run_slot_seconds: int = Field(default=3 * 3600, json_schema_extra=FIXED)
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
    # How often a table re-reads objects in other teams' buckets (SmartSPIM channel
    # folders, neuroglancer configs) while the tables it reads are unchanged: at most
    # once this many seconds. A change in its input tables re-reads them at once; 0
    # re-reads them every run. At a 15-minute schedule the default reads them one
    # run in four: thousands of small S3 reads are most of an unchanged run's cost.
    source_recheck_seconds: int = 3600
    # Largest df_sessions.pkl the decoder accepts (bytes, and bytes of strings counted
    # once per reference); today's real file is a few tens of MB.
    sessions_pickle_max_bytes: int = 1 << 30
    # The function that unpickles df_sessions.pkl (its own role); empty: decode in-process.
    decoder_function: str = ""
    # The folder this package's version writes: the package decides it, not the deployment.
    version_folder: str = Field(default_factory=layout.package_folder, json_schema_extra=FIXED)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Arguments first, then the environment; no .env or secrets files.
        return init_settings, _DeploymentEnvironment(settings_cls)


# The environment variables the code reads; the template test checks them.
ENVIRONMENT_VARIABLES: tuple[str, ...] = tuple(
    name.upper() for name, field in Settings.model_fields.items() if _from_environment(field)
)


def settings_from_env() -> Settings:
    """Settings from this process's environment (unset variables take their defaults)."""
    # No arguments: pydantic-settings fills every field, the required ones included,
    # from the environment (ValidationError if CACHE_BUCKET is unset). An empty mapping
    # says so to a type checker without pydantic's plugin, too.
    from_arguments: dict[str, Any] = {}
    return Settings(**from_arguments)
