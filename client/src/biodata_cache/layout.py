"""Where the cache lives in S3: the public layout contract, defined once.

Readers outside this project build URLs from these rules, so every path the sync
code writes and the client reads comes from the functions here. Nothing in this
module imports more than the standard library and ``semver``: the Lambdas import it
without pandas or duckdb.
"""

from __future__ import annotations

import re
from typing import Protocol

import semver

from biodata_cache._version import __version__

DEFAULT_BUCKET = "allen-data-views"
ROOT_PREFIX = "data-asset-cache"
VERSIONS_FILE = "cache_versions.json"
REGISTRY_FILE = "cache_registry.json"
FOLDER_PREFIX = "bdc-v"
PARTITION_FILE = "data.pqt"
CUSTOM_FOLDER = "custom"
# Bookkeeping that is not a table: run reports and incremental build state.
RUNS_FOLDER = "_runs"
STATE_FOLDER = "_state"

_FOLDER_RE = re.compile(r"^bdc-v(\d+)\.(\d+)$")
_CUSTOM_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
# A partition value (subject id, platform) is one key segment that needs no encoding:
# letters, digits and "_.+-", at most 128, not "." or "..". Values from records that are
# not are skipped and counted as malformed, never written as extra path levels.
_PARTITION_VALUE_RE = re.compile(r"^[A-Za-z0-9_.+-]{1,128}$")


class TablePaths(Protocol):
    """What the layout needs of a table's spec (``biodata_cache.catalog.TableSpec``)."""

    @property
    def name(self) -> str: ...

    @property
    def folder(self) -> str | None: ...

    @property
    def partition_key(self) -> str | None: ...

    @property
    def partitioned(self) -> bool: ...


class VersionError(ValueError):
    """A cache version that is not of the form MAJOR.MINOR (or a bdc-v folder name)."""


def package_folder() -> str:
    """The version folder this package writes and reads by default (``bdc-v1.0``)."""
    return version_folder(__version__)


def version_folder(version: str) -> str:
    """``bdc-vMAJOR.MINOR`` for a version given as ``1.0``, ``1.0.3`` or ``bdc-v1.0``."""
    text = version.strip()
    match = _FOLDER_RE.match(text)
    if match:
        return text
    text = text.removeprefix("v")
    parts = text.split(".")
    if len(parts) == 2:
        text = f"{text}.0"
    try:
        parsed = semver.Version.parse(text)
    except (ValueError, TypeError) as exc:
        raise VersionError(
            f"not a cache version: {version!r} (expected MAJOR.MINOR such as '1.0' "
            f"or a folder name such as 'bdc-v1.0')"
        ) from exc
    return f"{FOLDER_PREFIX}{parsed.major}.{parsed.minor}"


def folder_sort_key(folder: str) -> semver.Version:
    """Sort key comparing version folders as semver (``bdc-v0.9`` < ``bdc-v0.10``)."""
    match = _FOLDER_RE.match(folder)
    if not match:
        raise VersionError(f"not a cache version folder: {folder!r}")
    return semver.Version(int(match.group(1)), int(match.group(2)), 0)


def is_version_folder(name: str) -> bool:
    """True for names of the form ``bdc-vMAJOR.MINOR``."""
    return bool(_FOLDER_RE.match(name))


def versions_key() -> str:
    """Key of the JSON array that lists every version folder, oldest first."""
    return f"{ROOT_PREFIX}/{VERSIONS_FILE}"


def folder_prefix(folder: str) -> str:
    """Key prefix of one version folder, ending in ``/``."""
    return f"{ROOT_PREFIX}/{folder}/"


def registry_key(folder: str) -> str:
    """Key of a version's ``cache_registry.json``."""
    return f"{folder_prefix(folder)}{REGISTRY_FILE}"


def table_key(folder: str, table: str) -> str:
    """Key of a non-partitioned table's parquet file."""
    return f"{folder_prefix(folder)}{table}.pqt"


def columns_key(folder: str, table: str) -> str:
    """Key of the ``{"columns": [...]}`` file beside each table."""
    return f"{folder_prefix(folder)}{table}.json"


def partition_folder_key(folder: str, table_folder: str) -> str:
    """Key prefix of a partitioned table's folder, ending in ``/``."""
    return f"{folder_prefix(folder)}{table_folder}/"


def table_folder(spec: TablePaths) -> str:
    """The folder of a partitioned table: its spec's ``folder``, else its name."""
    return spec.folder or spec.name


def table_folder_key(folder: str, spec: TablePaths) -> str:
    """Key prefix of a partitioned table's folder, ending in ``/``."""
    return partition_folder_key(folder, table_folder(spec))


def table_partition_key(folder: str, spec: TablePaths, value: str) -> str:
    """Key of the file of one partition (one value of its ``partition_key``) of a table."""
    return partition_key(folder, table_folder(spec), spec.partition_key or "", value)


def table_url(bucket: str, folder: str, spec: TablePaths) -> str:
    """A table's ``location`` in the registry: its folder if partitioned, else its file."""
    key = table_folder_key(folder, spec) if spec.partitioned else table_key(folder, spec.name)
    return s3_url(bucket, key)


def is_partition_value(value: str) -> bool:
    """Whether ``value`` can name a partition folder as it is (see _PARTITION_VALUE_RE)."""
    return bool(_PARTITION_VALUE_RE.match(value)) and value not in {".", ".."}


def partition_key(folder: str, table_folder: str, key: str, value: str) -> str:
    """Key of one hive partition's file: ``<table_folder>/<key>=<value>/data.pqt``."""
    if not is_partition_value(value):
        raise ValueError(f"unusable partition value {value!r} for {table_folder}/{key}=")
    return f"{partition_folder_key(folder, table_folder)}{key}={value}/{PARTITION_FILE}"


def custom_key(folder: str, name: str) -> str:
    """Key of a user table written with ``custom()``; always under ``custom/``."""
    check_custom_name(name)
    return f"{folder_prefix(folder)}{CUSTOM_FOLDER}/{name}.pqt"


def check_custom_name(name: str) -> str:
    """Return ``name`` if it is usable as a custom table name, else raise ValueError."""
    if not _CUSTOM_NAME_RE.match(name) or ".." in name:
        raise ValueError(
            f"bad custom table name {name!r}: use letters, digits, '_', '-', '.' "
            "(at most 128 characters, not starting with a symbol)"
        )
    return name


def run_report_key(folder: str, run_id: str) -> str:
    """Key of the report the finalizer writes for one run."""
    return f"{folder_prefix(folder)}{RUNS_FOLDER}/{run_id}.json"


def latest_run_report_key(folder: str) -> str:
    """Key of a copy of the most recent run report of a version."""
    return f"{folder_prefix(folder)}{RUNS_FOLDER}/latest.json"


def state_key(folder: str, table: str) -> str:
    """Key of a table's incremental build state (rows keyed by record id)."""
    return f"{folder_prefix(folder)}{STATE_FOLDER}/{table}.pqt"


def sources_read_key(folder: str, table: str) -> str:
    """Key of when a table last read its sources in other buckets, and from what inputs."""
    return f"{folder_prefix(folder)}{STATE_FOLDER}/{table}.sources.json"


def chunk_state_prefix(folder: str, table: str, run_id: str) -> str:
    """Where one run keeps a chunked table's plan and its chunks' results until the table
    is finished (deleted then), ending in ``/``."""
    return f"{folder_prefix(folder)}{STATE_FOLDER}/{table}/{run_id}/"


def chunk_plan_key(folder: str, table: str, run_id: str) -> str:
    """Key of a chunked table's plan in one run."""
    return f"{chunk_state_prefix(folder, table, run_id)}plan.json"


def chunk_result_key(folder: str, table: str, run_id: str, index: int) -> str:
    """Key of what one chunk of a chunked table left for the table's finish step."""
    return f"{chunk_state_prefix(folder, table, run_id)}chunk-{index:05d}.pqt"


def s3_url(bucket: str, key: str) -> str:
    """``s3://bucket/key``."""
    return f"s3://{bucket}/{key}"
