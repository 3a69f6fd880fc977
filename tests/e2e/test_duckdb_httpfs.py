"""Our S3 layout read the way the website and notebooks read it: plain DuckDB + httpfs.

After one nightly run on the local stack, a DuckDB connection that knows nothing of
biodata_cache (only the moto endpoint, as a reader knows the bucket) finds the tables in
``cache_registry.json`` with ``read_json_auto``, reads flat tables with ``read_parquet``
of their ``.pqt`` and partitioned ones with a hive glob over their folder, and must get
exactly the rows the client returns, for every table of the registry. The httpfs
extension comes from the ``duckdb-ext-httpfs`` wheel (it cannot be downloaded offline).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import duckdb
import duckdb_ext
import pyarrow as pa
import pytest

import biodata_cache as client
from bdc_local.runner import run_and_wait
from bdc_local.stack import LocalStack
from bdc_sync.tables import buildable_tables
from biodata_cache import catalog, layout

pytestmark = [pytest.mark.e2e]
FOLDER = layout.package_folder()


def httpfs_connection() -> duckdb.DuckDBPyConnection:
    """A fresh DuckDB with httpfs loaded from the wheel (online, ``INSTALL httpfs`` does it)."""
    # The wheel lays out extensions/v<duckdb>/<platform>/httpfs.duckdb_extension, the
    # layout DuckDB's extension_directory expects.
    extensions = Path(next(iter(duckdb_ext.__path__))) / "extensions"
    connection = duckdb.connect()
    connection.execute(f"SET extension_directory = '{extensions}'")
    connection.execute("LOAD httpfs")
    return connection


@pytest.fixture(scope="module")
def built(stack: LocalStack) -> LocalStack:
    result = run_and_wait(
        stack, {"tables": buildable_tables(), "trigger": "schedule"}, workers=3, timeout=600
    )
    statuses = {name: item["status"] for name, item in result.tables.items()}
    assert all(status == "succeeded" for status in statuses.values()), statuses
    return stack


@pytest.fixture(scope="module")
def duck(built: LocalStack) -> Iterator[duckdb.DuckDBPyConnection]:
    """DuckDB with an S3 secret for the moto server, as a notebook would set one up."""
    endpoint = urlsplit(built.moto_url).netloc
    connection = httpfs_connection()
    connection.execute(
        "CREATE SECRET moto (TYPE s3, KEY_ID 'testing', SECRET 'testing', "
        f"REGION 'us-west-2', ENDPOINT '{endpoint}', URL_STYLE 'path', USE_SSL false)"
    )
    yield connection
    connection.close()


def base_url(stack: LocalStack) -> str:
    return f"s3://{stack.config.bucket}/{layout.folder_prefix(FOLDER)}"


def registry_tables(duck: duckdb.DuckDBPyConnection, stack: LocalStack) -> list[dict[str, Any]]:
    rows = duck.sql(
        "SELECT t.name, t.location, t.partitioned, t.partition_key "
        f"FROM (SELECT unnest(tables) AS t FROM read_json_auto('{base_url(stack)}cache_registry.json'))"
    ).fetchall()
    return [dict(zip(("name", "location", "partitioned", "partition_key"), row, strict=True)) for row in rows]


def table_query(entry: dict[str, Any]) -> str:
    """The SQL a reader writes from a registry entry alone."""
    if not entry["partitioned"]:
        return f"SELECT * FROM read_parquet('{entry['location']}')"
    # A partitioned table's location is its folder; its files are <key>=<value>/data.pqt.
    # The partition column is in the files too (as text): hive_types keeps it text, where
    # DuckDB would otherwise cast subject ids that look like numbers to BIGINT.
    key = entry["partition_key"]
    return (
        f"SELECT * FROM read_parquet('{entry['location']}{key}=*/{layout.PARTITION_FILE}', "
        f"hive_partitioning = true, hive_types = {{'{key}': VARCHAR}})"
    )


def canonical_rows(table: pa.Table) -> list[str]:
    """Rows as sorted JSON text, so two readers' tables compare whatever their row order."""

    def plain(value: Any) -> Any:
        if isinstance(value, datetime.datetime) and value.tzinfo is not None:
            return value.astimezone(datetime.UTC).isoformat()
        return str(value)

    columns = sorted(table.column_names)
    return sorted(json.dumps(row, default=plain) for row in table.select(columns).to_pylist())


def test_the_registry_lists_every_table(built: LocalStack, duck: duckdb.DuckDBPyConnection) -> None:
    entries = registry_tables(duck, built)
    # Every catalog table: the built ones and the ones built with them (qc_tag_status, ...).
    assert {entry["name"] for entry in entries} == set(catalog.TABLES)
    assert {entry["name"] for entry in entries if entry["partitioned"]} == {
        "quality_control",
        "qc_tag_status",
        "platform_qc",
    }


def test_every_registry_table_reads_as_the_client_reads_it(
    built: LocalStack, duck: duckdb.DuckDBPyConnection
) -> None:
    cache = client.get_cache()
    entries = registry_tables(duck, built)
    rows = {}
    for entry in entries:
        name = entry["name"]
        ours = cache.read_arrow(name)
        theirs = duck.sql(table_query(entry)).fetch_arrow_table()
        assert theirs.num_rows == ours.num_rows, name
        assert set(theirs.column_names) == set(ours.column_names), name
        if entry["partitioned"]:
            key = entry["partition_key"]
            assert theirs.schema.field(key).type == pa.string(), name
            assert set(theirs.column(key).to_pylist()) == set(ours.column(key).to_pylist()), name
        assert canonical_rows(theirs) == canonical_rows(ours), name
        rows[name] = ours.num_rows
    # qc_tag_status is built with quality_control, so it is in the registry without a build of its own.
    assert set(rows) == set(catalog.TABLES)
    assert all(count > 0 for count in rows.values()), rows


def test_a_partition_filter_reads_one_subject(built: LocalStack, duck: duckdb.DuckDBPyConnection) -> None:
    """WHERE on the partition column, the website's per-subject query."""
    qc = {entry["name"]: entry for entry in registry_tables(duck, built)}["quality_control"]
    subject = "828418"
    theirs = duck.sql(f"{table_query(qc)} WHERE subject_id = '{subject}'").fetch_arrow_table()
    ours = client.qc(subject)
    assert theirs.num_rows == len(ours) > 0
    assert set(theirs.column("subject_id").to_pylist()) == {subject}
    assert sorted(theirs.column("asset_name").to_pylist()) == sorted(ours["asset_name"].tolist())


def test_a_bare_hive_glob_turns_numeric_subject_ids_into_bigint(
    built: LocalStack, duck: duckdb.DuckDBPyConnection
) -> None:
    """Why table_query sets hive_types: without it DuckDB types subject_id from the folder
    names (all numeric here), over the text column in the files, unlike asset_basics."""
    qc = {entry["name"]: entry for entry in registry_tables(duck, built)}["quality_control"]
    glob = f"{qc['location']}subject_id=*/data.pqt"
    bare = f"SELECT subject_id FROM read_parquet('{glob}', hive_partitioning = true)"
    assert duck.sql(bare).fetch_arrow_table().schema.field("subject_id").type == pa.int64()
    basics = duck.sql(f"SELECT subject_id FROM read_parquet('{base_url(built)}asset_basics.pqt')")
    assert basics.fetch_arrow_table().schema.field("subject_id").type == pa.string()


def test_set_variables_instead_of_a_secret(built: LocalStack) -> None:
    """The older spelling: SET s3_* variables, then read_parquet of a flat table."""
    connection = httpfs_connection()
    try:
        for setting, value in {
            "s3_endpoint": urlsplit(built.moto_url).netloc,
            "s3_use_ssl": "false",
            "s3_url_style": "path",
            "s3_region": "us-west-2",
            "s3_access_key_id": "testing",
            "s3_secret_access_key": "testing",
        }.items():
            connection.execute(f"SET {setting} = '{value}'")
        count = connection.sql(
            f"SELECT count(*) FROM read_parquet('{base_url(built)}asset_basics.pqt')"
        ).fetchone()
        assert count is not None and count[0] == len(client.asset_basics())
    finally:
        connection.close()
