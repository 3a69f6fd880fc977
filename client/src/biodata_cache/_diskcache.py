"""The local on-disk cache of downloaded objects, each kept with the ETag it had.

Layout: ``<cache_dir>/objects/<store>/<bucket>/<key>`` holds an object's bytes
exactly as downloaded (partition files: DuckDB reads them by path), and
``<key>.arrow`` the decoded table as an uncompressed Arrow IPC file (whole tables:
memory-mapped on the next read, so a repeated read neither downloads nor decodes).
Beside each file, ``<file>.etag`` records the ETag and size; a read sends that ETag
as ``If-None-Match`` and uses the file when S3 answers 304.

Files are written to a temporary name and renamed, so a reader in another process
sees a whole file or none. Caching is best effort: a full disk or a read-only
directory only costs the next read a download.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger("biodata_cache")

OBJECTS = "objects"
# Characters Windows refuses in file names; S3 keys of the layout never need them.
_UNSAFE = re.compile(r'[<>:"|?*\\\x00-\x1f]')


def _safe(part: str) -> str:
    part = _UNSAFE.sub("_", part)
    return "_" if part in {".", ".."} else part


class DiskCache:
    """Downloaded objects under ``<directory>/objects``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.base = directory / OBJECTS

    def path(self, store_id: str, key: str, *, decoded: bool = False) -> Path:
        """Where the object ``key`` of ``store_id`` is kept (``decoded``: its Arrow IPC form)."""
        parts = [_safe(p) for p in f"{store_id}/{key}".split("/") if p]
        path = self.base.joinpath(*parts)
        return path.with_name(f"{path.name}.arrow") if decoded else path

    @staticmethod
    def _meta(path: Path) -> Path:
        return path.with_name(f"{path.name}.etag")

    def etag(self, path: Path) -> str | None:
        """The ETag a cached file had when downloaded, or None if it is absent or damaged."""
        try:
            meta = json.loads(self._meta(path).read_text())
            if path.stat().st_size != meta["size"]:
                return None
            return str(meta["etag"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self, path: Path, write: Callable[[Path], object], etag: str) -> bool:
        """Write a file with ``write(tmp_path)`` (its result is ignored) and record its ETag;
        False if that failed."""
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write(tmp)
            size = tmp.stat().st_size
            os.replace(tmp, path)
            meta_tmp = tmp.with_name(f"{tmp.name}.etag")
            meta_tmp.write_text(json.dumps({"etag": etag, "size": size}))
            os.replace(meta_tmp, self._meta(path))
            return True
        except OSError as exc:
            logger.warning("could not keep %s in the local cache: %s", path, exc)
            for leftover in (tmp, tmp.with_name(f"{tmp.name}.etag")):
                try:
                    leftover.unlink(missing_ok=True)
                except OSError:
                    pass
            return False

    def drop(self, path: Path) -> None:
        """Forget one cached file (a damaged one, say)."""
        for item in (self._meta(path), path):
            try:
                item.unlink(missing_ok=True)
            except OSError:
                pass

    def usage(self) -> tuple[int, int]:
        """(files, bytes) held by the cache."""
        files = size = 0
        if self.base.is_dir():
            for item in self.base.rglob("*"):
                if item.is_file() and not item.name.endswith(".etag"):
                    files += 1
                    size += item.stat().st_size
        return files, size

    def clear(self) -> int:
        """Delete every cached object; returns the bytes freed.

        Only ``objects/`` is removed, never the directory itself, in case
        ``BIODATA_CACHE_DIR`` points somewhere that holds other files.
        """
        _, size = self.usage()
        if self.base.is_dir():
            shutil.rmtree(self.base, ignore_errors=True)
        return size
