"""The table modules, and the one map from table name to its build.

Add a table: declare its spec in ``biodata_cache.catalog``, write a module here
with a ``TABLE`` (a RecordTable, DerivedTable or PartitionedTable), list it below.
"""

from __future__ import annotations

from bdc_sync.framework import Table
from bdc_sync.tables import (
    asset_basics,
    behavior_curriculum,
    foraging_sessions,
    metadata_core,
    metadata_upgrade,
    platform_exaspim,
    platform_fib,
    platform_qc,
    platform_smartspim,
    quality_control,
    record_consistency,
    source_data,
    time_to_qc,
    unique_values,
)
from biodata_cache.catalog import TABLES, get_spec

_BUILDS: tuple[Table, ...] = (
    asset_basics.TABLE,
    unique_values.PROJECT_NAMES,
    unique_values.SUBJECT_IDS,
    unique_values.GENOTYPES,
    source_data.TABLE,
    quality_control.TABLE,
    platform_qc.TABLE,
    platform_smartspim.TABLE,
    platform_exaspim.TABLE,
    platform_fib.TABLE,
    metadata_upgrade.TABLE,
    foraging_sessions.TABLE,
    behavior_curriculum.TABLE,
    time_to_qc.TABLE,
    metadata_core.TABLE,
    record_consistency.TABLE,
)

BUILDS: dict[str, Table] = {build.spec.name: build for build in _BUILDS}


def build_of(name: str) -> Table:
    """The build of a table (a companion table maps to the build that writes it)."""
    spec = get_spec(name)
    target = spec.built_with or spec.name
    if target not in BUILDS:
        raise NotImplementedError(f"table {name} has no build yet")
    return BUILDS[target]


def buildable_tables() -> list[str]:
    """Tables with a build of their own, in catalog order."""
    return [name for name in TABLES if name in BUILDS]
