"""metadata_upgrade: upgrade status of each v1 record, with one column per upgrader version.

Input: the custom table ``metadata_upgrade_status_prod`` that the external upgrader
writes into the cache (``custom/`` of this version folder). Its ETag and
asset_basics are the fingerprint: the build is skipped unless either changed.

The table has an open schema: the declared columns, then one column per upgrader
version seen so far. The current run's column (named after the first row's
``upgrader_version``) holds its ``status``; columns of earlier versions come from
the previous table (outer join on ``_id``, the current run's column wins).

Names: a row with a ``v2_id`` found in asset_basics takes ``name``,
``project_name`` and ``data_level`` from there; the rest come from the v1 API.
v1 records are no longer written, so a v1 id answered once keeps its answer from
the previous table and only ids never seen before are fetched.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from bdc_sync.docdb import projection_of
from bdc_sync.fields import as_text, get_path
from bdc_sync.framework import BuildContext, DerivedTable, MissingInput, Row
from biodata_cache import layout
from biodata_cache.catalog import METADATA_UPGRADE

logger = logging.getLogger(__name__)

STATUS_TABLE = "metadata_upgrade_status_prod"
NAME_COLUMNS = ("name", "project_name", "data_level")
# Columns copied from the status table (``v1_id`` becomes ``_id``).
STATUS_COLUMNS = ("v2_id", "upgrader_version", "last_modified", "status", "upgrade_datetime")
V1_PROJECTION = ("_id", "name", "data_description.project_name", "data_description.data_level")

Names = tuple[str | None, str | None, str | None]


def status_key(ctx: BuildContext) -> str:
    return layout.custom_key(ctx.folder, STATUS_TABLE)


def status_etag(ctx: BuildContext) -> str:
    info = ctx.cache.head(status_key(ctx))
    if info is None:
        raise MissingInput(f"custom table {STATUS_TABLE} does not exist; previous table kept")
    return info.etag


def status_text(value: Any) -> str | None:
    """A status-table value as text; times (``last_modified`` as a timestamp) in ISO 8601."""
    if isinstance(value, datetime):
        return value.isoformat()
    return as_text(value)


def utc_time(value: Any) -> datetime | None:
    """``upgrade_datetime`` as the UTC timestamp the input holds (tables.md: timestamps stay
    timestamps). A naive time is taken as UTC; ISO text (an older upgrader) is parsed;
    anything else is null rather than a guess."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_CONVERT = {"upgrade_datetime": utc_time}


def read_status(ctx: BuildContext) -> tuple[str, dict[str, Row]]:
    """The current upgrader version and the status rows by v1 id (first row per id)."""
    table = ctx.cache.read_table(status_key(ctx))
    if table is None or table.num_rows == 0:
        raise MissingInput(f"custom table {STATUS_TABLE} is missing or empty; previous table kept")
    for required in ("v1_id", "upgrader_version", "status"):
        if required not in table.column_names:
            raise MissingInput(f"custom table {STATUS_TABLE} has no {required} column; previous table kept")
    version = as_text(table["upgrader_version"][0].as_py())
    if not version or version in METADATA_UPGRADE.column_names:
        raise MissingInput(f"{STATUS_TABLE}: unusable upgrader_version {version!r} in its first row")
    present = [c for c in STATUS_COLUMNS if c in table.column_names]
    rows: dict[str, Row] = {}
    for record in table.select(["v1_id", *present]).to_pylist():
        rid = as_text(record.pop("v1_id"))
        if rid and rid not in rows:
            rows[rid] = {
                column: _CONVERT.get(column, status_text)(record.get(column)) for column in STATUS_COLUMNS
            }
    return version, rows


def previous_table(ctx: BuildContext) -> pa.Table | None:
    table = ctx.cache.read_table(ctx.table_key(METADATA_UPGRADE))
    if table is None or "_id" not in table.column_names:
        return None
    return table


def version_columns(previous: pa.Table | None) -> list[str]:
    if previous is None:
        return []
    return [c for c in previous.column_names if c not in METADATA_UPGRADE.column_names]


def known_v1_names(previous: pa.Table | None) -> dict[str, Names]:
    """Names the previous build got from the v1 API, by v1 id."""
    columns = ["_id", "v2_id", *NAME_COLUMNS]
    if previous is None or not set(columns) <= set(previous.column_names):
        return {}
    return {
        row["_id"]: (row["name"], row["project_name"], row["data_level"])
        for row in previous.select(columns).to_pylist()
        if row["v2_id"] is None and row["name"] is not None
    }


def v2_names(ctx: BuildContext, v2_ids: set[str]) -> dict[str, Names]:
    basics = ctx.upstream("asset_basics", columns=["_id", *NAME_COLUMNS])
    return {
        row["_id"]: (row["name"], row["project_name"], row["data_level"])
        for row in basics.to_pylist()
        if row["_id"] in v2_ids
    }


def fetch_v1_names(ctx: BuildContext, ids: list[str]) -> dict[str, Names]:
    names: dict[str, Names] = {}
    for record in ctx.docdb("v1").fetch_by_ids(ids, projection_of(V1_PROJECTION)):
        rid = as_text(record.get("_id"))
        if rid:
            names[rid] = (
                as_text(record.get("name")),
                as_text(get_path(record, "data_description.project_name")),
                as_text(get_path(record, "data_description.data_level")),
            )
    return names


def derive(ctx: BuildContext) -> pa.Table:
    version, current = read_status(ctx)
    previous = previous_table(ctx)
    seen = version_columns(previous)
    earlier = [c for c in seen if c != version]
    # Version columns keep their place; a new version goes last.
    ordered = seen if version in seen else [*seen, version]
    earlier_values: dict[str, dict[str, Any]] = {}
    if previous is not None:
        for row in previous.select(["_id", *earlier]).to_pylist():
            earlier_values.setdefault(row.pop("_id"), row)

    # Outer join: the current run's ids, then ids only the previous table had.
    ids = list(current) + [rid for rid in earlier_values if rid not in current]
    rows: list[Row] = []
    for rid in ids:
        status = current.get(rid, dict.fromkeys(STATUS_COLUMNS))
        earlier_row = earlier_values.get(rid, {})
        rows.append(
            {
                "_id": rid,
                **status,
                **{column: as_text(earlier_row.get(column)) for column in earlier},
                version: status["status"],
            }
        )

    by_v2 = v2_names(ctx, {row["v2_id"] for row in rows if row["v2_id"]})
    kept = known_v1_names(previous)
    missing = [row["_id"] for row in rows if row["v2_id"] not in by_v2 and row["_id"] not in kept]
    fetched = fetch_v1_names(ctx, missing)
    logger.info(
        "upgrade status names",
        extra={"table": METADATA_UPGRADE.name, "rows": len(rows), "v1_fetched": len(missing)},
    )
    for row in rows:
        found = by_v2.get(row["v2_id"]) or kept.get(row["_id"]) or fetched.get(row["_id"])
        row.update(zip(NAME_COLUMNS, found or (None, None, None), strict=True))

    rows.sort(key=lambda row: row["_id"])
    declared = METADATA_UPGRADE.schema
    schema = pa.schema([*declared, *(pa.field(c, pa.string()) for c in ordered)])
    return pa.Table.from_pylist(rows, schema=schema)


TABLE = DerivedTable(spec=METADATA_UPGRADE, derive=derive, extra_inputs=status_etag)
