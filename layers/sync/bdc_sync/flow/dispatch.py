"""Starting a run: validate the request, record the run, enqueue its first tables.

A scheduled run first takes the schedule's slot in the ledger. If an earlier
scheduled run still holds it (still building), the new run is *coalesced* into it:
it is recorded with the reason, nothing is enqueued but a finalize message (the
finalizer writes its run report, which says so). A
change the skipped tick would have seen is read by the first tick after the earlier
run finalizes, so a frequent schedule never piles up runs and a change waits at most
one run plus one interval. Manual runs always start: an operator asked for them, and overlapping runs
are safe (the registry keeps the later build of each table).
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from bdc_sync.flow.events import RunRequest
from bdc_sync.flow.ledger import Ledger
from bdc_sync.flow.progress import advance_run
from bdc_sync.flow.queues import Queues
from bdc_sync.framework import ListedBy
from bdc_sync.settings import Settings
from bdc_sync.tables import build_of, buildable_tables
from biodata_cache.catalog import get_spec

logger = logging.getLogger(__name__)


class BadRunRequest(ValueError):
    """A run request naming nothing buildable; nothing was enqueued."""


def resolve_tables(requested: list[str] | None) -> list[str]:
    """The builds a request names (companion tables map to the build that writes them)."""
    if requested is None:
        return buildable_tables()
    builds: list[str] = []
    for name in requested:
        get_spec(name)  # raises UnknownTableError naming the known tables
        try:
            build = build_of(name).spec.name
        except NotImplementedError as exc:
            raise BadRunRequest(str(exc)) from None
        for needed in [*listing_sources(build), build]:
            if needed not in builds:
                builds.append(needed)
    return builds


def listing_sources(build: str) -> list[str]:
    """The builds that list ``build``'s records, nearest last (asset_basics: metadata_core).

    A table asked for on demand is rebuilt with them, so the rebuild sees the records
    DocDB has now, not those of the last run's listing.
    """
    listing = getattr(build_of(build), "listing", None)
    if not isinstance(listing, ListedBy):
        return []
    return [*listing_sources(listing.table), listing.table]


def new_run_id() -> str:
    """Sortable by start time, unique across overlapping runs."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def start_run(
    request: RunRequest,
    settings: Settings,
    ledger: Ledger,
    queues: Queues,
) -> dict[str, Any]:
    """Record a run of the requested tables and enqueue those with no input in the run."""
    tables = resolve_tables(request.tables)
    if not tables:
        raise BadRunRequest("the run names no table")
    depends_on = {name: [dep for dep in get_spec(name).depends_on if dep in tables] for name in tables}
    run_id = new_run_id()
    folder = settings.version_folder
    if request.trigger == "schedule":
        holder = ledger.take_schedule_slot(folder, run_id, settings.scheduled_run_slot_seconds)
        if holder is not None:
            reason = f"coalesced into run {holder}, which is still building these tables"
            ledger.record_coalesced_run(run_id, folder, request.trigger, holder, reason)
            queues.send_finalize(run_id)  # its report, written where every report is
            logger.info("run coalesced", extra={"run_id": run_id, "coalesced_into": holder})
            return {
                "run_id": run_id,
                "version": folder,
                "tables": [],
                "enqueued": [],
                "coalesced_into": holder,
                "reason": reason,
            }
    ledger.create_run(run_id, settings.version_folder, request.trigger, depends_on)
    enqueued = advance_run(run_id, ledger, queues)
    logger.info("run started", extra={"run_id": run_id, "tables": tables, "enqueued": enqueued})
    return {"run_id": run_id, "version": settings.version_folder, "tables": tables, "enqueued": enqueued}
