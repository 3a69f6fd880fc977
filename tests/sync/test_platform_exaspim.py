"""platform_exaspim from synthetic exaSPIM records and objects in a mocked aind-open-data."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from table_harness import SOURCE_BUCKET, Harness, basic_record, mocked_aws

from bdc_sync.tables import platform_exaspim

VIEWER = "https://neuroglancer-demo.appspot.com/#!"
RAW_1 = "exaSPIM_800001_2025-01-01_10-00-00"
RAW_2 = "exaSPIM_800002_2025-01-02_10-00-00"
RAW_3 = "exaSPIM_800003_2025-01-03_10-00-00"
FUSED = f"{RAW_1}_fused_2025-02-01_00-00-00"


def raw(rid: str, name: str, instrument: str | None) -> dict:
    return basic_record(rid, name, modalities=["SPIM"], acquisition={"instrument_id": instrument})


def derived(rid: str, name: str, source: str, location: str | None = None) -> dict:
    return basic_record(
        rid,
        name,
        modalities=["SPIM"],
        level="derived",
        location=location,
        data_description={"source_data": [source]},
    )


RECORDS = [
    raw("r1", RAW_1, "exaSPIM-01_2024-05-01"),
    derived("f1-old", f"{RAW_1}_fused_2025-01-15_00-00-00", RAW_1),
    derived("f1", FUSED, RAW_1, location=f"s3://{SOURCE_BUCKET}/{FUSED}"),
    derived("a1", f"{RAW_1}_processed_2025-03-01_00-00-00", RAW_1),  # later, not fused
    raw("r2", RAW_2, "exaspim_03_20231005"),
    raw("r3", RAW_3, "EXASPIM-02"),
    raw("s1", "SmartSPIM_700001_2025-01-01_10-00-00", "SmartSPIM1-2_20240101"),
]


@pytest.fixture
def harness() -> Iterator[Harness]:
    with mocked_aws():
        h = Harness(RECORDS)
        h.put(SOURCE_BUCKET, f"{RAW_1}/neuroglancer.json", "{}")
        h.put(SOURCE_BUCKET, f"{RAW_1}/process_output.json", "{}")
        h.put(SOURCE_BUCKET, f"{RAW_2}/process_output.json", "{}")
        h.build_upstream()
        yield h


def test_build_rows_without_docdb(harness: Harness) -> None:
    result, ctx = harness.build(platform_exaspim.TABLE)
    assert result.status == "succeeded"
    assert ctx.docdb_requests == 0
    assert harness.read("platform_exaspim").to_pylist() == [
        {
            "name": FUSED,
            "raw_name": RAW_1,
            "processed": True,
            "raw_link": f"{VIEWER}s3://{SOURCE_BUCKET}/{RAW_1}/neuroglancer.json",  # the first that exists
            "fused_link": f"{VIEWER}s3://{SOURCE_BUCKET}/{FUSED}",
        },
        {
            "name": RAW_2,
            "raw_name": RAW_2,
            "processed": False,
            "raw_link": f"{VIEWER}s3://{SOURCE_BUCKET}/{RAW_2}/process_output.json",
            "fused_link": None,
        },
        {"name": RAW_3, "raw_name": RAW_3, "processed": False, "raw_link": None, "fused_link": None},
    ]


def test_unchanged_inputs_skip_and_new_objects_rebuild(harness: Harness) -> None:
    harness.build(platform_exaspim.TABLE)
    again, _ = harness.build(platform_exaspim.TABLE)
    assert again.status == "unchanged"
    harness.put(SOURCE_BUCKET, f"{RAW_3}/neuroglancer.json", "{}")
    rebuilt, _ = harness.build(platform_exaspim.TABLE)
    assert rebuilt.status == "succeeded"
    links = {r["raw_name"]: r["raw_link"] for r in harness.read("platform_exaspim").to_pylist()}
    assert links[RAW_3] == f"{VIEWER}s3://{SOURCE_BUCKET}/{RAW_3}/neuroglancer.json"
