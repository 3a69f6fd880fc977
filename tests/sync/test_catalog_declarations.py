"""The catalog's declarations agree with each other and with what the builds do.

- ``depends_on`` and ``built_with`` name real tables, and ``depends_on`` has no cycle;
- every catalog table has a build whose spec is the catalog's own object, and no table
  module holds a build the catalog does not know (or two builds of one table);
- README's table list names every catalog table;
- the platform list is the same wherever it is restated;
- rows of the real fixture records carry only their table's columns;
- the framework refuses a read outside ``depends_on`` and a row key outside the columns.

Each check is also fed a bad declaration and must fail on it.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from collections.abc import Iterable
from dataclasses import replace
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from types import ModuleType

import pytest
from table_harness import Harness, mocked_aws

from bdc_local.corpus import real_fixtures_dir
from bdc_sync import tables
from bdc_sync.chunked import SubjectPartitionedTable
from bdc_sync.framework import (
    AllRecords,
    DerivedTable,
    MalformedLog,
    MissingInput,
    RecordTable,
    UndeclaredColumn,
    UndeclaredInput,
    check_row_keys,
    rows_to_arrow,
)
from bdc_sync.tables import BUILDS, build_of, builds_in, find_builds, platform_qc, table_modules
from biodata_cache import api, catalog
from biodata_cache.catalog import TableSpec

ROOT = Path(__file__).resolve().parents[2]
DOCDB_FIXTURES = real_fixtures_dir()
SCHEMA_RECORDS = Path(__file__).with_name("schema_records.json")


# -- depends_on: real tables, no cycle ------------------------------------------------


def dependency_order(specs: Iterable[TableSpec]) -> list[str]:
    """The tables in an order that builds every input first; ValueError/CycleError if none."""
    specs = list(specs)
    names = {spec.name for spec in specs}
    for spec in specs:
        unknown = [n for n in (*spec.depends_on, *filter(None, [spec.built_with])) if n not in names]
        if unknown:
            raise ValueError(f"{spec.name} names unknown tables: {', '.join(unknown)}")
    return list(TopologicalSorter({spec.name: spec.depends_on for spec in specs}).static_order())


def test_depends_on_names_real_tables_without_a_cycle() -> None:
    order = dependency_order(catalog.ALL_TABLES)
    assert sorted(order) == sorted(catalog.TABLES)
    for spec in catalog.ALL_TABLES:
        assert all(order.index(dep) < order.index(spec.name) for dep in spec.depends_on)


def test_a_misspelt_dependency_is_refused() -> None:
    bad = replace(catalog.SOURCE_DATA, depends_on=("asset_basic",))
    with pytest.raises(ValueError, match="source_data names unknown tables: asset_basic"):
        dependency_order(_swap(bad))


def test_a_cycle_is_refused() -> None:
    cyclic = replace(catalog.ASSET_BASICS, depends_on=("source_data",))
    with pytest.raises(CycleError):
        dependency_order(_swap(cyclic))


def test_an_unknown_companion_is_refused() -> None:
    bad = replace(catalog.QC_TAG_STATUS, built_with="quality_controls")
    with pytest.raises(ValueError, match="quality_controls"):
        dependency_order(_swap(bad))


def _swap(spec: TableSpec) -> list[TableSpec]:
    """The catalog with one spec replaced by a (bad) variant of the same name."""
    return [spec if s.name == spec.name else s for s in catalog.ALL_TABLES]


# -- every table has its build, declared with the catalog's spec -----------------------


def test_every_catalog_table_has_a_build_with_the_catalog_spec() -> None:
    for spec in catalog.ALL_TABLES:
        build = build_of(spec.name)
        assert build.spec is catalog.TABLES[spec.built_with or spec.name], spec.name
    assert set(BUILDS) <= set(catalog.TABLES)


def strays(modules: Iterable[ModuleType]) -> list[tuple[str, str]]:
    """(module, table) of each build that is not a catalog table's: it would never run."""
    return [
        (module.__name__, build.spec.name)
        for module in modules
        for build in builds_in(module)
        if not any(build is known for known in BUILDS.values())
    ]


def test_no_table_module_holds_a_build_outside_the_catalog() -> None:
    modules = table_modules()
    assert len(modules) >= len(BUILDS) - 2  # unique_values holds three
    assert strays(modules) == []
    # A companion is written by its main table's build, never by one of its own.
    assert not [spec.name for spec in catalog.ALL_TABLES if spec.built_with and spec.name in BUILDS]


def _module(name: str, **builds: object) -> ModuleType:
    module = ModuleType(name)
    vars(module).update(builds)
    return module


def test_a_build_with_a_copy_of_its_spec_is_a_stray() -> None:
    copy = DerivedTable(spec=replace(catalog.UNIQUE_GENOTYPES), derive=lambda ctx: [])
    module = _module("bdc_sync.tables.genotypes_again", TABLE=copy)
    assert find_builds(catalog.ALL_TABLES, [module]) == {}
    assert strays([module]) == [("bdc_sync.tables.genotypes_again", "unique_genotypes")]


def test_two_builds_of_one_table_are_refused() -> None:
    again = DerivedTable(spec=catalog.UNIQUE_GENOTYPES, derive=lambda ctx: [])
    modules = [*table_modules(), _module("bdc_sync.tables.genotypes_again", TABLE=again)]
    with pytest.raises(ImportError, match=r"two builds: in bdc_sync\.tables\.unique_values and in"):
        find_builds(catalog.ALL_TABLES, modules)
    # The same object imported by another module is the same build.
    shared = _module("bdc_sync.tables.reexport", TABLE=BUILDS["unique_genotypes"])
    assert find_builds(catalog.ALL_TABLES, [*table_modules(), shared]) == BUILDS


# -- README's table list ---------------------------------------------------------------


def readme_tables(readme: str) -> list[str]:
    """The table names in the first column of README's "Tables" list, in order.

    The list is the section's own text, before its subsections (which have tables of
    their own, e.g. the consistency checks')."""
    section = readme.split("\n## Tables\n", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    names: list[str] = []
    for line in section.splitlines():
        if line.startswith("| `"):
            names.extend(re.findall(r"`([a-z0-9_]+)`", line.split("|")[1]))
    return names


def test_the_readme_lists_every_table_once() -> None:
    listed = readme_tables((ROOT / "README.md").read_text())
    assert sorted(listed) == sorted(catalog.TABLES)


def test_a_table_missing_from_the_readme_is_found() -> None:
    readme = (ROOT / "README.md").read_text()
    damaged = readme.replace("| `platform_fib` |", "| platform fib |")
    assert set(readme_tables(readme)) - set(readme_tables(damaged)) == {"platform_fib"}


# -- the platform list, wherever it is restated -----------------------------------------


def platform_lists() -> dict[str, tuple[str, ...]]:
    """Each place that states the platforms, as it states them."""
    readme = (ROOT / "README.md").read_text()
    readme_row = re.search(r"^\| `platform_qc`.*? of ([a-z0-9_, ]+) \|", readme, re.MULTILINE)
    docstring = re.search(r"``catalog\.PLATFORMS``: ([a-z0-9_, ]+)\.", api.platform_qc.__doc__ or "")
    return {
        "catalog.PLATFORMS": catalog.PLATFORMS,
        "platform_qc spec partition_values": catalog.PLATFORM_QC.partition_values,
        "platform_qc module PLATFORM_MODALITIES": tuple(platform_qc.PLATFORM_MODALITIES),
        "README table list": tuple(readme_row.group(1).split(", ")) if readme_row else (),
        "api.platform_qc docstring": tuple(docstring.group(1).split(", ")) if docstring else (),
    }


def disagreeing(lists: dict[str, tuple[str, ...]]) -> list[str]:
    """The places whose list differs from catalog.PLATFORMS (order included)."""
    reference = lists["catalog.PLATFORMS"]
    return [place for place, found in lists.items() if found != reference]


def test_the_platform_lists_agree() -> None:
    assert disagreeing(platform_lists()) == []


def test_a_platform_list_that_differs_is_found() -> None:
    lists = platform_lists()
    lists["README table list"] = ("spim", "fib", "vr", "slap2")
    lists["api.platform_qc docstring"] = ()  # the sentence was reworded: not found
    assert disagreeing(lists) == ["README table list", "api.platform_qc docstring"]


# -- rows carry exactly the declared columns ---------------------------------------------


def fixture_records() -> list[dict]:
    real = [json.loads(path.read_text()) for path in sorted(DOCDB_FIXTURES.glob("*.json"))]
    assert len(real) >= 4, DOCDB_FIXTURES
    return [*json.loads(SCHEMA_RECORDS.read_text()), *real]


def produced_keys(records: list[dict]) -> dict[str, set[str]]:
    """Keys of the rows each record-based build makes from the records, by table."""
    keys: dict[str, set[str]] = {}
    for build in BUILDS.values():
        for record in records:
            if isinstance(build, RecordTable):
                try:
                    rows = {build.spec.name: list(build.rows(record))}
                except Exception:  # a record the table skips as malformed
                    continue
            elif isinstance(build, SubjectPartitionedTable):
                try:
                    rows = build.rows(record)
                except Exception:
                    continue
            else:
                continue
            for table, table_rows in rows.items():
                found = keys.setdefault(table, set())
                for row in table_rows:
                    found.update(row)
    return keys


def extra_keys(produced: dict[str, set[str]]) -> dict[str, list[str]]:
    """Keys rows carry that are neither a column nor a declared state field of the table."""
    allowed = {name: set(spec.column_names) for name, spec in catalog.TABLES.items()}
    for build in BUILDS.values():
        if isinstance(build, RecordTable):
            allowed[build.spec.name] |= {f.name for f in build.state_fields}
    return {
        table: sorted(keys - allowed.get(table, set()))
        for table, keys in produced.items()
        if keys - allowed.get(table, set())
    }


def test_fixture_rows_carry_only_catalog_columns() -> None:
    produced = produced_keys(fixture_records())
    # Every record-based table made rows from the fixtures: the check saw something.
    assert {"asset_basics", "quality_control", "qc_tag_status", "platform_qc"} <= set(produced)
    assert extra_keys(produced) == {}
    assert unproduced_columns(produced) == {}


def unproduced_columns(produced: dict[str, set[str]]) -> dict[str, list[str]]:
    """Columns of a record table without ``finish`` that no row sets: declared but never filled.

    (A table with ``finish`` may fill columns at publish time, e.g. asset_basics'
    normalized names; the companion and chunked outputs fill all theirs from rows.)
    """
    missing = {}
    for build in BUILDS.values():
        outputs = [build.spec]
        if isinstance(build, RecordTable) and build.finish is not None:
            continue
        if isinstance(build, SubjectPartitionedTable):
            outputs = list(build.outputs)
        for spec in outputs:
            if spec.name in produced and set(spec.column_names) - produced[spec.name]:
                missing[spec.name] = sorted(set(spec.column_names) - produced[spec.name])
    return missing


def test_a_misspelt_row_key_is_found_by_the_fixture_check() -> None:
    misspelt = {"name", "source_data", "pipeline_nmae", "processing_time"}
    assert extra_keys({"source_data": misspelt}) == {"source_data": ["pipeline_nmae"]}
    assert unproduced_columns({"source_data": misspelt}) == {"source_data": ["pipeline_name"]}


def test_rows_to_arrow_refuses_a_key_that_is_not_a_column() -> None:
    schema = catalog.SOURCE_DATA.schema
    rows = [{"name": "a", "source_data": "b", "pipeline_nmae": "p"}]
    with pytest.raises(UndeclaredColumn, match="pipeline_nmae"):
        rows_to_arrow(rows, schema, MalformedLog())
    # Missing keys stay allowed: they are the null values of optional columns.
    check_row_keys([{"name": "a"}], schema)
    table = rows_to_arrow([{"name": "a"}], schema, MalformedLog())
    assert table.column("source_data").to_pylist() == [None]


# -- the build context holds a build to its declarations ---------------------------------


def test_a_record_table_with_a_misspelt_row_key_fails_its_build() -> None:
    record = {"_id": "r1", "_last_modified": "2025-01-01", "name": "asset_2025-01-01_00-00-00"}
    table = RecordTable(
        spec=catalog.SOURCE_DATA,
        listing=AllRecords(),
        projection=("name",),
        rows=lambda rec: [{"name": rec["name"], "source_dta": "x"}],
    )
    with mocked_aws():
        harness = Harness([record])
        with pytest.raises(UndeclaredColumn, match="source_dta"):
            harness.build(table)


def test_reading_a_table_outside_depends_on_is_an_error() -> None:
    spec = replace(catalog.UNIQUE_PROJECT_NAMES, depends_on=())
    sneaky = DerivedTable(
        spec=spec,
        derive=lambda ctx: ctx.upstream("asset_basics", columns=["project_name"]),
    )
    with mocked_aws():
        harness = Harness([])
        with pytest.raises(
            UndeclaredInput, match=r"unique_project_names reads 'asset_basics' .* declares nothing"
        ):
            harness.build(sneaky)
        # Declared, the same read goes through to the store (which has no file yet).
        with pytest.raises(MissingInput, match="asset_basics"):
            harness.context(catalog.UNIQUE_PROJECT_NAMES).upstream("asset_basics")


def test_a_context_without_a_spec_reads_any_table() -> None:
    with mocked_aws():
        harness = Harness([])
        assert harness.context().upstream_sha("asset_basics") is None


def test_the_real_builds_read_only_what_they_declare() -> None:
    """Every upstream read in the table modules names a table in its spec's depends_on.

    The builds run in the table tests through the harness, whose contexts carry the
    spec; this static pass also covers reads on paths the fixtures do not reach.
    """
    reads = re.compile(r"ctx\.upstream(?:_sha)?\(\s*\"([a-z_]+)\"")
    builds = list(BUILDS.values())
    checked = 0
    for name in _table_modules():
        module = importlib.import_module(f"bdc_sync.tables.{name}")
        read = set(reads.findall(Path(module.__file__ or "").read_text()))
        own = [value for value in vars(module).values() if any(value is b for b in builds)]
        if not read or not own:
            continue
        checked += 1
        for build in own:
            assert read <= set(build.spec.depends_on), (name, build.spec.name, read)
    assert checked >= 5  # the regex still finds the reads


def _table_modules() -> list[str]:
    return [info.name for info in pkgutil.iter_modules(tables.__path__)]
