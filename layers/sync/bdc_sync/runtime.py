"""Wiring shared by the three handlers: settings, ledger, queues, cache store."""

from __future__ import annotations

from dataclasses import dataclass

from bdc_sync.flow.ledger import Ledger
from bdc_sync.flow.queues import Queues
from bdc_sync.settings import Settings
from bdc_sync.store import ObjectStore


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    ledger: Ledger
    queues: Queues
    cache: ObjectStore


def runtime() -> Runtime:
    """Clients for this invocation's settings."""
    settings = Settings()
    return Runtime(
        settings=settings,
        ledger=Ledger(settings.run_ledger_table, ttl_days=settings.ledger_ttl_days),
        queues=Queues(settings.work_queue_url, settings.finalize_queue_url),
        cache=ObjectStore(settings.cache_bucket),
    )
