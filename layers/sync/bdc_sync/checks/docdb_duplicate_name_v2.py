"""v2 records whose ``name`` equals another v2 record's name (exactly, case included)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from bdc_sync.consistency import DOCDB_V2, Check, Records


def unique_names(records: Records, others: Mapping[str, Records]) -> list[bool]:
    """Pass a record whose name no other record has; a record without a name passes."""
    counts = Counter(r.name for r in records if r.name)
    return [not r.name or counts[r.name] == 1 for r in records]


CHECK = Check(
    key="docdb_duplicate_name_v2",
    description="Fails DocDB v2 records whose name is also the name of another v2 record",
    source=DOCDB_V2,
    evaluate=unique_names,
    version=1,
)
