"""metadata_core from the real records: presence flags worked out by hand, computed by DocDB.

The four fixture records carry all seven core files, except the raw VR-foraging
session whose ``quality_control`` is null. Variants of a real record with a core
file removed or set to null show "missing" and "null" both read as absent.
"""

from __future__ import annotations

import copy
import json

from table_harness import Harness, mocked_aws

from bdc_local.corpus import real_fixtures_dir
from bdc_local.mongo import project
from bdc_sync.tables import metadata_core
from biodata_cache.catalog import CORE_FILES, METADATA_CORE

FIXTURES = real_fixtures_dir()

FIB = "1750a84b-f873-4845-bd21-13b6520235fb"
POPHYS = "c9888108-f413-41cc-9a1d-418937a04410"
VR_DERIVED = "3b3cad8f-774b-42a1-bdce-a84269078db2"
VR_RAW = "ad668ba9-326a-4b5d-abc1-63ddefaf0a41"
ALL = dict.fromkeys(CORE_FILES, True)


def real_records() -> dict[str, dict]:
    records = [json.loads(path.read_text()) for path in sorted(FIXTURES.glob("*.json"))]
    return {r["_id"]: r for r in records}


def test_flags_of_the_real_records() -> None:
    records = real_records()
    with mocked_aws():
        harness = Harness(list(records.values()))
        result, _ = harness.build(metadata_core.TABLE)
        table = harness.read("metadata_core")
    rows = {row["_id"]: row for row in table.to_pylist()}
    assert table.schema == METADATA_CORE.schema
    assert result.status == "succeeded" and result.rows == 4
    assert rows[FIB] == {"_id": FIB, "_last_modified": "2026-04-17T15:54:03.090Z", **ALL}
    assert rows[POPHYS] == {"_id": POPHYS, "_last_modified": "2025-12-02T07:46:54.458Z", **ALL}
    assert rows[VR_DERIVED] == {"_id": VR_DERIVED, "_last_modified": "2026-02-14T13:00:35.192Z", **ALL}
    # The raw session's quality_control is there but null: not present.
    assert rows[VR_RAW] == {
        "_id": VR_RAW,
        "_last_modified": "2026-02-14T12:34:44.410Z",
        **ALL,
        "quality_control": False,
    }


def test_a_missing_or_null_core_file_is_absent() -> None:
    fib = real_records()[FIB]
    missing = {k: v for k, v in copy.deepcopy(fib).items() if k not in ("procedures", "acquisition")}
    missing["_id"] = "no-procedures"
    nulled = {**copy.deepcopy(fib), "_id": "null-instrument", "instrument": None, "processing": None}
    # A falsy but present value (an empty object) is present: only null and missing are absent.
    empty = {**copy.deepcopy(fib), "_id": "empty-subject", "subject": {}}
    with mocked_aws():
        harness = Harness([missing, nulled, empty])
        harness.build(metadata_core.TABLE)
        rows = {row["_id"]: row for row in harness.read("metadata_core").to_pylist()}
    assert rows["no-procedures"] == {
        **rows["no-procedures"],
        **ALL,
        "procedures": False,
        "acquisition": False,
    }
    assert rows["null-instrument"] == {
        **rows["null-instrument"],
        **ALL,
        "instrument": False,
        "processing": False,
    }
    assert rows["empty-subject"] == {**rows["empty-subject"], **ALL}


def test_the_projection_returns_flags_not_core_files() -> None:
    raw = real_records()[VR_RAW]
    projected = project(raw, metadata_core.PROJECTION)
    assert projected == {
        "_id": VR_RAW,
        "_last_modified": "2026-02-14T12:34:44.410Z",
        **ALL,
        "quality_control": False,
    }
    assert len(json.dumps(projected)) < 300 < len(json.dumps(raw["acquisition"]))


def test_the_stand_in_compares_missing_and_null_like_mongo() -> None:
    # Aggregation equality: a missing field is not null; $ifNull makes it null first.
    assert project({"a": None}, {"x": {"$eq": ["$a", None]}}) == {"x": True}
    assert project({}, {"x": {"$eq": ["$a", None]}}) == {"x": False}
    assert project({}, {"x": {"$ne": ["$a", None]}}) == {"x": True}
    assert project({}, {"x": metadata_core.presence_flag("a")}) == {"x": False}
    assert project({"a": 0}, {"x": metadata_core.presence_flag("a")}) == {"x": True}


def test_incremental_fetches_only_changed_records() -> None:
    records = real_records()
    with mocked_aws():
        harness = Harness(list(records.values()))
        harness.build(metadata_core.TABLE)
        assert sorted(harness.v2.fetched_ids) == sorted(records)
        harness.v2.fetched_ids.clear()
        again, _ = harness.build(metadata_core.TABLE)
        assert again.status == "unchanged" and harness.v2.fetched_ids == []
        changed = {
            **copy.deepcopy(records[POPHYS]),
            "_last_modified": "2026-12-01T00:00:00Z",
            "procedures": None,
        }
        harness.v2.upsert(changed)
        third, _ = harness.build(metadata_core.TABLE)
        rows = {row["_id"]: row for row in harness.read("metadata_core").to_pylist()}
    assert harness.v2.fetched_ids == [POPHYS]
    assert third.status == "succeeded" and third.message == "1 of 4 records fetched"
    assert rows[POPHYS]["procedures"] is False and rows[POPHYS]["_last_modified"] == "2026-12-01T00:00:00Z"
    assert rows[FIB] == {"_id": FIB, "_last_modified": "2026-04-17T15:54:03.090Z", **ALL}
