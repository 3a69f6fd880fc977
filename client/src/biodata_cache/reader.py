"""``Cache``: reads the tables of one cache root and version into pandas or DuckDB.

Reading never builds anything; the Lambdas do that. A table read costs one GET the
first time and one conditional GET (``If-None-Match``, answered 304) afterwards.
This module is the façade: versions, the registry, run reports, which table is where,
and the errors that explain a missing object (which table, which version, what exists
instead). The work is done by:

- ``_memory``: non-partitioned tables kept decoded, in this process (an LRU of arrow
  tables) and in the local cache (Arrow IPC files, written in the background);
- ``_partitions``: partitioned tables (``qc/subject_id=<id>/data.pqt``), one partition
  by key or all of them, and the listing of their files;
- ``_duckdb``: DuckDB connections in which the tables are views, and SQL;
- ``_arrow``: decoding, checking and projecting parquet; pandas conversion.

Paths come from ``layout``.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from biodata_cache import _duckdb, _memory, catalog, layout
from biodata_cache._arrow import Filters, keep_assets, parse_json, project, to_pandas
from biodata_cache._diskcache import DiskCache
from biodata_cache._partitions import Partitions, TableRef
from biodata_cache._storage import FileStore, ObjectMissing, S3Store, make_store, relative_key
from biodata_cache.catalog import UnknownTableError
from biodata_cache.config import ENV_VERSION, CacheConfig, resolve_config
from biodata_cache.errors import (
    BiodataCacheError,
    CorruptObjectError,
    MissingObjectError,
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

# Names other modules import from here (api, cli, tests, benchmarks).
__all__ = ["Cache", "Filters", "to_pandas"]

_CUSTOM_PARQUET: dict[str, Any] = {"compression": "zstd"}


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
        if config is None:
            config = resolve_config(
                bucket=bucket,
                prefix=prefix,
                version=version,
                root=root,
                endpoint_url=endpoint_url,
                anonymous=anonymous,
                cache_dir=cache_dir,
                use_cache=use_cache,
                registry_ttl=registry_ttl,
                max_attempts=max_attempts,
            )
        elif any(
            option is not None
            for option in (
                bucket,
                prefix,
                version,
                root,
                endpoint_url,
                anonymous,
                cache_dir,
                use_cache,
                registry_ttl,
                max_attempts,
            )
        ):
            raise TypeError("pass either config= or keyword options, not both")
        self.config = config
        self._store = _store if _store is not None else make_store(config)
        self._disk = DiskCache(config.cache_dir)
        self._lock = threading.Lock()
        self._registry: tuple[float, CacheRegistry] | None = None
        self._partitions = Partitions(self._store, self._disk, config.folder, config.registry_ttl)
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
            document = parse_json(fetched.body, self.url(rel))
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
        document = parse_json(fetched.body, self.url(rel))
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
        report = parse_json(fetched.body, self.url(rel))
        if not isinstance(report, dict):
            raise CorruptObjectError(f"{self.url(rel)} is not a JSON object")
        return report

    # -- tables ------------------------------------------------------------------
    def _ref(self, name: str) -> TableRef:
        spec = catalog.TABLES.get(name)
        if spec is not None:
            schema = None if spec.open_schema else spec.schema
            if spec.partitioned:
                folder = spec.folder or spec.name
                rel = relative_key(layout.partition_folder_key(self.version, folder))
                return TableRef(name, rel, folder, spec.partition_key, schema)
            return TableRef(name, relative_key(layout.table_key(self.version, name)), schema=schema)
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
            return TableRef(name, rel, inner.strip("/"), entry.partition_key or None)
        return TableRef(name, rel)

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
            return self._partitions.read(ref, columns, filters, self._use_cache(use_cache))
        try:
            data = _memory.whole_table(self._store, self._disk, ref.rel, self._use_cache(use_cache))
        except ObjectMissing as missing:
            raise self._table_missing(table, missing.url) from None
        return project(data, columns, filters, table)

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
            rel = self._partitions.rel(ref, value)
        except ValueError:  # a value that cannot name a partition ("a/b", "") has none
            raise ObjectMissing(f"{self.url(ref.rel)}{ref.partition_key}={value}") from None
        if lazy:
            return str(self._partitions.path(rel, self._use_cache(use_cache)))
        return self._partitions.table(rel, self._use_cache(use_cache))

    def _empty(self, table: str, columns: Sequence[str] | None) -> pa.Table:
        return project(catalog.get_spec(table).schema.empty_table(), columns, None, table)

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
            found = keep_assets(found, asset_names, table, subject)
        return to_pandas(project(found, columns, filters, table))

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
        return to_pandas(project(found, columns, filters, "platform_qc"))

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
        return self._partitions.dataset(ref)

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
            data = _memory.whole_table(self._store, self._disk, rel, self._use_cache(use_cache))
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
        return _duckdb.connect(self, tables, use_cache)

    def tables_in(self, query: str) -> list[str]:
        """Cache tables a SQL query refers to."""
        return _duckdb.tables_in(self, query)

    def sql(
        self, query: str, *, lazy: bool = False, use_cache: bool | None = None
    ) -> pd.DataFrame | duckdb.DuckDBPyRelation | None:
        """Run DuckDB SQL over the cache tables; see ``biodata_cache.sql``."""
        return _duckdb.sql(self, query, lazy, use_cache)

    # -- local cache -------------------------------------------------------------
    def clear_cache(self) -> int:
        """Delete every file of the local cache directory; returns the bytes freed."""
        _memory.wait_for_writes()
        _memory.MEMORY.clear()
        return self._disk.clear()

    def cache_usage(self) -> tuple[int, int]:
        """(files, bytes) in the local cache directory, once pending writes are done."""
        _memory.wait_for_writes()
        return self._disk.usage()
