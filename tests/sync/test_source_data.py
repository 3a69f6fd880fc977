"""source_data rows from the real derived records."""

from __future__ import annotations

from bdc_sync.tables import source_data


def test_rows_of_real_derived_records(real_records: dict[str, dict]) -> None:
    assert source_data.rows(real_records["vr_foraging_derived"]) == [
        {
            "name": "828418_2026-02-13_18-31-13_processed_2026-02-14_12-44-45",
            "source_data": "828418_2026-02-13_18-31-13",
            "pipeline_name": "",  # the record's first pipeline has an empty name
            "processing_time": "2026-02-14_12-44-45",
        }
    ]
    (fib,) = source_data.rows(real_records["fib_derived"])
    assert fib["pipeline_name"] == "Fiberphotometry Schema 2.0 Processing Pipeline"
    assert fib["source_data"] == "808054_2026-04-16_19-38-24"
    (pophys,) = source_data.rows(real_records["pophys_derived"])
    assert pophys["pipeline_name"] == ""  # pipelines is null
    assert pophys["processing_time"] == "2025-04-22_20-50-47"


def test_missing_sources_give_one_empty_row() -> None:
    rows = source_data.rows({"_id": "x", "name": "abc", "data_description": {"source_data": None}})
    assert rows == [{"name": "abc", "source_data": "", "pipeline_name": "", "processing_time": ""}]
