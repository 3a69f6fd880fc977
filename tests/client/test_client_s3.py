"""The client against S3: a moto server (HTTP, like the local stack) and a scripted fake
endpoint for the access paths moto cannot produce. Request counts come from the
server's own log, so they are what went over the wire.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from cache_fixtures import (
    BUCKET,
    FOLDER,
    RAW_A,
    RAW_B,
    FakeS3,
    MotoServer,
    _upload,
    build_partitions,
    free_port,
    parquet,
    root_objects,
    s3_client,
)

import biodata_cache as bc
from biodata_cache import catalog, layout
from biodata_cache.errors import (
    AccessDeniedError,
    BiodataCacheError,
    CorruptObjectError,
    EndpointUnreachableError,
    MissingObjectError,
    UnknownPlatformError,
    UnknownSubjectError,
    UnknownTableError,
    VersionNotFoundError,
)
from biodata_cache.reader import Cache

KEY = f"/{BUCKET}/{layout.ROOT_PREFIX}/{FOLDER}"


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def s3(moto_server: MotoServer, cache_dir: Path) -> Cache:
    """The module functions and this Cache read the moto bucket."""
    bc.configure(bucket=BUCKET, endpoint_url=moto_server.endpoint, cache_dir=cache_dir)
    return bc.get_cache()


@pytest.fixture
def local(local_root: Path, tmp_path: Path) -> Cache:
    return Cache(root=local_root, cache_dir=tmp_path / "unused")


def _data_gets(requests: list[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    return [r for r in requests if r[0] == "GET" and "?" not in r[1]]


# -- every function reads the same data as from a local root ----------------------------
CALLS: dict[str, Callable[[Any], Any]] = {
    **{
        spec.function_name: (lambda n: lambda c: c.unique(n))(spec.name)
        for spec in catalog.ALL_TABLES
        if spec.returns == "values"
    },
    **{
        spec.function_name: (lambda n: lambda c: c.read(n))(spec.name)
        for spec in catalog.ALL_TABLES
        if spec.returns == "frame" and not spec.partitioned
    },
    "qc": lambda c: c.qc("100001"),
    "qc_asset_names": lambda c: c.qc("100001", asset_names=[RAW_A]),
    "qc_empty": lambda c: c.qc("100003"),
    "qc_tag_status": lambda c: c.qc_tag_status("100001"),
    "platform_qc": lambda c: c.platform_qc("spim"),
    "platform_qc_empty": lambda c: c.platform_qc("vr"),
    "raw_to_derived": lambda c: c.raw_to_derived([RAW_A, RAW_B], latest=True, modality="e"),
    "custom": lambda c: c.custom("my_table"),
    "get_cache_registry": lambda c: c.registry().raw,
    "list_versions": lambda c: c.list_versions(),
    "run_report": lambda c: c.run_report(),
    "sql": lambda c: c.sql(
        "SELECT a.name, q.status FROM asset_basics a JOIN quality_control q ON a.name = q.asset_name "
        "WHERE q.subject_id = '100001' ORDER BY 1"
    ),
    "read_table_partitioned": lambda c: c.read("qc_tag_status", filters=[("subject_id", "=", "100001")]),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_s3_reads_what_the_local_root_holds(name: str, s3: Cache, local: Cache) -> None:
    from_s3, from_disk = CALLS[name](s3), CALLS[name](local)
    if isinstance(from_disk, pd.DataFrame):
        pd.testing.assert_frame_equal(from_s3, from_disk)
        # and again, from the local cache
        pd.testing.assert_frame_equal(CALLS[name](s3), from_disk)
    else:
        assert from_s3 == from_disk


def test_module_functions_against_s3(s3: Cache) -> None:
    assert bc.unique_subject_ids() == ["100001", "100002", "100003"]
    assert len(bc.asset_basics(columns=["name"])) == 8
    assert bc.qc("100001", lazy=True).endswith("qc/subject_id=100001/data.pqt")
    assert bc.list_versions()[-1] == FOLDER


# -- what goes over the wire ---------------------------------------------------------------
def test_first_read_is_one_get_and_second_read_one_small_conditional_get(
    s3: Cache, moto_server: MotoServer
) -> None:
    moto_server.mark()
    first = bc.asset_basics()
    assert moto_server.since_mark() == [("GET", f"{KEY}/asset_basics.pqt", 200)]
    moto_server.mark()
    second = bc.asset_basics()
    assert moto_server.since_mark() == [("GET", f"{KEY}/asset_basics.pqt", 304)]
    pd.testing.assert_frame_equal(first, second)


def test_second_read_in_a_new_process_uses_the_disk_cache(
    s3: Cache, moto_server: MotoServer, cache_dir: Path
) -> None:
    bc.source_data()
    fresh = Cache(bucket=BUCKET, endpoint_url=moto_server.endpoint, cache_dir=cache_dir)
    moto_server.mark()
    fresh.read("source_data")
    assert moto_server.since_mark() == [("GET", f"{KEY}/source_data.pqt", 304)]


def test_qc_of_one_subject_is_one_get(s3: Cache, moto_server: MotoServer) -> None:
    moto_server.mark()
    bc.qc("100002")
    assert moto_server.since_mark() == [("GET", f"{KEY}/qc/subject_id=100002/data.pqt", 200)]
    moto_server.mark()
    path = bc.qc("100002", lazy=True)  # the same file, revalidated
    assert moto_server.since_mark() == [("GET", f"{KEY}/qc/subject_id=100002/data.pqt", 304)]
    assert Path(path).is_file()


def test_sql_reads_only_the_partitions_it_needs(s3: Cache, moto_server: MotoServer) -> None:
    moto_server.mark()
    frame = bc.sql(
        "SELECT asset_basics.name, status FROM asset_basics JOIN quality_control USING (subject_id) "
        "WHERE subject_id = '100002'"
    )
    assert len(frame) == 2
    partition_gets = {r[1] for r in _data_gets(moto_server.since_mark()) if "/qc/" in r[1]}
    assert partition_gets == {f"{KEY}/qc/subject_id=100002/data.pqt"}


def test_sql_projection_reads_only_needed_columns(s3: Cache) -> None:
    dataset = s3.dataset("quality_control")
    assert dataset is not None
    fragments = list(dataset.get_fragments(filter=pa.compute.field("subject_id") == "100001"))
    assert [f.path.rsplit("/", 2)[-2] for f in fragments] == ["subject_id=100001"]


def test_object_changed_on_s3_is_downloaded_again(
    moto_server: MotoServer, scratch_bucket: str, cache_dir: Path
) -> None:
    cache = Cache(bucket=scratch_bucket, endpoint_url=moto_server.endpoint, cache_dir=cache_dir)
    assert cache.unique("unique_genotypes") == ["wt/wt"]
    s3_client(moto_server.endpoint).put_object(
        Bucket=scratch_bucket,
        Key=f"{layout.table_key(FOLDER, 'unique_genotypes')}",
        Body=parquet(pa.table({"genotype": ["Ai14/wt", "wt/wt"]})),
    )
    assert cache.unique("unique_genotypes") == ["Ai14/wt", "wt/wt"]


def test_damaged_cache_file_is_replaced(s3: Cache, cache_dir: Path) -> None:
    expected = bc.platform_fib()
    s3.cache_usage()  # waits for the background write
    (arrow_file,) = cache_dir.rglob("platform_fib.pqt.arrow")
    arrow_file.write_bytes(b"garbage" * 10)
    pd.testing.assert_frame_equal(bc.platform_fib(), expected)
    bc.qc("100001")
    (partition,) = cache_dir.rglob("subject_id=100001/data.pqt")
    partition.write_bytes(b"PAR1" + b"\0" * (partition.stat().st_size - 4))
    assert len(bc.qc("100001")) == 3


def test_bypassing_the_cache(s3: Cache, moto_server: MotoServer, cache_dir: Path) -> None:
    bc.platform_exaspim()
    moto_server.mark()
    bc.platform_exaspim(use_cache=False)
    bc.platform_exaspim(use_cache=False)
    assert [r[2] for r in moto_server.since_mark()] == [200, 200]


def test_no_cache_environment_variable(
    monkeypatch: pytest.MonkeyPatch, moto_server: MotoServer, cache_dir: Path
) -> None:
    monkeypatch.setenv("BIODATA_CACHE_NO_CACHE", "1")
    bc.configure(bucket=BUCKET, endpoint_url=moto_server.endpoint, cache_dir=cache_dir)
    moto_server.mark()
    bc.platform_exaspim()
    bc.platform_exaspim()
    assert [r[2] for r in moto_server.since_mark()] == [200, 200]
    assert not cache_dir.exists()


def test_clear_cache(s3: Cache, moto_server: MotoServer, cache_dir: Path) -> None:
    bc.asset_basics()
    bc.qc("100001")
    files, size = s3.cache_usage()
    assert files == 2 and size > 0
    assert bc.clear_cache() == size
    assert s3.cache_usage() == (0, 0)
    assert cache_dir.is_dir()  # only objects/ goes
    moto_server.mark()
    bc.asset_basics()
    assert [r[2] for r in moto_server.since_mark()] == [200]


def test_progress_bar_on_a_terminal(
    s3: Cache, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import biodata_cache._storage as storage

    monkeypatch.setattr(storage, "_STREAM_BYTES", 0)
    monkeypatch.setattr(storage, "_BAR_NOW_BYTES", 0)
    monkeypatch.setattr(storage, "_stderr_is_tty", lambda: True)
    assert len(bc.asset_basics()) == 8
    assert "bdc-v1.0/asset_basics.pqt" in capsys.readouterr().err
    monkeypatch.setattr(storage, "_stderr_is_tty", lambda: False)
    bc.source_data()
    assert capsys.readouterr().err == ""


# -- configuration --------------------------------------------------------------------------
def test_configuration_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, moto_server: MotoServer, cache_dir: Path
) -> None:
    monkeypatch.setenv("BIODATA_CACHE_BUCKET", BUCKET)
    monkeypatch.setenv("BIODATA_CACHE_S3_ENDPOINT", moto_server.endpoint)
    monkeypatch.setenv("BIODATA_CACHE_DIR", str(cache_dir))
    assert bc.unique_genotypes() == ["wt/wt"]
    assert bc.get_cache().cache_usage()[0] == 1
    assert any(cache_dir.rglob("unique_genotypes.pqt.arrow"))


def test_aws_endpoint_url_is_honoured(monkeypatch: pytest.MonkeyPatch, moto_server: MotoServer) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint)
    monkeypatch.setenv("BIODATA_CACHE_ROOT", f"s3://{BUCKET}/data-asset-cache")
    assert bc.unique_genotypes() == ["wt/wt"]


def test_another_prefix(monkeypatch: pytest.MonkeyPatch, moto_server: MotoServer) -> None:
    bucket = "bdc-prefixed"
    _upload(moto_server.endpoint, bucket, root_objects(bucket), prefix="team/cache")
    monkeypatch.setenv("BIODATA_CACHE_BUCKET", bucket)
    monkeypatch.setenv("BIODATA_CACHE_PREFIX", "team/cache")
    monkeypatch.setenv("BIODATA_CACHE_S3_ENDPOINT", moto_server.endpoint)
    assert len(bc.qc("100001")) == 3
    assert bc.list_versions()[-1] == FOLDER
    assert len(bc.sql("SELECT * FROM qc_tag_status WHERE subject_id = '100001'")) == 2


# -- credentials --------------------------------------------------------------------------
def test_public_bucket_without_credentials(
    no_credentials: None, moto_server: MotoServer, cache_dir: Path
) -> None:
    bc.configure(bucket=BUCKET, endpoint_url=moto_server.endpoint, cache_dir=cache_dir)
    assert bc.unique_subject_ids() == ["100001", "100002", "100003"]
    assert len(bc.sql("SELECT * FROM quality_control WHERE subject_id = '100001'")) == 3


def test_forced_anonymous_reads_a_public_bucket(moto_server: MotoServer, cache_dir: Path) -> None:
    bc.configure(bucket=BUCKET, endpoint_url=moto_server.endpoint, cache_dir=cache_dir, anonymous=True)
    assert len(bc.platform_qc("spim")) == 1


def test_private_bucket_without_credentials(
    no_credentials: None, moto_server: MotoServer, private_bucket: str, cache_dir: Path
) -> None:
    bc.configure(bucket=private_bucket, endpoint_url=moto_server.endpoint, cache_dir=cache_dir)
    with pytest.raises(AccessDeniedError) as info:
        bc.asset_basics()
    assert str(info.value) == (
        f"access denied to s3://{private_bucket}/data-asset-cache/{FOLDER}/asset_basics.pqt: "
        "this bucket is not public and no AWS credentials were found. Provide credentials "
        "(AWS_PROFILE, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or `aws sso login`) and try again."
    )


def test_private_bucket_with_credentials(
    moto_server: MotoServer, private_bucket: str, cache_dir: Path
) -> None:
    bc.configure(bucket=private_bucket, endpoint_url=moto_server.endpoint, cache_dir=cache_dir)
    assert len(bc.asset_basics()) == 8
    assert len(bc.sql("SELECT * FROM platform_qc WHERE platform = 'fib'")) == 1


def test_private_bucket_with_anonymous_forced(
    moto_server: MotoServer, private_bucket: str, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BIODATA_CACHE_ANONYMOUS", "true")
    bc.configure(bucket=private_bucket, endpoint_url=moto_server.endpoint, cache_dir=cache_dir)
    with pytest.raises(AccessDeniedError) as info:
        bc.unique_genotypes()
    assert str(info.value) == (
        f"access denied to s3://{private_bucket}/data-asset-cache/{FOLDER}/unique_genotypes.pqt: "
        "anonymous access is switched on (BIODATA_CACHE_ANONYMOUS or anonymous=True) and this "
        "bucket is not public; switch it off and provide AWS credentials."
    )


def test_custom_round_trip_on_s3(moto_server: MotoServer, scratch_bucket: str, cache_dir: Path) -> None:
    bc.configure(bucket=scratch_bucket, endpoint_url=moto_server.endpoint, cache_dir=cache_dir)
    frame = pd.DataFrame({"x": [1, 2]}, index=pd.Index(["a", "b"], name="key"))
    bc.custom("scores", frame)
    pd.testing.assert_frame_equal(bc.custom("scores"), frame)
    bc.custom("scores", frame.iloc[:1])  # overwrite: the next read revalidates and sees it
    assert len(bc.custom("scores")) == 1
    assert bc.get_cache().custom_names() == ["my_table", "scores"]


def test_custom_write_without_credentials(
    no_credentials: None, fake_s3: Callable[..., FakeS3], cache_dir: Path
) -> None:
    fake = fake_s3(lambda method, path, signed: (403, "AccessDenied", b""))
    bc.configure(bucket="priv", endpoint_url=fake.endpoint, cache_dir=cache_dir)
    with pytest.raises(AccessDeniedError) as info:
        bc.custom("mine", pd.DataFrame({"x": [1]}))
    assert str(info.value) == (
        f"writing s3://priv/data-asset-cache/{FOLDER}/custom/mine.pqt needs AWS "
        "credentials with s3:PutObject on bucket 'priv', and no AWS credentials "
        "were found. Provide credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY, or `aws sso login`) and try again."
    )
    assert fake.seen == [("PUT", f"/priv/data-asset-cache/{FOLDER}/custom/mine.pqt", False)]


def test_rejected_credentials_fall_back_to_unsigned(fake_s3: Callable[..., FakeS3], cache_dir: Path) -> None:
    versions = json.dumps(["bdc-v1.0"]).encode()

    def respond(method: str, path: str, signed: bool) -> tuple[int, str | None, bytes]:
        if signed:
            return 403, "ExpiredToken", b""
        return 200, None, versions

    fake = fake_s3(respond)
    cache = Cache(bucket="pub", endpoint_url=fake.endpoint, cache_dir=cache_dir)
    assert cache.list_versions() == ["bdc-v1.0"]
    signed = [signed for _, _, signed in fake.seen]
    # The versions file signed (refused), then unsigned; the root listing that follows
    # (list_versions also lists bdc-v* folders; this fake cannot answer it) stays unsigned.
    assert signed[:2] == [True, False] and not any(signed[2:])
    assert [method for method, _, _ in fake.seen[:2]] == ["GET", "GET"]


def test_rejected_credentials_on_a_private_bucket(fake_s3: Callable[..., FakeS3], cache_dir: Path) -> None:
    fake = fake_s3(lambda method, path, signed: (403, "ExpiredToken" if signed else "AccessDenied", b""))
    cache = Cache(bucket="priv", endpoint_url=fake.endpoint, cache_dir=cache_dir)
    with pytest.raises(AccessDeniedError) as info:
        cache.list_versions()
    assert str(info.value) == (
        "access denied to s3://priv/data-asset-cache/cache_versions.json: your AWS credentials "
        "were rejected (ExpiredToken) and this bucket is not public. Refresh them (for example "
        "`aws sso login`) and try again."
    )


def test_denied_with_credentials_names_the_permission(
    fake_s3: Callable[..., FakeS3], cache_dir: Path
) -> None:
    fake = fake_s3(lambda method, path, signed: (403, "AccessDenied", b""))
    cache = Cache(bucket="priv", endpoint_url=fake.endpoint, cache_dir=cache_dir, anonymous=False)
    with pytest.raises(AccessDeniedError) as info:
        cache.list_versions()
    assert str(info.value) == (
        "access denied to s3://priv/data-asset-cache/cache_versions.json with the AWS credentials "
        "found (env): they need s3:GetObject on bucket 'priv'."
    )


def test_403_for_a_missing_key_in_a_readable_bucket_means_missing(
    fake_s3: Callable[..., FakeS3], cache_dir: Path
) -> None:
    """Buckets that grant GetObject but not ListBucket answer 403 for absent keys."""
    versions = json.dumps(["bdc-v1.0"]).encode()

    def respond(method: str, path: str, signed: bool) -> tuple[int, str | None, bytes]:
        if path.endswith("/cache_versions.json"):
            return 200, None, versions
        return 403, "AccessDenied", b""

    fake = fake_s3(respond)
    cache = Cache(bucket="pub", endpoint_url=fake.endpoint, cache_dir=cache_dir, version="2.0")
    with pytest.raises(VersionNotFoundError) as info:
        cache.read("asset_basics")
    assert str(info.value) == (
        "cache version bdc-v2.0 does not exist in s3://pub/data-asset-cache/; available versions: "
        "bdc-v1.0 (pass version=... or set BIODATA_CACHE_VERSION)"
    )


def test_interrupted_download(fake_s3: Callable[..., FakeS3], cache_dir: Path) -> None:
    fake = fake_s3(lambda method, path, signed: (200, None, b'["bdc-v1.0"]'))
    fake.claim_length = 1000  # the connection closes after 11 of 1000 bytes
    cache = Cache(bucket="pub", endpoint_url=fake.endpoint, cache_dir=cache_dir, max_attempts=1)
    with pytest.raises(BiodataCacheError) as info:
        cache.list_versions()
    assert str(info.value).startswith("download of s3://pub/data-asset-cache/cache_versions.json ")


# -- errors -----------------------------------------------------------------------------
def test_unreachable_endpoint(cache_dir: Path) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    bc.configure(bucket=BUCKET, endpoint_url=endpoint, cache_dir=cache_dir, max_attempts=1)
    with pytest.raises(EndpointUnreachableError) as info:
        bc.asset_basics()
    assert str(info.value) == (
        f"cannot reach the S3 endpoint {endpoint}: Could not connect to the endpoint URL: "
        f'"{endpoint}/{BUCKET}/data-asset-cache/{FOLDER}/asset_basics.pqt"'
    )


def test_unknown_bucket(moto_server: MotoServer, cache_dir: Path) -> None:
    bc.configure(bucket="no-such-bucket", endpoint_url=moto_server.endpoint, cache_dir=cache_dir)
    with pytest.raises(MissingObjectError) as info:
        bc.list_versions()
    assert str(info.value) == (
        f"bucket 'no-such-bucket' does not exist at {moto_server.endpoint}; "
        "check BIODATA_CACHE_BUCKET / BIODATA_CACHE_ROOT"
    )


def test_unknown_version_on_s3(s3: Cache) -> None:
    with pytest.raises(VersionNotFoundError) as info:
        bc.asset_basics(version="3.1")
    assert str(info.value) == (
        f"cache version bdc-v3.1 does not exist in s3://{BUCKET}/data-asset-cache/; available "
        "versions: bdc-v0.9, bdc-v0.10, bdc-v1.0 (pass version=... or set BIODATA_CACHE_VERSION)"
    )


def test_unknown_table_subject_platform_on_s3(s3: Cache) -> None:
    with pytest.raises(UnknownTableError, match=r"^unknown table 'nope'; known tables: asset_basics, "):
        bc.read_table("nope")
    with pytest.raises(UnknownSubjectError) as info:
        bc.qc("123")
    assert str(info.value) == (
        "unknown subject_id '123': no quality_control partition in bdc-v1.0 and not in unique_subject_ids"
    )
    with pytest.raises(UnknownPlatformError, match=r"^unknown platform 'x'; platforms: spim, fib, vr"):
        bc.platform_qc("x")


def test_corrupt_object_on_s3(moto_server: MotoServer, scratch_bucket: str, cache_dir: Path) -> None:
    key = layout.table_key(FOLDER, "behavior_curriculum")
    good = s3_client(moto_server.endpoint).get_object(Bucket=scratch_bucket, Key=key)["Body"].read()
    s3_client(moto_server.endpoint).put_object(Bucket=scratch_bucket, Key=key, Body=good[: len(good) // 2])
    bc.configure(bucket=scratch_bucket, endpoint_url=moto_server.endpoint, cache_dir=cache_dir)
    with pytest.raises(CorruptObjectError) as info:
        bc.behavior_curriculum()
    assert str(info.value).startswith(f"s3://{scratch_bucket}/{key} is not a readable parquet file (")
    assert bc.get_cache().cache_usage() == (0, 0)  # nothing wrong was kept
    qc_key = layout.partition_key(FOLDER, "qc", "subject_id", "100001")
    s3_client(moto_server.endpoint).put_object(Bucket=scratch_bucket, Key=qc_key, Body=b"not parquet")
    with pytest.raises(CorruptObjectError, match=f"^s3://{scratch_bucket}/{qc_key} is not a readable"):
        bc.qc("100001", lazy=True)


# -- a partitioned table whose objects change while its listing is kept ----------------------
def _qc_reader(moto_server: MotoServer, bucket: str, cache_dir: Path) -> Cache:
    return Cache(bucket=bucket, endpoint_url=moto_server.endpoint, cache_dir=cache_dir)


def test_partitioned_read_sees_a_partition_rewritten_within_registry_ttl(
    moto_server: MotoServer, scratch_bucket: str, cache_dir: Path
) -> None:
    cache = _qc_reader(moto_server, scratch_bucket, cache_dir)
    assert cache.read_arrow("quality_control").num_rows == 4
    assert cache.sql("SELECT count(*) AS n FROM quality_control")["n"].item() == 4
    key = layout.partition_key(FOLDER, "qc", "subject_id", "100001")
    rows = build_partitions()[("quality_control", "100001")]
    s3_client(moto_server.endpoint).put_object(Bucket=scratch_bucket, Key=key, Body=parquet(rows.slice(0, 1)))
    # The listing is still within registry_ttl; the partition's content is read as it is now.
    assert sorted(cache.read_arrow("quality_control").column("name").to_pylist()) == ["drift", "focus"]
    filtered = cache.read_arrow("quality_control", ["name"], [("subject_id", "=", "100001")])
    assert filtered.column("name").to_pylist() == ["drift"]
    assert cache.sql("SELECT count(*) AS n FROM quality_control")["n"].item() == 2
    assert cache.qc("100001")["name"].tolist() == ["drift"]


def test_partitioned_read_names_a_truncated_partition(
    moto_server: MotoServer, scratch_bucket: str, cache_dir: Path
) -> None:
    warm = _qc_reader(moto_server, scratch_bucket, cache_dir)
    assert warm.read_arrow("quality_control").num_rows == 4
    key = layout.partition_key(FOLDER, "qc", "subject_id", "100001")
    client = s3_client(moto_server.endpoint)
    good = client.get_object(Bucket=scratch_bucket, Key=key)["Body"].read()
    client.put_object(Bucket=scratch_bucket, Key=key, Body=good[: len(good) // 2])
    cold = _qc_reader(moto_server, scratch_bucket, cache_dir)
    for reader in (warm, cold):
        for filters in (None, [("subject_id", "in", ["100001", "100002"])]):
            with pytest.raises(CorruptObjectError) as info:
                reader.read_arrow("quality_control", filters=filters)
            assert str(info.value).startswith(f"s3://{scratch_bucket}/{key} is not a readable parquet file (")
        with pytest.raises(CorruptObjectError) as info:  # DuckDB scanning the partitions
            reader.sql("SELECT count(*) AS n FROM quality_control")
        assert str(info.value).startswith(f"s3://{scratch_bucket}/{key} is not a readable parquet file (")
    # Partitions the filter rules out are not read at all, so they do not fail.
    assert cold.read_arrow("quality_control", filters=[("subject_id", "=", "100002")]).num_rows == 1
    client.put_object(Bucket=scratch_bucket, Key=key, Body=good)
    assert warm.read_arrow("quality_control").num_rows == 4


def test_partitioned_read_goes_through_the_local_cache(s3: Cache, moto_server: MotoServer) -> None:
    qc = f"{KEY}/qc/subject_id="
    s3.read_arrow("quality_control")
    moto_server.mark()
    again = s3.read_arrow("quality_control", ["name"], [("subject_id", "=", "100002")])
    assert again.column("name").to_pylist() == ["focus"]
    assert moto_server.since_mark() == [("GET", f"{qc}100002/data.pqt", 304)]
    moto_server.mark()
    assert s3.read_arrow("quality_control").num_rows == 4
    assert sorted(_data_gets(moto_server.since_mark())) == [
        ("GET", f"{qc}100001/data.pqt", 304),
        ("GET", f"{qc}100002/data.pqt", 304),
    ]


def test_partition_deleted_since_the_listing_is_listed_again(
    moto_server: MotoServer, scratch_bucket: str, cache_dir: Path
) -> None:
    cache = _qc_reader(moto_server, scratch_bucket, cache_dir)
    assert cache.read_arrow("quality_control").num_rows == 4
    key = layout.partition_key(FOLDER, "qc", "subject_id", "100001")
    s3_client(moto_server.endpoint).delete_object(Bucket=scratch_bucket, Key=key)
    assert cache.read_arrow("quality_control").column("name").to_pylist() == ["focus"]
