"""The unique_* tables: the distinct values of one asset_basics column each.

asset_basics holds one row per record, so these need no DocDB request of their own
and are rebuilt only when asset_basics changed.
"""

from __future__ import annotations

import pyarrow as pa

from bdc_sync.framework import BuildContext, DerivedTable, distinct_sorted
from biodata_cache.catalog import (
    UNIQUE_GENOTYPES,
    UNIQUE_INSTRUMENTS,
    UNIQUE_PROJECT_NAMES,
    UNIQUE_SUBJECT_IDS,
    TableSpec,
)


def distinct_from_basics(spec: TableSpec) -> DerivedTable:
    column = spec.column_names[0]

    def derive(ctx: BuildContext) -> pa.Table:
        return distinct_sorted(ctx.upstream("asset_basics", columns=[column]), column)

    return DerivedTable(spec=spec, derive=derive)


PROJECT_NAMES = distinct_from_basics(UNIQUE_PROJECT_NAMES)
SUBJECT_IDS = distinct_from_basics(UNIQUE_SUBJECT_IDS)
GENOTYPES = distinct_from_basics(UNIQUE_GENOTYPES)
INSTRUMENTS = distinct_from_basics(UNIQUE_INSTRUMENTS)
