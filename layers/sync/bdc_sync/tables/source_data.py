"""source_data: one row per (derived asset, source asset) link."""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

from bdc_sync.fields import as_list, as_text, get_path, require_dict, texts
from bdc_sync.framework import RecordTable, Row, assets_where
from biodata_cache.catalog import SOURCE_DATA

_PROCESSING_TIME = re.compile(r"(\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2})$")


def processing_time(name: str) -> str:
    """The trailing ``YYYY-MM-DD_HH-MM-SS`` of an asset name, or ``""``."""
    match = _PROCESSING_TIME.search(name)
    return match.group(1) if match else ""


def first_pipeline_name(record: dict) -> str:
    pipelines = as_list(get_path(record, "processing.pipelines"))
    first = pipelines[0] if pipelines else None
    return (as_text(first.get("name")) or "") if isinstance(first, dict) else ""


def rows(record: dict) -> list[Row]:
    """One row per source asset; one row with an empty source when none is recorded."""
    description = require_dict(record, "data_description")
    name = as_text(record.get("name")) or ""
    sources = texts(as_list(description.get("source_data"))) or [""]
    pipeline = first_pipeline_name(record)
    return [
        {
            "name": name,
            "source_data": source,
            "pipeline_name": pipeline,
            "processing_time": processing_time(name),
        }
        for source in sources
    ]


def is_derived(basics: pa.Table) -> pa.Array:
    return pc.equal(basics["data_level"], pa.scalar("derived")).fill_null(False)


TABLE = RecordTable(
    spec=SOURCE_DATA,
    listing=assets_where(is_derived, columns=("data_level",)),
    projection=("_id", "name", "data_description.source_data", "processing.pipelines.name"),
    rows=rows,
)
