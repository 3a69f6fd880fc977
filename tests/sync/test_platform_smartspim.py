"""platform_smartspim from synthetic SPIM records and objects in a mocked aind-open-data."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from table_harness import CACHE_BUCKET, SOURCE_BUCKET, Harness, basic_record, mocked_aws

from bdc_sync.framework import MissingInput
from bdc_sync.tables import platform_smartspim
from biodata_cache import layout

VIEWER = "https://allen.neuroglass.io/new#!"
RAW_1 = "SmartSPIM_700001_2025-01-01_10-00-00"
RAW_2 = "SmartSPIM_700002_2025-01-02_10-00-00"
RAW_3 = "SmartSPIM_700003_2025-01-03_10-00-00"
RAW_4 = "SmartSPIM_700004_2025-01-04_10-00-00"
LATEST = f"{RAW_1}_stitched_2025-02-01_00-00-00"
NO_CHANNELS = f"{RAW_3}_stitched_2025-02-03_00-00-00"


def raw(rid: str, name: str, instrument: str | None) -> dict:
    return basic_record(rid, name, modalities=["SPIM"], acquisition={"instrument_id": instrument})


def derived(rid: str, name: str, source: str, institution: str = "AIND", end: str | None = None) -> dict:
    return basic_record(
        rid,
        name,
        modalities=["SPIM"],
        level="derived",
        data_description={"source_data": [source], "institution": {"abbreviation": institution}},
        processing={
            "pipelines": [{"name": "SmartSPIM pipeline"}],
            "data_processes": [
                {"start_date_time": "2025-01-31T00:00:00Z", "end_date_time": "2025-01-31T05:00:00Z"},
                {"start_date_time": "2025-02-01T00:00:00Z", "end_date_time": end},
            ],
        },
    )


RECORDS = [
    raw("r1", RAW_1, "SmartSPIM1-2_20240101"),
    derived("d1-old", f"{RAW_1}_stitched_2025-01-05_00-00-00", RAW_1),
    derived("d1", LATEST, RAW_1, end="2025-02-02T00:00:00Z"),
    derived("d1-ccf", f"{RAW_1}_processed_2025-03-01_00-00-00", RAW_1),  # later, but not stitched
    raw("r2", RAW_2, None),  # no instrument id is not exaSPIM; never processed
    raw("r3", RAW_3, "440_SmartSPIM1_20240327"),
    derived("d3", NO_CHANNELS, RAW_3, institution="AIBS"),
    raw("r4", RAW_4, "SmartSPIM3-2"),
    raw("x1", "exaSPIM_800001_2025-01-01_10-00-00", "exaSPIM-01_2024-05-01"),
    basic_record("b1", "behavior_1_2025-01-01_10-00-00", modalities=["behavior"]),
]


@pytest.fixture
def harness() -> Iterator[Harness]:
    with mocked_aws():
        h = Harness(RECORDS)
        segmentation = f"{LATEST}/image_cell_segmentation"
        for channel in ("Ex_561_Em_593", "Ex_488_Em_525"):
            h.put(SOURCE_BUCKET, f"{segmentation}/{channel}/visualization/neuroglancer_config.json", "{}")
        h.put(SOURCE_BUCKET, f"{segmentation}/segmentation_summary.json", "{}")  # a file, not a channel
        old_link = f"https://viewer#!s3://{SOURCE_BUCKET}/{RAW_1}/derivatives/neuroglancer_config.json"
        config = "SPIM/derivatives/neuroglancer_config.json"
        h.put(SOURCE_BUCKET, f"{RAW_1}/{config}", json.dumps({"ng_link": old_link}))
        h.put(SOURCE_BUCKET, f"{RAW_3}/{config}", json.dumps({"layers": []}))
        h.put(SOURCE_BUCKET, f"{RAW_4}/{config}", "{not json")
        h.build_upstream()
        yield h


def expected_rows() -> list[dict]:
    location = f"s3://{SOURCE_BUCKET}/{LATEST}"
    raw_link = f"https://viewer#!s3://{SOURCE_BUCKET}/{RAW_1}/SPIM/derivatives/neuroglancer_config.json"
    processed = {
        "name": LATEST,
        "raw_name": RAW_1,
        "processed": True,
        "institution": "AIND",
        "processing_end_time": "2025-02-02T00:00:00Z",
        "stitched_link": f"{VIEWER}{location}/neuroglancer_config.json",
        "raw_link": raw_link,
        "alignment_link": f"{VIEWER}{location}/image_atlas_alignment/neuroglancer_config.json",
    }
    no_channels = f"s3://{SOURCE_BUCKET}/{NO_CHANNELS}"
    unprocessed = dict.fromkeys(
        ["institution", "processing_end_time", "stitched_link", "raw_link", "channel", "segmentation_link",
         "quantification_link", "alignment_link"]
    )
    rows = [
        {
            **processed,
            "channel": channel,
            "segmentation_link": f"{VIEWER}{location}/image_cell_segmentation/{channel}"
            "/visualization/neuroglancer_config.json",
            "quantification_link": f"{VIEWER}{location}/image_cell_quantification/{channel}"
            "/visualization/neuroglancer_config.json",
        }
        for channel in ("Ex_488_Em_525", "Ex_561_Em_593")
    ]
    rows.append({**unprocessed, "name": RAW_2, "raw_name": RAW_2, "processed": False})
    rows.append(
        {
            "name": NO_CHANNELS,
            "raw_name": RAW_3,
            "processed": True,
            "institution": "AIBS",
            "processing_end_time": None,  # the last data process has no end time
            "stitched_link": f"{VIEWER}{no_channels}/neuroglancer_config.json",
            "raw_link": None,  # the config has no ng_link
            "channel": None,
            "segmentation_link": None,
            "quantification_link": None,
            "alignment_link": f"{VIEWER}{no_channels}/image_atlas_alignment/neuroglancer_config.json",
        }
    )
    rows.append({**unprocessed, "name": RAW_4, "raw_name": RAW_4, "processed": False})
    return rows


def test_build_rows(harness: Harness) -> None:
    harness.v2.fetched_ids.clear()
    result, ctx = harness.build(platform_smartspim.TABLE)
    assert result.status == "succeeded"
    table = harness.read("platform_smartspim")
    assert table.column_names == [c.name for c in platform_smartspim.PLATFORM_SMARTSPIM.columns]
    assert table.to_pylist() == expected_rows()
    # DocDB is asked only about the two stitched assets, in one request.
    assert sorted(harness.v2.fetched_ids) == ["d1", "d3"]
    assert ctx.docdb_requests == 1
    assert ctx.malformed.count == 1 and ctx.malformed.sample[0]["id"] == RAW_4


def test_unchanged_inputs_make_no_docdb_request_and_new_channels_rebuild(harness: Harness) -> None:
    harness.build(platform_smartspim.TABLE)
    again, ctx = harness.build(platform_smartspim.TABLE)
    assert again.status == "unchanged"
    assert ctx.docdb_requests == 0

    new_channel = f"{NO_CHANNELS}/image_cell_segmentation/Ex_639_Em_667/visualization/x.json"
    harness.put(SOURCE_BUCKET, new_channel, "{}")
    rebuilt, ctx = harness.build(platform_smartspim.TABLE)
    assert rebuilt.status == "succeeded"
    assert ctx.docdb_requests == 0  # no stitched record changed: their details come from the state
    rows = harness.read("platform_smartspim").to_pylist()
    channels = [r["channel"] for r in rows if r["raw_name"] == RAW_3]
    assert channels == ["Ex_639_Em_667"]
    assert {r["institution"] for r in rows if r["raw_name"] == RAW_3} == {"AIBS"}


def channels_of(harness: Harness, raw_name: str) -> list[str | None]:
    return [r["channel"] for r in harness.read("platform_smartspim").to_pylist() if r["raw_name"] == raw_name]


def test_sources_are_read_again_after_the_recheck_interval_or_when_an_input_table_changes(
    harness: Harness,
) -> None:
    harness.settings = harness.settings.model_copy(update={"source_recheck_seconds": 3600})
    first, _ = harness.build(platform_smartspim.TABLE)
    assert first.status == "succeeded"
    harness.put(SOURCE_BUCKET, f"{NO_CHANNELS}/image_cell_segmentation/Ex_639_Em_667/x.json", "{}")

    # Inputs unchanged and S3 read moments ago: not read again, the table is as it was,
    # and the config that was not JSON still counts as malformed.
    skipped, ctx = harness.build(platform_smartspim.TABLE)
    assert skipped.status == "unchanged" and "read 0 s ago" in skipped.message, skipped.message
    assert ctx.malformed.count == 1 and ctx.malformed.sample[0]["id"] == RAW_4
    assert channels_of(harness, RAW_3) == [None]

    # An hour later S3 is read again: the new channel is in.
    key = layout.sources_read_key(harness.folder, "platform_smartspim")
    state = json.loads(harness.s3.get_object(Bucket=CACHE_BUCKET, Key=key)["Body"].read())
    harness.put(CACHE_BUCKET, key, json.dumps({**state, "read_at": state["read_at"] - 3601}))
    rebuilt, _ = harness.build(platform_smartspim.TABLE)
    assert rebuilt.status == "succeeded"
    assert channels_of(harness, RAW_3) == ["Ex_639_Em_667"]

    # A changed input table reads S3 at once, however recent the last read.
    harness.put(SOURCE_BUCKET, f"{NO_CHANNELS}/image_cell_segmentation/Ex_405_Em_460/x.json", "{}")
    renamed = raw("r2", RAW_2, None)
    renamed["_last_modified"] = "2026-03-01T00:00:00Z"
    harness.v2.upsert(renamed)
    harness.build_upstream()
    again, _ = harness.build(platform_smartspim.TABLE)
    assert again.status == "succeeded"
    assert channels_of(harness, RAW_3) == ["Ex_405_Em_460", "Ex_639_Em_667"]


def test_a_changed_stitched_record_is_the_only_one_fetched(harness: Harness) -> None:
    harness.build(platform_smartspim.TABLE)
    changed = derived("d3", NO_CHANNELS, RAW_3, institution="AIND", end="2025-02-04T00:00:00Z")
    changed["_last_modified"] = "2026-02-01T00:00:00Z"
    harness.v2.upsert(changed)
    harness.build_upstream()
    harness.v2.fetched_ids.clear()
    rebuilt, _ = harness.build(platform_smartspim.TABLE)
    assert rebuilt.status == "succeeded"
    assert harness.v2.fetched_ids == ["d3"]
    row = next(r for r in harness.read("platform_smartspim").to_pylist() if r["raw_name"] == RAW_3)
    assert (row["institution"], row["processing_end_time"]) == ("AIND", "2025-02-04T00:00:00Z")


def test_raw_link_rewrites_old_derivatives_paths() -> None:
    assert platform_smartspim.raw_link_of({"ng_link": "v#!s3://b/r/derivatives/c.json"}) == "v#!s3://b/r/SPIM/derivatives/c.json"
    assert platform_smartspim.raw_link_of({"ng_link": "v#!s3://b/r/SPIM/derivatives/c.json"}) == (
        "v#!s3://b/r/SPIM/derivatives/c.json"
    )
    assert platform_smartspim.raw_link_of({"ng_link": ""}) is None
    assert platform_smartspim.raw_link_of(["not", "a", "config"]) is None


def test_missing_source_bucket_is_a_missing_input(harness: Harness) -> None:
    harness.remove_bucket(SOURCE_BUCKET)
    with pytest.raises(MissingInput, match=SOURCE_BUCKET):
        harness.build(platform_smartspim.TABLE)
    assert harness.etag("platform_smartspim") is None


def test_missing_upstream_is_a_missing_input() -> None:
    with mocked_aws():
        harness = Harness(RECORDS)
        with pytest.raises(MissingInput, match="asset_basics"):
            harness.build(platform_smartspim.TABLE)
