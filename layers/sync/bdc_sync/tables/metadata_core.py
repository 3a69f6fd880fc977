"""metadata_core: which core metadata files each DocDB v2 record has, one row per record.

A core file counts as present when its field exists and is not null. DocDB computes
the flags itself (``$ifNull`` then ``$ne`` in the aggregate's ``$project``), so a
fetch carries a few booleans per record instead of the core files, which are most
of a record's 50-300 KB. Incremental by ``_last_modified``, over every v2 record: a
record missing its data_description or acquisition is exactly what this table shows.
It is the run's one listing of the v2 records: asset_basics and the consistency
checks take theirs from this table's ``_id`` and ``_last_modified``.
"""

from __future__ import annotations

from typing import Any

from bdc_sync.fields import as_text
from bdc_sync.framework import AllRecords, RecordTable, Row
from biodata_cache.catalog import CORE_FILES, METADATA_CORE


def presence_flag(field: str) -> dict[str, Any]:
    """An aggregation expression: true when ``field`` exists and is not null.

    ``$ifNull`` first because in aggregation a missing field is not equal to null.
    """
    return {"$ne": [{"$ifNull": [f"${field}", None]}, None]}


PROJECTION: dict[str, Any] = {
    "_id": 1,
    "_last_modified": 1,
    **{core: presence_flag(core) for core in CORE_FILES},
}


def rows(record: dict) -> list[Row]:
    """The record's row from its projected flags (a flag that is not a boolean is null)."""
    flags = {core: record.get(core) if isinstance(record.get(core), bool) else None for core in CORE_FILES}
    return [{"_id": str(record["_id"]), "_last_modified": as_text(record.get("_last_modified")), **flags}]


TABLE = RecordTable(
    spec=METADATA_CORE,
    listing=AllRecords(),
    projection=PROJECTION,
    rows=rows,
    sort_by=("_id",),
)
