"""The record consistency checks and their framework, on the real records.

v2: the four fixture records plus a copy of the fib record under a new id (a duplicate
name). v1: one record named like the raw VR session, one named like nothing in v2.
Open data: prefixes of two fixture records, one of the pophys record's name (its
location is a Code Ocean bucket, so no location points there) and an orphan.
Expected results are worked out by hand from those.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import replace

import pytest
from table_harness import CACHE_BUCKET, SOURCE_BUCKET, Harness, mocked_aws

from bdc_local.corpus import real_fixtures_dir
from bdc_sync.checks import CHECKS
from bdc_sync.consistency import (
    DOCDB_V2,
    Check,
    CheckedRecord,
    ConsistencyTable,
    Records,
)
from bdc_sync.tables import metadata_core, record_consistency
from biodata_cache.catalog import RECORD_CONSISTENCY_CHECKS, RECORD_CONSISTENCY_RESULTS

FIXTURES = real_fixtures_dir()

FIB = "1750a84b-f873-4845-bd21-13b6520235fb"
POPHYS = "c9888108-f413-41cc-9a1d-418937a04410"
VR_DERIVED = "3b3cad8f-774b-42a1-bdce-a84269078db2"
VR_RAW = "ad668ba9-326a-4b5d-abc1-63ddefaf0a41"
FIB_NAME = "808054_2026-04-16_19-38-24_processed_2026-04-17_15-47-55"
POPHYS_NAME = "multiplane-ophys_692478_2023-09-29_08-53-45_processed_2025-04-22_20-50-47"
VR_RAW_NAME = "828418_2026-02-13_18-31-13"
VR_DERIVED_NAME = "828418_2026-02-13_18-31-13_processed_2026-02-14_12-44-45"
FIB_COPY = "00000000-0000-4000-8000-000000000001"

DUPLICATE = "docdb_duplicate_name_v2"
V1_MISSING = "docdb_v1_name_missing_in_v2"
PREFIX_MISSING = "open_data_prefix_missing_docdb_v2"


def real_records() -> dict[str, dict]:
    records = [json.loads(path.read_text()) for path in sorted(FIXTURES.glob("*.json"))]
    return {r["_id"]: r for r in records}


def v2_records() -> list[dict]:
    records = real_records()
    copy_of_fib = {**copy.deepcopy(records[FIB]), "_id": FIB_COPY, "_last_modified": "2026-05-01T00:00:00Z"}
    return [*records.values(), copy_of_fib]


V1 = [
    {"_id": "v1-upgraded", "name": VR_RAW_NAME, "location": f"s3://aind-open-data/{VR_RAW_NAME}"},
    {"_id": "v1-only", "name": "ecephys_600100_2021-03-04_10-00-00", "location": None},
]
PREFIXES = [FIB_NAME, VR_RAW_NAME, POPHYS_NAME, "orphan_700000_2022-01-01_00-00-00"]


def harness_with_sources() -> Harness:
    harness = Harness(v2_records(), V1)
    for name in PREFIXES:
        harness.put(SOURCE_BUCKET, f"{name}/data_description.json", "{}")
    return harness


def results_by_check(harness: Harness) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for row in harness.read("record_consistency_results").to_pylist():
        found.setdefault(row["check_key"], {})[row["record_id"]] = row["result"]
    return found


def checks_rows(harness: Harness) -> dict[str, dict]:
    return {row["check_key"]: row for row in harness.read("record_consistency_checks").to_pylist()}


def build_both(harness: Harness, table: ConsistencyTable = record_consistency.TABLE) -> object:
    harness.build(metadata_core.TABLE)
    return harness.build(table)[0]


# -- the checks, on the fixture records --------------------------------------------------


def test_results_on_the_real_records() -> None:
    with mocked_aws():
        harness = harness_with_sources()
        result = build_both(harness)
        results = results_by_check(harness)
        checks = checks_rows(harness)
        rows = harness.read("record_consistency_results")
    assert results[DUPLICATE] == {
        FIB: "fail",
        FIB_COPY: "fail",
        POPHYS: "pass",
        VR_DERIVED: "pass",
        VR_RAW: "pass",
    }
    assert results[V1_MISSING] == {"v1-upgraded": "pass", "v1-only": "fail"}
    assert results[PREFIX_MISSING] == {
        f"{FIB_NAME}/": "pass",
        f"{VR_RAW_NAME}/": "pass",
        f"{POPHYS_NAME}/": "fail",  # the pophys record lives in a Code Ocean bucket
        "orphan_700000_2022-01-01_00-00-00/": "fail",
    }
    assert rows.schema == RECORD_CONSISTENCY_RESULTS.schema
    assert {k: (v["records_checked"], v["failed"], v["status"]) for k, v in checks.items()} == {
        DUPLICATE: (5, 2, "ok"),
        V1_MISSING: (2, 1, "ok"),
        PREFIX_MISSING: (4, 2, "ok"),
    }
    assert checks[V1_MISSING]["reads"] == ["docdb_v1", "docdb_v2"]
    assert checks[DUPLICATE]["version"] == 1 and checks[DUPLICATE]["error"] is None
    assert result.rows == 11 and result.companion_rows == {"record_consistency_checks": 3}
    fib_row = next(r for r in rows.to_pylist() if r["record_id"] == FIB and r["check_key"] == DUPLICATE)
    assert fib_row["name"] == FIB_NAME and fib_row["location"] == f"s3://aind-open-data/{FIB_NAME}"
    assert fib_row["record_last_modified"] == "2026-04-17T15:54:03.090Z"
    orphan = next(r for r in rows.to_pylist() if r["record_id"].startswith("orphan"))
    assert orphan["location"] == "s3://aind-open-data/orphan_700000_2022-01-01_00-00-00"
    assert orphan["record_last_modified"] is None


def test_check_functions_by_hand() -> None:
    checks = {check.key: check for check in CHECKS}

    def rec(rid: str, name: str | None, location: str | None = None) -> CheckedRecord:
        return CheckedRecord(rid, name, location, None)

    v2 = [
        rec("a", "x", "s3://aind-open-data/x/"),
        rec("b", "x"),
        rec("c", "y"),
        rec("d", None),
        rec("e", None),
    ]
    # Names compare exactly: "X" is not "x"; records without a name are not duplicates.
    assert checks[DUPLICATE].evaluate([*v2, rec("f", "X")], {}) == [False, False, True, True, True, True]
    v1 = [rec("1", "y"), rec("2", "z"), rec("3", None)]
    assert checks[V1_MISSING].evaluate(v1, {DOCDB_V2: v2}) == [True, False, False]
    prefixes = [rec("x/", "x", "s3://aind-open-data/x"), rec("y/", "y", "s3://aind-open-data/y")]
    # A trailing slash on a record's location still points to the prefix.
    assert checks[PREFIX_MISSING].evaluate(prefixes, {DOCDB_V2: v2}) == [True, False]


# -- reuse --------------------------------------------------------------------------------


def test_an_unchanged_run_fetches_and_evaluates_nothing() -> None:
    with mocked_aws():
        harness = harness_with_sources()
        build_both(harness)
        before = harness.read("record_consistency_checks")
        harness.v2.fetched_ids.clear()
        harness.v1.fetched_ids.clear()
        again = build_both(harness)
        after = harness.read("record_consistency_checks")
    assert again.status == "unchanged" and again.message == "no source changed since the last build"
    assert harness.v2.fetched_ids == [] and harness.v1.fetched_ids == []
    assert after.equals(before)


def test_a_new_prefix_reruns_only_the_check_that_reads_prefixes() -> None:
    with mocked_aws():
        harness = harness_with_sources()
        build_both(harness)
        before = checks_rows(harness)
        harness.v2.fetched_ids.clear()
        harness.put(SOURCE_BUCKET, "new_800000_2023-01-01_00-00-00/x.json", "{}")
        result = build_both(harness)
        after = checks_rows(harness)
        results = results_by_check(harness)
    assert result.status == "succeeded"
    assert result.message.startswith("evaluated 5 results")
    assert harness.v2.fetched_ids == []  # nothing of v2 changed: no name fetched
    assert after[PREFIX_MISSING]["ran_at"] > before[PREFIX_MISSING]["ran_at"]
    assert after[PREFIX_MISSING]["recomputed"] == 5 and after[PREFIX_MISSING]["failed"] == 3
    for key in (DUPLICATE, V1_MISSING):
        assert after[key] == before[key]
    assert results[PREFIX_MISSING]["new_800000_2023-01-01_00-00-00/"] == "fail"


def test_a_renamed_v2_record_fetches_its_name_and_reruns_what_reads_v2() -> None:
    with mocked_aws():
        harness = harness_with_sources()
        build_both(harness)
        harness.v2.fetched_ids.clear()
        renamed = {**copy.deepcopy(real_records()[POPHYS]), "_last_modified": "2026-12-01T00:00:00Z"}
        renamed["name"] = FIB_NAME  # now a third record of the fib name
        harness.v2.upsert(renamed)
        result = build_both(harness)
        results = results_by_check(harness)
    # metadata_core fetched the changed record's flags, the consistency build its name.
    assert harness.v2.fetched_ids == [POPHYS, POPHYS]
    assert result.message.startswith("evaluated 11 results")
    assert results[DUPLICATE][POPHYS] == "fail"


class Flaky:
    """An evaluate function that crashes while ``broken`` is set."""

    def __init__(self, inner: Check) -> None:
        self.inner = inner
        self.broken = False

    def __call__(self, records: Records, others: Mapping[str, Records]) -> list[bool]:
        if self.broken:
            raise KeyError("location")
        return list(self.inner.evaluate(records, others))


def test_a_crashing_check_keeps_its_results_and_says_so() -> None:
    by_key = {check.key: check for check in CHECKS}
    flaky = Flaky(by_key[PREFIX_MISSING])
    table = replace(
        record_consistency.TABLE,
        checks=(by_key[DUPLICATE], by_key[V1_MISSING], replace(by_key[PREFIX_MISSING], evaluate=flaky)),
    )
    with mocked_aws():
        harness = harness_with_sources()
        build_both(harness, table)
        before_results = results_by_check(harness)
        before = checks_rows(harness)
        flaky.broken = True
        harness.put(SOURCE_BUCKET, "new_800000_2023-01-01_00-00-00/x.json", "{}")
        renamed = {**copy.deepcopy(real_records()[VR_RAW]), "_last_modified": "2026-12-01T00:00:00Z"}
        renamed["name"] = "renamed_828418"
        harness.v2.upsert(renamed)
        result = build_both(harness, table)
        after_results = results_by_check(harness)
        after = checks_rows(harness)
        # Fixed again: the next build reruns it although nothing else changed.
        flaky.broken = False
        healed = build_both(harness, table)
        healed_results = results_by_check(harness)
        healed_rows = checks_rows(harness)
    assert result.status == "succeeded"
    assert result.message.endswith(f"crashed, previous results kept: {PREFIX_MISSING}")
    crashed = after[PREFIX_MISSING]
    assert crashed["status"] == "crashed" and crashed["error"] == "KeyError: 'location'"
    assert crashed["ran_at"] == before[PREFIX_MISSING]["ran_at"]
    assert (crashed["records_checked"], crashed["failed"]) == (4, 2)
    assert after_results[PREFIX_MISSING] == before_results[PREFIX_MISSING]  # no new prefix row
    # The other checks ran on the new records: the v1 record named like VR_RAW now fails.
    assert after_results[V1_MISSING]["v1-upgraded"] == "fail"
    assert after[V1_MISSING]["status"] == "ok" and after[V1_MISSING]["ran_at"] > before[V1_MISSING]["ran_at"]
    assert healed.status == "succeeded"
    assert healed_rows[PREFIX_MISSING]["status"] == "ok" and healed_rows[PREFIX_MISSING]["error"] is None
    assert healed_results[PREFIX_MISSING]["new_800000_2023-01-01_00-00-00/"] == "fail"
    # VR_RAW was renamed but kept its location: its prefix still has a record.
    assert healed_results[PREFIX_MISSING][f"{VR_RAW_NAME}/"] == "pass"


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (lambda records, others: [True], "answered 1 results for 5 records"),
        (lambda records, others: ["pass"] * len(records), "answered something other than True/False"),
    ],
)
def test_a_wrong_answer_is_a_crash(answer: object, error: str) -> None:
    bad = Check(key="bad_answers", description="answers badly", source=DOCDB_V2, evaluate=answer, version=1)
    table = replace(record_consistency.TABLE, checks=(bad, *CHECKS))
    with mocked_aws():
        harness = harness_with_sources()
        result = build_both(harness, table)
        rows = checks_rows(harness)
        results = results_by_check(harness)
    assert result.status == "succeeded"
    assert rows["bad_answers"]["status"] == "crashed" and rows["bad_answers"]["error"] == error
    assert rows["bad_answers"]["records_checked"] == 0 and rows["bad_answers"]["ran_at"] is None
    assert "bad_answers" not in results and set(results) == {DUPLICATE, V1_MISSING, PREFIX_MISSING}


def location_ends_with_name(records: Records, others: Mapping[str, Records]) -> list[bool]:
    CALLS.append(len(records))
    return [bool(r.location and r.name and r.location.rstrip("/").endswith(r.name)) for r in records]


CALLS: list[int] = []


def test_a_per_record_check_reuses_unchanged_records() -> None:
    per_record = Check(
        key="location_ends_with_name",
        description="Fails v2 records whose location does not end in their name",
        source=DOCDB_V2,
        evaluate=location_ends_with_name,
        version=1,
        per_record=True,
    )
    table = replace(record_consistency.TABLE, checks=(per_record,))
    CALLS.clear()
    with mocked_aws():
        harness = harness_with_sources()
        build_both(harness, table)
        first = {r["record_id"]: r for r in harness.read("record_consistency_results").to_pylist()}
        moved = {**copy.deepcopy(real_records()[FIB]), "_last_modified": "2026-12-01T00:00:00Z"}
        moved["location"] = "s3://aind-open-data/somewhere_else"
        harness.v2.upsert(moved)
        build_both(harness, table)
        second = {r["record_id"]: r for r in harness.read("record_consistency_results").to_pylist()}
        # A new version recomputes every record.
        build_both(harness, replace(table, checks=(replace(per_record, version=2),)))
        third = checks_rows(harness)["location_ends_with_name"]
    assert CALLS == [5, 1, 5]
    assert first[POPHYS]["result"] == "fail" and first[FIB]["result"] == "pass"
    assert second[FIB]["result"] == "fail" and second[FIB]["checked_at"] > first[FIB]["checked_at"]
    assert second[VR_RAW]["checked_at"] == first[VR_RAW]["checked_at"]  # reused, not recomputed
    assert third["version"] == 2 and third["recomputed"] == 5


def test_prefixes_are_values_never_keys() -> None:
    hostile = ["..", "a=b", "x\ny", "evil\x00"]
    with mocked_aws():
        harness = harness_with_sources()
        for name in hostile:
            harness.put(SOURCE_BUCKET, f"{name}/x", "{}")
        build_both(harness)
        results = results_by_check(harness)[PREFIX_MISSING]
        keys = [o["Key"] for o in harness.s3.list_objects_v2(Bucket=CACHE_BUCKET)["Contents"]]
    assert {f"{name}/" for name in hostile} <= set(results)
    assert all(results[f"{name}/"] == "fail" for name in hostile)
    folder = f"data-asset-cache/{harness.folder}/"
    assert keys and all(key.startswith(folder) for key in keys), keys
    assert not [key for key in keys if any(part in key for part in ("evil", "a=b", "..", "\n"))], keys


def test_the_checks_table_schema_and_declared_checks() -> None:
    assert [check.key for check in CHECKS] == [DUPLICATE, V1_MISSING, PREFIX_MISSING]
    assert all(not check.per_record for check in CHECKS)  # all three compare across records
    with pytest.raises(ValueError, match="reads unknown sources: docdb_v3"):
        Check(key="k", description="d", source="docdb_v3", evaluate=lambda r, o: [], version=1)
    with pytest.raises(ValueError, match="check keys repeat"):
        ConsistencyTable(spec=RECORD_CONSISTENCY_RESULTS, checks=(CHECKS[0], CHECKS[0]))
    assert RECORD_CONSISTENCY_CHECKS.built_with == RECORD_CONSISTENCY_RESULTS.name
