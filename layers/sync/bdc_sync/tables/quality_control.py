"""quality_control (under qc/) and qc_tag_status: QC rows per subject, built in chunks.

One row per QC metric (curation metrics left out) and, in the companion, one row per
entry of the record's QC status. Published as one file per subject; only subjects
whose records changed are rebuilt (see ``bdc_sync.chunked``).
"""

from __future__ import annotations

from typing import Any

from bdc_sync.chunked import RowsByTable, SubjectPartitionedTable
from bdc_sync.fields import as_list, as_text, get_path, require_dict, to_utc
from biodata_cache.catalog import QC_TAG_STATUS, QUALITY_CONTROL

PROJECTION = (
    "_id",
    "name",
    "subject.subject_id",
    "acquisition.acquisition_start_time",
    "quality_control.metrics.object_type",
    "quality_control.metrics.name",
    "quality_control.metrics.modality",
    "quality_control.metrics.stage",
    "quality_control.metrics.value",
    "quality_control.metrics.status_history",
    "quality_control.status",
)


def value_text(value: Any) -> str | None:
    """Strings kept; objects become ``{dict}``; other values their text form."""
    if value is None:
        return None
    if isinstance(value, str):
        return as_text(value)
    if isinstance(value, dict):
        return "{dict}"
    return str(value)


def latest_status(metric: dict) -> str | None:
    history = [h for h in as_list(metric.get("status_history")) if isinstance(h, dict)]
    return as_text(history[-1].get("status")) if history else None


def rows(record: dict) -> RowsByTable:
    quality = require_dict(record, "quality_control")
    common = {
        "asset_name": as_text(record.get("name")),
        "subject_id": as_text(get_path(record, "subject.subject_id")),
        "timestamp": to_utc(get_path(record, "acquisition.acquisition_start_time")),
    }
    metrics = []
    for metric in as_list(quality.get("metrics")):
        if not isinstance(metric, dict) or metric.get("object_type") == "Curation metric":
            continue
        modality = metric.get("modality")
        metrics.append(
            {
                "name": as_text(metric.get("name")),
                "modality": as_text(modality.get("abbreviation")) if isinstance(modality, dict) else None,
                "stage": as_text(metric.get("stage")),
                "value": value_text(metric.get("value")),
                "status": latest_status(metric),
                **common,
            }
        )
    status = quality.get("status")
    tags = [
        {"tag": str(tag), "status": as_text(value), **common}
        for tag, value in (status.items() if isinstance(status, dict) else [])
    ]
    return {QUALITY_CONTROL.name: metrics, QC_TAG_STATUS.name: tags}


TABLE = SubjectPartitionedTable(
    spec=QUALITY_CONTROL,
    companions=(QC_TAG_STATUS,),
    projection=PROJECTION,
    rows=rows,
)
