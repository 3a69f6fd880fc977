"""foraging_sessions: one row per dynamic-foraging session, from the behavior team's pickle.

Input: ``s3://<behavior bucket>/foraging_nwb_bonsai_processed/df_sessions.pkl``, a
pandas DataFrame indexed by (subject_id, session_date, session, nwb_suffix) with
two-level columns. Its ETag is the build's fingerprint, so the table is rebuilt only
when the pickle changed; no DocDB request is made.

Unpickling runs code chosen by whoever wrote the file. So the pickle is read only
from the configured bucket and key (never from a path given in an event), and with
an unpickler that resolves only the pandas/numpy/pyarrow building blocks of a
DataFrame: a pickle naming anything else (``os.system``, ``pandas.read_pickle``,
``pandas.io`` readers, ...) is refused before it runs.

pandas is imported only inside the build: it is needed to unpickle a DataFrame,
and no other table uses it.
"""

from __future__ import annotations

import io
import math
import pickle
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from bdc_sync.framework import BuildContext, DerivedTable, MalformedLog, MissingInput, Row
from bdc_sync.names import apply_one_word_map, clean_names, one_word_map
from biodata_cache.catalog import FORAGING_SESSIONS

if TYPE_CHECKING:
    import pandas as pd

SESSIONS_KEY = "foraging_nwb_bonsai_processed/df_sessions.pkl"
INDEX_LEVELS = ("subject_id", "session_date", "session", "nwb_suffix")

# Output column ← (top-level column, sub-column) of the pickled frame.
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

# -- a DataFrame-only unpickler ---------------------------------------------------------
_ROOTS = {"pandas", "numpy", "pyarrow", "builtins", "__builtin__", "datetime", "_codecs", "copyreg",
          "collections", "zoneinfo"}
_EXACT = {
    *(
        (module, name)
        for module in ("builtins", "__builtin__")
        for name in ("slice", "bytearray", "bytes", "complex", "set", "frozenset", "range", "object",
                     "list", "dict", "tuple", "str", "int", "float", "bool")
    ),
    *(("datetime", name) for name in ("date", "datetime", "time", "timedelta", "timezone")),
    ("_codecs", "encode"),
    ("copyreg", "_reconstructor"),
    ("collections", "OrderedDict"),
    ("zoneinfo", "ZoneInfo"),
    # pandas >= 3 pickles string columns as arrow arrays.
    *(("pyarrow.lib", name) for name in ("_restore_array", "py_buffer", "type_for_alias")),
}
# pandas parts that read or write files, evaluate expressions or run tests.
_PANDAS_DENIED = ("pandas.io", "pandas.core.computation", "pandas.plotting", "pandas.testing",
                  "pandas._testing", "pandas.util", "pandas.api")


class UnsafePickle(pickle.UnpicklingError):
    """The pickle names something that is not part of a DataFrame."""


def _allowed_pandas(module: str, name: str, found: Any) -> bool:
    owner = getattr(found, "__module__", None) or module
    if any(m == p or m.startswith(p + ".") for m in (module, owner) for p in _PANDAS_DENIED):
        return False
    # Classes (frames, indexes, dtypes, arrays) and private reconstruction helpers;
    # public functions of pandas (read_*, eval, ...) are never part of a pickle.
    return isinstance(found, type) or name.startswith("_")


def _allowed_numpy(module: str, name: str, found: Any) -> bool:
    import numpy as np

    if isinstance(found, type):
        # Not every numpy class: memmap, for one, opens files.
        return found is np.ndarray or issubclass(found, (np.dtype, np.generic))
    core = module.startswith(("numpy._core", "numpy.core"))
    return core and (name.startswith("_") or name == "scalar")


class DataFrameUnpickler(pickle.Unpickler):
    """Resolves only the globals a pickled DataFrame needs (see module doc)."""

    def find_class(self, module: str, name: str) -> Any:
        root = module.split(".")[0]
        if root not in _ROOTS:  # refuse before importing anything
            raise UnsafePickle(f"refusing to load {module}.{name} from a pickle")
        found = super().find_class(module, name)
        if (module, name) in _EXACT:
            return found
        if root == "pandas" and _allowed_pandas(module, name, found):
            return found
        if root == "numpy" and _allowed_numpy(module, name, found):
            return found
        raise UnsafePickle(f"refusing to load {module}.{name} from a pickle")


def load_frame(body: bytes) -> pd.DataFrame:
    import pandas as pd

    frame = DataFrameUnpickler(io.BytesIO(body)).load()
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{SESSIONS_KEY} holds a {type(frame).__name__}, expected a DataFrame")
    return frame


# -- values ----------------------------------------------------------------------------
def _is_missing(value: Any) -> bool:
    import pandas as pd

    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # containers: not a missing scalar
        return False


def as_text_value(value: Any) -> str | None:
    return None if _is_missing(value) else str(value)


def as_date_text(value: Any) -> str | None:
    """``YYYY-MM-DD`` for dates and timestamps; other values as their text."""
    if _is_missing(value):
        return None
    if isinstance(value, (datetime, date)):  # pandas Timestamp is a datetime
        return value.isoformat()[:10]
    return str(value)


def as_int(value: Any) -> int | None:
    if _is_missing(value):
        return None
    number = float(value)
    if not number.is_integer():
        raise ValueError(f"{value!r} is not a whole number")
    return int(number)


def as_float(value: Any) -> float | None:
    if _is_missing(value):
        return None
    number = float(value)
    return None if math.isnan(number) else number


_CONVERT = {
    "foraging_eff": as_float,
    "foraging_eff_random_seed": as_float,
    "finished_rate": as_float,
    "bias_naive": as_float,
    "finished_trials": as_int,
    "total_trials": as_int,
}


def session_rows(frame: pd.DataFrame, malformed: MalformedLog) -> list[Row]:
    """One row per session; a missing value column gives nulls, missing index levels fail.

    A session whose values do not fit the column types is skipped and counted.
    """
    names = list(frame.index.names)
    absent = [level for level in INDEX_LEVELS if level not in names]
    if absent:
        raise ValueError(f"{SESSIONS_KEY} index lacks {', '.join(absent)} (has {names})")
    index = {level: frame.index.get_level_values(level).tolist() for level in INDEX_LEVELS}
    columns: dict[str, list[Any]] = {}
    for column, source in VALUE_COLUMNS.items():
        columns[column] = frame[source].tolist() if source in frame.columns else [None] * len(frame)

    rows: list[Row] = []
    for i in range(len(frame)):
        try:
            row: Row = {
                "subject_id": as_text_value(index["subject_id"][i]),
                "session_date": as_date_text(index["session_date"][i]),
                "session": as_int(index["session"][i]),
                "nwb_suffix": as_int(index["nwb_suffix"][i]),
            }
            for column, values in columns.items():
                row[column] = _CONVERT.get(column, as_text_value)(values[i])
        except (TypeError, ValueError, OverflowError) as exc:
            session = "/".join(str(index[level][i]) for level in INDEX_LEVELS)
            malformed.add(session, f"{type(exc).__name__}: {exc}")
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
    found = ctx.source(ctx.settings.behavior_bucket).get_bytes(SESSIONS_KEY)
    if found is None:
        raise MissingInput(f"s3://{ctx.settings.behavior_bucket}/{SESSIONS_KEY} does not exist")
    rows = session_rows(load_frame(found[0]), ctx.malformed)
    normalize_trainers(rows)
    return rows


TABLE = DerivedTable(spec=FORAGING_SESSIONS, derive=derive, extra_inputs=pickle_etag)
