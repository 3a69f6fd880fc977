"""The behavior team's ``df_sessions.pkl`` → a staging table of plain values (pyarrow).

This is the only code that unpickles, and the only code that needs pandas: it runs in
the decoder function (``functions/decoder``), whose role can read that one object and
write one staging parquet, so even a pickle that got past :mod:`bdc_sync.safe_pickle`
could not change a table. The worker builds ``foraging_sessions`` from the staging
parquet with pyarrow alone (:mod:`bdc_sync.tables.foraging_sessions`).

The staging table has one row per row of the frame: the index levels and the value
columns the table reads, as text (``TEXT_COLUMNS``) or float64 (the rest; the worker
checks that counts are whole numbers), ``session_label`` naming the session, and
``problem``, the reason a row's values could not become plain values (null if none).
Only scalars become text: a list or dict in a text column is a problem, not ``str()``-ed
(a nested list referenced many times would print to gigabytes).
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

import pyarrow as pa

from bdc_sync.safe_pickle import DEFAULT_MAX_BYTES, UnsafePickle, load_dataframe

INDEX_LEVELS = ("subject_id", "session_date", "session", "nwb_suffix")

# Staging column ← (top-level column, sub-column) of the pickled frame.
VALUE_COLUMNS: dict[str, tuple[str, str]] = {
    "rig": ("metadata", "rig"),
    "trainer": ("metadata", "user_name"),
    "task": ("metadata", "task"),
    "curriculum_name": ("auto_train", "curriculum_name"),
    "curriculum_version": ("auto_train", "curriculum_version"),
    "current_stage_actual": ("auto_train", "current_stage_actual"),
    "foraging_eff": ("session_stats", "foraging_eff"),
    "foraging_eff_random_seed": ("session_stats", "foraging_eff_random_seed"),
    "finished_trials": ("session_stats", "finished_trials"),
    "finished_rate": ("session_stats", "finished_rate"),
    "total_trials": ("session_stats", "total_trials"),
    "bias_naive": ("session_stats", "bias_naive"),
}
TEXT_COLUMNS = frozenset(
    {
        "subject_id",
        "session_date",
        "rig",
        "trainer",
        "task",
        "curriculum_name",
        "curriculum_version",
        "current_stage_actual",
    }
)
STAGING_SCHEMA = pa.schema(
    [
        pa.field(name, pa.string() if name in TEXT_COLUMNS else pa.float64())
        for name in (*INDEX_LEVELS, *VALUE_COLUMNS)
    ]
    + [pa.field("session_label", pa.string()), pa.field("problem", pa.string())]
)
_MAX_TEXT = 10_000  # characters of one value; longer is a problem, not a row


def _is_missing(value: Any) -> bool:
    import pandas as pd

    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _scalar(value: Any) -> Any:
    """numpy scalars as Python ones; anything else unchanged."""
    import numpy as np

    return value.item() if isinstance(value, np.generic) else value


def as_text(value: Any) -> str | None:
    value = _scalar(value)
    if _is_missing(value):
        return None
    if isinstance(value, (datetime, date)):  # pandas Timestamp is a datetime
        text = value.isoformat()
    elif isinstance(value, (str, int, float)):  # bool is an int
        text = str(value)
    else:
        raise TypeError(f"a {type(value).__name__} where text was expected")
    if len(text) > _MAX_TEXT:
        raise ValueError(f"a text of {len(text)} characters")
    return text


def as_date_text(value: Any) -> str | None:
    """``YYYY-MM-DD`` for dates and timestamps; other values as their text."""
    value = _scalar(value)
    if isinstance(value, (datetime, date)) and not _is_missing(value):
        return value.isoformat()[:10]
    return as_text(value)


def as_number(value: Any) -> float | None:
    value = _scalar(value)
    if _is_missing(value):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and len(value) < 100:
        return float(value)
    raise TypeError(f"a {type(value).__name__} where a number was expected")


def _convert(column: str, value: Any) -> Any:
    if column == "session_date":
        return as_date_text(value)
    return as_text(value) if column in TEXT_COLUMNS else as_number(value)


def _validate_arrow_columns(frame: Any) -> None:
    """Arrow-backed arrays restored from a pickle carry offsets chosen by its writer."""
    for _name, column in frame.items():
        arrow = getattr(column.array, "_pa_array", None)
        if arrow is not None:
            arrow.validate(full=True)


def decode_sessions(body: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> pa.Table:
    """The staging table of the pickled sessions frame; :class:`UnsafePickle` if refused."""
    frame = load_dataframe(body, max_bytes=max_bytes)
    try:
        _validate_arrow_columns(frame)
    except (pa.ArrowException, ValueError) as exc:
        raise UnsafePickle(f"an arrow column of the pickle is invalid: {exc}") from None
    names = list(frame.index.names)
    absent = [level for level in INDEX_LEVELS if level not in names]
    if absent:
        raise ValueError(f"the frame's index lacks {', '.join(absent)} (has {names})")
    sources: dict[str, list[Any]] = {
        level: frame.index.get_level_values(level).tolist() for level in INDEX_LEVELS
    }
    for column, source in VALUE_COLUMNS.items():
        sources[column] = frame[source].tolist() if source in frame.columns else [None] * len(frame)

    staged: dict[str, list[Any]] = {field.name: [] for field in STAGING_SCHEMA}
    for i in range(len(frame)):
        row: dict[str, Any] = {}
        problem = None
        for column, values in sources.items():
            try:
                row[column] = _convert(column, values[i])
            except (TypeError, ValueError, OverflowError) as exc:
                row[column] = None
                problem = problem or f"{column}: {type(exc).__name__}: {exc}"
        label_parts = [row[level] if row[level] is not None else "?" for level in INDEX_LEVELS]
        row["session_label"] = "/".join(
            str(int(part)) if isinstance(part, float) and part.is_integer() else str(part)
            for part in label_parts
        )
        row["problem"] = problem
        for column, value in row.items():
            staged[column].append(value)
    return pa.table(staged, schema=STAGING_SCHEMA)
