"""Fixtures of the client tests: a cache root on disk, the same root in a moto S3 server,
and a tiny fake S3 endpoint for the access-denied paths moto cannot produce.

The root follows ``biodata_cache.layout`` exactly (versions list, registry, tables,
partitions, run reports, a custom table), so the tests read what the Lambdas write.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from biodata_cache import catalog, layout
from biodata_cache.config import ENVIRONMENT_VARIABLES

BUCKET = "bdc-test"
FOLDER = layout.package_folder()
OLD_FOLDER = "bdc-v0.10"
VERSIONS = ["bdc-v0.10", "bdc-v0.9", FOLDER]  # deliberately not in semver order
SUBJECTS = ["100001", "100002", "100003"]  # 100003 has no QC metrics
RUN_ID = "20260101T000000-abc"
RUN_TIME = datetime(2026, 1, 1, tzinfo=UTC)


def _t(spec: catalog.TableSpec, rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=spec.schema)


def _value(dtype: pa.DataType, column: str, i: int) -> Any:
    """A plausible value of one arrow type (strings name their column and row)."""
    if pa.types.is_list(dtype):
        return [_value(dtype.value_type, column, i)]
    if pa.types.is_string(dtype):
        return f"{column}-{i}"
    if pa.types.is_boolean(dtype):
        return i % 2 == 0
    if pa.types.is_integer(dtype):
        return i
    if pa.types.is_floating(dtype):
        return i / 4
    if pa.types.is_timestamp(dtype):
        return RUN_TIME
    raise TypeError(f"no fixture value for {dtype} ({column})")


def schema_rows(spec: catalog.TableSpec, count: int = 2, **fixed: Any) -> pa.Table:
    """``count`` rows made from the spec's column types, for a table without hand-made rows.

    A table declared in the catalog gets these until a test needs particular values.
    """
    rows = [
        {c.name: fixed.get(c.name, _value(c.type, c.name, i)) for c in spec.columns} for i in range(count)
    ]
    return _t(spec, rows)


def _basics_row(i: int, name: str, subject: str, level: str, modalities: list[str], **extra: Any) -> dict:
    row = {
        "_id": f"id{i:03d}",
        "_last_modified": "2026-01-01T00:00:00Z",
        "modalities": modalities,
        "project_name": extra.pop("project_name", "Project A"),
        "data_level": level,
        "subject_id": subject,
        "acquisition_start_time": "2025-06-01T10:00:00Z",
        "acquisition_end_time": "2025-06-01T11:00:00Z",
        "code_ocean": None,
        "process_date": "2025-06-02" if level == "derived" else None,
        "genotype": extra.pop("genotype", "wt/wt"),
        "age": 120 + i,
        "acquisition_type": "Coupled Baiting",
        "location": f"s3://aind-open-data/{name}",
        "name": name,
        "experimenters": ["Jane Doe"],
        "experimenters_normalized": ["Jane Doe"],
        "instrument_id": "323_EPHYS1_20240101",
        "instrument_id_normalized": "EPHYS1",
        "investigators": ["John Roe"],
        "investigators_normalized": ["John Roe"],
    }
    row.update(extra)
    return row


RAW_A = "ecephys_100001_2025-06-01_10-00-00"
RAW_B = "SmartSPIM_100002_2025-06-01_10-00-00"
DER_A1 = "ecephys_100001_2025-06-01_10-00-00_sorted_2025-06-02_00-00-00"
DER_A2 = "ecephys_100001_2025-06-01_10-00-00_sorted_2025-06-05_00-00-00"
DER_A3 = "ecephys_100001_2025-06-01_10-00-00_nwb_2025-06-03_00-00-00"
DER_A4 = "behavior_100001_2025-06-01_10-00-00_processed_2025-06-04_00-00-00"
DER_B1 = "SmartSPIM_100002_2025-06-01_10-00-00_stitched_2025-06-02_00-00-00"
TS = "2025-06-01T10:00:00+00:00"


def build_tables() -> dict[str, pa.Table]:
    """Every non-partitioned table of the catalog, small but realistic (``_made_tables``),
    and rows made from its schema for each other one."""
    made = _made_tables()
    return {
        spec.name: made[spec.name] if spec.name in made else schema_rows(spec)
        for spec in catalog.ALL_TABLES
        if not spec.partitioned
    }


def _made_tables() -> dict[str, pa.Table]:
    basics = _t(
        catalog.ASSET_BASICS,
        [
            _basics_row(1, RAW_A, "100001", "raw", ["ecephys", "behavior"]),
            _basics_row(2, DER_A1, "100001", "derived", ["ecephys"]),
            _basics_row(3, DER_A2, "100001", "derived", ["ecephys"]),
            _basics_row(4, DER_A3, "100001", "derived", ["ecephys"]),
            _basics_row(5, DER_A4, "100001", "derived", ["behavior"]),
            _basics_row(6, RAW_B, "100002", "raw", ["SPIM"], project_name="Project B", genotype=None),
            _basics_row(7, DER_B1, "100002", "derived", ["SPIM"], project_name="Project B"),
            _basics_row(8, "behavior_100003_2025-06-01_10-00-00", "100003", "raw", ["behavior"]),
        ],
    )

    def src(name: str, source: str, pipeline: str) -> dict:
        return {"name": name, "source_data": source, "pipeline_name": pipeline, "processing_time": name[-19:]}

    return {
        "asset_basics": basics,
        "unique_project_names": _t(
            catalog.UNIQUE_PROJECT_NAMES, [{"project_name": "Project A"}, {"project_name": "Project B"}]
        ),
        "unique_subject_ids": _t(catalog.UNIQUE_SUBJECT_IDS, [{"subject_id": s} for s in SUBJECTS]),
        "unique_genotypes": _t(catalog.UNIQUE_GENOTYPES, [{"genotype": "wt/wt"}]),
        "source_data": _t(
            catalog.SOURCE_DATA,
            [
                src(DER_A1, RAW_A, "sorting"),
                src(DER_A2, RAW_A, "sorting"),
                src(DER_A3, RAW_A, "nwb"),
                src(DER_A4, RAW_A, "behavior"),
                src(DER_B1, RAW_B, "stitching"),
            ],
        ),
        "platform_smartspim": _t(
            catalog.PLATFORM_SMARTSPIM,
            [{"name": DER_B1, "raw_name": RAW_B, "processed": True, "channel": "Ex_488_Em_525"}],
        ),
        "platform_exaspim": _t(
            catalog.PLATFORM_EXASPIM, [{"name": "exa_1", "raw_name": "exa_1", "processed": False}]
        ),
        "platform_fib": _t(
            catalog.PLATFORM_FIB,
            [
                {
                    "asset_name": "fib_1",
                    "fiber": "Fiber_0",
                    "patch_cord": "Patch Cord A",
                    "channel": "G",
                    "intended_measurement": "dopamine",
                    "targeted_structure": "VTA",
                }
            ],
        ),
        "metadata_upgrade": pa.table(
            {
                **{
                    c.name: pa.array([RUN_TIME if c.type == catalog.UTC_TIME else "x"], c.type)
                    for c in catalog.METADATA_UPGRADE.columns
                },
                "0.5.1": pa.array(["success"]),  # open schema: one column per upgrader version
            }
        ),
        "foraging_sessions": _t(
            catalog.FORAGING_SESSIONS,
            [
                {
                    "subject_id": "100001",
                    "session_date": "2025-06-01",
                    "session": 3,
                    "nwb_suffix": 0,
                    "foraging_eff": 0.8,
                    "finished_trials": 300,
                    "total_trials": 350,
                }
            ],
        ),
        "behavior_curriculum": _t(
            catalog.BEHAVIOR_CURRICULUM,
            [
                {
                    "asset_name": DER_A4,
                    "curriculum_name": "Uncoupled",
                    "stage_name": "STAGE_1",
                    "stage_node_id": 1,
                }
            ],
        ),
        "time_to_qc": _t(
            catalog.TIME_TO_QC,
            [
                {
                    "name": DER_A1,
                    "process_end_time": "2025-06-02T00:00:00Z",
                    "qc_time": pa.scalar(1749000000000000, pa.timestamp("us", tz="UTC")).as_py(),
                }
            ],
        ),
        **consistency_tables(),
    }


def consistency_tables() -> dict[str, pa.Table]:
    """metadata_core and the record consistency tables (one failing record per check)."""
    core = {c: True for c in catalog.CORE_FILES}
    checked = RUN_TIME
    result = {"record_last_modified": "2026-01-01T00:00:00Z", "checked_at": checked}
    return {
        "metadata_core": _t(
            catalog.METADATA_CORE,
            [
                {"_id": "id001", "_last_modified": "2026-01-01T00:00:00Z", **core},
                {"_id": "id002", "_last_modified": "2026-01-01T00:00:00Z", **core, "quality_control": False},
            ],
        ),
        "record_consistency_results": _t(
            catalog.RECORD_CONSISTENCY_RESULTS,
            [
                {
                    "check_key": "docdb_duplicate_name_v2",
                    "record_id": "id001",
                    "name": RAW_A,
                    "result": "pass",
                    **result,
                },
                {
                    "check_key": "docdb_duplicate_name_v2",
                    "record_id": "id002",
                    "name": DER_A1,
                    "result": "fail",
                    **result,
                },
                {
                    "check_key": "docdb_v1_name_missing_in_v2",
                    "record_id": "v1-1",
                    "name": "old",
                    "result": "fail",
                    **result,
                },
            ],
        ),
        "record_consistency_checks": _t(
            catalog.RECORD_CONSISTENCY_CHECKS,
            [
                {
                    "check_key": key,
                    "description": key,
                    "reads": ["docdb_v2"],
                    "per_record": False,
                    "version": 1,
                    "status": "ok",
                    "records_checked": checked_rows,
                    "failed": 1,
                    "recomputed": checked_rows,
                    "ran_at": checked,
                }
                for key, checked_rows in (("docdb_duplicate_name_v2", 2), ("docdb_v1_name_missing_in_v2", 1))
            ],
        ),
    }


def build_partitions() -> dict[tuple[str, str], pa.Table]:
    """(table, partition value) -> rows: those of ``_made_partitions``, and for each other
    partitioned table one partition of rows made from its schema."""
    made = _made_partitions()
    for spec in catalog.ALL_TABLES:
        if spec.partitioned and not any(name == spec.name for name, _ in made):
            key = spec.partition_key or ""
            value = (spec.partition_values or SUBJECTS)[0]
            made[(spec.name, value)] = schema_rows(spec, **{key: value})
    return made


def _made_partitions() -> dict[tuple[str, str], pa.Table]:
    ts = pa.scalar(1748772000000000, pa.timestamp("us", tz="UTC")).as_py()

    def metric(name: str, asset: str, subject: str, status: str = "Pass") -> dict:
        return {
            "name": name,
            "stage": "Processing",
            "modality": "ecephys",
            "value": "1.0",
            "status": status,
            "asset_name": asset,
            "subject_id": subject,
            "timestamp": ts,
        }

    return {
        ("quality_control", "100001"): _t(
            catalog.QUALITY_CONTROL,
            [
                metric("drift", RAW_A, "100001"),
                metric("yield", DER_A1, "100001", "Fail"),
                metric("noise", DER_A2, "100001"),
            ],
        ),
        ("quality_control", "100002"): _t(catalog.QUALITY_CONTROL, [metric("focus", RAW_B, "100002")]),
        ("qc_tag_status", "100001"): _t(
            catalog.QC_TAG_STATUS,
            [
                {
                    "tag": "ecephys",
                    "status": "Pass",
                    "asset_name": RAW_A,
                    "subject_id": "100001",
                    "timestamp": ts,
                },
                {
                    "tag": "probe:A",
                    "status": "Fail",
                    "asset_name": DER_A1,
                    "subject_id": "100001",
                    "timestamp": ts,
                },
            ],
        ),
        ("platform_qc", "spim"): _t(
            catalog.PLATFORM_QC,
            [
                {
                    "asset_name": RAW_B,
                    "tag": "SPIM",
                    "status": "Pass",
                    "timestamp": TS,
                    "instrument_id_normalized": "SPIM1",
                    "experimenters_normalized": ["Jane Doe"],
                    "platform": "spim",
                }
            ],
        ),
        ("platform_qc", "fib"): _t(
            catalog.PLATFORM_QC,
            [
                {
                    "asset_name": "fib_1",
                    "tag": "fib",
                    "status": "Fail",
                    "timestamp": TS,
                    "instrument_id_normalized": "FIP1",
                    "experimenters_normalized": [],
                    "platform": "fib",
                }
            ],
        ),
    }


def registry_document(bucket: str, folder: str, tables: list[str] | None = None) -> dict[str, Any]:
    """A registry as the finalizer writes it (static fields plus build figures)."""
    entries = []
    built = build_tables()
    for spec in catalog.ALL_TABLES:
        if tables is not None and spec.name not in tables:
            continue
        if spec.partitioned:
            location = layout.s3_url(bucket, layout.partition_folder_key(folder, spec.folder or spec.name))
        else:
            location = layout.s3_url(bucket, layout.table_key(folder, spec.name))
        entries.append(
            {
                "name": spec.name,
                "description": spec.description,
                "location": location,
                "partitioned": spec.partitioned,
                "partition_key": spec.partition_key,
                "type": spec.type,
                "columns": spec.column_docs(),
                "column_types": {c.name: str(c.type) for c in spec.columns},
                "status": "ok",
                "rows": built[spec.name].num_rows if spec.name in built else None,
                "last_built": "2026-01-01T00:10:00+00:00",
                "last_checked": "2026-01-01T00:10:00+00:00",
                "last_run_id": RUN_ID,
            }
        )
    return {"version": folder, "tables": entries}


def run_report_document() -> dict[str, Any]:
    return {
        "run_id": RUN_ID,
        "version": FOLDER,
        "trigger": "schedule",
        "started_at": "2026-01-01T00:00:00+00:00",
        "finished_at": "2026-01-01T00:10:00+00:00",
        "wall_seconds": 600.0,
        "tables": [{"table": "asset_basics", "status": "succeeded", "rows": 8}],
        "totals": {"tables": 1, "failed": 0, "skipped": 0},
    }


def parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def root_objects(bucket: str = BUCKET) -> dict[str, bytes]:
    """Every object of the test cache, keyed relative to the root (``data-asset-cache/``)."""

    def rel(key: str) -> str:
        return key.removeprefix(f"{layout.ROOT_PREFIX}/")

    objects: dict[str, bytes] = {rel(layout.versions_key()): json.dumps(VERSIONS).encode()}
    objects[rel(layout.registry_key(FOLDER))] = json.dumps(registry_document(bucket, FOLDER)).encode()
    for name, table in build_tables().items():
        objects[rel(layout.table_key(FOLDER, name))] = parquet(table)
        objects[rel(layout.columns_key(FOLDER, name))] = json.dumps(
            {"columns": catalog.get_spec(name).column_docs()}
        ).encode()
    for (name, value), table in build_partitions().items():
        spec = catalog.get_spec(name)
        key = layout.partition_key(FOLDER, spec.folder or name, spec.partition_key or "", value)
        objects[rel(key)] = parquet(table)
    objects[rel(layout.run_report_key(FOLDER, RUN_ID))] = json.dumps(run_report_document()).encode()
    objects[rel(layout.latest_run_report_key(FOLDER))] = json.dumps(run_report_document()).encode()
    objects[rel(layout.custom_key(FOLDER, "my_table"))] = parquet(pa.table({"a": [1, 2, 3]}))
    # An older version with one table only; bdc-v0.9 is listed but has no registry.
    objects[rel(layout.registry_key(OLD_FOLDER))] = json.dumps(
        registry_document(bucket, OLD_FOLDER, ["asset_basics"])
    ).encode()
    objects[rel(layout.table_key(OLD_FOLDER, "asset_basics"))] = parquet(
        build_tables()["asset_basics"].slice(0, 2)
    )
    return objects


def write_root(path: Path, objects: dict[str, bytes] | None = None) -> Path:
    for key, body in (objects or root_objects()).items():
        target = path / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
    return path


# -- isolation ------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No BIODATA_CACHE_* or AWS settings leak in from the machine; fake credentials."""
    for name in ENVIRONMENT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("BIODATA_CACHE_DIR", str(tmp_path / "default-cache"))  # never the user's real cache
    import biodata_cache.api

    biodata_cache.api._default = None
    yield
    biodata_cache.api._default = None


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No AWS credentials anywhere (the shared boto3 session forgets those it found)."""
    from biodata_cache._storage import reset_session

    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    reset_session()
    yield
    reset_session()


@pytest.fixture(scope="session")
def root_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_root(tmp_path_factory.mktemp("root-template"))


@pytest.fixture
def local_root(root_template: Path, tmp_path: Path) -> Path:
    """A private copy of the test cache as a local directory (tests may damage it)."""
    return Path(shutil.copytree(root_template, tmp_path / "root"))


# -- moto S3 server ----------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


_REQUEST = re.compile(r'"(GET|HEAD|PUT|POST|DELETE) (\S+) HTTP/[\d.]+"?\S*\s+(\d{3})')
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class MotoServer:
    """A ``python -m moto.server`` subprocess; its request log tells what the client did."""

    endpoint: str
    log_path: Path
    process: subprocess.Popen[bytes]
    _mark: int = 0

    def requests(self) -> list[tuple[str, str, int]]:
        time.sleep(0.05)  # the server logs after answering
        text = _ANSI.sub("", self.log_path.read_text(errors="replace"))
        return [(m[1], m[2], int(m[3])) for m in _REQUEST.finditer(text)]

    def mark(self) -> None:
        self._mark = len(self.requests())

    def since_mark(self) -> list[tuple[str, str, int]]:
        return self.requests()[self._mark :]


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    port = free_port()
    log_path = tmp_path_factory.mktemp("moto") / "server.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port)
        server = MotoServer(f"http://127.0.0.1:{port}", log_path, process)
        _upload(server.endpoint, BUCKET, root_objects())
        yield server
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )


def _upload(
    endpoint: str,
    bucket: str,
    objects: dict[str, bytes],
    *,
    public: bool = True,
    prefix: str = layout.ROOT_PREFIX,
) -> None:
    """Create a bucket (publicly readable, like allen-data-views, unless ``public=False``)."""
    client = s3_client(endpoint)
    if public:
        client.create_bucket(Bucket=bucket, ACL="public-read")
    else:
        client.create_bucket(Bucket=bucket)
    with ThreadPoolExecutor(8) as pool:  # moto answers one request in ~25 ms
        list(
            pool.map(
                lambda item: client.put_object(Bucket=bucket, Key=f"{prefix}/{item[0]}", Body=item[1]),
                objects.items(),
            )
        )


@pytest.fixture
def scratch_bucket(moto_server: MotoServer) -> Iterator[str]:
    """A fresh bucket with the test cache, for tests that change objects."""
    bucket = f"scratch-{os.urandom(4).hex()}"
    _upload(moto_server.endpoint, bucket, root_objects(bucket))
    yield bucket


PRIVATE_BUCKET = "bdc-private"


@pytest.fixture(scope="session")
def private_bucket(moto_server: MotoServer) -> str:
    """The test cache in a bucket that anonymous requests may not read."""
    _upload(moto_server.endpoint, PRIVATE_BUCKET, root_objects(PRIVATE_BUCKET), public=False)
    return PRIVATE_BUCKET


# -- fake S3 endpoint ---------------------------------------------------------------------
@dataclass
class FakeS3:
    """An HTTP server that answers like S3 for a few scripted situations.

    ``respond(method, path, signed)`` returns (status, code or None, body).
    """

    respond: Callable[[str, str, bool], tuple[int, str | None, bytes]]
    seen: list[tuple[str, str, bool]] = field(default_factory=list)
    endpoint: str = ""
    # Announce this Content-Length instead of the real one (a connection cut midway).
    claim_length: int | None = None


def _error_xml(code: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
        f"<Message>{code}</Message><RequestId>1</RequestId></Error>"
    ).encode()


@pytest.fixture
def fake_s3() -> Iterator[Callable[[Callable[[str, str, bool], tuple[int, str | None, bytes]]], FakeS3]]:
    servers: list[ThreadingHTTPServer] = []

    def start(respond: Callable[[str, str, bool], tuple[int, str | None, bytes]]) -> FakeS3:
        fake = FakeS3(respond)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # answers "Expect: 100-continue" at once

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                signed = "Authorization" in self.headers
                fake.seen.append((self.command, self.path, signed))
                status, code, body = fake.respond(self.command, self.path, signed)
                payload = _error_xml(code) if code else body
                self.send_response(status)
                self.send_header("Content-Type", "application/xml" if code else "application/octet-stream")
                length = fake.claim_length if fake.claim_length and not code else len(payload)
                self.send_header("Content-Length", str(length))
                self.send_header("ETag", '"fake-etag"')
                self.send_header("Connection", "close")
                self.close_connection = True
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_PUT = do_HEAD = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        fake.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        return fake

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
