"""Selecting assets from asset_basics and finding their objects in S3.

Shared by the platform tables: which assets a table covers is a question about
asset_basics columns (no DocDB request), and where an asset's files are is a
question about its ``location``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import pyarrow as pa
import pyarrow.compute as pc
from botocore.exceptions import ClientError

from bdc_sync.framework import MissingInput

# S3 answers in tens of milliseconds; thousands of small reads go 16 at a time
# (the S3 client's connection pool holds 32).
S3_READERS = 16

T = TypeVar("T")
R = TypeVar("R")


def data_level_is(basics: pa.Table, level: str) -> pa.Array:
    """Rows whose ``data_level`` is ``level`` (null is no level)."""
    return pc.fill_null(pc.equal(basics["data_level"], level), False)


def modality_contains(basics: pa.Table, text: str) -> pa.Array:
    """Rows with a modality abbreviation containing ``text``, case-insensitively."""
    needle = text.lower()
    return pa.array(
        [any(needle in m.lower() for m in mods or [] if m) for mods in basics["modalities"].to_pylist()],
        pa.bool_(),
    )


def text_contains(values: Iterable[str | None], text: str) -> list[bool]:
    """Case-insensitive substring test of each value; null never contains anything."""
    needle = text.lower()
    return [value is not None and needle in value.lower() for value in values]


def split_s3_url(url: str | None) -> tuple[str, str] | None:
    """``s3://bucket/key/`` as ``(bucket, "key")``; None if not an S3 URL with a key."""
    if not url or not url.startswith("s3://"):
        return None
    bucket, _, key = url[len("s3://") :].partition("/")
    key = key.strip("/")
    if not bucket or not key:
        return None
    return bucket, key


def key_in_bucket(location: str | None, bucket: str) -> str | None:
    """The asset's key prefix if its location is in ``bucket``, else None."""
    parts = split_s3_url(location)
    if parts is None or parts[0] != bucket:
        return None
    return parts[1]


def first_json_key(keys: Iterator[str]) -> str | None:
    """The first ``.json`` key of a listing (S3 lists keys in lexical order)."""
    return next((key for key in keys if key.endswith(".json")), None)


def parallel_map(fn: Callable[[T], R], items: Iterable[T], workers: int = S3_READERS) -> list[R]:
    """``fn`` over ``items`` on a thread pool, results in input order."""
    items = list(items)
    if len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


@contextmanager
def source_bucket_required(bucket: str) -> Iterator[None]:
    """A source bucket that does not exist is a missing input, not a transient error."""
    try:
        yield
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
            raise MissingInput(f"source bucket {bucket} does not exist") from exc
        raise
