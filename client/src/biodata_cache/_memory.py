"""Whole tables kept decoded, so a repeated read neither downloads nor decodes.

Two levels: in this process, the arrow tables recently read (an LRU bounded by their
bytes, ``cachetools.LRUCache``); across processes, an Arrow IPC file beside the
download in the local cache, memory-mapped by a later read. The IPC file is written
by one background thread, so a first read returns as soon as its table is decoded
(the write costs about as much as the decode). Either level is used only once S3
confirms the ETag it was kept with (one conditional GET, answered 304).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
from cachetools import LRUCache

from biodata_cache._arrow import parquet_bytes, parquet_file
from biodata_cache._diskcache import DiskCache
from biodata_cache._storage import FileStore, S3Store

logger = logging.getLogger("biodata_cache")

# Bytes of decoded tables this process keeps.
MEMORY_LIMIT = 512 << 20


def _entry_bytes(entry: tuple[str, pa.Table]) -> int:
    return int(entry[1].nbytes)


class RecentTables:
    """Decoded tables recently read in this process, by cache path, with their ETag.

    A repeated read still revalidates with S3 (one conditional GET) but then skips
    even the memory-mapping. Arrow tables are immutable and the DataFrames made from
    them share their buffers, so holding them costs little beyond what callers hold.
    ``LRUCache`` is not thread-safe, hence the lock.
    """

    def __init__(self, limit_bytes: int) -> None:
        self.limit = limit_bytes
        self._items: LRUCache[Path, tuple[str, pa.Table]] = LRUCache(
            maxsize=limit_bytes, getsizeof=_entry_bytes
        )
        self._lock = threading.Lock()

    def get(self, path: Path) -> tuple[str, pa.Table] | None:
        with self._lock:
            return self._items.get(path)

    def put(self, path: Path, etag: str, table: pa.Table) -> None:
        entry = (etag, table)
        with self._lock:
            self._items.pop(path, None)
            if _entry_bytes(entry) > self.limit:  # LRUCache would refuse it (ValueError)
                return
            self._items[path] = entry  # evicts the least recently used until it fits

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


MEMORY = RecentTables(MEMORY_LIMIT)


def read_ipc(path: Path) -> pa.Table | None:
    """A memory-mapped decoded table, or None if the file is absent or damaged."""
    try:
        with pa.memory_map(str(path), "r") as source:
            return pa.ipc.open_file(source).read_all()
    except (pa.ArrowException, OSError):
        return None


def write_ipc(table: pa.Table, path: Path) -> None:
    with pa.OSFile(str(path), "wb") as sink:
        with pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)


# Python joins the writer thread at exit, so a started write always finishes.
_writer: ThreadPoolExecutor | None = None
_writes: dict[Path, Future[None]] = {}
_writes_lock = threading.Lock()


def write_soon(disk: DiskCache, path: Path, table: pa.Table, etag: str) -> None:
    """Keep ``table`` as the IPC file ``path``, in the background."""
    global _writer

    def write() -> None:
        try:
            disk.save(path, lambda tmp: write_ipc(table, tmp), etag)
        except Exception as exc:  # a cache write must never break a read
            logger.warning("could not keep %s in the local cache: %s", path, exc)

    with _writes_lock:
        if _writer is None:
            _writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="biodata-cache-writer")
        _writes[path] = _writer.submit(write)


def wait_for_write(path: Path) -> None:
    """Let a pending background write of ``path`` finish, so this read can use it."""
    with _writes_lock:
        pending = _writes.pop(path, None)
        for done in [p for p, future in _writes.items() if future.done()]:
            del _writes[done]
    if pending is not None:
        pending.result()


def wait_for_writes() -> None:
    """Let every pending background write finish."""
    with _writes_lock:
        pending = list(_writes.values())
        _writes.clear()
    for future in pending:
        future.result()


def whole_table(store: FileStore | S3Store, disk: DiskCache, rel: str, use_cache: bool) -> pa.Table:
    """A non-partitioned table (or a custom one), through the decoded caches.

    Raises ``ObjectMissing`` if the object does not exist, ``CorruptObjectError`` if it
    is not a readable parquet file.
    """
    url = store.url(rel)
    if isinstance(store, FileStore):
        return parquet_file(store.local_path(rel), url)
    path = disk.path(store.cache_id, store.key(rel), decoded=True)
    remembered = MEMORY.get(path) if use_cache else None
    etag = None
    if remembered is not None:
        etag = remembered[0]
    elif use_cache:
        wait_for_write(path)
        etag = disk.etag(path)
    fetched = store.get(rel, if_none_match=etag)
    if fetched is None:
        if remembered is not None:
            return remembered[1]
        cached = read_ipc(path)
        if cached is not None:
            MEMORY.put(path, str(etag), cached)
            return cached
        disk.drop(path)
        fetched = store.get(rel)
        assert fetched is not None
    data = parquet_bytes(fetched.body, url)
    if use_cache:
        MEMORY.put(path, fetched.etag, data)
        write_soon(disk, path, data, fetched.etag)
    return data
