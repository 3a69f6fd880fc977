"""Arrow helpers of the reader: decode and check parquet, project and filter, convert
to pandas. An error names the object it was read from, never only arrow's message."""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from biodata_cache._storage import ObjectMissing
from biodata_cache.errors import CorruptObjectError, UnknownAssetsWarning

if TYPE_CHECKING:
    import pandas as pd

Filters = Any  # pyarrow DNF list of tuples (as for pq.read_table) or a pyarrow Expression
# What arrow raises for filters or columns that do not fit a table's schema.
FILTER_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, ValueError)


def parse_json(body: bytes, url: str) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:
        raise CorruptObjectError(f"{url} is not valid JSON ({exc})") from None


def first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def corrupt(url: str, exc: Exception | str) -> CorruptObjectError:
    return CorruptObjectError(
        f"{url} is not a readable parquet file ({exc}); no data was returned. "
        "If this persists, rebuild the table."
    )


# One file is read with ParquetFile, not pq.read_table: read_table goes through the
# dataset scanner, whose threads can outlive the interpreter's shutdown and abort the
# process at exit ("terminate called without an active exception", apache/arrow#34314;
# 9 of 40 short scripts here with pyarrow 26), which a CLI would report as a failure.
def parquet_bytes(body: bytes, url: str) -> pa.Table:
    try:
        return pq.ParquetFile(pa.BufferReader(body)).read()
    except (pa.ArrowException, OSError) as exc:
        raise corrupt(url, exc) from None


def mapped(path: Path, url: str) -> pa.Buffer:
    """A local file's bytes, memory-mapped (valid after the file is replaced)."""
    try:
        with pa.memory_map(str(path), "r") as source:
            return source.read_buffer()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        raise ObjectMissing(url) from None


def checked_buffer(buffer: pa.Buffer, url: str) -> pa.Buffer:
    """``buffer`` if its parquet footer is whole; a truncated file fails here, by name."""
    try:
        pq.read_metadata(pa.BufferReader(buffer))
    except (pa.ArrowException, OSError) as exc:
        raise corrupt(url, exc) from None
    return buffer


def check_parquet(body: bytes, url: str) -> None:
    """Reject a truncated or foreign file before it is handed to DuckDB by path."""
    try:
        pq.read_metadata(pa.BufferReader(body))
    except (pa.ArrowException, OSError) as exc:
        raise corrupt(url, exc) from None


def parquet_file(path: Path, url: str) -> pa.Table:
    try:
        return pq.ParquetFile(str(path), memory_map=True).read()
    except FileNotFoundError:
        raise ObjectMissing(url) from None
    except (pa.ArrowException, OSError) as exc:
        if not path.exists():
            raise ObjectMissing(url) from None
        raise corrupt(url, exc) from None


def expression(filters: Filters) -> pc.Expression:
    if isinstance(filters, pc.Expression):
        return filters
    return pq.filters_to_expression(filters)


def check_columns(schema: pa.Schema, columns: Sequence[str], table: str) -> None:
    if isinstance(columns, str):
        raise TypeError(f"columns must be a list of names, not the string {columns!r}")
    unknown = [c for c in columns if c not in schema.names]
    if unknown:
        raise ValueError(
            f"unknown column(s) {', '.join(map(repr, unknown))} for table {table!r}; "
            f"its columns: {', '.join(schema.names)}"
        )


def project(data: pa.Table, columns: Sequence[str] | None, filters: Filters | None, table: str) -> pa.Table:
    if columns is not None:
        check_columns(data.schema, columns, table)
    if filters is not None:
        try:
            data = data.filter(expression(filters))
        except FILTER_ERRORS as exc:
            raise ValueError(f"cannot apply filters {filters!r} to table {table!r}: {exc}") from None
    if columns is not None:
        data = data.select(list(columns))
    return data


def keep_assets(data: pa.Table, asset_names: str | Iterable[str], table: str, subject: str) -> pa.Table:
    wanted = [asset_names] if isinstance(asset_names, str) else list(dict.fromkeys(asset_names))
    present = set(data.column("asset_name").to_pylist())
    absent = [name for name in wanted if name not in present]
    if absent:
        warnings.warn(
            UnknownAssetsWarning(
                f"asset_names not in {table} of subject_id {subject!r}: {', '.join(map(repr, absent))}"
            ),
            stacklevel=caller_level(),
        )
    return data.filter(pc.field("asset_name").isin(wanted))


def caller_level() -> int:
    """``stacklevel`` that points a warning at the first frame outside this package."""
    package = os.path.dirname(os.path.abspath(__file__))
    frame: FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame = frame.f_back
        level += 1
    return level


def _arrow_dtype(arrow_type: pa.DataType) -> Any:
    """Nested columns become pandas ArrowDtype columns: no per-row Python objects, no copy."""
    import pandas as pd

    if (
        pa.types.is_list(arrow_type)
        or pa.types.is_large_list(arrow_type)
        or pa.types.is_fixed_size_list(arrow_type)
        or pa.types.is_struct(arrow_type)
        or pa.types.is_map(arrow_type)
    ):
        return pd.ArrowDtype(arrow_type)
    return None


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """The DataFrame of an arrow table, as the client returns every table.

    Strings, numbers and times convert as pandas does by default (with pandas 3,
    strings stay in their arrow buffers); list columns become ``ArrowDtype`` list
    columns, whose cells read as Python lists.
    """
    return table.to_pandas(types_mapper=_arrow_dtype)
