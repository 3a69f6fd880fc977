"""metadata_upgrade from the upgrader's custom table, asset_basics and the v1 API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from table_harness import CACHE_BUCKET, Harness, mocked_aws

from bdc_sync.framework import MissingInput
from bdc_sync.tables import metadata_upgrade
from biodata_cache import layout

VR_RAW_ID = "ad668ba9-326a-4b5d-abc1-63ddefaf0a41"
VR_RAW = "828418_2026-02-13_18-31-13"
DECLARED = [c.name for c in metadata_upgrade.METADATA_UPGRADE.columns]
RUN = datetime(2026, 5, 1, 3, 0, tzinfo=UTC)


def v1_record(rid: str, name: str, project: str, level: str) -> dict:
    return {"_id": rid, "name": name, "data_description": {"project_name": project, "data_level": level}}


V1 = [
    v1_record("v1-a", "old name of the vr raw", "Old project", "raw"),
    v1_record("v1-b", "ecephys_500001_2021-01-01_10-00-00", "Ephys Platform", "raw"),
    v1_record("v1-c", "behavior_500002_2021-02-01_10-00-00", "Behavior Platform", "raw"),
    v1_record("v1-d", "SmartSPIM_500003_2021-03-01_10-00-00", "MSMA Platform", "raw"),
]


def status_table(version: str, rows: list[tuple[str, str | None, str]]) -> pa.Table:
    return pa.table(
        {
            "v1_id": [r[0] for r in rows],
            "v2_id": pa.array([r[1] for r in rows], pa.string()),
            "upgrader_version": [version] * len(rows),
            "status": [r[2] for r in rows],
            "last_modified": ["2024-01-01T00:00:00.000Z"] * len(rows),
            "upgrade_datetime": pa.array([RUN] * len(rows), pa.timestamp("us", tz="UTC")),
        }
    )


@pytest.fixture
def harness(real_records: dict[str, dict]) -> Iterator[Harness]:
    with mocked_aws():
        h = Harness(list(real_records.values()), V1)
        h.build_upstream()
        yield h


def store_status(harness: Harness, table: pa.Table) -> None:
    harness.put_parquet(layout.custom_key(harness.folder, "metadata_upgrade_status_prod"), table)


def test_first_build_names_from_basics_and_v1(harness: Harness) -> None:
    store_status(
        harness,
        status_table(
            "0.6.2",
            [
                ("v1-a", VR_RAW_ID, "success"),
                ("v1-b", None, "failed"),
                ("v1-c", "deleted-v2-id", "success"),  # not in asset_basics: ask v1
            ],
        ),
    )
    result, ctx = harness.build(metadata_upgrade.TABLE)
    assert result.status == "succeeded"
    table = harness.read("metadata_upgrade")
    assert table.column_names == [*DECLARED, "0.6.2"]
    rows = {r["_id"]: r for r in table.to_pylist()}
    assert rows["v1-a"] == {
        "_id": "v1-a",
        "name": VR_RAW,
        "project_name": "Cognitive flexibility in patch foraging",
        "data_level": "raw",
        "v2_id": VR_RAW_ID,
        "upgrader_version": "0.6.2",
        "last_modified": "2024-01-01T00:00:00.000Z",
        "status": "success",
        "upgrade_datetime": RUN,  # the input's UTC timestamp, not its text
        "0.6.2": "success",
    }
    assert (rows["v1-b"]["name"], rows["v1-b"]["project_name"]) == (
        "ecephys_500001_2021-01-01_10-00-00",
        "Ephys Platform",
    )
    assert rows["v1-c"]["name"] == "behavior_500002_2021-02-01_10-00-00"
    assert sorted(harness.v1.fetched_ids) == ["v1-b", "v1-c"]
    assert ctx.docdb_requests == 1
    key = layout.columns_key(harness.folder, "metadata_upgrade")
    columns_file = harness.s3.get_object(Bucket=CACHE_BUCKET, Key=key)["Body"].read()
    assert json.loads(columns_file)["columns"] == [*DECLARED, "0.6.2"]


def test_a_new_version_keeps_earlier_columns(harness: Harness) -> None:
    store_status(harness, status_table("0.6.2", [("v1-a", VR_RAW_ID, "success"), ("v1-b", None, "failed")]))
    harness.build(metadata_upgrade.TABLE)
    harness.v1.fetched_ids.clear()

    store_status(harness, status_table("0.7.0", [("v1-a", VR_RAW_ID, "success"), ("v1-d", None, "skipped")]))
    result, _ = harness.build(metadata_upgrade.TABLE)
    assert result.status == "succeeded"
    table = harness.read("metadata_upgrade")
    assert table.column_names == [*DECLARED, "0.6.2", "0.7.0"]
    rows = {r["_id"]: r for r in table.to_pylist()}
    assert sorted(rows) == ["v1-a", "v1-b", "v1-d"]  # outer join
    assert (rows["v1-a"]["0.6.2"], rows["v1-a"]["0.7.0"]) == ("success", "success")
    # Only in the previous table: its old status stays, the current run's columns are null.
    assert rows["v1-b"]["0.6.2"] == "failed"
    assert rows["v1-b"]["0.7.0"] is None and rows["v1-b"]["upgrader_version"] is None
    assert rows["v1-b"]["name"] == "ecephys_500001_2021-01-01_10-00-00"  # kept, not fetched again
    assert rows["v1-d"]["0.6.2"] is None and rows["v1-d"]["0.7.0"] == "skipped"
    assert harness.v1.fetched_ids == ["v1-d"]


def test_the_same_version_again_is_overwritten_by_the_current_run(harness: Harness) -> None:
    store_status(harness, status_table("0.6.2", [("v1-b", None, "failed")]))
    harness.build(metadata_upgrade.TABLE)
    store_status(harness, status_table("0.6.2", [("v1-b", None, "success")]))
    harness.build(metadata_upgrade.TABLE)
    table = harness.read("metadata_upgrade")
    assert table.column_names == [*DECLARED, "0.6.2"]
    assert table.to_pylist()[0]["0.6.2"] == "success"


def test_unchanged_inputs_skip_the_build(harness: Harness) -> None:
    store_status(harness, status_table("0.6.2", [("v1-b", None, "failed")]))
    harness.build(metadata_upgrade.TABLE)
    again, ctx = harness.build(metadata_upgrade.TABLE)
    assert again.status == "unchanged"
    assert ctx.docdb_requests == 0


def test_missing_status_table_keeps_the_previous_table(harness: Harness) -> None:
    with pytest.raises(MissingInput, match="metadata_upgrade_status_prod"):
        harness.build(metadata_upgrade.TABLE)
    assert harness.etag("metadata_upgrade") is None

    store_status(harness, status_table("0.6.2", [("v1-b", None, "failed")]))
    harness.build(metadata_upgrade.TABLE)
    before = harness.etag("metadata_upgrade")
    harness.delete(CACHE_BUCKET, layout.custom_key(harness.folder, "metadata_upgrade_status_prod"))
    with pytest.raises(MissingInput):
        harness.build(metadata_upgrade.TABLE)
    assert harness.etag("metadata_upgrade") == before


def test_unusable_status_tables_are_missing_inputs(harness: Harness) -> None:
    store_status(harness, status_table("0.6.2", []))
    with pytest.raises(MissingInput, match="empty"):
        harness.build(metadata_upgrade.TABLE)
    store_status(harness, status_table("0.6.2", [("v1-b", None, "failed")]).drop_columns(["v1_id"]))
    with pytest.raises(MissingInput, match="v1_id"):
        harness.build(metadata_upgrade.TABLE)
    store_status(harness, status_table("status", [("v1-b", None, "failed")]))
    with pytest.raises(MissingInput, match="upgrader_version"):
        harness.build(metadata_upgrade.TABLE)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2026, 5, 1, 5, 0, tzinfo=UTC).astimezone(), RUN.replace(hour=5)),
        (datetime(2026, 5, 1, 3, 0), RUN),  # naive: taken as UTC
        ("2026-05-01T05:00:00+02:00", RUN),  # text from an older upgrader
        ("yesterday", None),
        (None, None),
    ],
)
def test_upgrade_datetime_is_a_utc_timestamp(value: object, expected: datetime | None) -> None:
    converted = metadata_upgrade.utc_time(value)
    assert converted == expected
    assert converted is None or converted.utcoffset() is not None
