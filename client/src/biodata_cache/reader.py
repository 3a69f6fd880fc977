"""``Cache``: reads the tables of one cache root and version into pandas or DuckDB.

Reading never builds anything; the Lambdas do that. A table read costs one GET the
first time and one conditional GET (``If-None-Match``, answered 304) afterwards.
Non-partitioned tables are kept decoded: as Arrow IPC files in the local cache
(memory-mapped by a later process, written by a background thread so the first
read does not wait for it) and, in this process, as the arrow tables themselves.
So a repeated read neither downloads nor decodes. Partitions
(``qc/subject_id=<id>/data.pqt``) are fetched by key, one GET each, and kept as the
parquet files they are, so ``lazy=True`` can hand their path to DuckDB.

Paths come from ``layout``; the registry is read to list tables, to find tables
this package does not know, and to explain a missing object (which table, which
version, what exists instead).
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import sys
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from biodata_cache import catalog, layout
from biodata_cache._diskcache import DiskCache
from biodata_cache._storage import FileStore, ObjectMissing, S3Store, make_store, relative_key
from biodata_cache.catalog import UnknownTableError
from biodata_cache.config import ENV_VERSION, CacheConfig, resolve_config
from biodata_cache.errors import (
    BiodataCacheError,
    CorruptObjectError,
    MissingObjectError,
    UnknownAssetsWarning,
    UnknownCustomTableError,
    UnknownPlatformError,
    UnknownSubjectError,
    VersionNotFoundError,
)
from biodata_cache.registry import CacheRegistry

if TYPE_CHECKING:
    import duckdb
    import pandas as pd
    import pyarrow.dataset as ds

logger = logging.getLogger("biodata_cache")

Filters = Any  # pyarrow DNF list of tuples (as for pq.read_table) or a pyarrow Expression
_CUSTOM_PARQUET: dict[str, Any] = {"compression": "zstd"}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class _TableRef:
    """Where one table lives under the version folder."""

    name: str
    rel: str  # the file, or for a partitioned table its folder (ending in "/")
    table_folder: str | None = None
    partition_key: str | None = None
    schema: pa.Schema | None = None


class Cache:
    """A reader of one cache root (S3 bucket and prefix, or a local directory) and version.

    Args:
        config: Fully resolved settings; or give keyword options instead.
        bucket, prefix, version, root, endpoint_url, anonymous, cache_dir, use_cache,
        registry_ttl, max_attempts: see ``CacheConfig``. Unset options come from the
            ``BIODATA_CACHE_*`` environment variables, then defaults.

    Example:
        >>> cache = Cache(version="1.0", anonymous=True)
        >>> cache.read("asset_basics", columns=["name", "subject_id"])
    """

    def __init__(
        self,
        config: CacheConfig | None = None,
        *,
        bucket: str | None = None,
        prefix: str | None = None,
        version: str | None = None,
        root: str | Path | None = None,
        endpoint_url: str | None = None,
        anonymous: bool | None = None,
        cache_dir: str | Path | None = None,
        use_cache: bool | None = None,
        registry_ttl: float | None = None,
        max_attempts: int | None = None,
        _store: FileStore | S3Store | None = None,
    ) -> None:
        options = {
            "bucket": bucket,
            "prefix": prefix,
            "version": version,
            "root": root,
            "endpoint_url": endpoint_url,
            "anonymous": anonymous,
            "cache_dir": cache_dir,
            "use_cache": use_cache,
            "registry_ttl": registry_ttl,
            "max_attempts": max_attempts,
        }
        if config is None:
            config = resolve_config(**options)
        elif any(value is not None for value in options.values()):
            raise TypeError("pass either config= or keyword options, not both")
        self.config = config
        self._store = _store if _store is not None else make_store(config)
        self._disk = DiskCache(config.cache_dir)
        self._lock = threading.Lock()
        self._registry: tuple[float, CacheRegistry] | None = None
        self._listings: dict[str, tuple[float, _Listing | None]] = {}
        self._siblings: dict[str, Cache] = {}

    def __repr__(self) -> str:
        return f"Cache(root={self.config.root_url!r}, version={self.version!r})"

    # -- identity ----------------------------------------------------------------
    @property
    def version(self) -> str:
        """The version folder read, such as ``bdc-v1.0``."""
        return self.config.folder

    def with_version(self, version: str | None) -> Cache:
        """A reader of another version of the same root (this one if ``version`` is None)."""
        if version is None:
            return self
        folder = layout.version_folder(version)
        if folder == self.config.folder:
            return self
        with self._lock:
            sibling = self._siblings.get(folder)
            if sibling is None:
                sibling = Cache(replace(self.config, folder=folder), _store=self._store)
                self._siblings[folder] = sibling
            return sibling

    def url(self, rel: str) -> str:
        """The URL of a key relative to the root (``s3://...`` or ``file://...``)."""
        return self._store.url(rel)

    def _use_cache(self, use_cache: bool | None) -> bool:
        return self.config.use_cache if use_cache is None else use_cache

    # -- versions and registry ---------------------------------------------------
    def list_versions(self) -> list[str]:
        """Version folders of the root, oldest first (semver order): those listed in
        ``cache_versions.json`` plus the ``bdc-v*`` folders found in the root.

        The folders are listed too because the 0.x nightly job rewrites the versions file
        unconditionally (and, when its own read fails, with only its folder): until our
        next run puts the entry back, the file may lack a version that is there. Where the
        bucket cannot be listed (public buckets often grant only GetObject), the file alone
        answers.
        """
        rel = relative_key(layout.versions_key())
        names: list[str] = []
        missing_url: str | None = None
        try:
            fetched = self._store.get(rel)
        except ObjectMissing as missing:
            missing_url = missing.url
        else:
            assert fetched is not None
            document = _json(fetched.body, self.url(rel))
            if not isinstance(document, list):
                raise CorruptObjectError(f"{self.url(rel)} is not a JSON array of version folders")
            names = [v for v in document if isinstance(v, str)]
        found = [v for v in self._listed_version_folders() if v not in names]
        if missing_url is not None and not found:
            raise MissingObjectError(
                f"no biodata-cache tables at {self.config.root_url}: {missing_url} does not "
                "exist (check BIODATA_CACHE_BUCKET / BIODATA_CACHE_PREFIX or BIODATA_CACHE_ROOT)"
            )
        names += found
        ours = sorted((v for v in names if layout.is_version_folder(v)), key=layout.folder_sort_key)
        return [v for v in names if not layout.is_version_folder(v)] + ours

    def _listed_version_folders(self) -> list[str]:
        """``bdc-v*`` folders of the root; none where the root cannot be listed.

        Best effort: the versions file is the contract, the listing only fills in what
        the old job's rewrite may have dropped, so a refused or failed listing (S3
        servers that answer only GET, buckets without ListBucket) leaves the file's word.
        """
        try:
            folders = self._store.list_folders("")
        except (BiodataCacheError, ObjectMissing):
            return []
        return [f for f in folders if layout.is_version_folder(f)]

    def _version_missing(self) -> Exception:
        """The error for a version folder without a registry, naming the versions that exist."""
        versions = self.list_versions()
        if self.version in versions:
            url = self.url(relative_key(layout.registry_key(self.version)))
            return MissingObjectError(
                f"{url} does not exist although cache_versions.json lists {self.version}; "
                "its first build may not have finished"
            )
        return VersionNotFoundError(
            f"cache version {self.version} does not exist in {self.config.root_url}; "
            f"available versions: {', '.join(versions) or 'none'} "
            f"(pass version=... or set {ENV_VERSION})"
        )

    def registry(self, *, refresh: bool = False) -> CacheRegistry:
        """The version's ``cache_registry.json``, reused for ``registry_ttl`` seconds."""
        now = time.monotonic()
        cached = self._registry
        if not refresh and cached is not None and now - cached[0] < self.config.registry_ttl:
            return cached[1]
        rel = relative_key(layout.registry_key(self.version))
        try:
            fetched = self._store.get(rel)
        except ObjectMissing:
            raise self._version_missing() from None
        assert fetched is not None
        document = _json(fetched.body, self.url(rel))
        if not isinstance(document, dict) or not isinstance(document.get("tables"), list):
            raise CorruptObjectError(f"{self.url(rel)} has no 'tables' list")
        result = CacheRegistry.from_json(document, self.version)
        self._registry = (now, result)
        return result

    def run_report(self, run_id: str | None = None) -> dict[str, Any]:
        """The report of one run (default: the latest) from ``_runs/`` of the version."""
        key = (
            layout.run_report_key(self.version, run_id)
            if run_id
            else layout.latest_run_report_key(self.version)
        )
        rel = relative_key(key)
        try:
            fetched = self._store.get(rel)
        except ObjectMissing as missing:
            self.registry()  # a version that does not exist is the better message
            what = f"no run report for run {run_id!r}" if run_id else "no run has finished"
            raise MissingObjectError(f"{what} in {self.version} ({missing.url} does not exist)") from None
        assert fetched is not None
        report = _json(fetched.body, self.url(rel))
        if not isinstance(report, dict):
            raise CorruptObjectError(f"{self.url(rel)} is not a JSON object")
        return report

    # -- tables ------------------------------------------------------------------
    def _ref(self, name: str) -> _TableRef:
        spec = catalog.TABLES.get(name)
        if spec is not None:
            schema = None if spec.open_schema else spec.schema
            if spec.partitioned:
                folder = spec.folder or spec.name
                rel = relative_key(layout.partition_folder_key(self.version, folder))
                return _TableRef(name, rel, folder, spec.partition_key, schema)
            return _TableRef(name, relative_key(layout.table_key(self.version, name)), schema=schema)
        # A table this package does not know, added by a newer release: follow the registry.
        registry = self.registry()
        entry = registry.get(name)
        if entry is None:
            known = sorted(set(catalog.TABLES) | set(registry.names))
            raise UnknownTableError(f"unknown table {name!r}; known tables: {', '.join(known)}")
        marker = f"/{self.version}/"
        if marker not in entry.location:
            raise BiodataCacheError(
                f"registry location {entry.location!r} of table {name!r} is not under {self.version}"
            )
        inner = entry.location.split(marker, 1)[1]
        rel = relative_key(layout.folder_prefix(self.version)) + inner
        if entry.partitioned:
            return _TableRef(name, rel, inner.strip("/"), entry.partition_key or None)
        return _TableRef(name, rel)

    def _table_missing(self, name: str, url: str) -> Exception:
        """Why a table's object is absent: unknown version, table not in it, or not built."""
        registry = self.registry()
        entry = registry.get(name)
        if entry is None:
            return UnknownTableError(
                f"table {name!r} is not in cache version {self.version}; "
                f"its tables: {', '.join(sorted(registry.names))}"
            )
        return MissingObjectError(
            f"{url} does not exist, although cache_registry.json of {self.version} lists "
            f"table {name!r} (status: {entry.status or 'unknown'})"
        )

    def read_arrow(
        self,
        table: str,
        columns: Sequence[str] | None = None,
        filters: Filters | None = None,
        *,
        use_cache: bool | None = None,
    ) -> pa.Table:
        """One table as a pyarrow Table (a partitioned one: all its partitions).

        Args:
            table: Table name, as in ``catalog.TABLES`` or the registry.
            columns: Columns to keep (default all).
            filters: Row filter: pyarrow DNF (``[("subject_id", "=", "123")]``) or an
                Expression (``pc.field("age") > 90``).
            use_cache: False to bypass the local cache for this call.
        """
        ref = self._ref(table)
        if ref.partition_key:
            return self._read_partitioned(ref, columns, filters, self._use_cache(use_cache))
        try:
            data = self._whole_table(ref.rel, self._use_cache(use_cache))
        except ObjectMissing as missing:
            raise self._table_missing(table, missing.url) from None
        return _project(data, columns, filters, table)

    def read(
        self,
        table: str,
        columns: Sequence[str] | None = None,
        filters: Filters | None = None,
        *,
        use_cache: bool | None = None,
    ) -> pd.DataFrame:
        """One table as a pandas DataFrame; arguments as for ``read_arrow``."""
        return to_pandas(self.read_arrow(table, columns, filters, use_cache=use_cache))

    def unique(self, table: str, *, use_cache: bool | None = None) -> list[str]:
        """The values of a one-column ``unique_*`` table as a list."""
        spec = catalog.get_spec(table)
        column = spec.columns[0].name
        data = self.read_arrow(table, [column], use_cache=use_cache)
        return [value for value in data.column(column).to_pylist() if value is not None]

    def _whole_table(self, rel: str, use_cache: bool) -> pa.Table:
        """A non-partitioned table, through the decoded local cache."""
        if isinstance(self._store, FileStore):
            return _parquet_file(self._store.local_path(rel), self.url(rel))
        path = self._disk.path(self._store.cache_id, self._store.key(rel), decoded=True)
        remembered = _MEMORY.get(path) if use_cache else None
        etag = None
        if remembered is not None:
            etag = remembered[0]
        elif use_cache:
            _wait_for_write(path)
            etag = self._disk.etag(path)
        fetched = self._store.get(rel, if_none_match=etag)
        if fetched is None:
            if remembered is not None:
                return remembered[1]
            cached = _read_ipc(path)
            if cached is not None:
                _MEMORY.put(path, str(etag), cached)
                return cached
            self._disk.drop(path)
            fetched = self._store.get(rel)
            assert fetched is not None
        data = _parquet_bytes(fetched.body, self.url(rel))
        if use_cache:
            _MEMORY.put(path, fetched.etag, data)
            _write_soon(self._disk, path, data, fetched.etag)
        return data

    # -- partitions --------------------------------------------------------------
    def _partition_rel(self, ref: _TableRef, value: str) -> str:
        assert ref.table_folder and ref.partition_key
        return relative_key(layout.partition_key(self.version, ref.table_folder, ref.partition_key, value))

    def _partition_path(self, rel: str, use_cache: bool) -> Path:
        """A partition's parquet file on local disk (downloaded if needed)."""
        if isinstance(self._store, FileStore):
            path = self._store.local_path(rel)
            if not path.is_file():
                raise ObjectMissing(self.url(rel))
            return path
        path = self._disk.path(self._store.cache_id, self._store.key(rel))
        etag = self._disk.etag(path) if use_cache else None
        fetched = self._store.get(rel, if_none_match=etag)
        if fetched is None:
            try:  # DuckDB will read it: make sure the kept copy is still whole
                pq.read_metadata(path)
                return path
            except (pa.ArrowException, OSError):
                self._disk.drop(path)
                fetched = self._store.get(rel)
                assert fetched is not None
        _check_parquet(fetched.body, self.url(rel))
        if not self._disk.save(path, lambda tmp: tmp.write_bytes(fetched.body), fetched.etag):
            raise BiodataCacheError(
                f"could not write {path} (needed to hand {self.url(rel)} to DuckDB); check BIODATA_CACHE_DIR"
            )
        return path

    def _partition_table(self, rel: str, use_cache: bool) -> pa.Table:
        """A partition's rows."""
        if isinstance(self._store, FileStore):
            return _parquet_file(self._store.local_path(rel), self.url(rel))
        path = self._disk.path(self._store.cache_id, self._store.key(rel))
        etag = self._disk.etag(path) if use_cache else None
        fetched = self._store.get(rel, if_none_match=etag)
        if fetched is None:
            try:
                return _parquet_file(path, self.url(rel))
            except (CorruptObjectError, ObjectMissing):
                self._disk.drop(path)
                fetched = self._store.get(rel)
                assert fetched is not None
        data = _parquet_bytes(fetched.body, self.url(rel))
        if use_cache:
            self._disk.save(path, lambda tmp: tmp.write_bytes(fetched.body), fetched.etag)
        return data

    def _partition(
        self,
        table: str,
        value: str,
        *,
        lazy: bool = False,
        use_cache: bool | None = None,
    ) -> pa.Table | str:
        """One partition of a partitioned table: its rows, or with ``lazy`` a local path.

        Raises ``ObjectMissing`` when the partition does not exist; the public
        methods explain that in terms of subjects and platforms.
        """
        ref = self._ref(table)
        if not ref.partition_key:
            raise ValueError(f"table {table!r} is not partitioned")
        try:
            rel = self._partition_rel(ref, value)
        except ValueError:  # a value that cannot name a partition ("a/b", "") has none
            raise ObjectMissing(f"{self.url(ref.rel)}{ref.partition_key}={value}") from None
        if lazy:
            return str(self._partition_path(rel, self._use_cache(use_cache)))
        return self._partition_table(rel, self._use_cache(use_cache))

    def _empty(self, table: str, columns: Sequence[str] | None) -> pa.Table:
        return _project(catalog.get_spec(table).schema.empty_table(), columns, None, table)

    def _subject_partition(
        self,
        table: str,
        subject_id: str | int,
        asset_names: str | Iterable[str] | None,
        lazy: bool,
        columns: Sequence[str] | None,
        filters: Filters | None,
        use_cache: bool | None,
    ) -> pd.DataFrame | str:
        subject = str(subject_id).strip()
        if lazy and asset_names is not None:
            raise ValueError(
                "asset_names cannot be combined with lazy=True: lazy returns the whole "
                "partition's file; filter it in DuckDB (WHERE asset_name IN (...))"
            )
        try:
            found = self._partition(table, subject, lazy=lazy, use_cache=use_cache)
        except ObjectMissing as missing:
            if self._subject_known(subject, use_cache):
                if lazy:
                    raise MissingObjectError(
                        f"subject_id {subject!r} has no {table} data in {self.version} "
                        f"({missing.url} does not exist)"
                    ) from None
                return to_pandas(self._empty(table, columns))
            raise UnknownSubjectError(
                f"unknown subject_id {subject!r}: no {table} partition in {self.version} "
                "and not in unique_subject_ids"
            ) from None
        if isinstance(found, str):
            return found
        if asset_names is not None:
            found = _keep_assets(found, asset_names, table, subject)
        return to_pandas(_project(found, columns, filters, table))

    def _subject_known(self, subject: str, use_cache: bool | None) -> bool:
        try:
            return subject in set(self.unique("unique_subject_ids", use_cache=use_cache))
        except (MissingObjectError, UnknownTableError):
            return False

    def qc(
        self,
        subject_id: str | int,
        asset_names: str | Iterable[str] | None = None,
        lazy: bool = False,
        *,
        columns: Sequence[str] | None = None,
        filters: Filters | None = None,
        use_cache: bool | None = None,
    ) -> pd.DataFrame | str:
        """QC metrics of one subject; see ``biodata_cache.qc``."""
        return self._subject_partition(
            "quality_control", subject_id, asset_names, lazy, columns, filters, use_cache
        )

    def qc_tag_status(
        self,
        subject_id: str | int,
        asset_names: str | Iterable[str] | None = None,
        lazy: bool = False,
        *,
        columns: Sequence[str] | None = None,
        filters: Filters | None = None,
        use_cache: bool | None = None,
    ) -> pd.DataFrame | str:
        """QC status per tag of one subject; see ``biodata_cache.qc_tag_status``."""
        return self._subject_partition(
            "qc_tag_status", subject_id, asset_names, lazy, columns, filters, use_cache
        )

    def platform_qc(
        self,
        platform: str,
        *,
        lazy: bool = False,
        columns: Sequence[str] | None = None,
        filters: Filters | None = None,
        use_cache: bool | None = None,
    ) -> pd.DataFrame | str:
        """Tag-level QC of one platform; see ``biodata_cache.platform_qc``."""
        if platform not in catalog.PLATFORMS:
            raise UnknownPlatformError(
                f"unknown platform {platform!r}; platforms: {', '.join(catalog.PLATFORMS)}"
            )
        try:
            found = self._partition("platform_qc", platform, lazy=lazy, use_cache=use_cache)
        except ObjectMissing as missing:
            _ = self.registry()["platform_qc"]  # an unknown version or table explains more
            if lazy:
                raise MissingObjectError(
                    f"platform {platform!r} has no platform_qc data in {self.version} "
                    f"({missing.url} does not exist)"
                ) from None
            return to_pandas(self._empty("platform_qc", columns))
        if isinstance(found, str):
            return found
        return to_pandas(_project(found, columns, filters, "platform_qc"))

    # Reading a partitioned table. The listing of its files (a few LIST requests for
    # thousands of partitions) is reused for registry_ttl seconds, like the registry;
    # the files' contents never are. An object rewritten since the listing (a rebuild,
    # or a damaged upload) must be read as it is now: a pyarrow dataset kept across
    # reads remembers each file's size and parquet footer, so it returned old rows or
    # failed with an arrow error naming no object. So read_arrow fetches each partition
    # it needs through the local cache, as qc() does: one conditional GET each (304 and
    # a memory-mapped file when unchanged, about the cost of the footer read a remote
    # scan needs anyway), checked to be a whole parquet file, and an error names the
    # object. sql() keeps scanning remotely, so a WHERE on the partition key still opens
    # only the matching files, but on a dataset made afresh for each connection from
    # the kept listing without file sizes, so every file it opens is read as it is now.
    def _read_partitioned(
        self, ref: _TableRef, columns: Sequence[str] | None, filters: Filters | None, use_cache: bool
    ) -> pa.Table:
        import pyarrow.dataset as ds

        for attempt in range(2):
            listing = self._listing(ref, refresh=attempt > 0)
            if listing is None:
                if ref.schema is None:
                    raise MissingObjectError(f"{self.url(ref.rel)} holds no partitions")
                return _project(ref.schema.empty_table(), columns, filters, ref.name)
            if columns is not None:
                _check_columns(listing.schema, columns, ref.name)
            try:  # prunes by the partition expressions alone: no request
                expression = _expression(filters) if filters is not None else None
                chosen = listing.select(expression)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, ValueError) as exc:
                raise ValueError(f"cannot apply filters {filters!r} to table {ref.name!r}: {exc}") from None
            try:
                sources = self._partition_sources([rel for rel, _ in chosen], use_cache)
            except ObjectMissing as missing:
                if attempt == 0:  # deleted since it was listed: list again
                    continue
                raise MissingObjectError(
                    f"{missing.url} does not exist, although it was just listed in "
                    f"{self.url(ref.rel)} (table {ref.name!r}); try again"
                ) from None
            fmt = ds.ParquetFileFormat()
            fragments = [
                fmt.make_fragment(source, partition_expression=partition)
                for source, (_, partition) in zip(sources, chosen, strict=True)
            ]
            wanted = list(columns) if columns is not None else None
            try:
                return ds.FileSystemDataset(fragments, listing.schema, fmt).to_table(
                    columns=wanted, filter=expression
                )
            except (pa.ArrowException, OSError) as exc:
                failure: Exception = exc
            # Every footer was whole, so a data page is damaged: find the partition.
            for (rel, _), fragment in zip(chosen, fragments, strict=True):
                try:
                    ds.FileSystemDataset([fragment], listing.schema, fmt).to_table(
                        columns=wanted, filter=expression
                    )
                except (pa.ArrowException, OSError) as exc:
                    if attempt == 0 and use_cache and not isinstance(self._store, FileStore):
                        # Perhaps only the kept copy is damaged: fetch it afresh once.
                        self._disk.drop(self._disk.path(self._store.cache_id, self._store.key(rel)))
                        break
                    raise _corrupt(self.url(rel), exc) from None
            else:
                raise _corrupt(self.url(ref.rel), failure)
        raise AssertionError("unreachable")

    def _partition_sources(self, rels: Sequence[str], use_cache: bool) -> list[pa.Buffer]:
        """The current bytes of several partitions, fetched in parallel from S3."""
        if len(rels) <= 1 or isinstance(self._store, FileStore):
            return [self._partition_source(rel, use_cache) for rel in rels]
        with ThreadPoolExecutor(
            max_workers=min(_FETCH_THREADS, len(rels)), thread_name_prefix="biodata-cache-fetch"
        ) as pool:
            futures = [pool.submit(self._partition_source, rel, use_cache) for rel in rels]
            try:
                return [future.result() for future in futures]
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    def _partition_source(self, rel: str, use_cache: bool) -> pa.Buffer:
        """A partition's bytes as they are now, checked to hold a whole parquet footer.

        A local root's file is memory-mapped in place. From S3 the kept copy is used
        when S3 confirms its ETag (304); otherwise the object is downloaded (and kept,
        with ``use_cache``). Raises ``ObjectMissing`` or ``CorruptObjectError`` naming
        the object.
        """
        url = self.url(rel)
        if isinstance(self._store, FileStore):
            return _checked_buffer(_mapped(self._store.local_path(rel), url), url)
        path = self._disk.path(self._store.cache_id, self._store.key(rel))
        etag = self._disk.etag(path) if use_cache else None
        fetched = self._store.get(rel, if_none_match=etag)
        if fetched is None:
            try:
                return _checked_buffer(_mapped(path, url), url)
            except (CorruptObjectError, ObjectMissing):  # the kept copy, not the object
                self._disk.drop(path)
                fetched = self._store.get(rel)
                assert fetched is not None
        body = fetched.body
        _check_parquet(body, url)
        if use_cache:
            self._disk.save(path, lambda tmp: tmp.write_bytes(body), fetched.etag)
        return pa.py_buffer(body)

    def dataset(self, table: str) -> ds.Dataset | None:
        """A pyarrow dataset over a partitioned table's files, read remotely.

        Filters on the partition key prune partitions before any file is opened, and
        only the needed columns are fetched. The listing of files is reused for
        ``registry_ttl`` seconds, but each call returns a new dataset that reads the
        files as they are when scanned. None if the table has no partitions yet.
        """
        ref = self._ref(table)
        if not ref.partition_key:
            raise ValueError(f"table {table!r} is not partitioned")
        listing = self._listing(ref)
        return None if listing is None else listing.remote()

    def _listing(self, ref: _TableRef, *, refresh: bool = False) -> _Listing | None:
        """The files of a partitioned table, listed at most every ``registry_ttl`` seconds."""
        now = time.monotonic()
        listed = self._listings.get(ref.name)
        if not refresh and listed is not None and now - listed[0] < self.config.registry_ttl:
            return listed[1]
        listing = self._discover(ref)
        self._listings[ref.name] = (now, listing)
        return listing

    def _discover(self, ref: _TableRef) -> _Listing | None:
        import pyarrow.dataset as ds

        assert ref.partition_key
        filesystem, base = self._store.arrow_filesystem()
        path = f"{base}/{ref.rel}".rstrip("/")
        partitioning = ds.partitioning(pa.schema([(ref.partition_key, pa.string())]), flavor="hive")
        try:
            # Only its file names, partition values and (for a table this package does
            # not know) schema are kept; this dataset itself is never scanned.
            discovered = ds.dataset(
                path,
                filesystem=filesystem,
                format="parquet",
                partitioning=partitioning,
                schema=ref.schema,
            )
        except FileNotFoundError:
            return None
        except OSError as exc:
            if "does not exist" in str(exc) or "not found" in str(exc).lower():
                return None
            raise BiodataCacheError(f"cannot list {self.url(ref.rel)}: {exc}") from None
        fragments = list(discovered.get_fragments())
        return _Listing(
            filesystem=filesystem,
            base=base,
            rels=tuple(f.path[len(base) + 1 :] for f in fragments),
            partitions=tuple(f.partition_expression for f in fragments),
            schema=discovered.schema,
        )

    # -- derived lookups ---------------------------------------------------------
    def raw_to_derived(
        self,
        asset_name: str | Iterable[str],
        latest: bool = False,
        modality: str | None = None,
        *,
        use_cache: bool | None = None,
    ) -> list[str]:
        """Derived assets of raw assets; see ``biodata_cache.raw_to_derived``."""
        names = [asset_name] if isinstance(asset_name, str) else list(dict.fromkeys(asset_name))
        rows = self.read_arrow(
            "source_data",
            ["name", "source_data", "pipeline_name", "processing_time"],
            pc.field("source_data").isin(names),
            use_cache=use_cache,
        ).to_pylist()
        if modality is not None:
            needle = modality.lower()
            candidates = sorted({row["name"] for row in rows})
            basics = self.read_arrow(
                "asset_basics",
                ["name", "modalities"],
                pc.field("name").isin(candidates),
                use_cache=use_cache,
            ).to_pylist()
            wanted = {
                b["name"] for b in basics if any(needle in (m or "").lower() for m in (b["modalities"] or []))
            }
            rows = [row for row in rows if row["name"] in wanted]

        def when(row: dict[str, Any]) -> tuple[str, str]:
            return (row["processing_time"] or "", row["name"] or "")

        if latest:
            best: dict[tuple[str, str], dict[str, Any]] = {}
            for row in rows:
                group = (row["source_data"], row["pipeline_name"] or "")
                if group not in best or when(row) > when(best[group]):
                    best[group] = row
            rows = list(best.values())
        result: list[str] = []
        for name in names:
            for row in sorted((r for r in rows if r["source_data"] == name), key=when):
                if row["name"] not in result:
                    result.append(row["name"])
        return result

    # -- custom tables -----------------------------------------------------------
    def custom_names(self) -> list[str] | None:
        """Names of the custom tables of this version (None if the bucket may not be listed)."""
        rel = relative_key(layout.folder_prefix(self.version)) + f"{layout.CUSTOM_FOLDER}/"
        try:
            listed = self._store.list_names(rel)
        except BiodataCacheError:
            return None
        return sorted(n[: -len(".pqt")] for n in listed if n.endswith(".pqt") and "/" not in n)

    def custom(
        self,
        name: str,
        df: pd.DataFrame | pa.Table | None = None,
        *,
        use_cache: bool | None = None,
    ) -> pd.DataFrame | None:
        """Write (with ``df``) or read (without) a custom table; see ``biodata_cache.custom``."""
        rel = relative_key(layout.custom_key(self.version, name))
        if df is not None:
            table = df if isinstance(df, pa.Table) else pa.Table.from_pandas(df)
            sink = io.BytesIO()
            pq.write_table(table, sink, **_CUSTOM_PARQUET)
            self._store.put(rel, sink.getvalue(), content_type="application/vnd.apache.parquet")
            return None
        try:
            data = self._whole_table(rel, self._use_cache(use_cache))
        except ObjectMissing as missing:
            self.registry()  # an unknown version is the better message
            names = self.custom_names()
            listing = "cannot be listed" if names is None else (", ".join(names) or "none")
            raise UnknownCustomTableError(
                f"no custom table {name!r} in {self.version} ({missing.url} does not exist); "
                f"custom tables: {listing}"
            ) from None
        return to_pandas(data)

    # -- DuckDB ------------------------------------------------------------------
    def connect(
        self,
        tables: Iterable[str] | None = None,
        *,
        use_cache: bool | None = None,
    ) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection in which tables of this version are views.

        Non-partitioned tables are fetched through the local cache (one conditional
        request each once cached) and scanned in place, without a copy. Partitioned
        tables are pyarrow datasets over the remote files, so filters on
        ``subject_id``/``platform`` read only the matching partitions.

        Args:
            tables: Names to register (default: every table of the registry; tables
                listed but not built yet are skipped).
            use_cache: False to bypass the local cache.
        """
        import duckdb

        connection = duckdb.connect()
        if tables is None:
            entries = self.registry().tables
            names = [t.name for t in entries if t.status != "never built"]
            strict = False
        else:
            names = list(dict.fromkeys(tables))
            strict = True
        for name in names:
            self._register(connection, name, use_cache, strict)
        return connection

    def _register(
        self, connection: duckdb.DuckDBPyConnection, name: str, use_cache: bool | None, strict: bool
    ) -> None:
        ref = self._ref(name)
        source: Any
        if ref.partition_key:
            source = self.dataset(name)
            if source is None:
                source = ref.schema.empty_table() if ref.schema is not None else None
        else:
            try:
                source = self.read_arrow(name, use_cache=use_cache)
            except MissingObjectError as exc:
                if strict:
                    raise
                warnings.warn(f"{exc}; table {name!r} skipped", stacklevel=_caller_level())
                source = None
        if source is not None:
            connection.register(name, source)

    def tables_in(self, query: str) -> list[str]:
        """Cache tables a SQL query refers to."""
        import duckdb

        try:
            referenced = set(duckdb.get_table_names(query))
        except duckdb.Error:
            # Some valid queries (JOIN ... USING) trip DuckDB's extractor; fall back to
            # the identifiers of the text, which at worst registers one table too many.
            referenced = set(_IDENTIFIER.findall(query))
        found = [name for name in sorted(referenced) if name in catalog.TABLES]
        others = referenced.difference(found)
        if others:
            try:
                listed = set(self.registry().names)
            except MissingObjectError:
                listed = set()
            found += sorted(others & listed)
        return found

    def sql(
        self, query: str, *, lazy: bool = False, use_cache: bool | None = None
    ) -> pd.DataFrame | duckdb.DuckDBPyRelation | None:
        """Run DuckDB SQL over the cache tables; see ``biodata_cache.sql``."""
        import duckdb

        names = self.tables_in(query)
        connection = self.connect(names, use_cache=use_cache)
        relation = connection.sql(query)
        if lazy or relation is None:
            return relation
        try:
            return to_pandas(_relation_arrow(relation))
        except duckdb.Error as exc:
            damaged = self._damaged_partition(names, str(exc))
            if damaged is None:
                raise
            raise _corrupt(self.url(damaged), _first_line(exc)) from exc

    def _damaged_partition(self, names: Iterable[str], message: str) -> str | None:
        """The partition file an error message names (pyarrow failed to read it while
        DuckDB scanned the table's dataset), as a key relative to the root."""
        for name in names:
            listed = self._listings.get(name)
            if listed is None:
                continue
            listing = listed[1]
            for rel in listing.rels if listing is not None else ():
                if f"{listing.base}/{rel}" in message:
                    return rel
        return None

    # -- local cache -------------------------------------------------------------
    def clear_cache(self) -> int:
        """Delete every file of the local cache directory; returns the bytes freed."""
        _wait_for_writes()
        _MEMORY.clear()
        return self._disk.clear()

    def cache_usage(self) -> tuple[int, int]:
        """(files, bytes) in the local cache directory, once pending writes are done."""
        _wait_for_writes()
        return self._disk.usage()


# -- helpers ------------------------------------------------------------------------
def _json(body: bytes, url: str) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:
        raise CorruptObjectError(f"{url} is not valid JSON ({exc})") from None


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _corrupt(url: str, exc: Exception | str) -> CorruptObjectError:
    return CorruptObjectError(
        f"{url} is not a readable parquet file ({exc}); no data was returned. "
        "If this persists, rebuild the table."
    )


# One file is read with ParquetFile, not pq.read_table: read_table goes through the
# dataset scanner, whose threads can outlive the interpreter's shutdown and abort the
# process at exit ("terminate called without an active exception", apache/arrow#34314;
# 9 of 40 short scripts here with pyarrow 26), which a CLI would report as a failure.
def _parquet_bytes(body: bytes, url: str) -> pa.Table:
    try:
        return pq.ParquetFile(pa.BufferReader(body)).read()
    except (pa.ArrowException, OSError) as exc:
        raise _corrupt(url, exc) from None


def _mapped(path: Path, url: str) -> pa.Buffer:
    """A local file's bytes, memory-mapped (valid after the file is replaced)."""
    try:
        with pa.memory_map(str(path), "r") as source:
            return source.read_buffer()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        raise ObjectMissing(url) from None


def _checked_buffer(buffer: pa.Buffer, url: str) -> pa.Buffer:
    """``buffer`` if its parquet footer is whole; a truncated file fails here, by name."""
    try:
        pq.read_metadata(pa.BufferReader(buffer))
    except (pa.ArrowException, OSError) as exc:
        raise _corrupt(url, exc) from None
    return buffer


def _check_parquet(body: bytes, url: str) -> None:
    """Reject a truncated or foreign file before it is handed to DuckDB by path."""
    try:
        pq.read_metadata(pa.BufferReader(body))
    except (pa.ArrowException, OSError) as exc:
        raise _corrupt(url, exc) from None


def _parquet_file(path: Path, url: str) -> pa.Table:
    try:
        return pq.ParquetFile(str(path), memory_map=True).read()
    except FileNotFoundError:
        raise ObjectMissing(url) from None
    except (pa.ArrowException, OSError) as exc:
        if not path.exists():
            raise ObjectMissing(url) from None
        raise _corrupt(url, exc) from None


def _read_ipc(path: Path) -> pa.Table | None:
    """A memory-mapped decoded table, or None if the file is absent or damaged."""
    try:
        with pa.memory_map(str(path), "r") as source:
            return pa.ipc.open_file(source).read_all()
    except (pa.ArrowException, OSError):
        return None


def _write_ipc(table: pa.Table, path: Path) -> None:
    with pa.OSFile(str(path), "wb") as sink:
        with pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)


class _RecentTables:
    """Decoded tables recently read in this process, by cache path, with their ETag.

    A repeated read still revalidates with S3 (one conditional GET) but then skips
    even the memory-mapping. Arrow tables are immutable and the DataFrames made from
    them share their buffers, so holding them costs little beyond what callers hold.
    """

    def __init__(self, limit_bytes: int) -> None:
        self.limit = limit_bytes
        self._items: OrderedDict[Path, tuple[str, pa.Table, int]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, path: Path) -> tuple[str, pa.Table] | None:
        with self._lock:
            item = self._items.get(path)
            if item is None:
                return None
            self._items.move_to_end(path)
            return item[0], item[1]

    def put(self, path: Path, etag: str, table: pa.Table) -> None:
        size = table.nbytes
        with self._lock:
            old = self._items.pop(path, None)
            if old is not None:
                self._size -= old[2]
            if size > self.limit:
                return
            while self._items and self._size + size > self.limit:
                _, (_, _, dropped) = self._items.popitem(last=False)
                self._size -= dropped
            self._items[path] = (etag, table, size)
            self._size += size

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._size = 0


_MEMORY = _RecentTables(512 << 20)
# Partitions of one read fetched at once (boto3 keeps up to 16 connections).
_FETCH_THREADS = 16


@dataclass(frozen=True)
class _Listing:
    """The files of a partitioned table as listed: names and partition values, no contents."""

    filesystem: Any  # pyarrow FileSystem of the store
    base: str  # the store root in that filesystem; a file is f"{base}/{rel}"
    rels: tuple[str, ...]
    partitions: tuple[pc.Expression, ...]
    schema: pa.Schema

    def remote(self) -> ds.FileSystemDataset:
        """A new dataset over the listed files. Built without file sizes, so each file
        is opened as it is now (one HEAD request more than a listed size would need)."""
        import pyarrow.dataset as ds

        return ds.FileSystemDataset.from_paths(
            [f"{self.base}/{rel}" for rel in self.rels],
            schema=self.schema,
            format=ds.ParquetFileFormat(),
            filesystem=self.filesystem,
            partitions=list(self.partitions),
        )

    def select(self, expression: pc.Expression | None) -> list[tuple[str, pc.Expression]]:
        """(file, partition expression) of the partitions ``expression`` may match.

        Decided from the partition values alone, without opening any file; raises
        an arrow error if ``expression`` does not fit the schema.
        """
        pairs = list(zip(self.rels, self.partitions, strict=True))
        if expression is None:
            return pairs
        kept = {fragment.path for fragment in self.remote().get_fragments(filter=expression)}
        return [(rel, partition) for rel, partition in pairs if f"{self.base}/{rel}" in kept]


# Decoded tables are written to the local cache by one background thread, so a first
# read returns as soon as the table is decoded (the write costs about as much as the
# decode). Python joins the thread at exit, so a started write always finishes.
_writer: ThreadPoolExecutor | None = None
_writes: dict[Path, Future[None]] = {}
_writes_lock = threading.Lock()


def _write_soon(disk: DiskCache, path: Path, table: pa.Table, etag: str) -> None:
    global _writer

    def write() -> None:
        try:
            disk.save(path, lambda tmp: _write_ipc(table, tmp), etag)
        except Exception as exc:  # a cache write must never break a read
            logger.warning("could not keep %s in the local cache: %s", path, exc)

    with _writes_lock:
        if _writer is None:
            _writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="biodata-cache-writer")
        _writes[path] = _writer.submit(write)


def _wait_for_write(path: Path) -> None:
    """Let a pending background write of ``path`` finish, so this read can use it."""
    with _writes_lock:
        pending = _writes.pop(path, None)
        for done in [p for p, future in _writes.items() if future.done()]:
            del _writes[done]
    if pending is not None:
        pending.result()


def _wait_for_writes() -> None:
    """Let every pending background write finish."""
    with _writes_lock:
        pending = list(_writes.values())
        _writes.clear()
    for future in pending:
        future.result()


def _expression(filters: Filters) -> pc.Expression:
    if isinstance(filters, pc.Expression):
        return filters
    return pq.filters_to_expression(filters)


def _check_columns(schema: pa.Schema, columns: Sequence[str], table: str) -> None:
    if isinstance(columns, str):
        raise TypeError(f"columns must be a list of names, not the string {columns!r}")
    unknown = [c for c in columns if c not in schema.names]
    if unknown:
        raise ValueError(
            f"unknown column(s) {', '.join(map(repr, unknown))} for table {table!r}; "
            f"its columns: {', '.join(schema.names)}"
        )


def _project(data: pa.Table, columns: Sequence[str] | None, filters: Filters | None, table: str) -> pa.Table:
    if columns is not None:
        _check_columns(data.schema, columns, table)
    if filters is not None:
        try:
            data = data.filter(_expression(filters))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, ValueError) as exc:
            raise ValueError(f"cannot apply filters {filters!r} to table {table!r}: {exc}") from None
    if columns is not None:
        data = data.select(list(columns))
    return data


def _keep_assets(data: pa.Table, asset_names: str | Iterable[str], table: str, subject: str) -> pa.Table:
    wanted = [asset_names] if isinstance(asset_names, str) else list(dict.fromkeys(asset_names))
    present = set(data.column("asset_name").to_pylist())
    absent = [name for name in wanted if name not in present]
    if absent:
        warnings.warn(
            UnknownAssetsWarning(
                f"asset_names not in {table} of subject_id {subject!r}: {', '.join(map(repr, absent))}"
            ),
            stacklevel=_caller_level(),
        )
    return data.filter(pc.field("asset_name").isin(wanted))


def _caller_level() -> int:
    """``stacklevel`` that points a warning at the first frame outside this package."""
    package = os.path.dirname(os.path.abspath(__file__))
    frame = sys._getframe(1)
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


def _relation_arrow(relation: Any) -> pa.Table:
    method = getattr(relation, "to_arrow_table", None) or relation.fetch_arrow_table
    return method()
