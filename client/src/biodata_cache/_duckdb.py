"""DuckDB over the cache tables: a connection in which they are views, and SQL.

Non-partitioned tables are registered as the arrow tables the reader returns (fetched
through the local cache and scanned in place, without a copy); partitioned tables as
remote pyarrow datasets, so a WHERE on the partition key opens only the matching files.
duckdb is imported only here and only when called: reading into pandas never loads it.
"""

from __future__ import annotations

import re
import warnings
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from biodata_cache import catalog
from biodata_cache._arrow import caller_level, corrupt, first_line, to_pandas
from biodata_cache.errors import MissingObjectError

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

    from biodata_cache.reader import Cache

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def connect(cache: Cache, tables: Iterable[str] | None, use_cache: bool | None) -> duckdb.DuckDBPyConnection:
    """See ``Cache.connect``."""
    import duckdb

    connection = duckdb.connect()
    if tables is None:
        entries = cache.registry().tables
        names = [t.name for t in entries if t.status != "never built"]
        strict = False
    else:
        names = list(dict.fromkeys(tables))
        strict = True
    for name in names:
        _register(cache, connection, name, use_cache, strict)
    return connection


def _register(
    cache: Cache, connection: duckdb.DuckDBPyConnection, name: str, use_cache: bool | None, strict: bool
) -> None:
    ref = cache._ref(name)
    source: Any
    if ref.partition_key:
        source = cache.dataset(name)
        if source is None:
            source = ref.schema.empty_table() if ref.schema is not None else None
    else:
        try:
            source = cache.read_arrow(name, use_cache=use_cache)
        except MissingObjectError as exc:
            if strict:
                raise
            warnings.warn(f"{exc}; table {name!r} skipped", stacklevel=caller_level())
            source = None
    if source is not None:
        connection.register(name, source)


def tables_in(cache: Cache, query: str) -> list[str]:
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
            listed = set(cache.registry().names)
        except MissingObjectError:
            listed = set()
        found += sorted(others & listed)
    return found


def sql(
    cache: Cache, query: str, lazy: bool, use_cache: bool | None
) -> pd.DataFrame | duckdb.DuckDBPyRelation | None:
    """See ``Cache.sql``."""
    import duckdb

    names = tables_in(cache, query)
    connection = connect(cache, names, use_cache)
    relation = connection.sql(query)
    if relation is None:
        return None
    if lazy:
        # duckdb 1.x relations do not keep their connection alive: once this function
        # returns, the connection would be collected and the relation fail with
        # "Connection has already been closed" (2.x keeps it). The finalizer holds the
        # connection until the relation is gone, then closes it.
        weakref.finalize(relation, connection.close)
        return relation
    try:
        return to_pandas(_relation_arrow(relation))
    except duckdb.Error as exc:
        damaged = cache._partitions.damaged(names, str(exc))
        if damaged is None:
            raise
        raise corrupt(cache.url(damaged), first_line(exc)) from exc


def _relation_arrow(relation: duckdb.DuckDBPyRelation) -> pa.Table:
    # Newer duckdb names it to_arrow_table; older releases (the client allows 1.1) fetch_arrow_table.
    method = getattr(relation, "to_arrow_table", None) or relation.fetch_arrow_table
    table: pa.Table = method()
    return table
