"""foraging_sessions: one row per dynamic-foraging session, from the behavior team's pickle.

Input: ``s3://<behavior bucket>/foraging_nwb_bonsai_processed/df_sessions.pkl``, a
pandas DataFrame indexed by (subject_id, session_date, session, nwb_suffix) with
two-level columns. Its ETag is the build's fingerprint, so the table is rebuilt only
when the pickle changed; no DocDB request is made.

Unpickling runs code chosen by whoever wrote the file, and that pipeline is not ours.
So this module never unpickles: :mod:`bdc_sync.sessions_decoder` turns the pickle into
a staging table of plain values (with an allowlist unpickler, :mod:`bdc_sync.safe_pickle`),
and this build turns that table into rows with pyarrow alone. A refused or malformed
pickle fails this table only; the previous file and registry entry stay.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from bdc_sync.framework import BuildContext, DerivedTable, MalformedLog, MissingInput, Row
from bdc_sync.names import apply_one_word_map, clean_names, one_word_map
from bdc_sync.sessions_decoder import INDEX_LEVELS, VALUE_COLUMNS
from bdc_sync.sessions_staging import SESSIONS_KEY, staged_sessions
from biodata_cache.catalog import FORAGING_SESSIONS

_INT_COLUMNS = frozenset({"session", "nwb_suffix", "finished_trials", "total_trials"})


def as_int(value: float | None) -> int | None:
    if value is None or value != value:  # null or NaN
        return None
    if not float(value).is_integer():
        raise ValueError(f"{value!r} is not a whole number")
    return int(value)


def as_float(value: float | None) -> float | None:
    return None if value is None or value != value else value


def session_rows(staging: pa.Table, malformed: MalformedLog) -> list[Row]:
    """One row per staged session; sessions whose values do not fit the column types are counted."""
    rows: list[Row] = []
    columns = (*INDEX_LEVELS, *VALUE_COLUMNS)
    for staged in staging.to_pylist():
        if staged["problem"] is not None:
            malformed.add(staged["session_label"], staged["problem"])
            continue
        row: Row = {}
        try:
            for column in columns:
                value: Any = staged[column]
                if column in _INT_COLUMNS:
                    value = as_int(value)
                elif isinstance(value, float):
                    value = as_float(value)
                row[column] = value
        except (TypeError, ValueError, OverflowError) as exc:
            malformed.add(staged["session_label"], f"{type(exc).__name__}: {exc}")
            continue
        rows.append(row)
    return rows


def normalize_trainers(rows: list[Row]) -> None:
    """``trainer_normalized``: the name normalisation over the whole table, ``""`` if none."""
    cleaned = [clean_names([row["trainer"]]) if row["trainer"] else [] for row in rows]
    mapping = one_word_map(cleaned)
    for row, names in zip(rows, cleaned, strict=True):
        row["trainer_normalized"] = ", ".join(apply_one_word_map(names, mapping))


# -- the build ---------------------------------------------------------------------------
def pickle_etag(ctx: BuildContext) -> str:
    info = ctx.source(ctx.settings.behavior_bucket).head(SESSIONS_KEY)
    if info is None:
        raise MissingInput(f"s3://{ctx.settings.behavior_bucket}/{SESSIONS_KEY} does not exist")
    return info.etag


def derive(ctx: BuildContext) -> list[Row]:
    rows = session_rows(staged_sessions(ctx.settings), ctx.malformed)
    normalize_trainers(rows)
    return rows


TABLE = DerivedTable(spec=FORAGING_SESSIONS, derive=derive, extra_inputs=pickle_etag)
