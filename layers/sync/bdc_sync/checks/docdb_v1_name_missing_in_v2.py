"""v1 records whose ``name`` no v2 record has (not upgraded, or renamed on the way)."""

from __future__ import annotations

from collections.abc import Mapping

from bdc_sync.consistency import DOCDB_V1, DOCDB_V2, Check, Records


def name_in_v2(records: Records, others: Mapping[str, Records]) -> list[bool]:
    """Pass a v1 record whose name is a v2 record's name; a v1 record without a name fails."""
    v2_names = {r.name for r in others[DOCDB_V2] if r.name}
    return [r.name in v2_names for r in records]


CHECK = Check(
    key="docdb_v1_name_missing_in_v2",
    description="Fails DocDB v1 records whose name is the name of no v2 record",
    source=DOCDB_V1,
    compares_with=(DOCDB_V2,),
    evaluate=name_in_v2,
    version=1,
)
