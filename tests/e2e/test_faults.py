"""Issue 6: fault injection, end to end through the local stack's HTTP servers.

Every test starts its own stack (moto server + local DocDB API), injects one kind of
fault with a real mechanism (the DocDB API's admin switches, a crashing production
function, a duplicating SQS client, threads racing on S3 conditional writes, a
second dispatcher call, damaged records, damaged objects) and *measures* what was
lost: table contents are compared with a fault-free reference run over the same
corpus, previous good files and registry entries with what they were before the
fault, and writes/builds are counted per run. The measurements become the rows of
``docs/fault-report.md`` and of the README table (see ``fault_report.py``).

The runs name a fixed set of tables (with ``"trigger": "schedule"``, through the
same dispatcher path as the nightly event) so the tests do not depend on tables
that read non-DocDB sources; the set covers a record table, derived tables, a
chunked partitioned table with a companion, and a per-platform partitioned table.
"""

from __future__ import annotations

import copy
import hashlib
import io
import itertools
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import requests
from botocore.exceptions import ClientError

from bdc_local.corpus import generate_corpus, malformed_records, mutate_records, write_jsonl
from bdc_local.record_sizes import compact_size, enlarge
from bdc_local.runner import (
    FakeContext,
    LocalLambdas,
    invoke_dispatcher,
    ledger_for,
    load_function,
    sqs_event,
    wait_for_runs,
)
from bdc_local.stack import LocalStack, StackConfig, local_stack
from bdc_sync.docdb import FIRST_BATCH
from bdc_sync.docdb_session import PlainHTTPAdapter
from bdc_sync.flow.events import FinalizeItem
from bdc_sync.flow.queues import Queues
from bdc_sync.store import ObjectStore, PreconditionFailed
from bdc_sync.tables import buildable_tables
from biodata_cache import layout
from biodata_cache.catalog import ALL_TABLES, get_spec
from biodata_cache.errors import CorruptObjectError, MissingObjectError
from biodata_cache.reader import Cache

pytest_plugins = ["fault_report"]
pytestmark = [pytest.mark.e2e]

# Two xdist groups: `pytest -n 2 --dist loadgroup` then runs at most two stacks at
# once, and the two groups take about the same time.
GROUP_A = pytest.mark.xdist_group("e2e_faults_a")
GROUP_B = pytest.mark.xdist_group("e2e_faults_b")

FOLDER = layout.package_folder()
TABLES = [
    "asset_basics",
    "unique_project_names",
    "unique_subject_ids",
    "unique_genotypes",
    "source_data",
    "quality_control",
    "platform_qc",
]
# Tables with files: the builds above and the companions they write (qc_tag_status).
PUBLISHED = [spec.name for spec in ALL_TABLES if (spec.built_with or spec.name) in TABLES]
GENERATED_RECORDS = 150
CORPUS_SEED = 11
MUTATION_FRACTION = 0.05
MUTATION_SEED = 5
# Small but non-zero: retries really happen, with exponential backoff and jitter.
DOCDB_RETRIES = 3
DOCDB_BACKOFF_SECONDS = 0.05
DOCDB_MAX_CONCURRENCY = 2
FAST_ENV = {
    "DOCDB_RETRIES": str(DOCDB_RETRIES),
    "DOCDB_BACKOFF_SECONDS": str(DOCDB_BACKOFF_SECONDS),
    "DOCDB_MAX_CONCURRENCY": str(DOCDB_MAX_CONCURRENCY),
}
# Lease 2 s, so the local work queue's visibility timeout (6x) is 12 s; two receives
# before the dead-letter queue keeps a poison message's path short.
CRASH_CONFIG = StackConfig(worker_timeout_seconds=2, max_receives=2, extra_env=FAST_ENV)


# -- measuring the cache -----------------------------------------------------------
@dataclass(frozen=True)
class TableState:
    """A published table as S3 holds it: content digest, rows, and per-file hashes."""

    digest: str | None  # None: no file at all
    rows: int
    files: dict[str, str] = field(default_factory=dict)  # key -> sha256 (from object metadata)


Snapshot = dict[str, TableState]


def table_files(store: ObjectStore, name: str) -> dict[str, tuple[str, int]]:
    """Key -> (sha256, rows) of every file of a published table."""
    spec = get_spec(name)
    if spec.partitioned:
        keys = list(store.list_keys(layout.partition_folder_key(FOLDER, spec.folder or spec.name)))
    else:
        keys = [layout.table_key(FOLDER, name)]
    files: dict[str, tuple[str, int]] = {}
    for key in keys:
        info = store.head(key)
        if info is not None:
            files[key] = (info.metadata.get("sha256", ""), int(info.metadata.get("rows", "0")))
    return files


def snapshot(stack: LocalStack) -> Snapshot:
    store = ObjectStore(stack.config.bucket, client=stack.s3())
    states: Snapshot = {}
    for name in PUBLISHED:
        files = table_files(store, name)
        if not files:
            states[name] = TableState(None, 0)
            continue
        digest = hashlib.sha256(
            json.dumps(sorted((k, s) for k, (s, _) in files.items())).encode()
        ).hexdigest()
        states[name] = TableState(
            digest, sum(r for _, r in files.values()), {k: s for k, (s, _) in files.items()}
        )
    return states


def differing(actual: Snapshot, expected: Snapshot, names: list[str] | None = None) -> list[str]:
    """Tables whose content is not the expected one (missing, or other bytes)."""
    return [
        n for n in names or PUBLISHED if actual[n].digest is None or actual[n].digest != expected[n].digest
    ]


def read_json(stack: LocalStack, key: str) -> Any:
    return json.loads(stack.s3().get_object(Bucket=stack.config.bucket, Key=key)["Body"].read())


def registry_entries(stack: LocalStack) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in read_json(stack, layout.registry_key(FOLDER))["tables"]}


def run_report(stack: LocalStack, run_id: str) -> dict[str, Any]:
    return read_json(stack, layout.run_report_key(FOLDER, run_id))


def read_table(stack: LocalStack, name: str) -> pa.Table:
    body = (
        stack.s3().get_object(Bucket=stack.config.bucket, Key=layout.table_key(FOLDER, name))["Body"].read()
    )
    return pq.read_table(pa.BufferReader(body))


def queue_depth(stack: LocalStack, url: str) -> int:
    attributes = stack.sqs().get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``check`` until it holds; returns the seconds waited."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.25)
    return time.monotonic() - started


def body_of(event: dict[str, Any]) -> dict[str, Any]:
    return json.loads(event["Records"][0]["body"])


def receive_count(event: dict[str, Any]) -> int:
    return int(event["Records"][0]["attributes"]["ApproximateReceiveCount"])


# -- running -----------------------------------------------------------------------
@dataclass
class Run:
    """One finalized run as the ledger recorded it."""

    run_id: str
    seconds: float
    run: dict[str, Any]
    tables: dict[str, dict[str, Any]]

    def status(self, name: str) -> str:
        return str(self.tables[get_spec(name).built_with or name]["status"])


def dispatch(tables: list[str], trigger: str = "schedule") -> str:
    response = invoke_dispatcher({"tables": tables, "trigger": trigger})
    assert response.get("ok"), response
    return str(response["run_id"])


def finished_run(stack: LocalStack, run_id: str, started: float) -> Run:
    ledger = ledger_for(stack)
    return Run(run_id, time.monotonic() - started, ledger.get_run(run_id) or {}, ledger.table_items(run_id))


def run_tables(
    stack: LocalStack,
    *,
    tables: list[str] = TABLES,
    workers: int = 3,
    before_worker: Callable[[dict[str, Any]], None] | None = None,
    timeout: float = 180.0,
) -> Run:
    """Dispatch a run of ``tables`` and run the Lambdas until the finalizer is done."""
    with LocalLambdas(stack, workers=workers, before_worker=before_worker):
        started = time.monotonic()
        run_id = dispatch(tables)
        wait_for_runs(ledger_for(stack), [run_id], timeout=timeout)
    return finished_run(stack, run_id, started)


def build_ok(status: str) -> bool:
    return status in {"succeeded", "unchanged"}


# -- instruments in this process (the handlers run in its threads) -------------------
class PutCounter:
    """Counts PUTs per key (and lost conditional-write races) through ObjectStore.put_bytes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.puts: Counter[str] = Counter()
        self.conflicts: Counter[str] = Counter()
        self._lock = threading.Lock()
        original = ObjectStore.put_bytes

        def counting(store: ObjectStore, key: str, body: bytes, **kwargs: Any) -> str:
            try:
                etag = original(store, key, body, **kwargs)
            except PreconditionFailed:
                with self._lock:
                    self.conflicts[key] += 1
                raise
            with self._lock:
                self.puts[key] += 1
            return etag

        monkeypatch.setattr(ObjectStore, "put_bytes", counting)

    def published(self) -> Counter[str]:
        """PUTs of table files (not state, reports or registry)."""
        prefix = layout.folder_prefix(FOLDER)
        state = f"{prefix}{layout.STATE_FOLDER}/"
        return Counter(
            {
                k: n
                for k, n in self.puts.items()
                if k.startswith(prefix) and k.endswith(".pqt") and not k.startswith(state)
            }
        )


class DocDBMeter:
    """Counts the DocDB requests the client makes (before urllib3's retries) and the
    most that were in flight at once, by wrapping the adapter every request passes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.requests = 0
        self.in_flight = 0
        self.peak = 0
        # In flight per build: a build's fan-out runs in one thread pool, whose threads
        # share a name prefix; unpooled requests run on the worker's own thread.
        self.build_in_flight: Counter[str] = Counter()
        self.build_peak = 0
        self.marked = 0  # requests made while `mark` is set
        self.mark = threading.Event()
        self._lock = threading.Lock()
        original = PlainHTTPAdapter.send

        def metered(adapter: PlainHTTPAdapter, request: Any, *args: Any, **kwargs: Any) -> Any:
            build = threading.current_thread().name.rsplit("_", 1)[0]
            with self._lock:
                self.requests += 1
                self.marked += self.mark.is_set()
                self.in_flight += 1
                self.peak = max(self.peak, self.in_flight)
                self.build_in_flight[build] += 1
                self.build_peak = max(self.build_peak, self.build_in_flight[build])
            try:
                return original(adapter, request, *args, **kwargs)
            finally:
                with self._lock:
                    self.in_flight -= 1
                    self.build_in_flight[build] -= 1

        monkeypatch.setattr(PlainHTTPAdapter, "send", metered)


def fail_writes(
    monkeypatch: pytest.MonkeyPatch,
    matches: Callable[[str], bool],
    make_error: Callable[[str], BaseException],
) -> Counter[str]:
    """Make ``ObjectStore.write_table`` raise for keys ``matches`` accepts, before
    anything is written; returns the number of calls per matching key."""
    calls: Counter[str] = Counter()
    lock = threading.Lock()
    original = ObjectStore.write_table

    def crashing(store: ObjectStore, key: str, table: pa.Table, **kwargs: Any) -> Any:
        if matches(key):
            with lock:
                calls[key] += 1
            raise make_error(key)
        return original(store, key, table, **kwargs)

    monkeypatch.setattr(ObjectStore, "write_table", crashing)
    return calls


class LambdaTimeout(BaseException):
    """What Lambda does at the timeout: the invocation stops, no `except Exception` runs."""


# -- fixtures ------------------------------------------------------------------------
@dataclass(frozen=True)
class Reference:
    """Fault-free results over the corpus (before) and after the mutation (after)."""

    before: Snapshot
    after: Snapshot
    basics: pa.Table  # asset_basics of `before`
    source_data: pa.Table


@pytest.fixture(scope="session")
def fault_corpus(real_records: dict[str, dict]) -> list[dict]:
    # The four real records plus generated ones of real sizes (50-130 KB, a tail near
    # 300 KB), as tests/e2e/conftest.py builds them.
    generated = generate_corpus(GENERATED_RECORDS, seed=CORPUS_SEED, size_profile="realistic")
    return [*real_records.values(), *generated]


@pytest.fixture(scope="session")
def corpus_file(fault_corpus: list[dict], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fault-corpus") / "records.jsonl"
    write_jsonl(fault_corpus, path)
    return path


@pytest.fixture(scope="session")
def mutation(fault_corpus: list[dict]) -> list[dict]:
    changed = mutate_records(fault_corpus, MUTATION_FRACTION, seed=MUTATION_SEED)
    derived = [r for r in changed if (r.get("data_description") or {}).get("data_level") == "derived"]
    # The DocDB-down test needs a changed derived record, so source_data must fetch.
    assert derived, "the mutation should change at least one derived record"
    return changed


@pytest.fixture(scope="session")
def reference(corpus_file: Path, mutation: list[dict]) -> Reference:
    """A fault-free build of the corpus, then of the corpus with the mutation applied."""
    with local_stack(corpus_file, config=StackConfig(worker_timeout_seconds=30, extra_env=FAST_ENV)) as stack:
        first = run_tables(stack)
        assert all(item["status"] == "succeeded" for item in first.tables.values()), first.tables
        before = snapshot(stack)
        basics, source_data = read_table(stack, "asset_basics"), read_table(stack, "source_data")
        stack.docdb_admin("upsert?version=v2", mutation)
        second = run_tables(stack)
        assert all(build_ok(item["status"]) for item in second.tables.values()), second.tables
        after = snapshot(stack)
    assert all(state.digest for state in before.values()), before
    assert after["asset_basics"].digest != before["asset_basics"].digest
    return Reference(before, after, basics, source_data)


@pytest.fixture
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The client's local cache directory for this test only."""
    directory = tmp_path / "client-cache"
    monkeypatch.setenv("BIODATA_CACHE_DIR", str(directory))
    return directory


# -- 1. DocDB throttling and failures ---------------------------------------------------
@GROUP_A
def test_docdb_bursts_of_429_and_503_still_build_correct_tables(
    reference: Reference, corpus_file: Path, monkeypatch: pytest.MonkeyPatch, fault_report: Any
) -> None:
    workers = 3
    # The production retry budget here: a burst outlasts a few quick retries.
    retries = 6
    env = {**FAST_ENV, "DOCDB_RETRIES": str(retries)}
    config = StackConfig(worker_timeout_seconds=3, max_receives=3, extra_env=env)
    # More chunks and smaller requests: many DocDB requests, fanned out from several
    # workers at once, so the concurrency cap has something to cap.
    from bdc_sync.tables import quality_control

    monkeypatch.setattr(quality_control.TABLE, "subjects_per_chunk", 3)
    monkeypatch.setattr(quality_control.TABLE, "records_per_request", 4)
    # The bursts, from the first delivery on: every request throttled (429) for a
    # second, then every request failing (503) for a second, then 30 % of requests
    # answered 429 or 503 for the rest of the run (the run is shorter than a minute).
    phases = [
        (0.0, {"fault_rate": 1.0, "fault_statuses": [429], "seed": 6}),
        (1.0, {"fault_rate": 1.0, "fault_statuses": [503]}),
        (2.0, {"fault_rate": 0.3, "fault_statuses": [429, 503]}),
    ]
    with local_stack(corpus_file, config=config) as stack:
        meter = DocDBMeter(monkeypatch)
        stack.docdb_admin("config", {"latency_ms": 20})  # requests overlap as over a network
        stop = threading.Event()
        lock = threading.Lock()
        started: list[threading.Thread] = []

        def bursts() -> None:
            begin = time.monotonic()
            for at, change in phases:
                if stop.wait(max(0.0, begin + at - time.monotonic())):
                    return
                stack.docdb_admin("config", change)

        def start_bursts(event: dict[str, Any]) -> None:
            with lock:
                if not started:
                    thread = threading.Thread(target=bursts, daemon=True)
                    thread.start()
                    started.append(thread)
                    time.sleep(0.05)  # the first phase is on before the first request

        stack.docdb_admin("reset_stats", {})
        try:
            result = run_tables(stack, workers=workers, before_worker=start_bursts)
        finally:
            stop.set()
            for thread in started:
                thread.join(10)
        stats = stack.docdb_admin("stats")
        stack.docdb_admin("config", {"fault_rate": 0.0})
        after = snapshot(stack)

    statuses = {name: item["status"] for name, item in result.tables.items()}
    by_status = stats["responses_by_status"]
    retried = stats["requests_total"] - meter.requests
    redelivered = sum(int(item.get("attempts", 1)) - 1 for item in result.tables.values())
    lost = differing(after, reference.before)
    assert all(status == "succeeded" for status in statuses.values()), statuses
    assert by_status.get("429", 0) > 0 and by_status.get("503", 0) > 0, by_status
    assert retried > 0 and stats["faults_injected"] == by_status["429"] + by_status["503"]
    # The concurrency cap: a build holds at most DOCDB_MAX_CONCURRENCY requests at once
    # (and it was reached), so the workers together at most workers times that.
    assert meter.build_peak == DOCDB_MAX_CONCURRENCY, meter.build_peak
    assert meter.peak <= workers * DOCDB_MAX_CONCURRENCY, meter.peak
    assert lost == [], lost
    fault_report.record(
        "docdb-bursts",
        fault="DocDB API answers 429/503 in bursts",
        injected="local DocDB admin config, from the first delivery: 100 % 429 for 1 s, 100 % 503 "
        "for 1 s, then 30 % 429/503 until the run ends",
        survived=(
            f"{stats['faults_injected']} faults ({by_status.get('429', 0)}×429, "
            f"{by_status.get('503', 0)}×503) on {stats['requests_total']} attempts; {retried} retries "
            f"with backoff+jitter (≤{retries} per request); at most {meter.build_peak} concurrent "
            f"requests per build (cap {DOCDB_MAX_CONCURRENCY}), {meter.peak} overall ({workers} workers); "
            f"{redelivered} SQS redeliveries; run finalized, "
            f"{len(PUBLISHED)}/{len(PUBLISHED)} tables identical to the fault-free reference"
        ),
        lost=len(lost),
    )


@GROUP_B
def test_docdb_down_for_good_fails_only_the_affected_tables(
    reference: Reference,
    corpus_file: Path,
    mutation: list[dict],
    monkeypatch: pytest.MonkeyPatch,
    fault_report: Any,
) -> None:
    with local_stack(corpus_file, config=CRASH_CONFIG) as stack:
        first = run_tables(stack)
        baseline = snapshot(stack)
        registry_before = registry_entries(stack)
        stack.docdb_admin("upsert?version=v2", mutation)
        meter = DocDBMeter(monkeypatch)
        lock = threading.Lock()

        def outage_after_asset_basics(event: dict[str, Any]) -> None:
            # The API goes down once asset_basics (and metadata_core, which lists its
            # records) is built, before any table after it starts, and stays down for
            # the rest of the run.
            if body_of(event)["table"] not in ("metadata_core", "asset_basics"):
                with lock:
                    if not meter.mark.is_set():
                        stack.docdb_admin("config", {"down": True})
                        stack.docdb_admin("reset_stats", {})
                        meter.mark.set()

        second = run_tables(stack, before_worker=outage_after_asset_basics, timeout=120)
        down_attempts = stack.docdb_admin("stats")["requests_total"]
        stack.docdb_admin("config", {"down": False})
        after = snapshot(stack)
        registry = registry_entries(stack)
        report = run_report(stack, second.run_id)

    failed = sorted(name for name in TABLES if second.status(name) == "failed")
    built = sorted(name for name in TABLES if build_ok(second.status(name)))
    assert sorted(failed + built) == sorted(TABLES), second.tables
    assert "source_data" in failed and "asset_basics" in built
    assert {"unique_project_names", "unique_subject_ids", "unique_genotypes"} <= set(built)
    # Each table stays where it should: rebuilt ones are the new reference, failed
    # ones keep their previous good file.
    rebuilt = [n for n in PUBLISHED if build_ok(second.status(n))]
    lost_files = differing(after, reference.after, rebuilt) if rebuilt else []
    kept = [n for n in PUBLISHED if second.status(n) == "failed"]
    lost_previous = differing(after, baseline, kept)
    lost_registry = [
        n
        for n in kept
        if registry[n]["status"] != "failed"
        or any(
            registry[n].get(k) != registry_before[n].get(k) for k in ("rows", "last_built", "built_by_run")
        )
        or registry[n]["built_by_run"] != first.run_id
    ]
    reported = {t["table"]: t for t in report["tables"]}
    assert all(reported[n]["status"] == "failed" and "503" in reported[n]["message"] for n in failed), {
        n: reported[n]["message"] for n in failed
    }
    # Bounded: every request the client made while the API was down was tried exactly
    # DOCDB_RETRIES + 1 times, then the table failed.
    assert meter.marked > 0 and down_attempts == meter.marked * (DOCDB_RETRIES + 1), (
        meter.marked,
        down_attempts,
    )
    assert baseline == reference.before
    lost = len(lost_files) + len(lost_previous) + len(lost_registry)
    assert lost == 0, (lost_files, lost_previous, lost_registry)
    fault_report.record(
        "docdb-down",
        fault="DocDB API down for good (mid-run)",
        injected="local DocDB admin config `down: true` (every request 503) from the moment "
        "asset_basics is built until the run ends",
        survived=(
            f"failed cleanly: {', '.join(failed)} ({meter.marked} requests × {DOCDB_RETRIES + 1} attempts "
            f"= {down_attempts}, then failed; run finalized); completed: {', '.join(built)}; failed "
            f"tables kept their previous files and registry entries (rows, last_built, built_by_run)"
        ),
        lost=lost,
    )


# The gateway profile with its 29 s integration timeout scaled down to 0.5 s and the
# latency by bytes scaled up to 1 s a MB (40 ms a request as in the profile): an
# answer over 460,000 bytes is modelled past the timeout, so it is answered 504 on
# every run (the stand-in decides on its modelled time, not on the machine's), and
# its work holds a place in flight until its modelled end.
GATEWAY_TEST_TIMEOUT = 0.5
GATEWAY_TEST_PER_MB_MS = 1000.0
TIMEOUT_BYTES = int((GATEWAY_TEST_TIMEOUT - 0.040) / GATEWAY_TEST_PER_MB_MS * 1000 * 1e6)
# Records whose QC answer alone is ~300 KB: one passes, two in a request time out.
HEAVY_QC_BYTES = 300_000


def _has_qc_values(record: dict) -> bool:
    """Whether the record has QC metrics with dict values (where real records grow)."""
    metrics = (record.get("quality_control") or {}).get("metrics") or []
    return any(isinstance(m, dict) and isinstance(m.get("value"), dict) for m in metrics)


def _qc_answer_bytes(record: dict) -> int:
    """Bytes of the record in the answers quality_control asks for (its projection)."""
    from bdc_local import mongo
    from bdc_local.docdb_server import dumps
    from bdc_sync.tables.quality_control import PROJECTION

    return len(dumps(mongo.compile_projection(dict.fromkeys(PROJECTION, 1))(record)))


def _qc_request_subjects(corpus: list[dict]) -> tuple[list[str], list[str]]:
    """Subjects wholly inside quality_control's first DocDB request, and those after it.

    The table fetches its changed records subject by subject in subject-id order (its
    chunk plan; one chunk here), FIRST_BATCH ids in the first request of a reader that
    has seen no answer yet; the order within a subject is not known here, so a subject
    across the boundary is in neither list.
    """
    counts = Counter(
        str(r["subject"]["subject_id"]) for r in corpus if (r.get("subject") or {}).get("subject_id")
    )
    first, after, position = [], [], 0
    for subject in sorted(counts):
        if position >= FIRST_BATCH:
            after.append(subject)
        position += counts[subject]
        if position <= FIRST_BATCH:
            first.append(subject)
    return first, after


@GROUP_A
def test_docdb_gateway_limits_split_batches_and_skip_what_cannot_be_returned(
    reference: Reference, fault_corpus: list[dict], tmp_path: Path, fault_report: Any
) -> None:
    corpus = copy.deepcopy(fault_corpus)
    first_subjects, later_subjects = _qc_request_subjects(corpus)
    subject_of = {r["_id"]: str((r.get("subject") or {}).get("subject_id")) for r in corpus}
    # Two records of quality_control's first request grown to ~300 KB of QC (in metric
    # values, which the tables show as `{dict}`, so every row stays the reference's):
    # that request (50 ids, both of them) is ~0.6 MB or more of answer, over the scaled
    # timeout on every run (504, split), while each alone passes.
    candidates = sorted(
        (r for r in corpus if subject_of[r["_id"]] in first_subjects and _has_qc_values(r)),
        key=lambda r: subject_of[r["_id"]],
    )
    heavy = [candidates[0], candidates[-1]]  # of the first and the last of those subjects
    for record in heavy:
        grow_to = compact_size(record) + HEAVY_QC_BYTES - _qc_answer_bytes(record)
        enlarge(record, grow_to, random.Random(2), qc_share=1.0)
    heavy_answers = [_qc_answer_bytes(r) for r in heavy]
    assert all(TIMEOUT_BYTES > size > TIMEOUT_BYTES / 2 for size in heavy_answers), heavy_answers
    # One record whose QC alone is over Lambda's 6,291,556-byte response limit: a copy
    # (new id) of a record of a subject after the first request, so the 502 does not
    # answer that request first, and every other row stays the reference's.
    source = max(
        (r for r in corpus if subject_of[r["_id"]] in later_subjects and _has_qc_values(r)),
        key=lambda r: len(json.dumps(r["quality_control"])),
    )
    huge = enlarge(copy.deepcopy(source), 7_000_000, random.Random(1), qc_share=1.0)
    huge["_id"] = "ffffffff-0000-4000-8000-000000000001"
    huge["name"] = f"{source['name']}_oversized"
    huge_size = compact_size(huge)
    largest = max(corpus, key=compact_size)
    assert huge_size > 6_291_556 and compact_size(largest) > 250_000
    path = tmp_path / "records.jsonl"
    write_jsonl([*corpus, huge], path)
    # At most 3 requests in flight (work after a 504 included) before 429s without
    # Retry-After; the last 1,000 requests logged, to see how batches were split.
    settings = {
        "integration_timeout_seconds": GATEWAY_TEST_TIMEOUT,
        "per_mb_ms": GATEWAY_TEST_PER_MB_MS,
        "max_in_flight": 3,
        "request_log_size": 1000,
    }
    config = StackConfig(worker_timeout_seconds=60, extra_env=FAST_ENV, docdb_settings=settings)
    with local_stack(path, config=config) as stack:
        run = run_tables(stack)
        stats = stack.docdb_admin("stats")
        logged = stack.docdb_admin("requests")
        report = run_report(stack, run.run_id)
        after = snapshot(stack)
        basics = read_table(stack, "asset_basics")

    statuses = {name: item["status"] for name, item in run.tables.items()}
    assert all(status == "succeeded" for status in statuses.values()), statuses
    reported = {t["table"]: t for t in report["tables"]}
    by_status = stats["responses_by_status"]
    named = {s["id"]: s["reason"] for t in report["tables"] for s in t["unreturnable_sample"]}
    splits = report["totals"]["docdb_splits"]
    batches = [e for e in logged if e["endpoint"] == "aggregate" and e["values"]]
    assert len(logged) == stats["requests_total"] < 1000  # the log holds every request

    def split_later(index: int) -> bool:
        """Whether batch `index`'s ids were all asked again, in smaller requests, after it."""
        ids = set(batches[index]["values"])
        parts = [set(e["values"]) for e in batches[index + 1 :] if set(e["values"]) < ids]
        return set().union(*parts) == ids

    # Split on 504: quality_control's first request (both heavy records; the lean
    # projections of the other tables never come near the timeout) timed out and its
    # ids were asked again in smaller batches; so was every other batch that timed out.
    heavy_ids = {r["_id"] for r in heavy}
    assert any(
        e["status"] == 504 and len(e["values"]) == FIRST_BATCH and heavy_ids <= set(e["values"])
        for e in batches
    ), [(e["status"], len(e["values"])) for e in batches if heavy_ids <= set(e["values"])]
    timed_out = [i for i, e in enumerate(batches) if e["status"] == 504]
    assert stats["timeouts"] == by_status["504"] == len(timed_out)
    assert all(len(batches[i]["values"]) > 1 and split_later(i) for i in timed_out)
    # Split on 502: every batch holding the oversized record, down to it alone.
    oversized = [i for i, e in enumerate(batches) if e["status"] == 502]
    assert len(oversized) == by_status["502"] > 0
    assert all(split_later(i) for i in oversized if len(batches[i]["values"]) > 1)
    assert {batches[i]["values"][0] for i in oversized if len(batches[i]["values"]) == 1} == {huge["_id"]}
    assert splits == len(timed_out) + len([i for i in oversized if len(batches[i]["values"]) > 1])
    # The ~300 KB records passed: each came back with its QC, in a batch small enough.
    for record, size in zip(heavy, heavy_answers, strict=True):
        assert any(
            e["status"] == 200 and record["_id"] in e["values"] and e["bytes"] > size for e in batches
        ), record["_id"]
    # The over-limit record: skipped by the table that reads its QC, counted, named.
    assert list(named) == [huge["_id"]] and reported["quality_control"]["unreturnable_records"] == 1
    assert report["totals"]["unreturnable_records"] == 1
    # Every other record passed: the QC tables are the reference's, asset_basics (lean
    # projection) has the reference rows plus the huge record.
    lost_qc = differing(after, reference.before, ["quality_control", "qc_tag_status"])
    got = basics.filter(pc.is_in(basics["_id"], pa.array(reference.basics["_id"].to_pylist())))
    lost_basics = len(reference.basics["_id"].to_pylist()) - got.num_rows
    lost_basics += 0 if huge["_id"] in basics["_id"].to_pylist() else 1
    lost = len(lost_qc) + lost_basics
    assert lost == 0, (lost_qc, lost_basics)
    fault_report.record(
        "docdb-gateway-limits",
        fault="DocDB API at the gateway's limits (response size, integration timeout)",
        injected=(
            f"corpus of real sizes (largest {compact_size(largest) // 1000} KB), two records grown to "
            f"{HEAVY_QC_BYTES // 1000} KB of QC, one record of {huge_size / 1e6:.1f} MB; stand-in "
            "`gateway` profile: envelope limit 6,291,556 B answered 502, timeout scaled to 0.5 s at "
            "1 s/MB (on the modelled time), 3 requests in flight before 429 without Retry-After"
        ),
        survived=(
            f"{by_status.get('502', 0)}×502, {by_status.get('504', 0)}×504 (quality_control's first "
            f"request among them), {by_status.get('429', 0)}×429; {splits} batch splits, every batch "
            f"answered 502/504 asked again in smaller ones; the {HEAVY_QC_BYTES // 1000} KB records "
            f"passed; the {huge_size / 1e6:.1f} MB record skipped and named in the run report "
            f"(quality_control), every table built; QC tables identical to the reference, "
            f"asset_basics has all its rows"
        ),
        lost=lost,
        varying=f"{stats['requests_total']} requests",
    )


@GROUP_B
def test_docdb_listing_written_to_between_pages_is_taken_again(
    fault_corpus: list[dict], corpus_file: Path, monkeypatch: pytest.MonkeyPatch, fault_report: Any
) -> None:
    from bdc_sync import docdb as docdb_module

    # Pages of 40 records, so a 154-record listing has four pages to write between.
    monkeypatch.setattr(docdb_module, "LISTING_PAGE", 40)
    ordered = sorted(r["_id"] for r in fault_corpus)
    deleted = ordered[5]  # listed by the first page
    inserted = {**copy.deepcopy(fault_corpus[10]), "_id": "00000000-0000-4000-8000-00000000000a"}
    inserted["name"] = f"{inserted['name']}_inserted"
    pages: Counter[str] = Counter()
    lock = threading.Lock()
    original = PlainHTTPAdapter.send
    with local_stack(corpus_file, config=StackConfig(worker_timeout_seconds=60, extra_env=FAST_ENV)) as stack:

        def between_pages(adapter: PlainHTTPAdapter, request: Any, *args: Any, **kwargs: Any) -> Any:
            response = original(adapter, request, *args, **kwargs)
            if "/v2/" not in request.url:
                return response
            with lock:
                if "/count_documents" in request.url:
                    pages["counts"] += 1  # each listing attempt ends with a count
                    return response
                if "/find" not in request.url or "_last_modified" not in request.url:
                    return response
                counts = pages["counts"]
                # First attempt: a listed record is deleted after its first page (the
                # count after is one short). Second attempt: a record sorting before
                # every page is inserted after its first page (one more than listed,
                # and no page after the last has it).
                if counts == 0 and not pages["deleted"]:
                    pages["deleted"] += 1
                    stack.docdb_admin("delete?version=v2", [deleted])
                elif counts == 1 and not pages["inserted"]:
                    pages["inserted"] += 1
                    stack.docdb_admin("upsert?version=v2", [inserted])
            return response

        monkeypatch.setattr(PlainHTTPAdapter, "send", between_pages)
        # metadata_core comes along and lists the records for both.
        run = run_tables(stack, tables=["asset_basics"])
        monkeypatch.setattr(PlainHTTPAdapter, "send", original)
        report = run_report(stack, run.run_id)
        basics = read_table(stack, "asset_basics")
        final_ids = docdb_ids(stack)

    assert run.status("metadata_core") == run.status("asset_basics") == "succeeded", run.tables
    retries = {t["table"]: t for t in report["tables"]}["metadata_core"]["docdb_listing_retries"]
    got = set(basics["_id"].to_pylist())
    lost = len(final_ids - got) + len(got - final_ids)
    assert pages["deleted"] == pages["inserted"] == 1
    assert retries == 2 and deleted not in got and inserted["_id"] in got
    assert lost == 0, (final_ids - got, got - final_ids)
    fault_report.record(
        "docdb-listing-churn",
        fault="Records deleted and inserted while the listing pages",
        injected="while metadata_core lists for itself and asset_basics (pages of 40 by `_id` range): "
        "a listed record deleted after "
        "the first page; on the next attempt a record sorting before every page inserted after the first",
        survived=(
            f"each time the listing disagreed with count_documents and was taken again ({retries} "
            "retries); asset_basics "
            f"built with exactly DocDB's {len(final_ids)} records (deleted one gone, inserted one in)"
        ),
        lost=lost,
    )


def docdb_ids(stack: LocalStack) -> set[str]:
    """The ids DocDB holds now, from the stand-in itself (not through the code under test)."""
    url = f"{stack.docdb_url}/v2/metadata_index/data_assets/find"
    params = {"projection": json.dumps({"_id": 1}), "limit": "0", "skip": "0"}
    response = requests.get(url, params=params, timeout=60)
    response.raise_for_status()
    return {record["_id"] for record in response.json()}


# -- 2. A worker dies halfway --------------------------------------------------------------
@GROUP_A
def test_worker_crash_and_timeout_are_redelivered_and_rebuilt(
    reference: Reference,
    corpus_file: Path,
    mutation: list[dict],
    monkeypatch: pytest.MonkeyPatch,
    fault_report: Any,
) -> None:
    source_key = layout.table_key(FOLDER, "source_data")
    qc_prefix = layout.partition_folder_key(FOLDER, "qc")
    with local_stack(corpus_file, config=CRASH_CONFIG) as stack:
        run_tables(stack)
        baseline = snapshot(stack)
        stack.docdb_admin("upsert?version=v2", mutation)
        s3 = stack.s3()
        previous_ok: list[bool] = []  # one entry per check of a previous file
        lock = threading.Lock()

        def intact(key: str, *, unchanged: bool) -> None:
            # What a reader sees while the build is dying: a whole parquet file, and
            # (for the file being written when it died) byte for byte the previous one.
            table = "source_data" if key == source_key else "quality_control"
            expected = baseline[table].files.get(key)
            try:
                obj = s3.get_object(Bucket=stack.config.bucket, Key=key)
            except ClientError:
                ok = expected is None  # a new partition: there was no previous file
            else:
                data = obj["Body"].read()
                digest = hashlib.sha256(data).hexdigest()
                try:
                    pq.read_table(pa.BufferReader(data))
                    ok = digest == expected if unchanged else digest == obj["Metadata"].get("sha256")
                except (pa.ArrowException, OSError):
                    ok = False
            with lock:
                previous_ok.append(ok)

        crashed: set[str] = set()

        def first_write_of_each(key: str) -> bool:
            if key != source_key and not key.startswith(qc_prefix):
                return False
            table = "source_data" if key == source_key else "quality_control"
            with lock:  # partition files are written from a thread pool
                if table in crashed:
                    return False
                crashed.add(table)
                return True

        def exception_or_timeout(key: str) -> BaseException:
            intact(key, unchanged=True)
            if key == source_key:
                return RuntimeError("injected crash halfway through source_data")
            time.sleep(CRASH_CONFIG.worker_timeout_seconds + 0.5)  # runs past its lease
            return LambdaTimeout("injected timeout halfway through a quality_control chunk")

        fail_writes(monkeypatch, first_write_of_each, exception_or_timeout)

        def check_on_redelivery(event: dict[str, Any]) -> None:
            if receive_count(event) > 1:
                if body_of(event)["table"] == "source_data":
                    intact(source_key, unchanged=True)
                else:
                    for key in ObjectStore(stack.config.bucket, client=s3).list_keys(qc_prefix):
                        intact(key, unchanged=False)

        second = run_tables(stack, before_worker=check_on_redelivery, timeout=120)
        after = snapshot(stack)
        chunks = ledger_for(stack).chunk_items(second.run_id, "quality_control")
    statuses = {name: item["status"] for name, item in second.tables.items()}
    assert all(build_ok(status) for status in statuses.values()), statuses
    assert crashed == {"source_data", "quality_control"}
    assert second.tables["source_data"]["attempts"] == 2
    assert max(int(chunk["attempts"]) for chunk in chunks.values()) == 2
    lost_files = differing(after, reference.after)
    lost_previous = previous_ok.count(False)
    assert len(previous_ok) >= 4 and lost_previous == 0, previous_ok
    assert lost_files == [], lost_files
    checks = len(previous_ok)
    fault_report.record(
        "worker-exception",
        fault="Worker raises halfway through a table",
        injected="`ObjectStore.write_table` monkeypatched to raise RuntimeError on source_data's first write",
        survived=(
            f"previous file readable and unchanged at the crash and at redelivery ({checks} checks over "
            f"both faults); SQS redelivered after the visibility timeout, 2nd attempt rebuilt it; all "
            f"{len(PUBLISHED)} tables identical to the reference"
        ),
        lost=len([n for n in lost_files if n == "source_data"]) + lost_previous,
    )
    fault_report.record(
        "worker-timeout",
        fault="Worker killed by its timeout mid-build",
        injected="a BaseException subclass (skips every `except Exception`) raised from the first "
        "quality_control partition write after sleeping past the 2 s lease",
        survived=(
            f"no release, lease expired; the chunk was redelivered and claimed again (attempts "
            f"{max(int(c['attempts']) for c in chunks.values())}); meanwhile the partition being written was "
            f"unchanged and every partition a whole readable file; "
            f"quality_control and qc_tag_status identical to the reference"
        ),
        lost=len([n for n in lost_files if n in {"quality_control", "qc_tag_status"}]) + lost_previous,
    )


@GROUP_B
def test_poison_message_goes_to_the_dlq_and_the_run_still_finalizes(
    reference: Reference,
    corpus_file: Path,
    mutation: list[dict],
    monkeypatch: pytest.MonkeyPatch,
    fault_report: Any,
) -> None:
    source_key = layout.table_key(FOLDER, "source_data")
    with local_stack(corpus_file, config=CRASH_CONFIG) as stack:
        first = run_tables(stack)
        baseline = snapshot(stack)
        registry_before = registry_entries(stack)
        stack.docdb_admin("upsert?version=v2", mutation)
        calls = fail_writes(
            monkeypatch,
            lambda key: key == source_key,
            lambda key: RuntimeError("injected: source_data cannot be written"),
        )
        with LocalLambdas(stack, workers=3):
            started = time.monotonic()
            run_id = dispatch(TABLES)
            wait_for_runs(ledger_for(stack), [run_id], timeout=120)
            # SQS moves the message on the receive after its last failed one.
            dlq_wait = wait_until(lambda: queue_depth(stack, stack.work_dlq_url) > 0, 60, "the DLQ move")
        second = finished_run(stack, run_id, started)
        dead = stack.sqs().receive_message(QueueUrl=stack.work_dlq_url, MaxNumberOfMessages=10)["Messages"]
        after = snapshot(stack)
        registry = registry_entries(stack)
        report = run_report(stack, run_id)

    assert [json.loads(m["Body"])["table"] for m in dead] == ["source_data"]
    assert calls[source_key] == CRASH_CONFIG.max_receives
    assert second.status("source_data") == "failed" and second.run["state"] == "finalized"
    others = [n for n in PUBLISHED if n != "source_data"]
    assert all(build_ok(second.status(n)) for n in others), second.tables
    reported = {t["table"]: t for t in report["tables"]}
    assert reported["source_data"]["status"] == "failed"
    assert "source_data cannot be written" in reported["source_data"]["message"]
    assert report["totals"]["failed"] == 1
    entry, before = registry["source_data"], registry_before["source_data"]
    lost_registry = int(
        entry["status"] != "failed"
        or entry["built_by_run"] != first.run_id
        or any(
            entry.get(k) != before.get(k) for k in ("rows", "last_built", "content_sha256", "built_by_run")
        )
        or entry.get("last_run_id") != run_id
    )
    lost_files = differing(after, baseline, ["source_data"]) + differing(after, reference.after, others)
    lost = lost_registry + len(lost_files)
    assert lost == 0, (entry, before, lost_files)
    fault_report.record(
        "poison-message",
        fault="A message that keeps failing",
        injected="`ObjectStore.write_table` raises on every source_data write; MAX_RECEIVES=2",
        survived=(
            f"{calls[source_key]} attempts, then the message was in the work DLQ; run finalized with "
            f"source_data `failed` in the run report; its previous file and registry entry kept (rows "
            f"{entry['rows']}, last_built unchanged); the other {len(others)} tables identical to the "
            "reference"
        ),
        varying=f"in the DLQ {dlq_wait:.0f} s after the run ended; last_built {entry['last_built']}",
        lost=lost,
    )


# -- 3. Every message twice, out of order ---------------------------------------------------
class DuplicatingSQS:
    """Wraps the SQS client of ``Queues``: every message is sent twice, each copy with
    its own random delay, so copies arrive twice and out of the order they were sent."""

    def __init__(self, client: Any, rng: random.Random, sent: list[str], lock: threading.Lock) -> None:
        self._client = client
        self._rng = rng
        self._sent = sent
        self._lock = lock

    def send_message(self, **kwargs: Any) -> Any:
        response = None
        for _ in range(2):
            with self._lock:
                delay = self._rng.choice((0, 0, 1, 2, 3))
                self._sent.append(kwargs["MessageBody"])
            response = self._client.send_message(**kwargs, DelaySeconds=delay)
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@GROUP_A
def test_every_message_twice_and_out_of_order(
    reference: Reference, corpus_file: Path, monkeypatch: pytest.MonkeyPatch, fault_report: Any
) -> None:
    # Leases longer than any build here, so a duplicate never takes over a live build.
    config = StackConfig(worker_timeout_seconds=5, max_receives=3, extra_env=FAST_ENV)
    # Several chunks, so chunk messages are duplicated and reordered too.
    from bdc_sync.tables import quality_control

    monkeypatch.setattr(quality_control.TABLE, "subjects_per_chunk", 2)
    sent: list[str] = []
    lock = threading.Lock()
    rng = random.Random(42)
    original_init = Queues.__init__

    def duplicating_init(queues: Queues, *args: Any, **kwargs: Any) -> None:
        original_init(queues, *args, **kwargs)
        queues.client = DuplicatingSQS(queues.client, rng, sent, lock)

    monkeypatch.setattr(Queues, "__init__", duplicating_init)
    received: list[str] = []
    retried: list[str] = []  # copies that came back (after TableBusy: the other copy was building)

    def note(event: dict[str, Any]) -> None:
        with lock:
            received.append(event["Records"][0]["body"])
            if receive_count(event) > 1:
                retried.append(event["Records"][0]["body"])

    with local_stack(corpus_file, config=config) as stack:
        puts = PutCounter(monkeypatch)
        with LocalLambdas(stack, workers=4, before_worker=note) as lambdas:
            started = time.monotonic()
            run_id = dispatch(TABLES)
            ledger = ledger_for(stack)
            wait_for_runs(ledger, [run_id], timeout=180)
            # Let every copy be delivered (busy copies come back after the visibility timeout).
            wait_until(
                lambda: (
                    queue_depth(stack, stack.work_queue_url) == 0
                    and queue_depth(stack, stack.finalize_queue_url) == 0
                ),
                120,
                "the queues to drain",
            )
            assert lambdas.finalizer_poller is not None
            finalizer_invocations = lambdas.finalizer_poller.invocations
        run = finished_run(stack, run_id, started)
        chunks = ledger.chunk_items(run_id, "quality_control")
        after = snapshot(stack)
        dead = queue_depth(stack, stack.work_dlq_url) + queue_depth(stack, stack.finalize_dlq_url)

    sent_work = [b for b in sent if "table" in json.loads(b)]
    copies = Counter(received)
    out_of_order = sum(1 for a, b in itertools.pairwise(received) if sent.index(a) > sent.index(b))
    twice_written = {k: n for k, n in puts.published().items() if n > 1}
    # The chunked table's state is saved by its finish step, which must run once.
    state_puts = puts.puts[layout.state_key(FOLDER, "quality_control")]
    if state_puts != 1:
        twice_written[layout.state_key(FOLDER, "quality_control")] = state_puts
    report_puts = puts.puts[layout.run_report_key(FOLDER, run_id)]
    registry_puts = puts.puts[layout.registry_key(FOLDER)]
    rebuilt = {n: i["attempts"] for n, i in run.tables.items() if int(i.get("attempts", 0)) != 1}
    rebuilt.update({f"chunk {c}": i["attempts"] for c, i in chunks.items() if int(i.get("attempts", 0)) != 1})
    inconsistent = [n for n, i in run.tables.items() if i["status"] not in {"succeeded", "unchanged"}]
    inconsistent += [f"chunk {c}" for c, i in chunks.items() if i["status"] != "succeeded"]
    qc = run.tables["quality_control"]
    if int(qc.get("chunks_done", 0)) != int(qc.get("chunks_total", -1)) or qc.get("chunks") != len(chunks):
        inconsistent.append(
            f"quality_control chunks_done {qc.get('chunks_done')} of {qc.get('chunks_total')}"
        )

    assert run.run["state"] == "finalized" and len(chunks) > 1
    assert all(n >= 2 for n in Counter(sent_work).values()) and max(copies.values()) >= 2
    assert out_of_order > 0 and finalizer_invocations >= 2
    lost_files = differing(after, reference.before)
    lost = len(lost_files) + len(twice_written) + len(rebuilt) + len(inconsistent)
    lost += abs(report_puts - 1) + abs(registry_puts - 1) + dead
    assert lost == 0, (lost_files, twice_written, rebuilt, inconsistent, report_puts, registry_puts, dead)
    fault_report.record(
        "duplicate-delivery",
        fault="Every message delivered twice, out of order",
        injected="SQS client of `Queues` wrapped: each work/finalize message sent twice, each copy with "
        "a random 0–3 s delay; quality_control split into several chunks",
        survived=(
            f"{len(received)} worker deliveries of {len(set(received))} distinct messages, "
            f"{out_of_order} out of send order, {len(retried)} retried after finding the other copy "
            f"building; each table/chunk claimed once (attempts 1), each table "
            f"file written once ({len(puts.published())} files), the chunked table finished once, "
            "finalizer invoked "
            f"{finalizer_invocations}× but report and registry written once; ledger consistent "
            f"({len(chunks)} chunks, chunks_done {qc.get('chunks_done')}/{qc.get('chunks_total')}); "
            "tables identical to the reference"
        ),
        lost=lost,
    )


# -- 4. Twenty finalizers of two versions at once -----------------------------------------
@GROUP_B
def test_twenty_finalizers_of_two_versions_at_once(
    corpus_file: Path, monkeypatch: pytest.MonkeyPatch, fault_report: Any
) -> None:
    folders = ("bdc-v1.0", "bdc-v1.1")
    old_versions = ["bdc-v0.4", "bdc-v0.10"]  # written by the old package, must survive
    tables = buildable_tables()
    assert len(tables) >= 10
    with local_stack(corpus_file, config=StackConfig(extra_env=FAST_ENV)) as stack:
        store = ObjectStore(stack.config.bucket)
        store.put_json(layout.versions_key(), old_versions)
        ledger = ledger_for(stack)
        runs: list[tuple[str, str, str]] = []  # (run_id, folder, table)
        for index in range(20):
            folder, table = folders[index % 2], tables[index // 2]
            run_id = f"20260101T000000Z-{index:08x}"
            ledger.create_run(run_id, folder, "manual", {table: []})
            claim = ledger.claim(run_id, table, 60)
            outcome = {"status": "succeeded", "rows": index + 1, "content_sha256": f"{index:064x}"}
            assert ledger.record_outcome(run_id, table, claim.token, outcome)
            assert ledger.start_finalizing(run_id)
            runs.append((run_id, folder, table))
        puts = PutCounter(monkeypatch)
        # Twenty finalizer "containers": separate module instances, as separate Lambdas.
        handlers = [load_function("finalizer").lambda_handler for _ in runs]
        barrier = threading.Barrier(len(runs))
        failures: list[Any] = []

        def finalize(handler: Callable[[dict, Any], Any], run_id: str) -> None:
            message = {
                "MessageId": run_id,
                "ReceiptHandle": run_id,
                "Body": FinalizeItem(run_id=run_id).model_dump_json(),
                "MD5OfBody": hashlib.md5(run_id.encode()).hexdigest(),
            }
            event = sqs_event([message], "arn:aws:sqs:us-west-2:123456789012:bdc-finalize")
            barrier.wait()
            try:
                result = handler(event, FakeContext("bdc-finalizer"))
            except BaseException as exc:  # the handler must not raise at all
                failures.append(exc)
                return
            failures.extend(result.get("batchItemFailures", []))

        threads = [
            threading.Thread(target=finalize, args=(h, r[0])) for h, r in zip(handlers, runs, strict=True)
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        seconds = time.monotonic() - started
        versions = read_json(stack, layout.versions_key())
        registries = {
            f: {e["name"]: e for e in read_json(stack, layout.registry_key(f))["tables"]} for f in folders
        }
        states = [(ledger.get_run(r) or {}).get("state") for r, _, _ in runs]
        latest = {f: read_json(stack, layout.latest_run_report_key(f))["run_id"] for f in folders}

    expected_versions = [*old_versions, *folders]
    lost_versions = sum(abs(versions.count(v) - 1) for v in expected_versions) + (
        len(versions) - len(expected_versions)
    )
    lost_entries = [
        (folder, table)
        for run_id, folder, table in runs
        if registries[folder][table].get("last_run_id") != run_id
        or registries[folder][table]["status"] != "ok"
    ]
    not_finalized = states.count("finalized") - len(runs)
    wrong_latest = [f for f in folders if latest[f] != max(r for r, fo, _ in runs if fo == f)]
    conflicts = sum(puts.conflicts.values())
    assert failures == [] and versions == expected_versions, (failures, versions)
    lost = lost_versions + len(lost_entries) + abs(not_finalized) + len(wrong_latest)
    assert lost == 0, (versions, lost_entries, states, latest)
    assert conflicts > 0, "the finalizers never raced; the test proved nothing"
    fault_report.record(
        "concurrent-finalizers",
        fault="Twenty finalizers of two versions at the same moment",
        injected="20 finalizer handler instances (10 runs of bdc-v1.0, 10 of bdc-v1.1) released by a "
        "barrier against the moto server; conditional PUTs with If-Match/If-None-Match",
        survived=(
            f"lost races (412/409) retried; cache_versions.json = {versions} (each once, old "
            "entries kept); both registries hold all 10 runs' entries; all 20 runs finalized"
        ),
        varying=f"{conflicts} lost races; all finalized in {seconds:.1f} s",
        lost=lost,
    )


# -- 5. Two runs overlapping ---------------------------------------------------------------
@GROUP_B
def test_manual_run_during_the_nightly_run(
    reference: Reference, corpus_file: Path, fault_report: Any
) -> None:
    manual_tables = ["asset_basics", "source_data", "unique_subject_ids"]
    watched = [layout.table_key(FOLDER, name) for name in manual_tables]
    config = StackConfig(worker_timeout_seconds=10, max_receives=3, extra_env=FAST_ENV)
    with local_stack(corpus_file, config=config) as stack:
        reads = Counter[str]()
        torn: list[str] = []
        stop = threading.Event()

        def reader() -> None:
            # A reader polling the table files while both runs write them: every GET
            # must be a whole parquet file whose bytes match its own sha256 metadata.
            s3 = stack.s3()
            while not stop.is_set():
                for key in watched:
                    try:
                        obj = s3.get_object(Bucket=stack.config.bucket, Key=key)
                    except ClientError:
                        reads["missing"] += 1
                        continue
                    data = obj["Body"].read()
                    reads["read"] += 1
                    try:
                        rows = pq.read_table(pa.BufferReader(data)).num_rows
                    except (pa.ArrowException, OSError) as exc:
                        torn.append(f"{key}: {exc}")
                        continue
                    meta = obj.get("Metadata", {})
                    if hashlib.sha256(data).hexdigest() != meta.get("sha256") or str(rows) != meta.get(
                        "rows"
                    ):
                        torn.append(f"{key}: bytes do not match their metadata")

        manual: list[str] = []
        lock = threading.Lock()

        def start_manual_during_nightly(event: dict[str, Any]) -> None:
            with lock:
                if not manual and body_of(event)["table"] == "asset_basics":
                    manual.append(dispatch(manual_tables, trigger="manual"))

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        with LocalLambdas(stack, workers=4, before_worker=start_manual_during_nightly):
            started = time.monotonic()
            nightly = dispatch(TABLES)
            ledger = ledger_for(stack)
            wait_until(lambda: bool(manual), 60, "the manual run to start")
            wait_for_runs(ledger, [nightly, manual[0]], timeout=180)
        stop.set()
        thread.join(30)
        runs = {run_id: finished_run(stack, run_id, started) for run_id in (nightly, manual[0])}
        after = snapshot(stack)
        registry = registry_entries(stack)
        versions = read_json(stack, layout.versions_key())

    overlap = [
        name
        for name in manual_tables
        if runs[nightly].tables[name]["started_at"] < runs[manual[0]].tables[name]["finished_at"]
        and runs[manual[0]].tables[name]["started_at"] < runs[nightly].tables[name]["finished_at"]
    ]
    wrong_registry: list[str] = []
    for name in manual_tables:
        later = max(runs.values(), key=lambda r: r.tables[name]["finished_at"])
        if registry[name]["last_run_id"] != later.run_id or registry[name]["status"] != "ok":
            wrong_registry.append(
                f"{name}: registry names {registry[name]['last_run_id']}, later build {later.run_id}"
            )
    for name in TABLES:
        if name not in manual_tables and registry[name]["last_run_id"] != nightly:
            wrong_registry.append(f"{name}: registry names {registry[name]['last_run_id']}, not the nightly")
    assert all(build_ok(i["status"]) for r in runs.values() for i in r.tables.values())
    assert overlap, "the two runs did not overlap on any table"
    assert reads["read"] > 0 and versions == [FOLDER]
    lost_files = differing(after, reference.before)
    lost = len(torn) + len(wrong_registry) + len(lost_files)
    assert lost == 0, (torn, wrong_registry, lost_files)
    fault_report.record(
        "overlapping-runs",
        fault="Two runs overlapping (a manual run during the nightly)",
        injected="dispatcher invoked for a manual run of asset_basics, source_data, unique_subject_ids "
        "when the nightly run's first message is delivered; a reader GETs those files throughout",
        survived=(
            f"both runs finalized; built by both at the same time: {', '.join(overlap)}; "
            f"{reads['read']} concurrent reads, every one a whole file matching its sha256; the registry "
            f"names the later completed build of every table; tables identical to the reference"
        ),
        lost=lost,
    )


# -- 6. Malformed records ------------------------------------------------------------------
@GROUP_A
def test_malformed_records_are_skipped_counted_and_named(
    reference: Reference,
    fault_corpus: list[dict],
    tmp_path: Path,
    fault_report: Any,
) -> None:
    damaged = malformed_records(62, seed=21)
    damaged_ids = {r["_id"] for r in damaged}
    kinds = Counter(r["_damage"] for r in damaged)
    path = tmp_path / "records.jsonl"
    write_jsonl([*fault_corpus, *damaged], path)
    good_ids = [r["_id"] for r in fault_corpus]
    with local_stack(path, config=StackConfig(worker_timeout_seconds=10, extra_env=FAST_ENV)) as stack:
        run = run_tables(stack)
        report = run_report(stack, run.run_id)
        basics = read_table(stack, "asset_basics")
        source_data = read_table(stack, "source_data")
        registry = registry_entries(stack)

    statuses = {name: item["status"] for name, item in run.tables.items()}
    assert all(status == "succeeded" for status in statuses.values()), statuses
    reported = {t["table"]: t for t in report["tables"]}
    counted = report["totals"]["malformed_records"]
    named = {s["id"] for t in report["tables"] for s in t["malformed_sample"]}
    assert counted > 0 and named and named <= damaged_ids, (counted, named - damaged_ids)
    assert all(len(t["malformed_sample"]) <= 5 for t in report["tables"])
    # Good records: exactly the reference rows, whatever the damaged ones did.
    ref_basics = reference.basics.sort_by("_id")
    got_basics = basics.filter(pc.is_in(basics["_id"], pa.array(good_ids))).sort_by("_id")
    lost_basics = len(set(good_ids) - set(got_basics["_id"].to_pylist()))
    if lost_basics == 0 and not got_basics.equals(ref_basics):
        lost_basics = sum(
            1 for a, b in zip(got_basics.to_pylist(), ref_basics.to_pylist(), strict=True) if a != b
        )
    ref_names = set(reference.source_data["name"].to_pylist())
    got_sources = source_data.filter(pc.is_in(source_data["name"], pa.array(sorted(ref_names))))
    ref_sources = reference.source_data
    # Missing, extra or changed source_data rows of good records all count.
    lost_sources = 0
    if not got_sources.sort_by("name").equals(ref_sources.sort_by("name")):
        got_rows = Counter(json.dumps(r, sort_keys=True, default=str) for r in got_sources.to_pylist())
        ref_rows = Counter(json.dumps(r, sort_keys=True, default=str) for r in ref_sources.to_pylist())
        lost_sources = sum(((got_rows - ref_rows) + (ref_rows - got_rows)).values())
    kept_per_field = len(damaged_ids & set(basics["_id"].to_pylist()))
    skipped = len(damaged_ids) - kept_per_field
    # Every record asset_basics left out is one it counted, and only those.
    assert reported["asset_basics"]["malformed_records"] == skipped, (reported["asset_basics"], skipped)
    lost = lost_basics + lost_sources
    assert lost == 0, (lost_basics, lost_sources)
    assert all(registry[name]["status"] == "ok" for name in PUBLISHED)
    per_table = ", ".join(
        f"{name} {reported[name]['malformed_records']}"
        for name in TABLES
        if reported[name]["malformed_records"]
    )
    fault_report.record(
        "malformed-records",
        fault="Malformed records in the corpus",
        injected=f"`corpus.malformed_records(62)` added to the corpus: {len(kinds)} kinds (missing and "
        "null sections, wrong types, null lists, non-ISO dates, 1 MB strings, lone surrogates, ...)",
        survived=(
            f"every table built; {kept_per_field} damaged records kept in asset_basics with per-field "
            f"nulls, {skipped} skipped; counted per table ({per_table}); {len(named)} ids named in the "
            f"run report; rows of the {len(good_ids)} good records identical to the reference"
        ),
        lost=lost,
    )


# -- 7. Client side: damaged objects ---------------------------------------------------------
@GROUP_B
def test_client_refuses_truncated_corrupt_and_missing_objects(
    corpus_file: Path, isolated_cache: Path, fault_report: Any
) -> None:
    with local_stack(corpus_file, config=StackConfig(worker_timeout_seconds=10, extra_env=FAST_ENV)) as stack:
        run_tables(stack)
        s3, bucket = stack.s3(), stack.config.bucket
        cache = Cache(cache_dir=isolated_cache)
        good = {name: cache.read_arrow(name) for name in ("asset_basics", "source_data", "unique_genotypes")}
        subject = sorted(cache.unique("unique_subject_ids"))[0]
        assert len(cache.qc(subject)) > 0

        def url(key: str) -> str:
            return layout.s3_url(bucket, key)

        def damage(key: str, body: bytes) -> None:
            head = s3.head_object(Bucket=bucket, Key=key)
            s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata=head.get("Metadata", {}))

        def original(key: str) -> bytes:
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read()

        basics_key = layout.table_key(FOLDER, "asset_basics")
        source_key = layout.table_key(FOLDER, "source_data")
        genotypes_key = layout.table_key(FOLDER, "unique_genotypes")
        partition = layout.partition_key(FOLDER, "qc", "subject_id", subject)
        damage(basics_key, original(basics_key)[: len(original(basics_key)) // 2])  # truncated
        damage(source_key, b"PAR1" + bytes(range(256)) * 8)  # not parquet at all
        damage(partition, original(partition)[:-20])  # footer cut off
        s3.delete_object(Bucket=bucket, Key=genotypes_key)  # listed by the registry, absent
        # A table of a newer release, listed by the registry, whose file is missing.
        registry = read_json(stack, layout.registry_key(FOLDER))
        registry["tables"].append(
            {
                **registry["tables"][1],
                "name": "future_table",
                "location": url(layout.table_key(FOLDER, "future_table")),
            }
        )
        s3.put_object(Bucket=bucket, Key=layout.registry_key(FOLDER), Body=json.dumps(registry).encode())

        cases: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
            (
                "truncated asset_basics.pqt",
                lambda: cache.read("asset_basics"),
                CorruptObjectError,
                url(basics_key),
            ),
            (
                "corrupt source_data.pqt",
                lambda: cache.read_arrow("source_data"),
                CorruptObjectError,
                url(source_key),
            ),
            ("truncated qc partition", lambda: cache.qc(subject), CorruptObjectError, url(partition)),
            (
                "registry names a missing unique_genotypes.pqt",
                lambda: cache.unique("unique_genotypes"),
                MissingObjectError,
                url(genotypes_key),
            ),
            (
                "registry names a missing future_table.pqt",
                lambda: Cache(cache_dir=isolated_cache, registry_ttl=0).read("future_table"),
                MissingObjectError,
                url(layout.table_key(FOLDER, "future_table")),
            ),
        ]
        wrong_data: list[str] = []
        unclear: list[str] = []
        for what, read, error, named in cases:
            try:
                data = read()
            except error as exc:
                if named not in str(exc):
                    unclear.append(f"{what}: {exc}")
            except Exception as exc:  # any other error is an unclear one
                unclear.append(f"{what}: {type(exc).__name__}: {exc}")
            else:
                wrong_data.append(f"{what}: returned {type(data).__name__}")
        # Once the objects are good again, the same reader returns the same data.
        for name, key in (
            ("asset_basics", basics_key),
            ("source_data", source_key),
            ("unique_genotypes", genotypes_key),
        ):
            buffer = io.BytesIO()
            pq.write_table(good[name], buffer, compression="zstd")
            s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
        healed = all(cache.read_arrow(n).equals(good[n]) for n in good)

    assert wrong_data == [] and unclear == [], (wrong_data, unclear)
    assert healed
    fault_report.record(
        "client-corrupt-objects",
        fault="Client reads a truncated/corrupt parquet object, or a registry naming a missing file",
        injected="S3 objects overwritten on the moto server (half a file, garbage, a cut footer on a "
        "partition), a table file deleted, a registry entry added for a file that does not exist",
        survived=(
            f"{len(cases)}/{len(cases)} reads raised CorruptObjectError/MissingObjectError naming the "
            "object's s3:// URL, with a warm local cache too; no data returned from a damaged object; "
            "reads recover once the objects are good"
        ),
        lost=len(wrong_data) + len(unclear),
    )


@GROUP_B
def test_client_partitioned_read_names_a_damaged_partition(corpus_file: Path, isolated_cache: Path) -> None:
    with local_stack(corpus_file, config=StackConfig(worker_timeout_seconds=10, extra_env=FAST_ENV)) as stack:
        run_tables(stack, tables=["asset_basics", "quality_control"])
        s3, bucket = stack.s3(), stack.config.bucket
        warm = Cache(cache_dir=isolated_cache)
        assert warm.read_arrow("quality_control").num_rows > 0  # a reader that has read it before
        keys = list(ObjectStore(bucket, client=s3).list_keys(layout.partition_folder_key(FOLDER, "qc")))
        key = keys[0]
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        s3.put_object(Bucket=bucket, Key=key, Body=body[: len(body) // 2])
        outcomes: dict[str, str] = {}
        for name, reader in (("warm", warm), ("cold", Cache(cache_dir=isolated_cache))):
            try:
                data = reader.read_arrow("quality_control")
            except CorruptObjectError as exc:
                outcomes[name] = "named" if layout.s3_url(bucket, key) in str(exc) else f"unnamed: {exc}"
            except Exception as exc:  # any other error is an unclear one
                outcomes[name] = f"{type(exc).__name__}: {exc}"
            else:
                outcomes[name] = f"returned {data.num_rows} rows from a damaged partition"
    assert outcomes == {"warm": "named", "cold": "named"}, outcomes


# -- 8. Living beside the 0.x job ------------------------------------------------------------
OLD_JOB_VERSIONS = ["bdc-v0.33"]


@GROUP_A
def test_old_job_rewriting_the_versions_file(
    corpus_file: Path, isolated_cache: Path, monkeypatch: pytest.MonkeyPatch, fault_report: Any
) -> None:
    """The 0.x nightly job puts cache_versions.json back unconditionally, and with only
    its own folder when its read fails: our entry vanishes between two runs, and again
    in the middle of a finalize (after the finalizer read the file)."""
    import bdc_sync.flow.finalize as finalize_module

    tables = ["asset_basics"]
    key = layout.versions_key()
    expected = [*OLD_JOB_VERSIONS, FOLDER]
    with local_stack(corpus_file, config=StackConfig(extra_env=FAST_ENV)) as stack:
        s3, bucket = stack.s3(), stack.config.bucket

        def old_job_writes() -> None:
            s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(OLD_JOB_VERSIONS).encode())

        reads: dict[str, tuple[bool, bool, int]] = {}  # what the client saw at each check

        def client_reads(when: str) -> None:
            cache = Cache(cache_dir=isolated_cache, registry_ttl=0)
            listed = cache.list_versions()
            reads[when] = (
                FOLDER in listed,
                cache.version == FOLDER,
                cache.read_arrow("asset_basics").num_rows,
            )

        first = run_tables(stack, tables=tables)
        assert read_json(stack, key) == [FOLDER]
        client_reads("after the first run")

        # Between two runs.
        old_job_writes()
        assert read_json(stack, key) == OLD_JOB_VERSIONS
        client_reads("between two runs")
        restoring = run_tables(stack, tables=tables)
        restored = read_json(stack, key)
        client_reads("after the next run")

        # During a finalize: the old job's write lands after the finalizer read the file
        # (which held our entry, so it had nothing to write); the run after puts it back.
        original = finalize_module.add_version
        injected = threading.Event()

        def racing_add_version(versions: list[str] | None, folder: str) -> list[str]:
            if not injected.is_set():
                injected.set()
                old_job_writes()
                client_reads("during a finalize")
            return original(versions, folder)

        monkeypatch.setattr(finalize_module, "add_version", racing_add_version)
        raced = run_tables(stack, tables=tables)
        after_race = read_json(stack, key)
        client_reads("after the raced finalize")
        monkeypatch.setattr(finalize_module, "add_version", original)
        last = run_tables(stack, tables=tables)
        after = read_json(stack, key)
        client_reads("after the run after it")

    runs = (first, restoring, raced, last)
    assert injected.is_set() and after_race == OLD_JOB_VERSIONS, "the old job's write was not injected"
    assert all(run.run["state"] == "finalized" for run in runs)
    rows = reads["after the first run"][2]
    bad_reads = {when: seen for when, seen in reads.items() if seen != (True, True, rows)}
    lost = (restored != expected) + (after != expected) + len(bad_reads)
    assert restored == after == expected, (restored, after)
    assert lost == 0, bad_reads
    fault_report.record(
        "old-job-versions-file",
        fault="The 0.x job rewrites cache_versions.json without our entry",
        injected=f"unconditional PUT of `{json.dumps(OLD_JOB_VERSIONS)}` between two runs, and again "
        "inside a later finalize, after it read the file",
        survived=(
            f"the client listed {FOLDER} (from the bdc-v* folders) and read it ({rows} rows) as its "
            f"default version at each of {len(reads)} checks; the run after each write put the entry "
            f"back (cache_versions.json = {json.dumps(after)}); {len(runs)} runs finalized"
        ),
        lost=lost,
    )
