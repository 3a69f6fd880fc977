"""Moving a run forward: start its ready tables, skip those whose inputs failed,
and hand the run to the finalizer once every table has an outcome.

Called by the dispatcher after creating a run and by the worker after each outcome
(and again on duplicate deliveries, which makes a crash between two steps heal).
A message is sent before its table is marked queued: a crash in between leaves a
duplicate message, which the ledger's claim absorbs, never a lost one.
"""

from __future__ import annotations

import logging

from bdc_sync.flow.events import WorkItem
from bdc_sync.flow.ledger import Ledger
from bdc_sync.flow.queues import Queues
from bdc_sync.flow.states import NOT_BUILT, TERMINAL, RunState, Status

logger = logging.getLogger(__name__)


def advance_run(run_id: str, ledger: Ledger, queues: Queues) -> list[str]:
    """Enqueue tables whose inputs are done; returns the tables enqueued now."""
    enqueued: list[str] = []
    while True:
        items = ledger.table_items(run_id)
        progressed = False
        for name, item in sorted(items.items()):
            if item["status"] != Status.WAITING:
                continue
            deps = [d for d in item.get("depends_on", []) if d in items]
            if not all(items[d]["status"] in TERMINAL for d in deps):
                continue
            failed = [d for d in deps if items[d]["status"] in NOT_BUILT]
            if failed:
                progressed |= ledger.mark_skipped(
                    run_id, name, f"not built because input {', '.join(failed)} was not built"
                )
                continue
            queues.send_work(WorkItem(run_id=run_id, table=name))
            if ledger.mark_queued(run_id, name):
                enqueued.append(name)
                progressed = True
        if not progressed:
            break
    if items and all(item["status"] in TERMINAL for item in items.values()):
        run = ledger.get_run(run_id) or {}
        if ledger.start_finalizing(run_id) or run.get("state") == RunState.FINALIZING:
            queues.send_finalize(run_id)
    return enqueued
