"""asset_basics rows from the real records, values worked out by hand from tables.md."""

from __future__ import annotations

import pyarrow as pa
import pytest

from bdc_sync.fields import MalformedRecord
from bdc_sync.names import clean_names, normalize_instrument_id
from bdc_sync.tables import asset_basics


def row_of(record: dict) -> dict:
    (row,) = asset_basics.rows(record)
    return row


def test_vr_foraging_raw_row(real_records: dict[str, dict]) -> None:
    row = row_of(real_records["vr_foraging_raw"])
    assert row["_id"] == "ad668ba9-326a-4b5d-abc1-63ddefaf0a41"
    assert row["_last_modified"] == "2026-02-14T12:34:44.410Z"
    assert row["modalities"] == ["behavior", "behavior-videos"]
    assert row["project_name"] == "Cognitive flexibility in patch foraging"
    assert row["data_level"] == "raw"
    assert row["subject_id"] == "828418"
    assert row["acquisition_start_time"] == "2026-02-13T18:31:13.061848Z"
    assert row["code_ocean"] == ["7afcf17c-a33d-47e1-b95d-4cd000bbea33"]
    assert row["process_date"] == "2026-02-14"  # last data process started 2026-02-14T02:24:52Z
    assert row["genotype"] == "wt/wt"
    assert row["age"] == 199  # born 2025-07-29, acquired 2026-02-13
    assert row["acquisition_type"] == "AindVrForaging"
    assert row["location"] == "s3://aind-open-data/828418_2026-02-13_18-31-13"
    assert row["experimenters"] == ["huy.nguyen"]
    assert row["instrument_id"] == "4A"
    assert row["instrument_id_normalized"] == "4A"
    assert row["investigators"] == ["Bruno Cruz", "Cindy Poo", "Tiffany Ona"]


def test_pophys_row_offsets_and_missing_processes(real_records: dict[str, dict]) -> None:
    row = row_of(real_records["pophys_derived"])
    # Born 2023-07-05; acquired 2023-09-29 08:53 at -07:00, i.e. that calendar date.
    assert row["age"] == 86
    assert row["process_date"] is None  # no data_processes
    assert row["instrument_id_normalized"] == "429mesoscope20220321"
    assert row["modalities"] == ["pophys", "behavior-videos"]


def test_fib_row(real_records: dict[str, dict]) -> None:
    row = row_of(real_records["fib_derived"])
    assert row["age"] == 335  # 2025-05-16 → 2026-04-16
    assert row["process_date"] == "2026-04-17"
    assert row["genotype"] == "Dbh-Cre-KI/wt"


def test_normalized_people_over_the_table(real_records: dict[str, dict]) -> None:
    rows = [row_of(r) for r in real_records.values()]
    table = pa.Table.from_pylist(rows, schema=asset_basics.TABLE.state_schema.remove(0).remove(0).remove(0))
    table = asset_basics.normalize_people(table)
    by_name = dict(zip(table["name"].to_pylist(), table["experimenters_normalized"].to_pylist(), strict=True))
    assert by_name["828418_2026-02-13_18-31-13"] == ["Huy Nguyen"]
    assert by_name["808054_2026-04-16_19-38-24_processed_2026-04-17_15-47-55"] == ["Olivia Unokesan"]
    investigators = table["investigators_normalized"].to_pylist()[0]
    assert investigators == ["Bruno Cruz", "Cindy Poo", "Tiffany Ona"]


def test_one_word_names_complete_across_rows() -> None:
    table = pa.table(
        {
            "experimenters": [["Huy"], ["huy.nguyen"], ["Anna"], ["Anna Lee"], ["Anna Park"]],
            "investigators": [[], [], [], [], []],
            "experimenters_normalized": pa.nulls(5, pa.list_(pa.string())),
            "investigators_normalized": pa.nulls(5, pa.list_(pa.string())),
        }
    )
    normalized = asset_basics.normalize_people(table)["experimenters_normalized"].to_pylist()
    assert normalized[0] == ["Huy Nguyen"]  # the only multi-word Huy in the table
    assert normalized[2] == ["Anna"]  # ambiguous: Anna Lee or Anna Park


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (["huy.nguyen"], ["Huy Nguyen"]),
        (["Huy", "Huy Nguyen"], ["Huy Nguyen"]),
        (["Huy Nguyen", "huy nguyen", "HUY  NGUYEN"], ["Huy Nguyen"]),
        (["Anna Lee, Bo Chen"], ["Anna Lee", "Bo Chen"]),
        (["Anna", "Anna Lee", "Anna Park"], ["Anna", "Anna Lee", "Anna Park"]),
        ([" , ", "--"], []),
    ],
)
def test_clean_names(raw: list[str], expected: list[str]) -> None:
    assert clean_names(raw) == expected


@pytest.mark.parametrize(
    ("instrument_id", "expected"),
    [
        ("429-mesoscope-20220321", "429mesoscope20220321"),
        ("323_EPHYS1_20231115", "EPHYS1"),
        ("SmartSPIM1-2_2024-01-01", "2"),
        ("exaSPIM-01_240501", "01"),
        ("4A", "4A"),
        ("", ""),
        (None, ""),
    ],
)
def test_normalize_instrument_id(instrument_id: str | None, expected: str) -> None:
    assert normalize_instrument_id(instrument_id) == expected


def test_age_falls_back_to_year_of_birth_and_handles_garbage(real_records: dict[str, dict]) -> None:
    record = {
        "_id": "x",
        "subject": {"subject_details": {"year_of_birth": 2025}},
        "acquisition": {"acquisition_start_time": "2025-03-02T10:00:00+09:00"},
    }
    assert row_of(record)["age"] == 60  # 2025-01-01 → 2025-03-02
    record["acquisition"]["acquisition_start_time"] = "13/02/2026"
    assert row_of(record)["age"] is None


def test_wrongly_typed_section_is_malformed() -> None:
    with pytest.raises(MalformedRecord, match="data_description is list"):
        asset_basics.rows({"_id": "x", "data_description": ["oops"]})
