"""Building one table of a run: claim it, build it, record the outcome, move on."""

from __future__ import annotations

import logging
import time
from typing import Any

from bdc_sync.chunked import ChunkedBuild
from bdc_sync.flow.events import WorkItem
from bdc_sync.flow.ledger import TERMINAL, Ledger
from bdc_sync.flow.progress import advance_run
from bdc_sync.flow.queues import Queues
from bdc_sync.framework import BuildContext, MissingInput, TableResult, UnusableInput
from bdc_sync.settings import Settings
from bdc_sync.tables import build_of

logger = logging.getLogger(__name__)


class TableBusy(RuntimeError):
    """Another delivery of the same table holds its lease; retry this message later."""


UNRETURNABLE_SAMPLE = 10


def docdb_figures(ctx: BuildContext) -> dict[str, Any]:
    """What the DocDB reads absorbed, and the records they had to skip (named)."""
    skipped = ctx.docdb_unreturnable
    return {
        **{f"docdb_{name}": value for name, value in ctx.docdb_absorbed.items()},
        "docdb_unreturnable": len(skipped),
        "docdb_unreturnable_sample": [
            {"id": rid, "reason": why} for rid, why in sorted(skipped.items())[:UNRETURNABLE_SAMPLE]
        ],
    }


def outcome_of(result: TableResult, ctx: BuildContext, seconds: float) -> dict[str, Any]:
    return {
        **docdb_figures(ctx),
        "status": result.status,
        "rows": result.rows,
        "bytes_written": result.bytes_written,
        "content_sha256": result.content_sha256 or "",
        "partitions_written": result.partitions_written,
        "partitions_deleted": result.partitions_deleted,
        "duration_seconds": seconds,
        "docdb_requests": ctx.docdb_requests,
        "docdb_records": ctx.docdb_records,
        "malformed": ctx.malformed.count,
        "malformed_sample": ctx.malformed.sample,
        "message": result.message,
        "companion_rows": result.companion_rows,
    }


def failure_outcome(ctx: BuildContext, seconds: float, error: str) -> dict[str, Any]:
    return {
        **docdb_figures(ctx),
        "status": "failed",
        "rows": 0,
        "bytes_written": 0,
        "duration_seconds": seconds,
        "docdb_requests": ctx.docdb_requests,
        "docdb_records": ctx.docdb_records,
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
    """Build the table (or chunk) of a work item once per run; returns its outcome.

    Raises to make SQS deliver the message again: while another delivery holds the
    item (TableBusy) or after a failed attempt that is not the last one. On the
    last receive a failure is recorded as the outcome first, so the run still
    finalizes while the message goes on to the dead-letter queue.
    """
    log_keys = {"run_id": item.run_id, "table": item.table, "chunk": item.chunk}
    claim = ledger.claim(item.run_id, item.table, settings.worker_timeout_seconds, item.chunk)
    if not claim.won:
        _not_claimed(item, claim.status, ledger, queues, settings, log_keys)
        return None

    build = build_of(item.table)
    ctx = BuildContext(settings, item.run_id, spec=build.spec)
    started = time.monotonic()
    try:
        if item.chunk is not None:
            assert isinstance(build, ChunkedBuild)
            result: TableResult | int = build.build_chunk(ctx, item.chunk)
        elif isinstance(build, ChunkedBuild):
            result = build.plan(ctx)
        else:
            result = build.build(ctx)
    except MissingInput as exc:
        # Retrying cannot create the input; record the failure and keep the old file.
        logger.error("input missing; previous file kept", extra={**log_keys, "error": str(exc)})
        result = TableResult(status="failed", rows=0, message=f"missing input: {exc}")
    except UnusableInput as exc:
        # A refused source stays refused on every delivery: record it, keep the old file.
        logger.error("input refused; previous file kept", extra={**log_keys, "error": str(exc)})
        result = TableResult(status="failed", rows=0, message=f"unusable input: {exc}")
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        last_attempt = receive_count >= settings.max_receives
        logger.exception(
            "build failed; previous file kept",
            extra={**log_keys, "receive_count": receive_count, "last_attempt": last_attempt},
        )
        if last_attempt:
            outcome = failure_outcome(ctx, time.monotonic() - started, error)
            if ledger.record_outcome(item.run_id, item.table, claim.token, outcome, item.chunk):
                _after_outcome(item, ledger, queues, settings)
        else:
            ledger.release(item.run_id, item.table, claim.token, error, item.chunk)
        raise
    if isinstance(result, int):
        # A planned chunked table: its chunks take over, the last one finishes it.
        ledger.start_chunks(item.run_id, item.table, claim.token, result)
        for index in range(result):
            queues.send_work(WorkItem(run_id=item.run_id, table=item.table, chunk=index))
        logger.info("table split into chunks", extra={**log_keys, "chunks": result})
        return None
    outcome = outcome_of(result, ctx, time.monotonic() - started)
    if ledger.record_outcome(item.run_id, item.table, claim.token, outcome, item.chunk):
        logger.info("done", extra={**log_keys, **_figures(outcome)})
    else:
        logger.warning("lease lost before the outcome was recorded", extra=log_keys)
    _after_outcome(item, ledger, queues, settings)
    return outcome


def _not_claimed(
    item: WorkItem,
    status: str,
    ledger: Ledger,
    queues: Queues,
    settings: Settings,
    log_keys: dict[str, Any],
) -> None:
    """A delivery that may not build: a duplicate, or one to retry later."""
    if status == "missing":
        logger.error("work item for a table that is not in the run", extra=log_keys)
        return None
    if status in TERMINAL:
        logger.info("duplicate delivery of a finished item", extra=log_keys)
        _after_outcome(item, ledger, queues, settings)  # heals a crash after the outcome
        return None
    if status == "chunked":
        # A duplicate of the planning message: make sure every chunk has a message.
        for index, chunk in ledger.chunk_items(item.run_id, item.table).items():
            if chunk["status"] == "queued":
                queues.send_work(WorkItem(run_id=item.run_id, table=item.table, chunk=index))
        return None
    raise TableBusy(f"{item.table} of run {item.run_id} is being built by another delivery")


def _after_outcome(item: WorkItem, ledger: Ledger, queues: Queues, settings: Settings) -> None:
    """Count a finished chunk (finishing its table after the last), then advance the run."""
    if item.chunk is not None:
        table = ledger.get_item(item.run_id, item.table) or {}
        if table.get("status") == "chunked":
            done, total = ledger.count_chunk_done(item.run_id, item.table, item.chunk)
            if done >= total:
                finish_chunked_table(item, ledger, settings)
    advance_run(item.run_id, ledger, queues)


def finish_chunked_table(item: WorkItem, ledger: Ledger, settings: Settings) -> None:
    """Merge the chunks' outcomes into the table's, once (a conditional write)."""
    build = build_of(item.table)
    assert isinstance(build, ChunkedBuild)
    chunks = ledger.chunk_items(item.run_id, item.table)
    if not all(chunk["status"] in TERMINAL for chunk in chunks.values()):
        return
    if not ledger.claim_finish(item.run_id, item.table, settings.worker_timeout_seconds):
        return  # another delivery is finishing it (or has)
    ctx = BuildContext(settings, item.run_id, spec=build.spec)
    started = time.monotonic()
    result = build.finish(ctx, {index: chunk["status"] for index, chunk in chunks.items()})
    outcome = outcome_of(result, ctx, time.monotonic() - started)
    for figure in (
        "docdb_requests",
        "docdb_records",
        "bytes_written",
        "partitions_written",
        "partitions_deleted",
        "malformed",
        "docdb_splits",
        "docdb_oversize_answers",
        "docdb_listing_retries",
        "docdb_unreturnable",
    ):
        outcome[figure] += sum(int(chunk.get(figure) or 0) for chunk in chunks.values())
    outcome["docdb_unreturnable_sample"] = [
        s for c in [outcome, *chunks.values()] for s in c.get("docdb_unreturnable_sample", [])
    ][:UNRETURNABLE_SAMPLE]
    outcome["duration_seconds"] += sum(float(c.get("duration_seconds") or 0) for c in chunks.values())
    outcome["malformed_sample"] = [s for c in chunks.values() for s in c.get("malformed_sample", [])][:5]
    outcome["chunks"] = len(chunks)
    failures = [c for _, c in sorted(chunks.items()) if c["status"] == "failed" and c.get("message")]
    if outcome["status"] == "failed" and failures:
        # The run report should say why, not only which chunks failed.
        outcome["message"] = f"{outcome['message']}; first failure: {failures[0]['message']}"[:2000]
    if ledger.record_outcome(item.run_id, item.table, None, outcome):
        build.clean_up(ctx, len(chunks))


def _figures(outcome: dict[str, Any]) -> dict[str, Any]:
    keys = ("status", "rows", "bytes_written", "duration_seconds", "docdb_requests", "malformed")
    return {key: outcome.get(key) for key in keys}
