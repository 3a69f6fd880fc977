"""biodata-cache: AIND data-asset metadata tables, read from S3 into pandas or DuckDB.

``from biodata_cache import asset_basics`` is all it takes. The functions are loaded
on first access (PEP 562), so ``import biodata_cache.layout`` or ``.catalog`` (as the
sync Lambdas do) imports neither pandas nor DuckDB. Each catalog table's function
(``catalog.TableSpec.function_name``) is exported without being listed here; type
checkers see those in ``_table_functions.pyi``, generated from the catalog.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from biodata_cache._version import __version__ as __version__

# Public name -> module that defines it (besides the tables' functions, see below).
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(
        (
            "record_consistency",
            "read_table",
            "raw_to_derived",
            "custom",
            "get_cache_registry",
            "list_versions",
            "run_report",
            "sql",
            "connect",
            "clear_cache",
            "cache_dir",
            "configure",
            "get_cache",
        ),
        "biodata_cache.api",
    ),
    "Cache": "biodata_cache.reader",
    "CacheConfig": "biodata_cache.config",
    "CacheRegistry": "biodata_cache.registry",
    "start_rebuild": "biodata_cache.rebuild",
    **dict.fromkeys(
        (
            "BiodataCacheError",
            "AccessDeniedError",
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
        ),
        "biodata_cache.errors",
    ),
}


def _table_function_names() -> list[str]:
    """The tables' function names, in catalog order (imports the catalog, i.e. pyarrow)."""
    from biodata_cache.catalog import ALL_TABLES

    return [spec.function_name for spec in ALL_TABLES]


def _public_names() -> list[str]:
    return ["__version__", *_table_function_names(), *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name == "__all__":  # computed on demand: ``import biodata_cache`` stays light
        value: Any = _public_names()
    else:
        module = _EXPORTS.get(name)
        if module is None and not name.startswith("_") and name in _table_function_names():
            module = "biodata_cache.api"
        if module is None:
            raise AttributeError(f"module 'biodata_cache' has no attribute {name!r}")
        value = getattr(import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_public_names()))


if TYPE_CHECKING:  # static type checkers and IDEs see the real objects
    from biodata_cache._table_functions import *  # noqa: F403  (the catalog tables' functions)
    from biodata_cache.api import (  # noqa: F401
        asset_basics,
        cache_dir,
        clear_cache,
        configure,
        connect,
        custom,
        get_cache,
        get_cache_registry,
        list_versions,
        platform_qc,
        qc,
        qc_tag_status,
        raw_to_derived,
        read_table,
        record_consistency,
        run_report,
        sql,
    )
    from biodata_cache.config import CacheConfig  # noqa: F401
    from biodata_cache.errors import (  # noqa: F401
        AccessDeniedError,
        BiodataCacheError,
        CorruptObjectError,
        EndpointUnreachableError,
        MissingObjectError,
        RebuildError,
        UnknownAssetsWarning,
        UnknownCustomTableError,
        UnknownPlatformError,
        UnknownSubjectError,
        UnknownTableError,
        VersionNotFoundError,
    )
    from biodata_cache.reader import Cache  # noqa: F401
    from biodata_cache.rebuild import start_rebuild  # noqa: F401
    from biodata_cache.registry import CacheRegistry  # noqa: F401
