"""Top-level prefixes of the open-data bucket that no v2 record's ``location`` points to.

A location points to a prefix when it is ``s3://<bucket>/<prefix>``, with or without
a trailing slash; a location deeper inside the prefix does not count (a record's
location is its asset's top folder).
"""

from __future__ import annotations

from collections.abc import Mapping

from bdc_sync.consistency import DOCDB_V2, OPEN_DATA_PREFIXES, Check, Records


def has_a_record(records: Records, others: Mapping[str, Records]) -> list[bool]:
    """Pass a prefix whose s3:// location is some v2 record's location."""
    locations = {r.location.rstrip("/") for r in others[DOCDB_V2] if r.location}
    return [bool(r.location) and r.location in locations for r in records]


CHECK = Check(
    key="open_data_prefix_missing_docdb_v2",
    description="Fails top-level prefixes of the open-data bucket that no DocDB v2 record's location is",
    source=OPEN_DATA_PREFIXES,
    compares_with=(DOCDB_V2,),
    evaluate=has_a_record,
    version=1,
)
