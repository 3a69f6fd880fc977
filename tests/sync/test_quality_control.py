"""quality_control, qc_tag_status and platform_qc rows from the real records."""

from __future__ import annotations

from datetime import datetime, timezone

from bdc_sync.tables import platform_qc, quality_control


def test_qc_rows_of_vr_foraging_derived(real_records: dict[str, dict]) -> None:
    produced = quality_control.rows(real_records["vr_foraging_derived"])
    metrics = produced["quality_control"]
    assert len(metrics) == 131  # every metric is a "QC metric"; none is curation
    first = metrics[0]
    assert first == {
        "name": "ContractTestSuite::test_has_errors_on_load",
        "modality": "behavior",
        "stage": "Processing",
        "value": None,
        "status": "Fail",
        "asset_name": "828418_2026-02-13_18-31-13_processed_2026-02-14_12-44-45",
        "subject_id": "828418",
        "timestamp": datetime(2026, 2, 13, 18, 31, 13, 61848, tzinfo=timezone.utc),
    }
    values = {m["value"] for m in metrics}
    assert "{dict}" in values and "True" in values and "False" in values
    tags = produced["qc_tag_status"]
    assert len(tags) == 25
    by_tag = {t["tag"]: t["status"] for t in tags}
    assert by_tag["HarpHub:HarpHubTestSuite"] == "Fail"
    assert by_tag["HarpTreadmill:HarpDeviceTestSuite"] == "Pending"


def test_qc_rows_of_pophys_pending_and_offsets(real_records: dict[str, dict]) -> None:
    produced = quality_control.rows(real_records["pophys_derived"])
    metrics = produced["quality_control"]
    assert [m["name"] for m in metrics] == [
        "VISp_0 Registration Summary",
        "VISp_1 Registration Summary",
        "VISp_0 FOV Quality",
        "VISp_1 FOV Quality",
    ]
    assert {m["status"] for m in metrics} == {"Pending"}
    assert {m["value"] for m in metrics} == {"{dict}"}
    # 2023-09-29 08:53:23.654198-07:00 in UTC
    assert metrics[0]["timestamp"] == datetime(2023, 9, 29, 15, 53, 23, 654198, tzinfo=timezone.utc)
    assert len(produced["qc_tag_status"]) == 6


def test_curation_metrics_are_left_out() -> None:
    record = {
        "_id": "x",
        "name": "a",
        "quality_control": {
            "metrics": [
                {"object_type": "Curation metric", "name": "c"},
                {"object_type": "QC metric", "name": "m", "value": 1.5, "status_history": []},
            ]
        },
    }
    (row,) = quality_control.rows(record)["quality_control"]
    assert row["name"] == "m" and row["value"] == "1.5" and row["status"] is None


def test_platform_qc_keeps_tag_keys_and_platform_modalities(real_records: dict[str, dict]) -> None:
    rows = platform_qc.rows(real_records["vr_foraging_derived"])
    assert {r["platform"] for r in rows} == {"vr"}
    # 25 status entries: 23 are tag keys of behavior metrics, "behavior" is the
    # platform's modality, "Processing" is neither.
    assert len(rows) == 24
    assert "Processing" not in {r["tag"] for r in rows}
    assert {"behavior", "HarpHub:HarpHubTestSuite"} <= {r["tag"] for r in rows}


def test_platform_selection() -> None:
    assert platform_qc.platforms_of(["behavior"], "AindVrForaging") == ["vr"]
    assert platform_qc.platforms_of(["behavior-videos"], "Coupled Without Baiting") == ["dynamic_foraging"]
    assert platform_qc.platforms_of(["behavior"], "Uncoupled Baiting 2") == ["dynamic_foraging"]
    assert platform_qc.platforms_of(["behavior"], "Baiting") == []
    assert platform_qc.platforms_of(["SPIM"], None) == ["spim"]
    assert platform_qc.platforms_of(["fib", "behavior"], "AindVrForaging") == ["fib", "vr"]
    assert platform_qc.platforms_of(["pophys"], "AindVrForaging") == []
