"""time_to_qc rows from the real derived records, and its volatile but incremental build."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from table_harness import Harness, basic_record, mocked_aws

from bdc_sync.fields import MalformedRecord
from bdc_sync.tables import time_to_qc


def test_rows_of_real_records_all_pending(real_records: dict[str, dict]) -> None:
    # Every real derived record has some Pending status: qc_time waits for "now".
    assert time_to_qc.rows(real_records["vr_foraging_derived"]) == [
        {
            "name": "828418_2026-02-13_18-31-13_processed_2026-02-14_12-44-45",
            "process_end_time": "2026-02-14T12:42:00.190654Z",
            "qc_time": None,
            "qc_pending": True,
        }
    ]
    assert time_to_qc.rows(real_records["fib_derived"]) == [
        {
            "name": "808054_2026-04-16_19-38-24_processed_2026-04-17_15-47-55",
            "process_end_time": "2026-04-17T15:47:55.969242Z",
            "qc_time": None,
            "qc_pending": True,
        }
    ]
    (pophys,) = time_to_qc.rows(real_records["pophys_derived"])
    assert pophys["process_end_time"] is None  # no data processes
    assert pophys["qc_pending"] is True
    assert time_to_qc.rows(real_records["vr_foraging_raw"]) == []  # quality_control is null


def test_finished_qc_takes_the_latest_entry_of_each_metric() -> None:
    record = {
        "_id": "d1",
        "name": "done",
        "processing": {
            "data_processes": [
                {"start_date_time": "2026-01-01T00:00:00Z", "end_date_time": "2026-01-01T01:00:00Z"},
                {"start_date_time": "2026-01-02T00:00:00Z", "end_date_time": None},
            ]
        },
        "quality_control": {
            "status": {"behavior": "Pass", "Processing": "Fail"},
            "metrics": [
                # The latest entry counts, even when an earlier one has a later time.
                {
                    "status_history": [
                        {"status": "Fail", "timestamp": "2026-01-05T00:00:00Z"},
                        {"status": "Pass", "timestamp": "2026-01-03T00:00:00Z"},
                    ]
                },
                # 2026-01-03 06:00 at -08:00 is 14:00 UTC: the greatest.
                {"status_history": [{"status": "Pass", "timestamp": "2026-01-03 06:00:00-08:00"}]},
                {"status_history": []},
                {"status_history": [{"status": "Pass", "timestamp": "not a time"}]},
                "not a metric",
            ],
        },
    }
    assert time_to_qc.rows(record) == [
        {
            "name": "done",
            "process_end_time": "2026-01-02T00:00:00Z",  # the last process has no end: its start
            "qc_time": datetime(2026, 1, 3, 14, 0, tzinfo=UTC),
            "qc_pending": False,
        }
    ]


def test_quality_control_that_is_not_an_object_is_malformed() -> None:
    with pytest.raises(MalformedRecord):
        time_to_qc.rows({"_id": "x", "name": "x", "quality_control": ["Pass"]})


def test_finish_sets_now_only_for_pending_rows() -> None:
    table = pa.table(
        {
            "name": ["a", "b", "c"],
            "process_end_time": ["t", "t", None],
            "qc_time": pa.array([None, datetime(2026, 1, 1, tzinfo=UTC), None], pa.timestamp("us", tz="UTC")),
            "qc_pending": [True, False, False],
        }
    )
    before = datetime.now(UTC)
    filled = time_to_qc.fill_pending_now(table)["qc_time"].to_pylist()
    assert before <= filled[0] <= datetime.now(UTC)
    assert filled[1] == datetime(2026, 1, 1, tzinfo=UTC)
    assert filled[2] is None  # finished QC without timestamps stays null, it does not become "now"


@pytest.fixture
def harness(real_records: dict[str, dict]) -> Iterator[Harness]:
    finished = basic_record(
        "finished-1",
        "finished_asset_processed_2026-01-02_00-00-00",
        level="derived",
        quality_control={
            "status": {"behavior": "Pass"},
            "metrics": [{"status_history": [{"status": "Pass", "timestamp": "2026-01-03T00:00:00Z"}]}],
        },
        processing={"data_processes": [{"end_date_time": "2026-01-02T01:00:00Z"}]},
    )
    # A list where the QC object belongs survives the projection and is counted.
    broken = basic_record("broken-1", "broken_processed_2026-01-02_00-00-00", level="derived",
                          quality_control=[{"status": {"x": "Pass"}}])
    with mocked_aws():
        yield Harness([*real_records.values(), finished, broken])


def test_build_refreshes_now_without_asking_docdb_again(harness: Harness) -> None:
    harness.build_upstream()
    result, ctx = harness.build(time_to_qc.TABLE)
    assert result.status == "succeeded"
    assert ctx.malformed.count == 1 and ctx.malformed.sample[0]["id"] == "broken-1"
    first = {row["name"]: row for row in harness.read("time_to_qc").to_pylist()}
    # Three real derived records (all pending) and the finished one; the raw one has no QC.
    assert sorted(first) == [
        "808054_2026-04-16_19-38-24_processed_2026-04-17_15-47-55",
        "828418_2026-02-13_18-31-13_processed_2026-02-14_12-44-45",
        "finished_asset_processed_2026-01-02_00-00-00",
        "multiplane-ophys_692478_2023-09-29_08-53-45_processed_2025-04-22_20-50-47",
    ]
    done = first["finished_asset_processed_2026-01-02_00-00-00"]
    assert done["qc_time"] == datetime(2026, 1, 3, tzinfo=UTC)
    assert done["process_end_time"] == "2026-01-02T01:00:00Z"
    pending = first["828418_2026-02-13_18-31-13_processed_2026-02-14_12-44-45"]["qc_time"]
    assert datetime.now(UTC) - pending < timedelta(minutes=1)

    again, ctx = harness.build(time_to_qc.TABLE)
    assert ctx.docdb_requests == 0  # no record changed: nothing fetched
    assert again.status == "succeeded"  # but "now" moved, so the table was rewritten
    second = {row["name"]: row for row in harness.read("time_to_qc").to_pylist()}
    assert second["828418_2026-02-13_18-31-13_processed_2026-02-14_12-44-45"]["qc_time"] > pending
    assert second["finished_asset_processed_2026-01-02_00-00-00"] == done
    assert ctx.malformed.count == 1  # the broken record is remembered, not fetched again
    assert harness.read("time_to_qc").column_names == ["name", "process_end_time", "qc_time"]
