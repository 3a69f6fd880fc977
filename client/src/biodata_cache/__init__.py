"""biodata-cache: AIND data-asset metadata tables, read from S3 into pandas or DuckDB.

``from biodata_cache import asset_basics`` is all it takes. The functions are loaded
on first access (PEP 562), so ``import biodata_cache.layout`` or ``.catalog`` (as the
sync Lambdas do) imports neither pandas nor DuckDB.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from biodata_cache._version import __version__

# Public name -> module that defines it.
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(
        (
            "unique_project_names",
            "unique_subject_ids",
            "unique_genotypes",
            "asset_basics",
            "source_data",
            "platform_smartspim",
            "platform_exaspim",
            "platform_fib",
            "metadata_upgrade",
            "foraging_sessions",
            "behavior_curriculum",
            "time_to_qc",
            "metadata_core",
            "record_consistency",
            "record_consistency_results",
            "record_consistency_checks",
            "read_table",
            "qc",
            "qc_tag_status",
            "platform_qc",
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

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'biodata_cache' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # static type checkers and IDEs see the real objects
    from biodata_cache.api import (  # noqa: F401
        asset_basics,
        behavior_curriculum,
        cache_dir,
        clear_cache,
        configure,
        connect,
        custom,
        foraging_sessions,
        get_cache,
        get_cache_registry,
        list_versions,
        metadata_core,
        metadata_upgrade,
        platform_exaspim,
        platform_fib,
        platform_qc,
        platform_smartspim,
        qc,
        qc_tag_status,
        raw_to_derived,
        read_table,
        record_consistency,
        record_consistency_checks,
        record_consistency_results,
        run_report,
        source_data,
        sql,
        time_to_qc,
        unique_genotypes,
        unique_project_names,
        unique_subject_ids,
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
