"""The fixture set in the schema's own shapes (``schema_records.json``, built by ``schema_records.py``):
it validates, it is what the models build, and each table gets the rows tables.md gives it.

Expected rows are worked out by hand from tables.md and the builder's choices: family i has
subject 7001<i>, born 2025-01-01 + i days and acquired 2025-06-02T17:00Z + i days (age 152),
processed one day later; experimenters are ``tomás.pérez`` + ``Ana-Lucía Ortiz`` (even i) or
``Tom`` (odd i); investigators ``Tomás Pérez`` and ``Tom``. Each derived record has two QC
metrics on its first modality: ``Signal quality`` (Pass, tag Channel:green) and ``Drift``
(Pending then Fail, tag Probe:A), so its status is Channel:green Pass, Probe:A Fail, and Fail
for its stage and modality.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from schema_records import FAMILIES, RECORDS_JSON, build
from table_harness import Harness, mocked_aws

from bdc_local.schema_check import record_errors
from bdc_sync.tables import (
    platform_exaspim,
    platform_fib,
    platform_qc,
    platform_smartspim,
    quality_control,
    time_to_qc,
)

RECORDS: list[dict] = json.loads(RECORDS_JSON.read_text())
BY_ID = {r["_id"]: r for r in RECORDS}
KEYS = list(FAMILIES)


def names(key: str) -> tuple[str, str]:
    return BY_ID[f"raw-{key}"]["name"], BY_ID[f"derived-{key}"]["name"]


def test_the_checked_in_json_is_what_the_models_build() -> None:
    assert json.loads(json.dumps(build(), sort_keys=True)) == RECORDS
    assert len(RECORDS) == 2 * len(KEYS) == 16


def test_every_core_file_validates() -> None:
    assert {r["_id"]: record_errors(r) for r in RECORDS if record_errors(r)} == {}


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    with mocked_aws():
        built = Harness(RECORDS)
        built.build_upstream()
        for table in (platform_fib.TABLE, platform_smartspim.TABLE, platform_exaspim.TABLE):
            result, _ = built.build(table)
            assert result.status == "succeeded", (table.spec.name, result)
        yield built


NORMALIZED_INSTRUMENTS = {
    "ecephys": "EPHYS1",
    "fib": "1FIP1",
    "smartspim": "2",
    "exaspim": "01",
    "pophys": "429mesoscope20220321",
    "slap2": "1",
    "dynamic_foraging": "FRG.1A",
    "vr_foraging": "4A",
}


def test_asset_basics_rows(harness: Harness) -> None:
    rows = {r["_id"]: r for r in harness.read("asset_basics").to_pylist()}
    assert set(rows) == set(BY_ID)
    for i, key in enumerate(KEYS):
        raw, derived = rows[f"raw-{key}"], rows[f"derived-{key}"]
        modalities = [m.abbreviation for m in FAMILIES[key]["modalities"]]
        for row, level in ((raw, "raw"), (derived, "derived")):
            assert row["modalities"] == modalities, key
            assert row["data_level"] == level
            assert row["subject_id"] == str(700100 + i)
            assert row["age"] == 152, key  # a birth date and an acquisition start give an age
            assert row["genotype"] == "Slc17a7-IRES2-Cre/wt"
            assert row["project_name"] == FAMILIES[key]["project"]
            assert row["instrument_id_normalized"] == NORMALIZED_INSTRUMENTS[key], key
            assert row["experimenters_normalized"] == (
                ["Tomás Pérez", "Ana Lucía Ortiz"] if i % 2 == 0 else ["Tom"]
            )
            assert row["investigators_normalized"] == ["Tomás Pérez", "Tom"]  # Tom is not Tomás
            assert row["acquisition_type"] == FAMILIES[key]["type"]
        day = 2 + i
        assert raw["process_date"] == f"2025-06-{day:02d}"  # compression started an hour after the start
        assert derived["process_date"] == f"2025-06-{day + 1:02d}"


def test_source_data_rows(harness: Harness) -> None:
    rows = sorted(harness.read("source_data").to_pylist(), key=lambda r: r["name"])
    expected = []
    for key in KEYS:
        raw, derived = names(key)
        expected.append(
            {
                "name": derived,
                "source_data": raw,
                "pipeline_name": f"{key}-pipeline",
                "processing_time": derived[-19:],
            }
        )
    assert rows == sorted(expected, key=lambda r: r["name"])


def test_platform_fib_rows_for_the_fip_pair(harness: Harness) -> None:
    # Implants "Fiber 0" (VTA) and "Fiber_1" (root → missing); connections target "Fiber 0" and
    # "Fiber 1": both match, rows carry the implant's spelling.
    expected = []
    for name in sorted(names("fib")):
        expected += [
            {
                "asset_name": name,
                "fiber": "Fiber 0",
                "patch_cord": "Patch Cord A",
                "channel": "Fiber 0_green",
                "intended_measurement": "dopamine",
                "targeted_structure": "VTA",
            },
            {
                "asset_name": name,
                "fiber": "Fiber 0",
                "patch_cord": "Patch Cord A",
                "channel": "Fiber 0_isosbestic",
                "intended_measurement": "control",
                "targeted_structure": "VTA",
            },
            {
                "asset_name": name,
                "fiber": "Fiber_1",
                "patch_cord": "Patch Cord B",
                "channel": "Fiber 1_green",
                "intended_measurement": "missing",
                "targeted_structure": "missing",
            },
        ]
    assert harness.read("platform_fib").to_pylist() == expected


def test_platform_smartspim_and_exaspim_rows(harness: Harness) -> None:
    raw, stitched = names("smartspim")
    (row,) = harness.read("platform_smartspim").to_pylist()
    base = "https://allen.neuroglass.io/new#!"
    location = BY_ID["derived-smartspim"]["location"]
    assert row == {
        "name": stitched,
        "raw_name": raw,
        "processed": True,
        "institution": "AIND",
        "processing_end_time": "2025-06-05T17:00:00Z",
        "stitched_link": f"{base}{location}/neuroglancer_config.json",
        "raw_link": None,  # no neuroglancer config in S3
        "channel": None,  # no image_cell_segmentation folders in S3
        "segmentation_link": None,
        "quantification_link": None,
        "alignment_link": f"{base}{location}/image_atlas_alignment/neuroglancer_config.json",
    }
    raw, fused = names("exaspim")
    assert harness.read("platform_exaspim").to_pylist() == [
        {
            "name": fused,
            "raw_name": raw,
            "processed": True,
            "raw_link": None,
            "fused_link": "https://neuroglancer-demo.appspot.com/#!" + BY_ID["derived-exaspim"]["location"],
        }
    ]


def test_quality_control_and_tag_status_rows() -> None:
    for i, key in enumerate(KEYS):
        record = BY_ID[f"derived-{key}"]
        modality = FAMILIES[key]["modalities"][0].abbreviation
        produced = quality_control.rows(record)
        start = datetime(2025, 6, 2 + i, 17, tzinfo=UTC)
        assert [
            (r["name"], r["modality"], r["stage"], r["value"], r["status"], r["timestamp"])
            for r in produced["quality_control"]
        ] == [
            ("Signal quality", modality, "Processing", "0.93", "Pass", start),
            ("Drift", modality, "Processing", "{dict}", "Fail", start),
        ], key
        assert {(r["tag"], r["status"]) for r in produced["qc_tag_status"]} == {
            ("Channel:green", "Pass"),
            ("Probe:A", "Fail"),
            ("Processing", "Fail"),
            (modality, "Fail"),
        }
        assert quality_control.rows(BY_ID[f"raw-{key}"]) == {"quality_control": [], "qc_tag_status": []}


PLATFORMS = {
    "fib": "fib",
    "smartspim": "spim",
    "exaspim": "spim",
    "slap2": "slap2",
    "dynamic_foraging": "dynamic_foraging",
    "vr_foraging": "vr",
}


def test_platform_qc_rows() -> None:
    for key in KEYS:
        record = BY_ID[f"derived-{key}"]
        modality = FAMILIES[key]["modalities"][0].abbreviation
        got = {(r["platform"], r["tag"], r["status"]) for r in platform_qc.rows(record)}
        if key not in PLATFORMS:
            assert got == set(), key  # ecephys and pophys are no platform of platform_qc
            continue
        platform = PLATFORMS[key]
        assert got == {
            (platform, "Channel:green", "Pass"),
            (platform, "Probe:A", "Fail"),
            (platform, modality, "Fail"),
        }, key


def test_time_to_qc_rows() -> None:
    for i, key in enumerate(KEYS):
        (row,) = time_to_qc.rows(BY_ID[f"derived-{key}"])
        processed = datetime(2025, 6, 3 + i, 17, tzinfo=UTC)
        assert row["process_end_time"] == processed.strftime("%Y-%m-%dT%H:%M:%SZ")
        # No Pending status left: the latest review, two hours after processing.
        assert row["qc_time"] == processed.replace(hour=19)


def test_no_information_lost_on_real_shapes(harness: Harness) -> None:
    """Record by record: what tables.md says a table carries reaches it."""
    basics = {r["_id"]: r for r in harness.read("asset_basics").to_pylist()}
    fib_assets = {r["asset_name"] for r in harness.read("platform_fib").to_pylist()}
    sources = {r["name"] for r in harness.read("source_data").to_pylist()}
    for record in RECORDS:
        row = basics[record["_id"]]
        if record["acquisition"].get("experimenters"):
            assert row["experimenters_normalized"], record["name"]
        if (
            record["subject"]["subject_details"].get("date_of_birth")
            and record["acquisition"]["acquisition_start_time"]
        ):
            assert row["age"] is not None, record["name"]
        if record["data_description"]["investigators"]:
            assert row["investigators_normalized"], record["name"]
        if record["processing"]["data_processes"]:
            assert row["process_date"], record["name"]
        implants = [
            p
            for s in (record.get("procedures") or {}).get("subject_procedures", [])
            for p in s.get("procedures", [])
            if p["object_type"] == "Probe implant"
        ]
        cords = [
            c
            for d in record["acquisition"]["data_streams"]
            for c in d["configurations"]
            if c["object_type"] == "Patch cord config"
        ]
        if implants and cords:
            assert record["name"] in fib_assets
        if record["data_description"]["data_level"] == "derived":
            assert record["name"] in sources
        if (record.get("quality_control") or {}).get("metrics"):
            produced = quality_control.rows(record)
            assert produced["quality_control"] and produced["qc_tag_status"], record["name"]
            assert time_to_qc.rows(record)[0]["qc_time"] is not None
