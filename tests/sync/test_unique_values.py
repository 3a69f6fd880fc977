"""The unique_* tables: distinct asset_basics values of the real records, sorted, without
nulls or empty text, rebuilt only when asset_basics changed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from table_harness import Harness, basic_record, mocked_aws

from bdc_sync.framework import DerivedTable
from bdc_sync.tables import unique_values
from biodata_cache import catalog


@pytest.fixture
def harness(real_records: dict[str, dict]) -> Iterator[Harness]:
    with mocked_aws():
        extra = [
            # No project, subject or genotype: nothing for the lists (null is not a value).
            basic_record("x1", "bare_2026-01-01_00-00-00", data_description={"project_name": None}),
            basic_record("x2", "empty_2026-01-01_00-00-00", data_description={"project_name": ""}),
        ]
        harness = Harness([*real_records.values(), *extra])
        harness.build_upstream()
        yield harness


def built(harness: Harness, spec: catalog.TableSpec) -> list[str]:
    result, _ = harness.build(find(spec))
    assert result.status in {"succeeded", "unchanged"}, result
    table = harness.read(spec.name)
    assert table.schema == spec.schema
    return table.column(0).to_pylist()


def find(spec: catalog.TableSpec) -> DerivedTable:
    (build,) = [b for b in vars(unique_values).values() if isinstance(b, DerivedTable) and b.spec is spec]
    return build


def test_the_lists_of_the_real_records(harness: Harness) -> None:
    assert built(harness, catalog.UNIQUE_PROJECT_NAMES) == [
        "Cognitive flexibility in patch foraging",
        "Learning mFISH-V1omFISH",
    ]
    assert built(harness, catalog.UNIQUE_SUBJECT_IDS) == ["123456", "692478", "808054", "828418"]
    assert built(harness, catalog.UNIQUE_GENOTYPES) == [
        "Dbh-Cre-KI/wt",
        "Slc32a1-IRES-Cre/wt;Oi1(TIT2L-jGCaMP8s-WPRE-ICL-IRES-tTA2)/wt",
        "wt/wt",
    ]
    # Normalized (separators dropped); the two records without an instrument give "".
    assert built(harness, catalog.UNIQUE_INSTRUMENTS) == ["13A", "429mesoscope20220321", "4A"]


def test_rebuilt_only_when_asset_basics_changed(harness: Harness) -> None:
    spec = catalog.UNIQUE_PROJECT_NAMES
    built(harness, spec)
    result, _ = harness.build(find(spec))
    assert result.status == "unchanged"
    harness.v2.upsert(basic_record("x3", "new_2026-01-02_00-00-00", modified="2026-01-02T00:00:00Z"))
    harness.build_upstream()
    result, _ = harness.build(find(spec))
    assert result.status == "succeeded"
    assert "Test project" in harness.read(spec.name).column(0).to_pylist()
