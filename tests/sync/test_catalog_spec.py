"""The catalog against tables.md: the tables it describes, the types its "Column order
and types" section decides, and asset_basics' column order.

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

# Catalog tables tables.md does not describe, each with the reason it exists anyway.
# An entry for a table the spec describes, or that the catalog lacks, fails the tests.
NOT_IN_TABLES_MD: dict[str, str] = {
    "unique_instruments": "the instruments' list beside the projects', subjects' and genotypes' (issue 14)",
    # Tables the old package added in its releases after 0.33.2, which tables.md (0.33.2's
    # semantics) does not describe; their meaning is in README's table list (issue 15).
    "metadata_core": "a later release's table: which core files each v2 record has",
    "record_consistency_results": "a later release's table: per record and check, pass or fail",
    "record_consistency_checks": "a later release's table: one row per consistency check",
}


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


def spec_tables(text: str) -> set[str]:
    """The tables tables.md describes: its ``### name`` headings (not a client function's)
    and the companions it gives a partition path (``qc_tag_status/subject_id=<id>/``)."""
    headings = {
        line.split()[1]
        for line in text.splitlines()
        if line.startswith("### ") and "client function" not in line
    }
    return headings | set(re.findall(r"`([a-z0-9_]+)/[a-z_]+=<", text))


def test_the_spec_tables_are_parsed(tables_md: str) -> None:
    found = spec_tables(tables_md)
    assert {"unique_genotypes", "asset_basics", "quality_control", "qc_tag_status", "platform_qc"} <= found
    assert "raw_to_derived" not in found  # "a client function, not a table"


def test_every_spec_table_is_in_the_catalog(tables_md: str) -> None:
    assert spec_tables(tables_md) - set(catalog.TABLES) == set()


def test_every_catalog_table_is_in_the_spec_or_allowed(tables_md: str) -> None:
    assert undescribed(tables_md) == set()


def undescribed(text: str, allowed: dict[str, str] = NOT_IN_TABLES_MD) -> set[str]:
    return set(catalog.TABLES) - spec_tables(text) - set(allowed)


def test_the_allowance_names_only_undescribed_catalog_tables(tables_md: str) -> None:
    for name, reason in NOT_IN_TABLES_MD.items():
        assert name in catalog.TABLES, f"{name} is allowed but not in the catalog"
        assert name not in spec_tables(tables_md), f"{name} is allowed but tables.md describes it"
        assert reason.strip(), name


def test_a_table_the_spec_leaves_out_is_found(tables_md: str) -> None:
    text = tables_md.replace("### platform_fib", "### platform fib")
    assert undescribed(text) - undescribed(tables_md) == {"platform_fib"}
    assert undescribed(text, {**NOT_IN_TABLES_MD, "platform_fib": "a test"}) == undescribed(tables_md)


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
