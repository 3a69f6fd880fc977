"""Errors the client raises. Every message names what was asked for and what exists.

Only the standard library and the catalog are imported here, so the CLI can catch
these without loading pandas.
"""

from __future__ import annotations

from biodata_cache.catalog import UnknownTableError

__all__ = [
    "AccessDeniedError",
    "BiodataCacheError",
    "CorruptObjectError",
    "EndpointUnreachableError",
    "MissingObjectError",
    "RebuildError",
    "UnknownAssetsWarning",
    "UnknownCustomTableError",
    "UnknownPlatformError",
    "UnknownSubjectError",
    "UnknownTableError",
    "VersionNotFoundError",
]


class BiodataCacheError(Exception):
    """Base class of the client's errors (except UnknownTableError, a KeyError)."""


class VersionNotFoundError(BiodataCacheError, LookupError):
    """The requested cache version folder does not exist; the message lists those that do."""


class MissingObjectError(BiodataCacheError, FileNotFoundError):
    """An object the cache should hold (a table file, the registry, a report) is absent."""

    def __str__(self) -> str:  # FileNotFoundError would print "[Errno None]" otherwise
        return str(self.args[0])


class UnknownSubjectError(BiodataCacheError, LookupError):
    """A subject_id with no partition and not listed in unique_subject_ids."""


class UnknownPlatformError(BiodataCacheError, ValueError):
    """A platform outside ``catalog.PLATFORMS``."""


class UnknownCustomTableError(UnknownTableError):
    """A custom table name that was never written."""


class AccessDeniedError(BiodataCacheError, PermissionError):
    """S3 refused the request; the message says which credentials were used and what to do."""

    def __str__(self) -> str:
        return str(self.args[0])


class EndpointUnreachableError(BiodataCacheError, ConnectionError):
    """The S3 endpoint could not be reached at all."""

    def __str__(self) -> str:
        return str(self.args[0])


class CorruptObjectError(BiodataCacheError, ValueError):
    """An object that is not a readable parquet file (truncated or corrupt); no data is returned."""


class RebuildError(BiodataCacheError):
    """A manual rebuild request that the dispatcher Lambda did not accept."""


class UnknownAssetsWarning(UserWarning):
    """Some ``asset_names`` passed to ``qc()``/``qc_tag_status()`` are not in the partition."""
