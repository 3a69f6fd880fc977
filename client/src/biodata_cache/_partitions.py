"""Partitioned tables (``qc/subject_id=<id>/data.pqt``): one partition by key, or all of
them as a table or a remote dataset.

A partition is fetched by key, one GET each, and kept as the parquet file it is (so
``lazy=True`` can hand its path to DuckDB). The listing of a table's files (a few LIST
requests for thousands of partitions) is reused for ``registry_ttl`` seconds, like the
registry; the files' contents never are. An object rewritten since the listing (a
rebuild, or a damaged upload) must be read as it is now: a pyarrow dataset kept across
reads remembers each file's size and parquet footer, so it returned old rows or failed
with an arrow error naming no object. So ``read`` fetches each partition it needs
through the local cache, as ``qc()`` does: one conditional GET each (304 and a
memory-mapped file when unchanged, about the cost of the footer read a remote scan
needs anyway), checked to be a whole parquet file, and an error names the object.
``sql()`` keeps scanning remotely, so a WHERE on the partition key still opens only the
matching files, but on a dataset made afresh for each connection from the kept listing
without file sizes, so every file it opens is read as it is now.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from biodata_cache import layout
from biodata_cache._arrow import (
    FILTER_ERRORS,
    Filters,
    check_columns,
    check_parquet,
    checked_buffer,
    corrupt,
    expression,
    mapped,
    parquet_bytes,
    parquet_file,
    project,
)
from biodata_cache._diskcache import DiskCache
from biodata_cache._storage import FileStore, ObjectMissing, S3Store, relative_key
from biodata_cache.errors import BiodataCacheError, CorruptObjectError, MissingObjectError

if TYPE_CHECKING:
    import pyarrow.dataset as ds

# Partitions of one read fetched at once (boto3 keeps up to 16 connections).
FETCH_THREADS = 16


@dataclass(frozen=True)
class TableRef:
    """Where one table lives under the version folder."""

    name: str
    rel: str  # the file, or for a partitioned table its folder (ending in "/")
    table_folder: str | None = None
    partition_key: str | None = None
    schema: pa.Schema | None = None


@dataclass(frozen=True)
class Listing:
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


class Partitions:
    """The partitioned tables of one version folder: files by key, listings, datasets."""

    def __init__(self, store: FileStore | S3Store, disk: DiskCache, version: str, listing_ttl: float) -> None:
        self._store = store
        self._disk = disk
        self._version = version
        self._ttl = listing_ttl
        self._listings: dict[str, tuple[float, Listing | None]] = {}

    def url(self, rel: str) -> str:
        return self._store.url(rel)

    def rel(self, ref: TableRef, value: str) -> str:
        """The key of one partition relative to the root; ValueError if ``value`` cannot
        name one ("a/b", "")."""
        assert ref.table_folder and ref.partition_key
        return relative_key(layout.partition_key(self._version, ref.table_folder, ref.partition_key, value))

    # -- one partition -----------------------------------------------------------
    def path(self, rel: str, use_cache: bool) -> Path:
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
        check_parquet(fetched.body, self.url(rel))
        body = fetched.body
        if not self._disk.save(path, lambda tmp: tmp.write_bytes(body), fetched.etag):
            raise BiodataCacheError(
                f"could not write {path} (needed to hand {self.url(rel)} to DuckDB); check BIODATA_CACHE_DIR"
            )
        return path

    def table(self, rel: str, use_cache: bool) -> pa.Table:
        """A partition's rows."""
        if isinstance(self._store, FileStore):
            return parquet_file(self._store.local_path(rel), self.url(rel))
        path = self._disk.path(self._store.cache_id, self._store.key(rel))
        etag = self._disk.etag(path) if use_cache else None
        fetched = self._store.get(rel, if_none_match=etag)
        if fetched is None:
            try:
                return parquet_file(path, self.url(rel))
            except (CorruptObjectError, ObjectMissing):
                self._disk.drop(path)
                fetched = self._store.get(rel)
                assert fetched is not None
        data = parquet_bytes(fetched.body, self.url(rel))
        body = fetched.body
        if use_cache:
            self._disk.save(path, lambda tmp: tmp.write_bytes(body), fetched.etag)
        return data

    # -- a whole partitioned table ---------------------------------------------------
    def read(
        self, ref: TableRef, columns: Sequence[str] | None, filters: Filters | None, use_cache: bool
    ) -> pa.Table:
        """Every partition ``filters`` may match, fetched as it is now (see the module)."""
        import pyarrow.dataset as ds

        for attempt in range(2):
            listing = self.listing(ref, refresh=attempt > 0)
            if listing is None:
                if ref.schema is None:
                    raise MissingObjectError(f"{self.url(ref.rel)} holds no partitions")
                return project(ref.schema.empty_table(), columns, filters, ref.name)
            if columns is not None:
                check_columns(listing.schema, columns, ref.name)
            try:  # prunes by the partition expressions alone: no request
                wanted_rows = expression(filters) if filters is not None else None
                chosen = listing.select(wanted_rows)
            except FILTER_ERRORS as exc:
                raise ValueError(f"cannot apply filters {filters!r} to table {ref.name!r}: {exc}") from None
            try:
                sources = self._sources([rel for rel, _ in chosen], use_cache)
            except ObjectMissing as missing:
                if attempt == 0:  # deleted since it was listed: list again
                    continue
                raise MissingObjectError(
                    f"{missing.url} does not exist, although it was just listed in "
                    f"{self.url(ref.rel)} (table {ref.name!r}); try again"
                ) from None
            fmt = ds.ParquetFileFormat()
            fragments = [
                # pyarrow takes a Buffer (read in place, any number of times); the stubs
                # list only paths and file objects.
                fmt.make_fragment(source, partition_expression=partition)  # type: ignore[arg-type]
                for source, (_, partition) in zip(sources, chosen, strict=True)
            ]
            wanted = list(columns) if columns is not None else None
            try:
                return ds.FileSystemDataset(fragments, listing.schema, fmt).to_table(
                    columns=wanted, filter=wanted_rows
                )
            except (pa.ArrowException, OSError) as exc:
                failure: Exception = exc
            # Every footer was whole, so a data page is damaged: find the partition.
            for (rel, _), fragment in zip(chosen, fragments, strict=True):
                try:
                    ds.FileSystemDataset([fragment], listing.schema, fmt).to_table(
                        columns=wanted, filter=wanted_rows
                    )
                except (pa.ArrowException, OSError) as exc:
                    if attempt == 0 and use_cache and not isinstance(self._store, FileStore):
                        # Perhaps only the kept copy is damaged: fetch it afresh once.
                        self._disk.drop(self._disk.path(self._store.cache_id, self._store.key(rel)))
                        break
                    raise corrupt(self.url(rel), exc) from None
            else:
                raise corrupt(self.url(ref.rel), failure)
        raise AssertionError("unreachable")

    def _sources(self, rels: Sequence[str], use_cache: bool) -> list[pa.Buffer]:
        """The current bytes of several partitions, fetched in parallel from S3."""
        if len(rels) <= 1 or isinstance(self._store, FileStore):
            return [self._source(rel, use_cache) for rel in rels]
        with ThreadPoolExecutor(
            max_workers=min(FETCH_THREADS, len(rels)), thread_name_prefix="biodata-cache-fetch"
        ) as pool:
            futures = [pool.submit(self._source, rel, use_cache) for rel in rels]
            try:
                return [future.result() for future in futures]
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    def _source(self, rel: str, use_cache: bool) -> pa.Buffer:
        """A partition's bytes as they are now, checked to hold a whole parquet footer.

        A local root's file is memory-mapped in place. From S3 the kept copy is used
        when S3 confirms its ETag (304); otherwise the object is downloaded (and kept,
        with ``use_cache``). Raises ``ObjectMissing`` or ``CorruptObjectError`` naming
        the object.
        """
        url = self.url(rel)
        if isinstance(self._store, FileStore):
            return checked_buffer(mapped(self._store.local_path(rel), url), url)
        path = self._disk.path(self._store.cache_id, self._store.key(rel))
        etag = self._disk.etag(path) if use_cache else None
        fetched = self._store.get(rel, if_none_match=etag)
        if fetched is None:
            try:
                return checked_buffer(mapped(path, url), url)
            except (CorruptObjectError, ObjectMissing):  # the kept copy, not the object
                self._disk.drop(path)
                fetched = self._store.get(rel)
                assert fetched is not None
        body = fetched.body
        check_parquet(body, url)
        if use_cache:
            self._disk.save(path, lambda tmp: tmp.write_bytes(body), fetched.etag)
        return pa.py_buffer(body)

    # -- listings --------------------------------------------------------------------
    def dataset(self, ref: TableRef) -> ds.FileSystemDataset | None:
        """A new remote dataset over the table's files (None if it has no partitions)."""
        listing = self.listing(ref)
        return None if listing is None else listing.remote()

    def listing(self, ref: TableRef, *, refresh: bool = False) -> Listing | None:
        """The files of a partitioned table, listed at most every ``listing_ttl`` seconds."""
        now = time.monotonic()
        listed = self._listings.get(ref.name)
        if not refresh and listed is not None and now - listed[0] < self._ttl:
            return listed[1]
        listing = self._discover(ref)
        self._listings[ref.name] = (now, listing)
        return listing

    def damaged(self, names: Iterable[str], message: str) -> str | None:
        """The partition file an error message names (pyarrow failed to read it while
        DuckDB scanned the table's dataset), as a key relative to the root."""
        for name in names:
            listed = self._listings.get(name)
            listing = listed[1] if listed is not None else None
            if listing is None:
                continue
            for rel in listing.rels:
                if f"{listing.base}/{rel}" in message:
                    return rel
        return None

    def _discover(self, ref: TableRef) -> Listing | None:
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
        return Listing(
            filesystem=filesystem,
            base=base,
            rels=tuple(f.path[len(base) + 1 :] for f in fragments),
            partitions=tuple(f.partition_expression for f in fragments),
            schema=discovered.schema,
        )
