"""Wiring shared by the handlers: settings and the clients built from them.

A function's ``app.py`` builds its ``Runtime`` once, at module scope, so a container
reuses its clients (and their connections) for every invocation it serves, as AWS
and Powertools recommend. Settings are read then, once per container: a deployment
changes them only with a new version, which starts new containers. On one machine
the local stack plays a new container by loading ``app.py`` anew
(``bdc_local.runner.load_function``), once per concurrent poller of each stack.
"""

from __future__ import annotations

from dataclasses import dataclass

from bdc_sync.flow.ledger import Ledger
from bdc_sync.flow.queues import Queues
from bdc_sync.settings import Settings, settings_from_env
from bdc_sync.store import ObjectStore


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    ledger: Ledger
    queues: Queues
    cache: ObjectStore


def runtime(settings: Settings | None = None) -> Runtime:
    """Clients for ``settings`` (default: from the environment); build once per container."""
    settings = settings or settings_from_env()
    return Runtime(
        settings=settings,
        ledger=Ledger(settings.run_ledger_table, ttl_days=settings.ledger_ttl_days),
        queues=Queues(settings.work_queue_url, settings.finalize_queue_url),
        cache=ObjectStore(settings.cache_bucket),
    )
