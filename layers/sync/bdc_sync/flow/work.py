"""Building one table of a run: claim it, build it, record the outcome, move on."""

from __future__ import annotations

import logging
import time
from typing import Any

from bdc_sync.flow.events import WorkItem
from bdc_sync.flow.ledger import TERMINAL, Ledger
from bdc_sync.flow.progress import advance_run
from bdc_sync.flow.queues import Queues
from bdc_sync.framework import BuildContext, MissingInput, TableResult
from bdc_sync.settings import Settings
from bdc_sync.tables import build_of

logger = logging.getLogger(__name__)


class TableBusy(RuntimeError):
    """Another delivery of the same table holds its lease; retry this message later."""


def outcome_of(result: TableResult, ctx: BuildContext, seconds: float) -> dict[str, Any]:
    return {
        "status": result.status,
        "rows": result.rows,
        "bytes_written": result.bytes_written,
        "content_sha256": result.content_sha256 or "",
        "partitions_written": result.partitions_written,
        "partitions_deleted": result.partitions_deleted,
        "duration_seconds": seconds,
        "docdb_requests": ctx.docdb_requests,
        "malformed": ctx.malformed.count,
        "malformed_sample": ctx.malformed.sample,
        "message": result.message,
    }


def failure_outcome(ctx: BuildContext, seconds: float, error: str) -> dict[str, Any]:
    return {
        "status": "failed",
        "rows": 0,
        "bytes_written": 0,
        "duration_seconds": seconds,
        "docdb_requests": ctx.docdb_requests,
        "malformed": ctx.malformed.count,
        "malformed_sample": ctx.malformed.sample,
        "message": error[:2000],
    }


def build_work_item(
    item: WorkItem,
    receive_count: int,
    settings: Settings,
    ledger: Ledger,
    queues: Queues,
) -> dict[str, Any] | None:
    """Build the table of a work item once per run; returns its outcome.

    Raises to make SQS deliver the message again: while another delivery holds the
    table (TableBusy) or after a failed attempt that is not the last one. On the
    last receive a failure is recorded as the table's outcome first, so the run
    still finalizes while the message goes on to the dead-letter queue.
    """
    log_keys = {"run_id": item.run_id, "table": item.table, "chunk": item.chunk}
    claim = ledger.claim(item.run_id, item.table, settings.worker_timeout_seconds)
    if not claim.won:
        if claim.status in TERMINAL:
            logger.info("duplicate delivery of a finished table", extra=log_keys)
            advance_run(item.run_id, ledger, queues)  # heals a crash after the outcome
            return None
        if claim.status == "missing":
            logger.error("work item for a table that is not in the run", extra=log_keys)
            return None
        raise TableBusy(f"{item.table} of run {item.run_id} is being built by another delivery")

    ctx = BuildContext(settings, item.run_id)
    started = time.monotonic()
    try:
        result = build_of(item.table).build(ctx)
    except MissingInput as exc:
        # Retrying cannot create the input; record the failure and keep the old file.
        logger.error("input missing; previous file kept", extra={**log_keys, "error": str(exc)})
        outcome = failure_outcome(ctx, time.monotonic() - started, f"missing input: {exc}")
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        last_attempt = receive_count >= settings.max_receives
        logger.exception(
            "build failed; previous file kept",
            extra={**log_keys, "receive_count": receive_count, "last_attempt": last_attempt},
        )
        if last_attempt:
            outcome = failure_outcome(ctx, time.monotonic() - started, error)
            if ledger.record_outcome(item.run_id, item.table, claim.token, outcome):
                advance_run(item.run_id, ledger, queues)
        else:
            ledger.release(item.run_id, item.table, claim.token, error)
        raise
    else:
        outcome = outcome_of(result, ctx, time.monotonic() - started)
    if ledger.record_outcome(item.run_id, item.table, claim.token, outcome):
        logger.info("table done", extra={**log_keys, **_figures(outcome)})
    else:
        logger.warning("lease lost before the outcome was recorded", extra=log_keys)
    advance_run(item.run_id, ledger, queues)
    return outcome


def _figures(outcome: dict[str, Any]) -> dict[str, Any]:
    keys = ("status", "rows", "bytes_written", "duration_seconds", "docdb_requests", "malformed")
    return {key: outcome.get(key) for key in keys}
