"""Finalizing a run: registry, versions list and run report.

The registry lists every table of the catalog, including tables this run did not
touch. Each entry's build figures come from the most recently *finished* outcome
(so of two overlapping runs the later build of a table wins); a failed or skipped
outcome keeps the last good figures and says so. Both JSON documents are updated
with S3 conditional writes, so concurrent finalizers never lose an entry.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from bdc_sync.flow.ledger import Ledger
from bdc_sync.settings import Settings
from bdc_sync.store import ObjectStore
from biodata_cache import layout
from biodata_cache.catalog import ALL_TABLES, TableSpec

logger = logging.getLogger(__name__)


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def table_location(bucket: str, folder: str, spec: TableSpec) -> str:
    if spec.partitioned:
        return layout.s3_url(bucket, layout.partition_folder_key(folder, spec.folder or spec.name))
    return layout.s3_url(bucket, layout.table_key(folder, spec.name))


def static_entry(spec: TableSpec, bucket: str, folder: str) -> dict[str, Any]:
    """The registry fields of the public contract, from the catalog."""
    return {
        "name": spec.name,
        "description": spec.description,
        "location": table_location(bucket, folder, spec),
        "partitioned": spec.partitioned,
        "partition_key": spec.partition_key,
        "type": spec.type,
        "columns": spec.column_docs(),
        "column_types": {c.name: str(c.type) for c in spec.columns},
    }


def build_fields(outcome: dict[str, Any], run_id: str, previous: dict[str, Any]) -> dict[str, Any]:
    """The dynamic registry fields after one outcome."""
    finished = _iso(outcome.get("finished_at"))
    status = outcome["status"]
    fields: dict[str, Any] = {
        "status": "ok" if status in {"succeeded", "unchanged"} else status,
        "last_checked": finished,
        # Full precision: two overlapping runs often finish a table within the same
        # second, and last_checked (whole seconds) cannot tell which was later.
        "last_checked_epoch": outcome.get("finished_at"),
        "last_run_id": run_id,
        "message": outcome.get("message", ""),
    }
    if status in {"succeeded", "unchanged"}:
        fields["rows"] = outcome.get("rows")
        fields["content_sha256"] = outcome.get("content_sha256") or previous.get("content_sha256")
        changed = status == "succeeded" or previous.get("last_built") is None
        fields["last_built"] = finished if changed else previous.get("last_built")
        fields["built_by_run"] = run_id if changed else previous.get("built_by_run")
    else:
        for key in ("rows", "content_sha256", "last_built", "built_by_run"):
            fields[key] = previous.get(key)
    return fields


def newer_outcome(previous: dict[str, Any], outcome: dict[str, Any]) -> bool:
    """Whether ``outcome`` finished at or after the build the registry entry shows."""
    finished = outcome.get("finished_at")
    checked = previous.get("last_checked_epoch")
    if checked is not None and finished is not None:
        return float(checked) <= float(finished)
    # An entry written before last_checked_epoch existed: whole seconds only.
    return (previous.get("last_checked") or "") <= (_iso(finished) or "")


def merge_registry(
    current: dict[str, Any] | None,
    outcomes: dict[str, dict[str, Any]],
    run_id: str,
    bucket: str,
    folder: str,
) -> dict[str, Any]:
    """The registry after this run's outcomes, keeping later builds of other runs."""
    previous_entries = {e["name"]: e for e in (current or {}).get("tables", [])}
    entries = []
    for spec in ALL_TABLES:
        previous = previous_entries.get(spec.name, {})
        entry = {**previous, **static_entry(spec, bucket, folder)}
        outcome = outcomes.get(spec.built_with or spec.name)
        if outcome is not None:
            if spec.built_with:
                outcome = {**outcome, "rows": (outcome.get("companion_rows") or {}).get(spec.name)}
            if newer_outcome(previous, outcome):
                entry.update(build_fields(outcome, run_id, previous))
        entry.setdefault("status", "never built")
        entry.setdefault("rows", None)
        entries.append(entry)
    return {"version": folder, "tables": entries}


def add_version(versions: list[str] | None, folder: str) -> list[str]:
    """The versions list with ``folder`` once, sorted as semver, oldest first."""
    known = [v for v in (versions or []) if isinstance(v, str)]
    if folder not in known:
        known.append(folder)
    ours = sorted((v for v in known if layout.is_version_folder(v)), key=layout.folder_sort_key)
    others = [v for v in known if not layout.is_version_folder(v)]
    return others + ours


def run_report(run: dict[str, Any], items: dict[str, dict[str, Any]]) -> dict[str, Any]:
    tables = []
    for name in sorted(items):
        item = items[name]
        tables.append(
            {
                "table": name,
                "status": item.get("status"),
                "rows": item.get("rows"),
                "duration_seconds": item.get("duration_seconds"),
                "docdb_requests": item.get("docdb_requests", 0),
                "docdb_records": item.get("docdb_records", 0),
                "bytes_written": item.get("bytes_written", 0),
                "partitions_written": item.get("partitions_written", 0),
                "partitions_deleted": item.get("partitions_deleted", 0),
                "malformed_records": item.get("malformed", 0),
                "malformed_sample": item.get("malformed_sample", []),
                # Records DocDB could not return even alone (over the response limit):
                # skipped, counted and named here; the table itself is published.
                "unreturnable_records": item.get("docdb_unreturnable", 0),
                "unreturnable_sample": item.get("docdb_unreturnable_sample", []),
                "docdb_splits": item.get("docdb_splits", 0),
                "docdb_oversize_answers": item.get("docdb_oversize_answers", 0),
                "docdb_listing_retries": item.get("docdb_listing_retries", 0),
                "attempts": item.get("attempts", 0),
                "message": item.get("message") or item.get("last_error", ""),
            }
        )
    finished = [i["finished_at"] for i in items.values() if i.get("finished_at")]
    return {
        "run_id": run["run_id"],
        "version": run["folder"],
        "trigger": run.get("trigger"),
        "started_at": _iso(run.get("created_at")),
        "finished_at": _iso(max(finished)) if finished else None,
        "wall_seconds": (max(finished) - run["created_at"]) if finished else None,
        "tables": tables,
        "totals": {
            "tables": len(tables),
            "failed": sum(1 for t in tables if t["status"] == "failed"),
            "skipped": sum(1 for t in tables if t["status"] == "skipped"),
            "docdb_requests": sum(t["docdb_requests"] or 0 for t in tables),
            "bytes_written": sum(t["bytes_written"] or 0 for t in tables),
            "malformed_records": sum(t["malformed_records"] or 0 for t in tables),
            "unreturnable_records": sum(t["unreturnable_records"] or 0 for t in tables),
            "docdb_splits": sum(t["docdb_splits"] or 0 for t in tables),
        },
    }


def coalesced_report(run: dict[str, Any]) -> dict[str, Any]:
    """The report of a scheduled run that built nothing: an earlier run was still building."""
    return {
        "run_id": run["run_id"],
        "version": run["folder"],
        "trigger": run.get("trigger"),
        "state": "coalesced",
        "coalesced_into": run.get("coalesced_into"),
        "reason": run.get("reason", ""),
        "started_at": _iso(run.get("created_at")),
        "finished_at": _iso(run.get("created_at")),
        "wall_seconds": 0.0,
        "tables": [],
        "totals": {
            "tables": 0,
            "failed": 0,
            "skipped": 0,
            "docdb_requests": 0,
            "bytes_written": 0,
            "malformed_records": 0,
        },
    }


def finalize_run(run_id: str, settings: Settings, ledger: Ledger, cache: ObjectStore) -> dict[str, Any]:
    """Write the report, merge the registry, list the version; once per run."""
    run = ledger.get_run(run_id)
    if run is None:
        raise ValueError(f"unknown run {run_id}")
    folder = run["folder"]
    if run["state"] == "coalesced":
        # Only the report: the registry and the latest report belong to runs that built.
        report_key = layout.run_report_key(folder, run_id)
        cache.put_json(report_key, coalesced_report(run))
        logger.info(
            "coalesced run reported", extra={"run_id": run_id, "coalesced_into": run.get("coalesced_into")}
        )
        return {"run_id": run_id, "state": "coalesced", "report": report_key}
    if run["state"] == "finalized":
        logger.info("run already finalized", extra={"run_id": run_id})
        if run.get("trigger") == "schedule":
            ledger.give_back_schedule_slot(folder, run_id)  # a redelivery after a crash here
        return {
            "run_id": run_id,
            "state": "finalized",
            "report": run.get("report_key"),
            "finalized_now": False,
        }
    if run["state"] != "finalizing":
        raise RuntimeError(f"run {run_id} is {run['state']}, not ready to finalize")
    items = ledger.table_items(run_id)
    report = run_report(run, items)
    report_key = layout.run_report_key(folder, run_id)
    cache.put_json(report_key, report)
    cache.update_json(
        layout.latest_run_report_key(folder),
        lambda latest: report if latest is None or latest.get("run_id", "") <= run_id else latest,
    )
    cache.update_json(
        layout.registry_key(folder),
        lambda current: merge_registry(current, items, run_id, settings.cache_bucket, folder),
    )
    cache.update_json(layout.versions_key(), lambda versions: add_version(versions, folder))
    if run.get("trigger") == "schedule":
        # Before mark_finalized, so whoever sees the run finalized finds the slot free;
        # every table of the run is done by now, so a tick from here on may start.
        ledger.give_back_schedule_slot(folder, run_id)
    ledger.mark_finalized(run_id, report_key)
    logger.info("run finalized", extra={"run_id": run_id, **report["totals"]})
    return {
        "run_id": run_id,
        "state": "finalized",
        "report": report_key,
        "totals": report["totals"],
        "finalized_now": True,
    }
