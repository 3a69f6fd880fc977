"""The ``biodata-cache`` command: tables, head, sql, versions, report, rebuild, cache.

Errors print one line (``error: ...``) and exit with status 1; no tracebacks.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from biodata_cache import catalog
from biodata_cache._version import __version__
from biodata_cache.catalog import UnknownTableError
from biodata_cache.config import ENV_DISPATCHER
from biodata_cache.errors import BiodataCacheError
from biodata_cache.layout import VersionError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="biodata-cache",
        description="Read the AIND data-asset cache tables (built nightly by the sync Lambdas).",
    )
    parser.add_argument("--version", action="version", version=f"biodata-cache {__version__}")
    where = parser.add_argument_group("where to read (default: BIODATA_CACHE_* variables)")
    where.add_argument("--root", help="s3://bucket/prefix or file:///dir (overrides bucket/prefix)")
    where.add_argument("--bucket", help="S3 bucket (default allen-data-views)")
    where.add_argument("--prefix", help="key prefix in the bucket (default data-asset-cache)")
    where.add_argument("--cache-version", dest="cache_version", help="cache version, e.g. 1.0")
    where.add_argument("--endpoint", help="S3 endpoint URL (local stack, MinIO)")
    where.add_argument(
        "--anonymous", action="store_true", default=None, help="unsigned requests (public bucket)"
    )
    where.add_argument("--cache-dir", help="local cache directory")
    where.add_argument("--no-cache", action="store_true", help="bypass the local cache (download everything)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("tables", help="list tables with rows and last build time")

    head = commands.add_parser("head", help="print the first rows of a table")
    head.add_argument("table")
    head.add_argument("-n", "--rows", type=int, default=10)
    head.add_argument("--columns", help="comma-separated columns")
    head.add_argument(
        "--partition", help="value of the partition key (subject_id or platform) of a partitioned table"
    )

    sql = commands.add_parser("sql", help="run DuckDB SQL; every cache table is a view")
    sql.add_argument("query")
    sql.add_argument("--format", choices=("table", "csv", "json"), default="table")
    sql.add_argument("--max-rows", type=int, default=50, help="rows to print in table format")

    commands.add_parser("versions", help="list the cache versions of the root")

    report = commands.add_parser("report", help="print a run report (default: the latest run)")
    report.add_argument("run_id", nargs="?")

    rebuild = commands.add_parser("rebuild", help="start a rebuild of tables in a deployed stack")
    rebuild.add_argument("tables", nargs="+")
    rebuild.add_argument("--function", help=f"dispatcher Lambda name or ARN (default ${ENV_DISPATCHER})")

    cache = commands.add_parser("cache", help="show or clear the local cache")
    cache.add_argument("action", choices=("info", "clear"))
    return parser


def _cache(args: argparse.Namespace) -> Any:
    from biodata_cache.reader import Cache

    return Cache(
        root=args.root,
        bucket=args.bucket,
        prefix=args.prefix,
        version=args.cache_version,
        endpoint_url=args.endpoint,
        anonymous=args.anonymous,
        cache_dir=args.cache_dir,
        use_cache=False if args.no_cache else None,
    )


def _print_frame(frame: Any, max_rows: int) -> None:
    import pandas as pd

    with pd.option_context("display.max_columns", None, "display.width", 200, "display.max_colwidth", 60):
        print(frame.to_string(max_rows=max_rows, index=False))


def _cmd_tables(args: argparse.Namespace) -> None:
    import pandas as pd

    cache = _cache(args)
    registry = cache.registry()
    columns = ["TABLE", "TYPE", "PARTITIONED BY", "ROWS", "LAST BUILT", "STATUS"]
    rows = [
        (
            t.name,
            t.type,
            t.partition_key or "-",
            "-" if t.rows is None else f"{t.rows:,}",
            t.last_built or "-",
            t.status or "-",
        )
        for t in registry.tables
    ]
    print(f"{cache.config.root_url}{registry.version}/")
    # pandas lays out the columns; a frame without rows would print "Empty DataFrame" instead.
    print(pd.DataFrame(rows, columns=columns).to_string(index=False) if rows else "  ".join(columns))


def _cmd_head(args: argparse.Namespace) -> None:
    cache = _cache(args)
    columns = [c.strip() for c in args.columns.split(",")] if args.columns else None
    spec = catalog.TABLES.get(args.table)
    if spec is not None and spec.partitioned:
        if not args.partition:
            key = spec.partition_key
            raise BiodataCacheError(f"{args.table} is partitioned by {key}: pass --partition <{key}>")
        if args.table == "platform_qc":
            frame = cache.platform_qc(args.partition, columns=columns)
        elif args.table == "qc_tag_status":
            frame = cache.qc_tag_status(args.partition, columns=columns)
        else:
            frame = cache.qc(args.partition, columns=columns)
    else:
        frame = cache.read(args.table, columns)
    _print_frame(frame.head(args.rows), args.rows)


def _cmd_sql(args: argparse.Namespace) -> None:
    import duckdb

    try:
        frame = _cache(args).sql(args.query)
    except duckdb.Error as exc:
        raise BiodataCacheError(str(exc)) from None
    if frame is None:
        return
    if args.format == "csv":
        frame.to_csv(sys.stdout, index=False)
    elif args.format == "json":
        print(frame.to_json(orient="records", date_format="iso"))
    else:
        _print_frame(frame, args.max_rows)


def _cmd_versions(args: argparse.Namespace) -> None:
    cache = _cache(args)
    for version in cache.list_versions():
        marker = "  (read by default)" if version == cache.version else ""
        print(f"{version}{marker}")


def _cmd_report(args: argparse.Namespace) -> None:
    print(json.dumps(_cache(args).run_report(args.run_id), indent=2))


def _cmd_rebuild(args: argparse.Namespace) -> None:
    from biodata_cache.rebuild import start_rebuild

    answer = start_rebuild(args.tables, function_name=args.function)
    tables = answer.get("enqueued") or answer.get("tables") or []
    print(f"run {answer.get('run_id')} started: {', '.join(tables)}")


def _cmd_cache(args: argparse.Namespace) -> None:
    cache = _cache(args)
    if args.action == "clear":
        freed = cache.clear_cache()
        print(f"cleared {cache.config.cache_dir} ({freed / 1e6:.1f} MB)")
    else:
        files, size = cache.cache_usage()
        print(f"{cache.config.cache_dir}: {files} files, {size / 1e6:.1f} MB")


_COMMANDS = {
    "tables": _cmd_tables,
    "head": _cmd_head,
    "sql": _cmd_sql,
    "versions": _cmd_versions,
    "report": _cmd_report,
    "rebuild": _cmd_rebuild,
    "cache": _cmd_cache,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``biodata-cache`` console script."""
    args = _parser().parse_args(argv)
    try:
        _COMMANDS[args.command](args)
    except (BiodataCacheError, UnknownTableError, VersionError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `biodata-cache sql ... | head`
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
