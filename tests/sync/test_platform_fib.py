"""platform_fib rows from the real fib record, worked out by hand from tables.md."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pyarrow as pa
import pytest
from table_harness import CACHE_BUCKET, Harness, basic_record, mocked_aws

from bdc_sync.fields import MalformedRecord
from bdc_sync.tables import platform_fib
from biodata_cache import layout

FIB_NAME = "808054_2026-04-16_19-38-24_processed_2026-04-17_15-47-55"


def row(fiber: str, cord: str, channel: str, measurement: str, structure: str) -> dict:
    return {
        "asset_name": FIB_NAME,
        "fiber": fiber,
        "patch_cord": cord,
        "channel": channel,
        "intended_measurement": measurement,
        "targeted_structure": structure,
    }


# Implants: Fiber_0/1 target PL, Fiber_2/3 target ACB. Connections "Patch Cord i" → "Fiber i"
# (a space where the implant has "_"). Each cord config has Green/Isosbestic/Red channels;
# Fiber_0_Red and Fiber_1_Red have intended_measurement null → "missing".
FIB_ROWS = [
    row("Fiber_0", "Patch Cord 0", "Fiber_0_Green", "calcium", "PL"),
    row("Fiber_0", "Patch Cord 0", "Fiber_0_Isosbestic", "control", "PL"),
    row("Fiber_0", "Patch Cord 0", "Fiber_0_Red", "missing", "PL"),
    row("Fiber_1", "Patch Cord 1", "Fiber_1_Green", "calcium", "PL"),
    row("Fiber_1", "Patch Cord 1", "Fiber_1_Isosbestic", "control", "PL"),
    row("Fiber_1", "Patch Cord 1", "Fiber_1_Red", "missing", "PL"),
    row("Fiber_2", "Patch Cord 2", "Fiber_2_Green", "dopamine", "ACB"),
    row("Fiber_2", "Patch Cord 2", "Fiber_2_Isosbestic", "control", "ACB"),
    row("Fiber_2", "Patch Cord 2", "Fiber_2_Red", "acetylcholine", "ACB"),
    row("Fiber_3", "Patch Cord 3", "Fiber_3_Green", "dopamine", "ACB"),
    row("Fiber_3", "Patch Cord 3", "Fiber_3_Isosbestic", "control", "ACB"),
    row("Fiber_3", "Patch Cord 3", "Fiber_3_Red", "acetylcholine", "ACB"),
]


def test_rows_of_the_real_fib_record(real_records: dict[str, dict]) -> None:
    assert platform_fib.rows(real_records["fib_derived"]) == FIB_ROWS


def test_records_without_fibers_give_no_rows(real_records: dict[str, dict]) -> None:
    for name in ("vr_foraging_raw", "vr_foraging_derived", "pophys_derived"):
        assert platform_fib.rows(real_records[name]) == []


def test_root_and_absent_targets_are_missing_and_unimplanted_cords_skipped(
    real_records: dict[str, dict],
) -> None:
    record = copy.deepcopy(real_records["fib_derived"])
    surgery = record["procedures"]["subject_procedures"][0]
    implants = [p for p in surgery["procedures"] if p["object_type"] == "Probe implant"]
    implants[0]["device_config"]["primary_targeted_structure"]["acronym"] = "root"
    implants[1]["device_config"]["primary_targeted_structure"] = None
    stream = record["acquisition"]["data_streams"][0]
    stream["connections"][3]["target_device"] = "Fiber 7"  # a cord plugged into nothing implanted
    del stream["configurations"][3]["channels"][0]["intended_measurement"]
    produced = platform_fib.rows(record)
    assert {(r["fiber"], r["targeted_structure"]) for r in produced} == {
        ("Fiber_0", "missing"),
        ("Fiber_1", "missing"),
        ("Fiber_2", "ACB"),
    }
    assert len(produced) == 9


def test_damaged_sections_give_no_rows_or_raise() -> None:
    # The corpus's fib damage: null implant, structure as a bare string, a dict where
    # the connections list belongs, null channels.
    damaged = {
        "_id": "d",
        "name": "damaged",
        "procedures": {
            "subject_procedures": [
                {
                    "procedures": [
                        {"object_type": "Probe implant", "implanted_device": None},
                        {
                            "object_type": "Probe implant",
                            "implanted_device": {"name": "Fiber_0"},
                            "device_config": {"primary_targeted_structure": "PL"},
                        },
                    ]
                },
                "Surgery",
            ]
        },
        "acquisition": {
            "data_streams": [
                None,
                {"connections": {"source_device": "Patch Cord 0"}, "configurations": None},
                {
                    "connections": [{"source_device": "Patch Cord 0", "target_device": "Fiber 0"}],
                    "configurations": [
                        {"object_type": "Patch cord config", "device_name": "Patch Cord 0", "channels": None}
                    ],
                },
            ]
        },
    }
    assert platform_fib.rows(damaged) == []
    assert platform_fib.fiber_structures(damaged) == {"Fiber_0": "missing"}
    with pytest.raises(MalformedRecord):
        platform_fib.rows({"_id": "x", "name": "x", "acquisition": "not an object"})


def test_selection_matches_fib_in_any_case() -> None:
    basics = pa.table({"modalities": [["fib"], ["behavior", "FIB"], ["behavior"], None, []]})
    assert platform_fib.is_fib(basics).to_pylist() == [True, True, False, False, False]


@pytest.fixture
def harness(real_records: dict[str, dict]) -> Iterator[Harness]:
    # Procedures as a list survives the projection (Mongo keeps arrays) and cannot be read.
    broken = basic_record(
        "broken-fib", "broken_fib_asset", modalities=["fib"], procedures=[{"subject_procedures": []}]
    )
    # A string acquisition is dropped by the projection: an asset without rows, not an error.
    odd = basic_record("odd-fib", "odd_fib_asset", modalities=["fib"], acquisition="not an object")
    with mocked_aws():
        yield Harness([*real_records.values(), broken, odd])


def test_build_counts_malformed_and_skips_unchanged_runs(harness: Harness) -> None:
    harness.build_upstream()
    harness.v2.fetched_ids.clear()
    result, ctx = harness.build(platform_fib.TABLE)
    assert result.status == "succeeded"
    assert harness.read("platform_fib").to_pylist() == FIB_ROWS
    assert ctx.malformed.count == 1
    assert ctx.malformed.sample[0]["id"] == "broken-fib"
    # Only the fib assets were fetched.
    assert sorted(harness.v2.fetched_ids) == ["1750a84b-f873-4845-bd21-13b6520235fb", "broken-fib", "odd-fib"]

    again, ctx = harness.build(platform_fib.TABLE)
    assert again.status == "unchanged"
    assert ctx.docdb_requests == 0
    assert ctx.malformed.count == 1  # still reported, not fetched again


def test_a_truncated_table_file_is_rebuilt_not_trusted(harness: Harness) -> None:
    harness.build_upstream()
    first, _ = harness.build(platform_fib.TABLE)
    assert first.status == "succeeded"
    key = layout.table_key(harness.folder, "platform_fib")
    body = harness.s3.get_object(Bucket=CACHE_BUCKET, Key=key)["Body"].read()
    harness.s3.put_object(Bucket=CACHE_BUCKET, Key=key, Body=body[: len(body) // 2])
    again, ctx = harness.build(platform_fib.TABLE)
    assert again.status == "succeeded"  # rebuilt from the state, without refetching
    assert ctx.docdb_requests == 0
    assert harness.read("platform_fib").to_pylist() == FIB_ROWS
