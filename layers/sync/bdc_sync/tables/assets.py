"""Selecting assets from asset_basics and finding their objects in S3.

Shared by the platform tables: which assets a table covers is a question about
asset_basics columns (no DocDB request), and where an asset's files are is a
question about its ``location``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar
from weakref import WeakKeyDictionary

import pyarrow as pa
import pyarrow.compute as pc
from botocore.exceptions import ClientError

from bdc_sync.framework import BuildContext, MissingInput

# S3 answers in tens of milliseconds; thousands of small reads go 16 at a time
# (the S3 client's connection pool holds 32).
S3_READERS = 16

T = TypeVar("T")
R = TypeVar("R")


def data_level_is(basics: pa.Table, level: str) -> pa.Array:
    """Rows whose ``data_level`` is ``level`` (null is no level)."""
    return pc.equal(basics["data_level"], pa.scalar(level)).fill_null(False)


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
        error = exc.response.get("Error", {})
        if error.get("Code") == "NoSuchBucket":
            raise MissingInput(f"source bucket {error.get('BucketName') or bucket} does not exist") from exc
        raise


class PerBuild(Generic[T]):
    """A value computed at most once per build, shared by ``extra_inputs`` and ``derive``.

    A DerivedTable that fingerprints what it reads from S3 would otherwise read it
    twice when the fingerprint says "rebuild".
    """

    def __init__(self, compute: Callable[[BuildContext], T]) -> None:
        self._compute = compute
        self._values: WeakKeyDictionary[BuildContext, T] = WeakKeyDictionary()

    def __call__(self, ctx: BuildContext) -> T:
        if ctx not in self._values:
            self._values[ctx] = self._compute(ctx)
        return self._values[ctx]


# -- SPIM: raw assets and their latest processed asset ----------------------------------
@dataclass(frozen=True)
class Asset:
    """A derived asset as asset_basics knows it."""

    name: str
    id: str | None = None
    location: str | None = None
    modified: str | None = None  # the record's _last_modified


def raw_spim_names(basics: pa.Table, *, exa: bool) -> list[str]:
    """Raw SPIM assets, sorted: exaSPIM ones (instrument id mentions exa) or the others."""
    selected = basics.filter(
        pc.and_(data_level_is(basics, "raw"), modality_contains(basics, "SPIM"))
    )
    names = selected["name"].to_pylist()
    is_exa = text_contains(selected["instrument_id"].to_pylist(), "exa")
    return sorted({name for name, flag in zip(names, is_exa, strict=True) if name and flag == exa})


def latest_derived(source_data: pa.Table, raw_names: Iterable[str], marker: str) -> dict[str, str]:
    """Raw name → the derived asset of it whose name contains ``marker``, latest processing time."""
    wanted = set(raw_names)
    best: dict[str, tuple[str, str]] = {}
    for name, source, processed in zip(
        source_data["name"].to_pylist(),
        source_data["source_data"].to_pylist(),
        source_data["processing_time"].to_pylist(),
        strict=True,
    ):
        if source not in wanted or not name or marker.lower() not in name.lower():
            continue
        candidate = (processed or "", name)  # ties on time: the greater name, for a stable answer
        if source not in best or candidate > best[source]:
            best[source] = candidate
    return {source: name for source, (_, name) in best.items()}


def assets_by_name(basics: pa.Table, names: Iterable[str]) -> dict[str, Asset]:
    """Id, location and modification time of the named assets (the first record of a
    duplicated name); ``basics`` needs ``_id``, ``name``, ``location``, ``_last_modified``."""
    wanted = set(names)
    found: dict[str, Asset] = {}
    for rid, name, location, modified in zip(
        basics["_id"].to_pylist(),
        basics["name"].to_pylist(),
        basics["location"].to_pylist(),
        basics["_last_modified"].to_pylist(),
        strict=True,
    ):
        if name in wanted and name not in found:
            found[name] = Asset(name=name, id=rid, location=location, modified=modified)
    return {name: found.get(name, Asset(name=name)) for name in wanted}
