"""Every client function and error path against a ``file://`` cache root."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from cache_fixtures import (
    DER_A1,
    DER_A2,
    DER_A3,
    DER_A4,
    DER_B1,
    FOLDER,
    RAW_A,
    RAW_B,
    RUN_ID,
    build_partitions,
    build_tables,
    run_report_document,
)

import biodata_cache as bc
from biodata_cache import catalog
from biodata_cache.errors import (
    CorruptObjectError,
    MissingObjectError,
    UnknownAssetsWarning,
    UnknownCustomTableError,
    UnknownPlatformError,
    UnknownSubjectError,
    UnknownTableError,
    VersionNotFoundError,
)


@pytest.fixture(autouse=True)
def _use_local_root(local_root: Path) -> None:
    bc.configure(root=local_root.as_uri())


def _frame(table: pa.Table) -> pd.DataFrame:
    from biodata_cache.reader import to_pandas

    return to_pandas(table)


# -- lists ----------------------------------------------------------------------------
def test_unique_functions_return_lists() -> None:
    assert bc.unique_project_names() == ["Project A", "Project B"]
    assert bc.unique_subject_ids() == ["100001", "100002", "100003"]
    assert bc.unique_genotypes() == ["wt/wt"]
    assert all(isinstance(v, list) for v in (bc.unique_genotypes(), bc.unique_subject_ids()))


# -- DataFrame tables -----------------------------------------------------------------
# Every catalog table whose function returns a DataFrame of the whole table.
DATAFRAME_FUNCTIONS = [
    spec.function_name for spec in catalog.ALL_TABLES if spec.returns == "frame" and not spec.partitioned
]
VALUES_FUNCTIONS = [spec.function_name for spec in catalog.ALL_TABLES if spec.returns == "values"]


@pytest.mark.parametrize("function", VALUES_FUNCTIONS)
def test_values_functions_return_the_stored_column(function: str) -> None:
    spec = next(spec for spec in catalog.ALL_TABLES if spec.function_name == function)
    stored = build_tables()[spec.name].column(spec.column_names[0]).to_pylist()
    assert getattr(bc, function)() == stored


@pytest.mark.parametrize("name", DATAFRAME_FUNCTIONS)
def test_table_functions_return_the_stored_table(name: str) -> None:
    frame = getattr(bc, name)()
    expected = _frame(build_tables()[name])
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(frame, expected)


def test_metadata_upgrade_keeps_extra_version_columns() -> None:
    assert "0.5.1" in bc.metadata_upgrade().columns


def test_list_columns_hold_python_lists() -> None:
    frame = bc.asset_basics()
    assert frame["modalities"].iloc[0] == ["ecephys", "behavior"]
    assert "SPIM" in frame["modalities"].iloc[5]
    assert len(frame.explode("modalities")) == 9


def test_columns_and_filters() -> None:
    frame = bc.asset_basics(columns=["name", "subject_id"], filters=[("subject_id", "=", "100002")])
    assert list(frame.columns) == ["name", "subject_id"]
    assert frame["name"].tolist() == [RAW_B, DER_B1]
    older = bc.asset_basics(["name"], pc.field("age") > 126)
    assert older["name"].tolist() == [DER_B1, "behavior_100003_2025-06-01_10-00-00"]
    # a filter on a column that is not returned
    raw = bc.asset_basics(columns=["name"], filters=[("data_level", "=", "raw")])
    assert len(raw) == 3


def test_unknown_column_is_an_error_listing_columns() -> None:
    with pytest.raises(ValueError) as info:
        bc.source_data(columns=["name", "nope"])
    assert str(info.value) == (
        "unknown column(s) 'nope' for table 'source_data'; its columns: "
        "name, source_data, pipeline_name, processing_time"
    )


def test_columns_given_as_a_string_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="columns must be a list of names, not the string 'name'"):
        bc.source_data(columns="name")


def test_bad_filter_is_an_error_naming_the_table() -> None:
    with pytest.raises(
        ValueError, match=r"^cannot apply filters \[\('nope', '=', 1\)\] to table 'source_data': "
    ):
        bc.source_data(filters=[("nope", "=", 1)])


def test_read_table_by_name_and_unknown_table() -> None:
    assert len(bc.read_table("platform_fib")) == 1
    whole_qc = bc.read_table("quality_control", filters=[("subject_id", "=", "100002")])
    assert whole_qc["name"].tolist() == ["focus"]
    assert len(bc.read_table("quality_control")) == 4
    with pytest.raises(UnknownTableError) as info:
        bc.read_table("nope")
    assert str(info.value) == f"unknown table 'nope'; known tables: {', '.join(sorted(catalog.TABLES))}"


# -- qc -------------------------------------------------------------------------------
def test_qc_reads_one_subject() -> None:
    frame = bc.qc("100001")
    expected = _frame(build_partitions()[("quality_control", "100001")])
    pd.testing.assert_frame_equal(frame, expected)
    assert str(frame["timestamp"].dtype).startswith("datetime64")
    # an int subject id is read as its text
    pd.testing.assert_frame_equal(bc.qc(100001), expected)


def test_qc_asset_names_filter_and_report_missing_names() -> None:
    assert bc.qc("100001", asset_names=DER_A1)["name"].tolist() == ["yield"]
    with pytest.warns(UnknownAssetsWarning) as caught:
        frame = bc.qc("100001", asset_names=[RAW_A, "not_an_asset"])
    assert frame["name"].tolist() == ["drift"]
    assert str(caught[0].message) == (
        "asset_names not in quality_control of subject_id '100001': 'not_an_asset'"
    )
    assert caught[0].filename == __file__  # the warning points at the caller


def test_qc_columns_and_filters() -> None:
    frame = bc.qc("100001", columns=["name", "status"], filters=[("status", "=", "Fail")])
    assert frame.to_dict("records") == [{"name": "yield", "status": "Fail"}]


def test_qc_unknown_subject() -> None:
    with pytest.raises(UnknownSubjectError) as info:
        bc.qc("999999")
    assert str(info.value) == (
        "unknown subject_id '999999': no quality_control partition in bdc-v1.0 and not in unique_subject_ids"
    )
    with pytest.raises(UnknownSubjectError, match="unknown subject_id 'a/b'"):
        bc.qc("a/b")


def test_qc_known_subject_without_metrics_is_empty() -> None:
    frame = bc.qc("100003")
    assert frame.empty
    assert list(frame.columns) == catalog.QUALITY_CONTROL.column_names
    with pytest.raises(MissingObjectError) as info:
        bc.qc("100003", lazy=True)
    assert str(info.value).startswith("subject_id '100003' has no quality_control data in bdc-v1.0 (file://")


def test_qc_lazy_returns_a_path_duckdb_reads(local_root: Path) -> None:
    path = bc.qc("100001", lazy=True)
    assert path == str(local_root / FOLDER / "qc" / "subject_id=100001" / "data.pqt")
    rows = duckdb.sql(f"SELECT name FROM read_parquet('{path}') ORDER BY name").fetchall()
    assert rows == [("drift",), ("noise",), ("yield",)]


def test_qc_lazy_with_asset_names_is_an_error() -> None:
    with pytest.raises(ValueError) as info:
        bc.qc("100001", asset_names=[RAW_A], lazy=True)
    assert str(info.value) == (
        "asset_names cannot be combined with lazy=True: lazy returns the whole partition's "
        "file; filter it in DuckDB (WHERE asset_name IN (...))"
    )


def test_qc_tag_status() -> None:
    frame = bc.qc_tag_status("100001")
    assert frame["tag"].tolist() == ["ecephys", "probe:A"]
    assert bc.qc_tag_status("100001", asset_names=[DER_A1])["status"].tolist() == ["Fail"]
    assert bc.qc_tag_status("100002").empty  # known subject, no tag statuses
    assert bc.qc_tag_status("100001", lazy=True).endswith("qc_tag_status/subject_id=100001/data.pqt")
    with pytest.raises(UnknownSubjectError, match=r"no qc_tag_status partition in bdc-v1\.0"):
        bc.qc_tag_status("42")


# -- platform_qc ----------------------------------------------------------------------
def test_platform_qc() -> None:
    frame = bc.platform_qc("spim")
    assert frame["asset_name"].tolist() == [RAW_B]
    assert frame["experimenters_normalized"].iloc[0] == ["Jane Doe"]
    assert bc.platform_qc("fib", columns=["status"])["status"].tolist() == ["Fail"]
    assert bc.platform_qc("spim", lazy=True).endswith("platform_qc/platform=spim/data.pqt")


def test_platform_without_data_is_empty() -> None:
    frame = bc.platform_qc("slap2")
    assert frame.empty and list(frame.columns) == catalog.PLATFORM_QC.column_names
    with pytest.raises(MissingObjectError, match=r"^platform 'slap2' has no platform_qc data in bdc-v1\.0 "):
        bc.platform_qc("slap2", lazy=True)


def test_unknown_platform() -> None:
    with pytest.raises(UnknownPlatformError) as info:
        bc.platform_qc("ephys")
    assert str(info.value) == "unknown platform 'ephys'; platforms: spim, fib, vr, dynamic_foraging, slap2"


# -- raw_to_derived -------------------------------------------------------------------
def test_raw_to_derived() -> None:
    assert bc.raw_to_derived(RAW_A) == [DER_A1, DER_A3, DER_A4, DER_A2]
    assert bc.raw_to_derived(RAW_A, latest=True) == [DER_A3, DER_A4, DER_A2]
    assert bc.raw_to_derived(RAW_A, modality="BEHAV") == [DER_A4]
    assert bc.raw_to_derived(RAW_A, latest=True, modality="ecephys") == [DER_A3, DER_A2]
    assert bc.raw_to_derived("no_such_asset") == []


def test_raw_to_derived_of_several_names_is_flat_in_input_order() -> None:
    assert bc.raw_to_derived([RAW_B, RAW_A], latest=True) == [DER_B1, DER_A3, DER_A4, DER_A2]


# -- custom ---------------------------------------------------------------------------
def test_custom_round_trip(local_root: Path) -> None:
    frame = pd.DataFrame({"subject": ["a", "b"], "score": [1.5, 2.5]})
    assert bc.custom("scores", frame) is None
    assert (local_root / FOLDER / "custom" / "scores.pqt").is_file()
    pd.testing.assert_frame_equal(bc.custom("scores"), frame)
    assert bc.custom("my_table")["a"].tolist() == [1, 2, 3]


def test_unknown_custom_table_lists_the_custom_tables(local_root: Path) -> None:
    with pytest.raises(UnknownCustomTableError) as info:
        bc.custom("nope")
    url = (local_root / FOLDER / "custom" / "nope.pqt").as_uri()
    assert str(info.value) == (
        f"no custom table 'nope' in bdc-v1.0 ({url} does not exist); custom tables: my_table"
    )


def test_bad_custom_name() -> None:
    with pytest.raises(ValueError, match=r"^bad custom table name '\.\./x'"):
        bc.custom("../x")


# -- registry, versions, reports --------------------------------------------------------
def test_get_cache_registry() -> None:
    registry = bc.get_cache_registry()
    assert registry.version == FOLDER
    assert registry.names == [spec.name for spec in catalog.ALL_TABLES]
    entry = registry["asset_basics"]
    assert entry.location == "s3://bdc-test/data-asset-cache/bdc-v1.0/asset_basics.pqt"
    assert entry.columns[0].name == "_id" and entry.columns[0].type == "string"
    assert entry.rows == 8 and entry.status == "ok" and entry.last_run_id == RUN_ID
    assert registry["quality_control"].partition_key == "subject_id"
    frame = registry.to_frame()
    assert frame.loc[frame["name"] == "asset_basics", "rows"].item() == 8
    assert "asset_basics" in registry and len(registry) == len(catalog.ALL_TABLES)


def test_list_versions_is_semver_ordered() -> None:
    assert bc.list_versions() == ["bdc-v0.9", "bdc-v0.10", "bdc-v1.0"]


def test_run_report() -> None:
    assert bc.run_report() == run_report_document()
    assert bc.run_report(RUN_ID)["run_id"] == RUN_ID
    with pytest.raises(MissingObjectError) as info:
        bc.run_report("nope")
    assert str(info.value).startswith("no run report for run 'nope' in bdc-v1.0 (file://")
    assert str(info.value).endswith("/bdc-v1.0/_runs/nope.json does not exist)")


def test_no_run_finished_yet(local_root: Path) -> None:
    (local_root / FOLDER / "_runs" / "latest.json").unlink()
    with pytest.raises(MissingObjectError, match=r"^no run has finished in bdc-v1\.0 \(file://"):
        bc.run_report()


# -- versions ---------------------------------------------------------------------------
def test_pinning_an_older_version() -> None:
    assert len(bc.asset_basics(version="0.10")) == 2
    assert len(bc.asset_basics(version="bdc-v0.10")) == 2
    assert bc.get_cache_registry(version="0.10").names == ["asset_basics"]


def test_version_from_the_environment(monkeypatch: pytest.MonkeyPatch, local_root: Path) -> None:
    monkeypatch.setenv("BIODATA_CACHE_VERSION", "0.10")
    bc.configure(root=local_root.as_uri())
    assert len(bc.asset_basics()) == 2
    assert len(bc.asset_basics(version="1.0")) == 8  # the argument wins


def test_unknown_version_lists_available_versions(local_root: Path) -> None:
    with pytest.raises(VersionNotFoundError) as info:
        bc.asset_basics(version="9.9")
    assert str(info.value) == (
        f"cache version bdc-v9.9 does not exist in {local_root.as_uri()}/; available versions: "
        "bdc-v0.9, bdc-v0.10, bdc-v1.0 (pass version=... or set BIODATA_CACHE_VERSION)"
    )
    for call in (
        lambda: bc.qc("100001", version="9.9"),
        lambda: bc.unique_subject_ids(version="9.9"),
        lambda: bc.platform_qc("slap2", version="9.9"),
        lambda: bc.custom("nope", version="9.9"),
        lambda: bc.get_cache_registry(version="9.9"),
        lambda: bc.sql("SELECT 1 FROM platform_fib", version="9.9"),
    ):
        with pytest.raises(VersionNotFoundError, match=r"^cache version bdc-v9\.9 does not exist"):
            call()


def test_listed_version_without_registry(local_root: Path) -> None:
    with pytest.raises(MissingObjectError) as info:
        bc.get_cache_registry(version="0.9")
    assert str(info.value) == (
        f"{(local_root / 'bdc-v0.9' / 'cache_registry.json').as_uri()} does not exist although "
        "cache_versions.json lists bdc-v0.9; its first build may not have finished"
    )


def test_malformed_version() -> None:
    with pytest.raises(ValueError) as info:
        bc.asset_basics(version="latest")
    assert str(info.value) == (
        "not a cache version: 'latest' (expected MAJOR.MINOR such as '1.0' "
        "or a folder name such as 'bdc-v1.0')"
    )


def test_root_without_cache(tmp_path: Path) -> None:
    bc.configure(root=str(tmp_path / "empty"))
    with pytest.raises(MissingObjectError) as info:
        bc.list_versions()
    empty = (tmp_path / "empty").as_uri()
    assert str(info.value) == (
        f"no biodata-cache tables at {empty}/: {empty}/cache_versions.json does not exist "
        "(check BIODATA_CACHE_BUCKET / BIODATA_CACHE_PREFIX or BIODATA_CACHE_ROOT)"
    )


# -- missing and damaged objects --------------------------------------------------------
def test_table_missing_from_an_older_version() -> None:
    with pytest.raises(UnknownTableError) as info:
        bc.platform_fib(version="0.10")
    assert (
        str(info.value) == "table 'platform_fib' is not in cache version bdc-v0.10; its tables: asset_basics"
    )


def test_registry_names_a_missing_file(local_root: Path) -> None:
    path = local_root / FOLDER / "time_to_qc.pqt"
    path.unlink()
    with pytest.raises(MissingObjectError) as info:
        bc.time_to_qc()
    assert str(info.value) == (
        f"{path.as_uri()} does not exist, although cache_registry.json of bdc-v1.0 lists "
        "table 'time_to_qc' (status: ok)"
    )


def test_corrupt_parquet_is_an_error_naming_the_object(local_root: Path) -> None:
    path = local_root / FOLDER / "source_data.pqt"
    path.write_bytes(path.read_bytes()[:-40])  # truncated
    with pytest.raises(CorruptObjectError) as info:
        bc.source_data()
    message = str(info.value)
    assert message.startswith(f"{path.as_uri()} is not a readable parquet file (")
    assert message.endswith("); no data was returned. If this persists, rebuild the table.")


def test_partitioned_read_reads_partitions_as_they_are_now(local_root: Path) -> None:
    cache = bc.get_cache()
    assert cache.read_arrow("quality_control").num_rows == 4  # the listing is now kept
    path = local_root / FOLDER / "qc" / "subject_id=100001" / "data.pqt"
    rows = build_partitions()[("quality_control", "100001")]
    pq.write_table(rows.slice(0, 1), path)
    assert sorted(cache.read_arrow("quality_control").column("name").to_pylist()) == ["drift", "focus"]
    assert bc.sql("SELECT count(*) AS n FROM quality_control")["n"].item() == 2
    path.write_bytes(path.read_bytes()[:-40])  # truncated
    for filters in (None, [("subject_id", "=", "100001")]):
        with pytest.raises(CorruptObjectError) as info:
            cache.read_arrow("quality_control", filters=filters)
        assert str(info.value).startswith(f"{path.as_uri()} is not a readable parquet file (")
    assert cache.read_arrow("quality_control", filters=[("subject_id", "=", "100002")]).num_rows == 1


def test_partitioned_read_with_a_bad_filter_names_the_table() -> None:
    with pytest.raises(
        ValueError, match=r"^cannot apply filters \[\('nope', '=', 1\)\] to table 'quality_control': "
    ):
        bc.read_table("quality_control", filters=[("nope", "=", 1)])


def test_registry_lists_a_partitioned_table_this_package_does_not_know(local_root: Path) -> None:
    registry_path = local_root / FOLDER / "cache_registry.json"
    document = json.loads(registry_path.read_text())
    document["tables"].append(
        {
            **document["tables"][0],
            "name": "future_parts",
            "location": "s3://bdc-test/data-asset-cache/bdc-v1.0/future_parts/",
            "partitioned": True,
            "partition_key": "batch",
        }
    )
    registry_path.write_text(json.dumps(document))
    for batch, values in (("a", [1, 2]), ("b", [3])):
        folder = local_root / FOLDER / "future_parts" / f"batch={batch}"
        folder.mkdir(parents=True)
        pq.write_table(pa.table({"x": values}), folder / "data.pqt")
    assert sorted(bc.read_table("future_parts")["x"].tolist()) == [1, 2, 3]
    assert bc.read_table("future_parts", filters=[("batch", "=", "b")])["x"].tolist() == [3]
    assert bc.sql("SELECT sum(x) AS s FROM future_parts WHERE batch = 'a'")["s"].item() == 3


def test_corrupt_registry(local_root: Path) -> None:
    path = local_root / FOLDER / "cache_registry.json"
    path.write_text("{not json")
    with pytest.raises(CorruptObjectError, match=rf"^{path.as_uri()} is not valid JSON \("):
        bc.get_cache_registry()


def test_registry_lists_a_table_this_package_does_not_know(local_root: Path) -> None:
    registry_path = local_root / FOLDER / "cache_registry.json"
    document = json.loads(registry_path.read_text())
    document["tables"].append(
        {
            **document["tables"][0],
            "name": "future_table",
            "location": "s3://bdc-test/data-asset-cache/bdc-v1.0/future_table.pqt",
        }
    )
    registry_path.write_text(json.dumps(document))
    (local_root / FOLDER / "future_table.pqt").write_bytes(
        (local_root / FOLDER / "unique_genotypes.pqt").read_bytes()
    )
    assert bc.read_table("future_table")["genotype"].tolist() == ["wt/wt"]
    assert bc.sql("SELECT count(*) AS n FROM future_table")["n"].item() == 1


# -- SQL ------------------------------------------------------------------------------
def test_sql_joins_tables() -> None:
    frame = bc.sql(
        "SELECT a.name, q.name AS metric FROM asset_basics a JOIN quality_control q "
        "ON a.name = q.asset_name WHERE q.subject_id = '100001' ORDER BY metric"
    )
    assert frame.to_dict("records") == [
        {"name": RAW_A, "metric": "drift"},
        {"name": DER_A2, "metric": "noise"},
        {"name": DER_A1, "metric": "yield"},
    ]


def test_sql_join_using_and_list_columns() -> None:
    frame = bc.sql(
        "SELECT subject_id, count(*) AS n, any_value(modalities) AS m FROM asset_basics "
        "JOIN quality_control USING (subject_id) WHERE subject_id = '100002' GROUP BY subject_id"
    )
    assert frame["n"].item() == 2
    assert frame["m"].iloc[0] == ["SPIM"]


def test_sql_lazy_returns_a_relation() -> None:
    relation = bc.sql("SELECT asset_name FROM platform_fib", lazy=True)
    assert isinstance(relation, duckdb.DuckDBPyRelation)
    assert relation.fetchall() == [("fib_1",)]


def test_sql_partitioned_table_without_partitions(local_root: Path) -> None:
    import shutil

    shutil.rmtree(local_root / FOLDER / "platform_qc")
    assert bc.sql("SELECT count(*) AS n FROM platform_qc")["n"].item() == 0


def test_connect_registers_every_table() -> None:
    connection = bc.connect()
    views = {row[0] for row in connection.sql("SHOW TABLES").fetchall()}
    assert views == set(catalog.TABLES)
    assert connection.sql("SELECT count(*) FROM qc_tag_status").fetchall() == [(2,)]
    assert connection.sql("SELECT count(*) FROM platform_qc WHERE platform = 'fib'").fetchall() == [(1,)]


def test_connect_skips_tables_not_built_yet(local_root: Path) -> None:
    (local_root / FOLDER / "time_to_qc.pqt").unlink()
    with pytest.warns(UserWarning, match="table 'time_to_qc' skipped"):
        connection = bc.connect()
    assert "time_to_qc" not in {row[0] for row in connection.sql("SHOW TABLES").fetchall()}
    with pytest.raises(MissingObjectError):
        bc.connect(["time_to_qc"])


def test_connect_named_tables_only() -> None:
    connection = bc.connect(["platform_fib"])
    assert {row[0] for row in connection.sql("SHOW TABLES").fetchall()} == {"platform_fib"}


def test_sql_syntax_errors_come_from_duckdb() -> None:
    with pytest.raises(duckdb.ParserException):
        bc.sql("SELEC 1")


def test_no_warnings_on_the_happy_path() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bc.asset_basics()
        bc.qc("100001")
        bc.sql("SELECT count(*) FROM asset_basics")
