"""asset_basics: one row per DocDB record with the metadata most readers need.

Incremental: only records whose ``_last_modified`` changed are fetched; which records
exist, and when each last changed, comes from metadata_core (built first in the run),
so the run lists DocDB once for both tables. The
normalised name columns depend on every row (one-word names are completed from the
whole table), so they are recomputed over the full table in ``finish``.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pyarrow as pa

from bdc_sync.fields import as_list, as_text, get_path, parse_date, parse_datetime, require_dict, texts
from bdc_sync.framework import ListedBy, RecordTable, Row
from bdc_sync.names import apply_one_word_map, clean_names, normalize_instrument_id, one_word_map
from biodata_cache.catalog import ASSET_BASICS

PROJECTION = (
    "_id",
    "_last_modified",
    "name",
    "location",
    "other_identifiers",
    "data_description.modalities",
    "data_description.project_name",
    "data_description.data_level",
    "data_description.investigators",
    "subject.subject_id",
    "subject.subject_details.genotype",
    "subject.subject_details.date_of_birth",
    "subject.subject_details.year_of_birth",
    "acquisition.acquisition_start_time",
    "acquisition.acquisition_end_time",
    "acquisition.acquisition_type",
    "acquisition.experimenters",
    "acquisition.instrument_id",
    "acquisition.subject_details.date_of_birth",
    "processing.data_processes.start_date_time",
)


def person_names(entries: Any) -> list[str]:
    """Names from a list whose entries are strings or objects with ``name``."""
    names = [entry.get("name") if isinstance(entry, dict) else entry for entry in as_list(entries)]
    return texts(names)


def birth_date(record: dict) -> date | None:
    """Date of birth: subject details, then acquisition's, then 1 January of the year."""
    for path in ("subject.subject_details.date_of_birth", "acquisition.subject_details.date_of_birth"):
        born = parse_date(get_path(record, path))
        if born is not None:
            return born
    year = get_path(record, "subject.subject_details.year_of_birth")
    try:
        return date(int(year), 1, 1) if year is not None else None
    except (TypeError, ValueError):
        return None


def age_in_days(record: dict) -> int | None:
    """Calendar days from birth to the acquisition date, in the timestamp's own offset."""
    born = birth_date(record)
    started = parse_datetime(get_path(record, "acquisition.acquisition_start_time"))
    if born is None or started is None:
        return None
    return (started.date() - born).days


def process_date(record: dict) -> str | None:
    """Date part of the last data process's start time."""
    processes = [p for p in as_list(get_path(record, "processing.data_processes")) if isinstance(p, dict)]
    if not processes:
        return None
    started = as_text(processes[-1].get("start_date_time"))
    if not started:
        return None
    return started.split("T")[0].split(" ")[0]


def code_ocean_ids(record: dict) -> list[str] | None:
    identifiers = get_path(record, "other_identifiers")
    if not isinstance(identifiers, dict) or identifiers.get("Code Ocean") is None:
        return None
    return texts(as_list(identifiers["Code Ocean"]))


def rows(record: dict) -> list[Row]:
    """The record's single row; normalised names are filled in by ``finish``."""
    description = require_dict(record, "data_description")
    acquisition = require_dict(record, "acquisition")
    require_dict(record, "subject")
    modalities = [
        m.get("abbreviation") for m in as_list(description.get("modalities")) if isinstance(m, dict)
    ]
    instrument_id = as_text(acquisition.get("instrument_id"))
    return [
        {
            "_id": str(record["_id"]),
            "_last_modified": as_text(record.get("_last_modified")),
            "modalities": texts(modalities),
            "project_name": as_text(description.get("project_name")),
            "data_level": as_text(description.get("data_level")),
            "subject_id": as_text(get_path(record, "subject.subject_id")),
            "acquisition_start_time": as_text(acquisition.get("acquisition_start_time")),
            "acquisition_end_time": as_text(acquisition.get("acquisition_end_time")),
            "code_ocean": code_ocean_ids(record),
            "process_date": process_date(record),
            "genotype": as_text(get_path(record, "subject.subject_details.genotype")),
            "age": age_in_days(record),
            "acquisition_type": as_text(acquisition.get("acquisition_type")),
            "location": as_text(record.get("location")),
            "name": as_text(record.get("name")),
            "experimenters": person_names(acquisition.get("experimenters")),
            "instrument_id": instrument_id,
            "instrument_id_normalized": normalize_instrument_id(instrument_id),
            "investigators": person_names(description.get("investigators")),
        }
    ]


def normalize_people(table: pa.Table, ctx: object = None) -> pa.Table:
    """Fill the ``*_normalized`` name columns from the raw ones, over the whole table."""
    experimenters = [clean_names(names or []) for names in table["experimenters"].to_pylist()]
    investigators = [clean_names(names or []) for names in table["investigators"].to_pylist()]
    mapping = one_word_map(experimenters + investigators)
    names_type = pa.list_(pa.string())
    for column, values in (
        ("experimenters_normalized", experimenters),
        ("investigators_normalized", investigators),
    ):
        normalized = pa.array([apply_one_word_map(names, mapping) for names in values], names_type)
        table = table.set_column(table.schema.get_field_index(column), column, normalized)
    return table


TABLE = RecordTable(
    spec=ASSET_BASICS,
    # metadata_core lists every v2 record: one DocDB listing serves both tables.
    listing=ListedBy("metadata_core"),
    projection=PROJECTION,
    rows=rows,
    finish=normalize_people,
)
