"""The one-line functions: ``from biodata_cache import asset_basics``.

Each catalog table has one (``TABLE_FUNCTIONS``): written here by hand where it needs
more (``HAND_WRITTEN``), otherwise made from its spec by ``table_function``.

Each uses a default ``Cache`` built from the environment on first use
(``configure()`` replaces it). Options have the same name everywhere:
``columns`` and ``filters`` choose columns and rows, ``version`` reads another
cache version (``"1.0"`` or ``"bdc-v1.0"``), ``use_cache=False`` bypasses the
local cache for one call, ``lazy=True`` returns a file path instead of data.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from biodata_cache.catalog import ALL_TABLES, TableSpec
from biodata_cache.reader import Cache, Filters
from biodata_cache.registry import CacheRegistry

if TYPE_CHECKING:
    import duckdb
    import pandas as pd
    import pyarrow as pa

_default: Cache | None = None
_default_lock = threading.Lock()


def configure(**options: Any) -> Cache:
    """Replace the reader the module functions use.

    Takes the keyword options of ``Cache`` (``bucket``, ``prefix``, ``version``,
    ``root``, ``endpoint_url``, ``anonymous``, ``cache_dir``, ``use_cache``, ...);
    unset ones come from the environment. ``configure()`` with no options re-reads
    the environment.
    """
    global _default
    with _default_lock:
        _default = Cache(**options)
        return _default


def get_cache(version: str | None = None) -> Cache:
    """The reader the module functions use (for ``version``, if given)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Cache()
        cache = _default
    return cache.with_version(version)


# -- the tables' functions -------------------------------------------------------
def _read(
    table: str,
    columns: Sequence[str] | None,
    filters: Filters | None,
    version: str | None,
    use_cache: bool | None,
) -> pd.DataFrame:
    return get_cache(version).read(table, columns, filters, use_cache=use_cache)


def asset_basics(
    columns: Sequence[str] | None = None,
    filters: Filters | None = None,
    *,
    version: str | None = None,
    use_cache: bool | None = None,
) -> pd.DataFrame:
    """Commonly used asset metadata, one row per data asset.

    Args:
        columns: Columns to return (default all; see ``catalog.ASSET_BASICS``).
        filters: Rows to keep, as pyarrow DNF (``[("project_name", "=", "X")]``) or an
            Expression (``pyarrow.compute.field("age") > 90``).
        version: Cache version to read (default: this package's, or
            ``BIODATA_CACHE_VERSION``).
        use_cache: False to download afresh without touching the local cache.

    Returns:
        A DataFrame; list columns (``modalities``, ``experimenters``...) hold Python lists.
    """
    return _read("asset_basics", columns, filters, version, use_cache)


def table_function(spec: TableSpec) -> Callable[..., Any]:
    """The module function of a catalog table, named and documented from its spec.

    ``returns="values"``: the sorted values of its one column as a list; otherwise a
    DataFrame (a partitioned table: all partitions, pruned by ``filters``).
    """
    name = spec.name
    summary = spec.summary or spec.description
    if spec.returns == "values":

        def values(*, version: str | None = None, use_cache: bool | None = None) -> list[str]:
            return get_cache(version).unique(name, use_cache=use_cache)

        values.__name__ = values.__qualname__ = spec.function_name
        values.__doc__ = f"{summary}, sorted."
        return values

    def read(
        columns: Sequence[str] | None = None,
        filters: Filters | None = None,
        *,
        version: str | None = None,
        use_cache: bool | None = None,
    ) -> pd.DataFrame:
        return _read(name, columns, filters, version, use_cache)

    read.__name__ = read.__qualname__ = spec.function_name
    read.__doc__ = (
        f"{summary}.\n\nColumns: {', '.join(spec.column_names)}. Arguments as for ``asset_basics``."
    )
    return read


def record_consistency(
    check: str | None = None,
    failed_only: bool = False,
    *,
    columns: Sequence[str] | None = None,
    version: str | None = None,
    use_cache: bool | None = None,
) -> pd.DataFrame:
    """Record consistency results, one row per checked record and check.

    Args:
        check: Keep one check's rows (a ``check_key`` of ``record_consistency_checks()``).
        failed_only: Keep only the records that failed.
        columns, version, use_cache: as for ``asset_basics``.

    Raises:
        ValueError: ``check`` is not a check of this cache version (the message lists them).
    """
    filters: list[tuple[str, str, str]] = []
    if check is not None:
        known = _read("record_consistency_checks", ["check_key"], None, version, use_cache)["check_key"]
        if check not in set(known):
            raise ValueError(f"unknown check {check!r}; checks: {', '.join(sorted(known))}")
        filters.append(("check_key", "=", check))
    if failed_only:
        filters.append(("result", "=", "fail"))
    return _read("record_consistency_results", columns, filters or None, version, use_cache)


def read_table(
    table: str,
    columns: Sequence[str] | None = None,
    filters: Filters | None = None,
    *,
    version: str | None = None,
    use_cache: bool | None = None,
) -> pd.DataFrame:
    """Any table by name (a partitioned one: all partitions, pruned by ``filters``).

    Raises:
        UnknownTableError: the name is neither in the catalog nor in the registry.
    """
    return _read(table, columns, filters, version, use_cache)


# -- partitioned tables ----------------------------------------------------------
def qc(
    subject_id: str | int,
    asset_names: str | Iterable[str] | None = None,
    lazy: bool = False,
    *,
    columns: Sequence[str] | None = None,
    filters: Filters | None = None,
    version: str | None = None,
    use_cache: bool | None = None,
) -> pd.DataFrame | str:
    """Quality-control metrics of one subject, one row per metric (one GET of data).

    Args:
        subject_id: The subject (an int is read as its text).
        asset_names: Keep only these assets' metrics. Names that are not in the
            subject's partition are reported with an ``UnknownAssetsWarning``.
        lazy: Return the path of the partition's parquet file in the local cache
            (downloaded if needed) instead of loading it, for DuckDB:
            ``duckdb.sql(f"SELECT * FROM read_parquet('{qc(sid, lazy=True)}')")``.
        columns, filters, version, use_cache: as for ``asset_basics``.

    Returns:
        A DataFrame, or with ``lazy`` a local file path. A known subject without QC
        metrics gives an empty DataFrame (with ``lazy``: MissingObjectError).

    Raises:
        UnknownSubjectError: the subject has no partition and is not in unique_subject_ids.
        ValueError: ``asset_names`` together with ``lazy``.
    """
    return get_cache(version).qc(
        subject_id, asset_names, lazy, columns=columns, filters=filters, use_cache=use_cache
    )


def qc_tag_status(
    subject_id: str | int,
    asset_names: str | Iterable[str] | None = None,
    lazy: bool = False,
    *,
    columns: Sequence[str] | None = None,
    filters: Filters | None = None,
    version: str | None = None,
    use_cache: bool | None = None,
) -> pd.DataFrame | str:
    """QC status per tag of one subject's assets; arguments and errors as for ``qc``."""
    return get_cache(version).qc_tag_status(
        subject_id, asset_names, lazy, columns=columns, filters=filters, use_cache=use_cache
    )


def platform_qc(
    platform: str,
    *,
    lazy: bool = False,
    columns: Sequence[str] | None = None,
    filters: Filters | None = None,
    version: str | None = None,
    use_cache: bool | None = None,
) -> pd.DataFrame | str:
    """Tag-level QC statuses of one platform, one row per asset/tag.

    Args:
        platform: One of ``catalog.PLATFORMS``: spim, fib, vr, dynamic_foraging, slap2.
        lazy, columns, filters, version, use_cache: as for ``qc``.

    Raises:
        UnknownPlatformError: the platform is not one of ``catalog.PLATFORMS``.
    """
    return get_cache(version).platform_qc(
        platform, lazy=lazy, columns=columns, filters=filters, use_cache=use_cache
    )


# -- lookups ---------------------------------------------------------------------
def raw_to_derived(
    asset_name: str | Iterable[str],
    latest: bool = False,
    modality: str | None = None,
    *,
    version: str | None = None,
    use_cache: bool | None = None,
) -> list[str]:
    """Names of the derived assets made from a raw asset (or from several).

    Args:
        asset_name: A raw asset name, or several. With several the result is one flat
            list: each input's derived assets in input order, without repeats.
        latest: Keep only the most recent derived asset (greatest processing time)
            per pipeline for each raw asset.
        modality: Keep derived assets with a modality abbreviation containing this
            text, case-insensitively (``"ecephys"``); applied before ``latest``.
        version, use_cache: as for ``asset_basics``.

    Returns:
        Derived asset names, oldest first for each raw asset; empty if there are none.
    """
    return get_cache(version).raw_to_derived(asset_name, latest, modality, use_cache=use_cache)


def custom(
    name: str,
    df: pd.DataFrame | pa.Table | None = None,
    *,
    version: str | None = None,
    use_cache: bool | None = None,
) -> pd.DataFrame | None:
    """Store a DataFrame as a custom table (with ``df``), or read one back (without).

    Custom tables live under ``custom/<name>.pqt`` of the version folder, so they
    can never overwrite a built table. Writing needs AWS credentials that may write
    to the bucket.

    Raises:
        UnknownCustomTableError: reading a name that was never written (the message
            lists the custom tables that exist).
        AccessDeniedError: writing without suitable credentials.
        ValueError: a name that is not letters, digits, ``_``, ``-`` and ``.``.
    """
    return get_cache(version).custom(name, df, use_cache=use_cache)


def get_cache_registry(*, version: str | None = None) -> CacheRegistry:
    """The tables of a cache version, as listed in its ``cache_registry.json``.

    Returns:
        A ``CacheRegistry``: ``.tables`` is a list of entries with ``name``,
        ``description``, ``location``, ``partitioned``, ``partition_key``, ``type``,
        ``columns`` (each with ``name`` and ``description``), ``rows``, ``status`` and
        ``last_built`` (the shape 0.x returned); ``.to_frame()`` gives a DataFrame
        with one row per table and ``.raw`` the JSON document.
    """
    return get_cache(version).registry()


def list_versions() -> list[str]:
    """Cache versions available at the root (from ``cache_versions.json``), oldest first."""
    return get_cache().list_versions()


def run_report(run_id: str | None = None, *, version: str | None = None) -> dict[str, Any]:
    """The report of a sync run (default: the latest one that finished)."""
    return get_cache(version).run_report(run_id)


# -- DuckDB ----------------------------------------------------------------------
def sql(
    query: str,
    *,
    lazy: bool = False,
    version: str | None = None,
    use_cache: bool | None = None,
) -> pd.DataFrame | duckdb.DuckDBPyRelation | None:
    """Run DuckDB SQL in which every cache table is a view.

    Only the tables the query names are fetched. Filters on a partitioned table's
    key (``WHERE subject_id = '...'``), also through joins, read only the matching
    partitions.

    Args:
        query: DuckDB SQL, such as ``SELECT name, status FROM asset_basics JOIN
            quality_control USING (subject_id) WHERE subject_id = '123456'``.
        lazy: Return the DuckDB relation instead of a DataFrame.
        version, use_cache: as for ``asset_basics``.
    """
    return get_cache(version).sql(query, lazy=lazy, use_cache=use_cache)


def connect(
    tables: Iterable[str] | None = None,
    *,
    version: str | None = None,
    use_cache: bool | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with cache tables as views (default: all of the registry)."""
    return get_cache(version).connect(tables, use_cache=use_cache)


def clear_cache() -> int:
    """Delete the local cache of downloaded files; returns the bytes freed."""
    return get_cache().clear_cache()


def cache_dir() -> Path:
    """The local cache directory in use."""
    return get_cache().config.cache_dir


# -- one function per catalog table --------------------------------------------------
# Tables whose function is written above by hand (it takes a partition value, or its
# docstring is the one the others refer to); every other table's is ``table_function``'s.
HAND_WRITTEN: dict[str, Callable[..., Any]] = {
    "asset_basics": asset_basics,
    "qc": qc,
    "qc_tag_status": qc_tag_status,
    "platform_qc": platform_qc,
}
_DEFINED_HERE = frozenset(globals())


def table_functions(specs: Iterable[TableSpec]) -> dict[str, Callable[..., Any]]:
    """Function name -> function of each table, hand-written or made from its spec.

    Raises:
        ValueError: a table's function would replace another function of this module.
    """
    functions: dict[str, Callable[..., Any]] = {}
    for spec in specs:
        name = spec.function_name
        if name in _DEFINED_HERE and name not in HAND_WRITTEN:
            raise ValueError(f"table {spec.name}: its function {name} would replace biodata_cache.api.{name}")
        functions[name] = HAND_WRITTEN.get(name) or table_function(spec)
    return functions


# In catalog order; the package exports each by its name.
TABLE_FUNCTIONS = table_functions(ALL_TABLES)
globals().update(TABLE_FUNCTIONS)
