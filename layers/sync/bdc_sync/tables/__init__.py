"""The table modules, and the one map from table name to its build.

Add a table: declare its spec in ``biodata_cache.catalog`` and write the module the
spec names (``TableSpec.build_module``: the table's name unless ``module=`` says
otherwise) with its build: a RecordTable, DerivedTable or one of the chunked builds
whose ``spec`` is the catalog's. Nothing is listed here; the catalog is the list.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

from bdc_sync.framework import Table
from biodata_cache.catalog import ALL_TABLES, TABLES, TableSpec, get_spec


def builds_in(module: ModuleType) -> list[Table]:
    """The builds a module defines or imports: objects with a ``spec`` and a ``build``."""
    found: list[Table] = []
    for value in vars(module).values():
        if isinstance(getattr(value, "spec", None), TableSpec) and callable(getattr(value, "build", None)):
            if not any(value is known for known in found):
                found.append(value)
    return found


def find_build(spec: TableSpec) -> Table:
    """The build of a table in the module its spec names; ImportError saying what is missing."""
    module_name = spec.build_module or spec.name
    try:
        module = import_module(f"{__name__}.{module_name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{module_name}":
            raise  # the module exists and imports something missing
        raise ImportError(
            f"table {spec.name}: no module {__name__}.{module_name} (a table's build is in the module "
            "named after it, or in the one its catalog spec names with module=)"
        ) from None
    builds = [build for build in builds_in(module) if build.spec is spec]
    if not builds:
        raise ImportError(
            f"table {spec.name}: {module.__name__} defines no build whose spec is catalog's {spec.name}"
        )
    return builds[0]


BUILDS: dict[str, Table] = {
    spec.name: find_build(spec) for spec in ALL_TABLES if spec.build_module
}


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
