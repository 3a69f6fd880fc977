"""The table modules, and the one map from table name to its build.

Add a table: declare its spec in ``biodata_cache.catalog`` and write a module here
with its build (a RecordTable, DerivedTable or one of the chunked builds) whose
``spec`` is the catalog's object. Nothing is listed here: every module of this package
is imported, and each catalog table's build is the object whose ``spec`` is its spec.
tests/sync/test_catalog_declarations.py checks that the two match one to one.
"""

from __future__ import annotations

import pkgutil
from collections.abc import Iterable
from importlib import import_module
from types import ModuleType

from bdc_sync.framework import Table
from biodata_cache.catalog import ALL_TABLES, TABLES, TableSpec, get_spec


def builds_in(module: ModuleType) -> list[Table]:
    """The builds a module defines or imports: objects with a catalog ``spec`` and a ``build``."""
    found: list[Table] = []
    for value in vars(module).values():
        if isinstance(getattr(value, "spec", None), TableSpec) and callable(getattr(value, "build", None)):
            if not any(value is known for known in found):
                found.append(value)
    return found


def table_modules() -> list[ModuleType]:
    """Every module of this package, imported."""
    return [import_module(f"{__name__}.{info.name}") for info in pkgutil.iter_modules(__path__)]


def find_builds(specs: Iterable[TableSpec], modules: Iterable[ModuleType]) -> dict[str, Table]:
    """Table name -> the build whose spec is that table's spec object, for the specs that have one.

    Raises:
        ImportError: two different builds claim the same spec.
    """
    wanted = {id(spec): spec for spec in specs}
    found: dict[str, tuple[Table, str]] = {}
    for module in modules:
        for build in builds_in(module):
            spec = wanted.get(id(build.spec))
            if spec is None:
                continue
            if spec.name in found and found[spec.name][0] is not build:
                raise ImportError(
                    f"table {spec.name} has two builds: in {found[spec.name][1]} and in {module.__name__}"
                )
            found.setdefault(spec.name, (build, module.__name__))
    return {spec.name: found[spec.name][0] for spec in wanted.values() if spec.name in found}


BUILDS: dict[str, Table] = find_builds(ALL_TABLES, table_modules())


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
