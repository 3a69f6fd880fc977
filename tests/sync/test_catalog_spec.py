"""The catalog against tables.md: the types its "Column order and types" section decides,
and asset_basics' column order.

tables.md lives in the shared spec folder beside the clone (``<clone>/../shared/spec``);
``BDC_SPEC_DIR`` points elsewhere.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pyarrow as pa
import pytest

from biodata_cache import catalog

CLONE = Path(__file__).resolve().parents[2]
SPEC_DIR = Path(os.environ.get("BDC_SPEC_DIR") or CLONE.parent / "shared" / "spec")
TABLES_MD = SPEC_DIR / "tables.md"
_DOTTED = re.compile(r"`([a-z_]+)\.([a-z_]+)`")


@pytest.fixture(scope="module")
def tables_md() -> str:
    if not TABLES_MD.is_file():
        pytest.skip(f"tables.md not found at {TABLES_MD} (set BDC_SPEC_DIR)")
    return TABLES_MD.read_text()


def type_bullets(text: str) -> list[str]:
    """The sub-bullets of the "Column order and types" section, each as one string."""
    section = text.split("## Column order and types", 1)[1]
    return [" ".join(item.split()) for item in re.split(r"\n  - ", section)[1:]]


def decided_types(text: str) -> dict[tuple[str, str], str]:
    """(table, column) → ``timestamp`` or ``integer``, as the section states them."""
    decided: dict[tuple[str, str], str] = {}
    for bullet in type_bullets(text):
        kind = "timestamp" if "UTC timestamp" in bullet else "integer" if "integer" in bullet else None
        if kind is None:
            continue
        for table, column in _DOTTED.findall(bullet):
            if table in catalog.TABLES:
                decided[(table, column)] = kind
    return decided


def test_the_section_is_parsed(tables_md: str) -> None:
    # The four decisions tables.md records; a parser that finds fewer has lost track of the text.
    assert decided_types(tables_md) == {
        ("metadata_upgrade", "upgrade_datetime"): "timestamp",
        ("asset_basics", "age"): "integer",
        ("behavior_curriculum", "stage_node_id"): "integer",
        ("time_to_qc", "qc_time"): "timestamp",
    }


def test_catalog_types_are_the_decided_ones(tables_md: str) -> None:
    for (table, column), kind in decided_types(tables_md).items():
        dtype = catalog.get_spec(table).schema.field(column).type
        if kind == "timestamp":
            assert dtype == pa.timestamp("us", tz="UTC"), (table, column, dtype)
        else:
            assert pa.types.is_integer(dtype), (table, column, dtype)


def test_asset_basics_column_order_is_the_spec_table(tables_md: str) -> None:
    section = tables_md.split("### asset_basics", 1)[1].split("\n\n**", 1)[0]
    ordered: list[str] = []
    for line in section.splitlines():
        if line.startswith("| `"):
            ordered.extend(re.findall(r"`([^`]+)`", line.split("|")[1]))
    assert ordered == catalog.ASSET_BASICS.column_names


# Tables the old package added in its releases after 0.33.2, which tables.md (0.33.2's
# semantics) does not describe; their meaning is in README's table list instead.
LATER_RELEASE_TABLES = frozenset({"metadata_core", "record_consistency_results", "record_consistency_checks"})


def tables_not_in_spec(text: str, names: list[str]) -> list[str]:
    """Catalog tables tables.md never names (as a heading or in backticks, e.g. `qc_tag_status/...`)."""
    return [name for name in names if not re.search(rf"(### |`){re.escape(name)}[`/ \n]", text)]


def test_every_catalog_table_is_in_the_spec_or_a_later_release(tables_md: str) -> None:
    missing = tables_not_in_spec(tables_md, list(catalog.TABLES))
    assert sorted(missing) == sorted(LATER_RELEASE_TABLES)


def test_the_name_check_finds_a_table_the_spec_lacks(tables_md: str) -> None:
    # A described table (heading or companion folder) is found; an undescribed one is reported.
    names = ["asset_basics", "qc_tag_status", "no_such_table"]
    assert tables_not_in_spec(tables_md, names) == ["no_such_table"]
