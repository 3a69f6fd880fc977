"""time_to_qc: for each derived asset with a quality_control, when processing ended and QC did.

``qc_time`` is "now" while any QC status is Pending, so the table changes every run
even when no record did. Design, to keep DocDB requests of an unchanged run at zero:

- Incremental over derived assets (listed from asset_basics, fetched only when
  their ``_last_modified`` changed), like any RecordTable.
- Each state row stores ``qc_pending`` beside the spec's three columns, and a
  pending row's ``qc_time`` stays null in the state. "Now" is filled in by
  ``finish`` over all rows at publish time. A separate flag (rather than "null
  means pending") keeps a finished QC without any timestamp null, as it should be.
- Volatile: the build never takes the "no record changed" shortcut, because
  "now" moved; unchanged records still come from the state, not from DocDB.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from bdc_sync.fields import MalformedRecord, as_list, as_text, get_path, to_utc
from bdc_sync.framework import BuildContext, RecordTable, Row, assets_where
from bdc_sync.tables.assets import data_level_is
from biodata_cache.catalog import TIME_TO_QC

PENDING = "Pending"
PENDING_COL = "qc_pending"

PROJECTION = (
    "_id",
    "name",
    "quality_control.status",
    "quality_control.metrics.status_history.timestamp",
    "processing.data_processes.start_date_time",
    "processing.data_processes.end_date_time",
)


def process_end_time(record: dict) -> str | None:
    """End of the last data process, else its start (text as stored)."""
    processes = [p for p in as_list(get_path(record, "processing.data_processes")) if isinstance(p, dict)]
    if not processes:
        return None
    last = processes[-1]
    return as_text(last.get("end_date_time")) or as_text(last.get("start_date_time"))


def is_pending(quality_control: dict) -> bool:
    status = quality_control.get("status")
    return isinstance(status, dict) and any(value == PENDING for value in status.values())


def latest_status_time(quality_control: dict) -> datetime | None:
    """Greatest timestamp among the latest status_history entries of all metrics."""
    times: list[datetime] = []
    for metric in as_list(quality_control.get("metrics")):
        if not isinstance(metric, dict):
            continue
        history = as_list(metric.get("status_history"))
        latest = history[-1] if history else None
        moment = to_utc(latest.get("timestamp")) if isinstance(latest, dict) else None
        if moment is not None:
            times.append(moment)
    return max(times, default=None)


def rows(record: dict) -> list[Row]:
    """The record's row, or none when it has no quality_control."""
    quality_control = record.get("quality_control")
    if quality_control is None:
        return []
    if not isinstance(quality_control, dict):
        raise MalformedRecord(f"quality_control is {type(quality_control).__name__}, expected an object")
    pending = is_pending(quality_control)
    return [
        {
            "name": as_text(record.get("name")),
            "process_end_time": process_end_time(record),
            "qc_time": None if pending else latest_status_time(quality_control),
            PENDING_COL: pending,
        }
    ]


def fill_pending_now(table: pa.Table, ctx: BuildContext | None = None) -> pa.Table:
    """``qc_time`` of pending rows becomes the build time (UTC)."""
    now = pa.scalar(datetime.now(UTC), TIME_TO_QC.schema.field("qc_time").type)
    pending = table[PENDING_COL].fill_null(pa.scalar(False))
    filled = pc.if_else(pending, now, table["qc_time"])
    return table.set_column(table.schema.get_field_index("qc_time"), "qc_time", filled)


def is_derived(basics: pa.Table) -> pa.Array:
    return data_level_is(basics, "derived")


TABLE = RecordTable(
    spec=TIME_TO_QC,
    listing=assets_where(is_derived, columns=("data_level",)),
    projection=PROJECTION,
    rows=rows,
    finish=fill_pending_now,
    sort_by=("name",),
    state_fields=(pa.field(PENDING_COL, pa.bool_()),),
    volatile=True,
)
