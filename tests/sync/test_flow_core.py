"""The run's state machine, fast: ledger claims and conditional writes, chunk counting,
``advance_run``, table resolution and the registry merge.

moto in-process (DynamoDB, SQS); the ledger's and progress' own code paths. The
end-to-end tests drive the same code through servers; these pin each rule alone.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from pydantic import ValidationError
from table_harness import mocked_aws

from bdc_local.stack import create_ledger_table
from bdc_sync.flow import states, work
from bdc_sync.flow.dispatch import resolve_tables, start_run
from bdc_sync.flow.events import RunRequest, WorkItem
from bdc_sync.flow.finalize import merge_registry
from bdc_sync.flow.ledger import Ledger
from bdc_sync.flow.progress import advance_run
from bdc_sync.flow.queues import Queues
from bdc_sync.flow.states import IllegalTransition, RunState, Status
from bdc_sync.framework import DerivedTable, UndeclaredInput
from bdc_sync.outcome import Outcome
from bdc_sync.settings import Settings
from bdc_sync.tables import buildable_tables
from biodata_cache import catalog
from biodata_cache.catalog import UnknownTableError

REGION = "us-west-2"
RUN = "run-1"
LEASE = 900


class Stack:
    """A ledger table and the two queues, in moto."""

    def __init__(self) -> None:
        dynamodb = boto3.resource("dynamodb", region_name=REGION)
        create_ledger_table(dynamodb.meta.client, "ledger")
        self.sqs = boto3.client("sqs", region_name=REGION)
        work = self.sqs.create_queue(QueueName="work")["QueueUrl"]
        final = self.sqs.create_queue(QueueName="finalize")["QueueUrl"]
        self.settings = Settings(
            cache_bucket="cache", work_queue_url=work, finalize_queue_url=final, run_ledger_table="ledger"
        )
        boto3.client("s3", region_name=REGION).create_bucket(
            Bucket="cache", CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        self.ledger = Ledger("ledger", resource=dynamodb)
        self.queues = Queues(work, final, client=self.sqs)

    def drain(self, url: str) -> list[dict[str, Any]]:
        """Every message now in a queue (received and deleted), as parsed bodies."""
        bodies: list[dict[str, Any]] = []
        while True:
            got = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return bodies
            for message in got:
                bodies.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def work(self) -> list[tuple[str, int | None]]:
        return sorted((m["table"], m.get("chunk")) for m in self.drain(self.settings.work_queue_url or ""))

    def finalize_messages(self) -> list[str]:
        return [m["run_id"] for m in self.drain(self.settings.finalize_queue_url or "")]

    def status(self, table: str, chunk: int | None = None) -> str:
        return str((self.ledger.get_item(RUN, table, chunk) or {}).get("status"))

    def finish(self, table: str, status: str = "succeeded", **figures: Any) -> None:
        """Claim and record an outcome, as a worker does."""
        claim = self.ledger.claim(RUN, table, LEASE)
        assert claim.won, (table, claim.status)
        outcome = Outcome.model_validate({"status": status, "rows": 1, **figures})
        assert self.ledger.record_outcome(RUN, table, claim.token, outcome)


@pytest.fixture
def stack() -> Iterator[Stack]:
    with mocked_aws(REGION):
        yield Stack()


# -- ledger: claims and conditional writes ---------------------------------------------


def test_one_claim_wins_while_the_lease_holds(stack: Stack) -> None:
    stack.ledger.create_run(RUN, "v1", "manual", {"asset_basics": []})
    first = stack.ledger.claim(RUN, "asset_basics", LEASE)
    second = stack.ledger.claim(RUN, "asset_basics", LEASE)
    assert first.won and first.token
    assert not second.won and second.status == "running"
    assert stack.ledger.claim(RUN, "no_such_table", LEASE).status == "missing"


def test_an_expired_lease_is_taken_over_and_the_old_holder_cannot_record(stack: Stack) -> None:
    stack.ledger.create_run(RUN, "v1", "manual", {"asset_basics": []})
    stale = stack.ledger.claim(RUN, "asset_basics", lease_seconds=-1)  # already expired
    fresh = stack.ledger.claim(RUN, "asset_basics", LEASE)
    assert fresh.won and fresh.token != stale.token
    outcome = Outcome(status=Status.SUCCEEDED, rows=3)
    assert not stack.ledger.record_outcome(RUN, "asset_basics", stale.token, outcome)
    assert stack.ledger.record_outcome(RUN, "asset_basics", fresh.token, outcome)
    item = stack.ledger.get_item(RUN, "asset_basics") or {}
    assert item["status"] == "succeeded" and item["rows"] == 3 and item["attempts"] == 2
    # Terminal: no claim, no second outcome.
    assert stack.ledger.claim(RUN, "asset_basics", LEASE).status == "succeeded"
    assert not stack.ledger.record_outcome(RUN, "asset_basics", fresh.token, {"status": "failed"})


def test_a_released_item_is_claimed_again_and_keeps_the_error(stack: Stack) -> None:
    stack.ledger.create_run(RUN, "v1", "manual", {"asset_basics": []})
    claim = stack.ledger.claim(RUN, "asset_basics", LEASE)
    assert not stack.ledger.release(RUN, "asset_basics", "not-the-token", "boom")
    assert stack.ledger.release(RUN, "asset_basics", claim.token, "boom")
    assert stack.ledger.claim(RUN, "asset_basics", LEASE).won
    assert (stack.ledger.get_item(RUN, "asset_basics") or {})["last_error"] == "boom"


def test_an_outcome_must_be_terminal(stack: Stack) -> None:
    stack.ledger.create_run(RUN, "v1", "manual", {"asset_basics": []})
    claim = stack.ledger.claim(RUN, "asset_basics", LEASE)
    with pytest.raises(IllegalTransition, match="not an outcome status: running"):
        stack.ledger.record_outcome(RUN, "asset_basics", claim.token, {"status": "running"})
    with pytest.raises(IllegalTransition, match="not an outcome status: skipped"):
        stack.ledger.record_outcome(RUN, "asset_basics", claim.token, {"status": "skipped"})


def test_queued_and_skipped_only_from_waiting(stack: Stack) -> None:
    stack.ledger.create_run(RUN, "v1", "manual", {"asset_basics": [], "source_data": ["asset_basics"]})
    assert stack.ledger.mark_queued(RUN, "asset_basics")
    assert not stack.ledger.mark_queued(RUN, "asset_basics")
    assert not stack.ledger.mark_skipped(RUN, "asset_basics", "why")
    assert stack.ledger.mark_skipped(RUN, "source_data", "input failed")
    assert stack.status("source_data") == "skipped"


def test_a_run_finalizes_once(stack: Stack) -> None:
    stack.ledger.create_run(RUN, "v1", "manual", {"asset_basics": []})
    assert not stack.ledger.mark_finalized(RUN, "report.json")  # not finalizing yet
    assert stack.ledger.start_finalizing(RUN)
    assert not stack.ledger.start_finalizing(RUN)
    assert stack.ledger.mark_finalized(RUN, "report.json")
    assert not stack.ledger.mark_finalized(RUN, "report.json")
    assert (stack.ledger.get_run(RUN) or {})["state"] == "finalized"


# -- the worker builds with its table's spec ---------------------------------------------


def test_the_worker_holds_a_build_to_its_depends_on(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    undeclared = dataclasses.replace(catalog.UNIQUE_PROJECT_NAMES, depends_on=())
    sneaky = DerivedTable(spec=undeclared, derive=lambda ctx: ctx.upstream("asset_basics"))
    monkeypatch.setattr(work, "build_of", lambda name: sneaky)
    stack.ledger.create_run(RUN, "v1", "manual", {"unique_project_names": []})
    item = WorkItem(run_id=RUN, table="unique_project_names")
    with pytest.raises(UndeclaredInput):
        work.build_work_item(item, stack.settings.max_receives, stack.settings, stack.ledger, stack.queues)
    recorded = stack.ledger.get_item(RUN, "unique_project_names") or {}
    assert recorded["status"] == "failed"
    assert recorded["message"].startswith("UndeclaredInput: unique_project_names reads 'asset_basics'")


# -- chunks: counted once each, finished once ---------------------------------------------


def test_chunks_are_counted_once_and_the_table_finished_once(stack: Stack) -> None:
    table = "quality_control"
    stack.ledger.create_run(RUN, "v1", "manual", {table: []})
    claim = stack.ledger.claim(RUN, table, LEASE)
    assert not stack.ledger.start_chunks(RUN, table, "not-the-token", 3)
    assert stack.ledger.start_chunks(RUN, table, claim.token, 3)
    assert stack.status(table) == "chunked"
    assert sorted(stack.ledger.chunk_items(RUN, table)) == [0, 1, 2]
    assert {c["status"] for c in stack.ledger.chunk_items(RUN, table).values()} == {"queued"}

    assert stack.ledger.count_chunk_done(RUN, table, 0) == (1, 3)
    assert stack.ledger.count_chunk_done(RUN, table, 0) == (1, 3)  # a duplicate delivery
    assert stack.ledger.count_chunk_done(RUN, table, 2) == (2, 3)
    assert stack.ledger.count_chunk_done(RUN, table, 1) == (3, 3)

    assert stack.ledger.claim_finish(RUN, table, LEASE)
    assert not stack.ledger.claim_finish(RUN, table, LEASE)  # another delivery is finishing
    # A chunked table's outcome needs no lease token; a lease holder's does not apply.
    assert not stack.ledger.record_outcome(RUN, table, claim.token, {"status": "succeeded"})
    assert stack.ledger.record_outcome(RUN, table, None, {"status": "succeeded", "rows": 9})
    assert not stack.ledger.record_outcome(RUN, table, None, {"status": "failed"})
    assert stack.status(table) == "succeeded"


def test_an_abandoned_finish_can_be_claimed_after_its_lease(stack: Stack) -> None:
    table = "quality_control"
    stack.ledger.create_run(RUN, "v1", "manual", {table: []})
    claim = stack.ledger.claim(RUN, table, LEASE)
    assert stack.ledger.start_chunks(RUN, table, claim.token, 1)
    assert stack.ledger.claim_finish(RUN, table, lease_seconds=-1)  # the winner died at once
    assert stack.ledger.claim_finish(RUN, table, LEASE)


def test_a_chunk_is_claimed_like_a_table(stack: Stack) -> None:
    table = "quality_control"
    stack.ledger.create_run(RUN, "v1", "manual", {table: []})
    assert stack.ledger.start_chunks(RUN, table, stack.ledger.claim(RUN, table, LEASE).token, 2)
    chunk = stack.ledger.claim(RUN, table, LEASE, chunk=1)
    assert chunk.won and not stack.ledger.claim(RUN, table, LEASE, chunk=1).won
    assert stack.ledger.record_outcome(RUN, table, chunk.token, {"status": "failed"}, chunk=1)
    assert stack.status(table, 1) == "failed" and stack.status(table, 0) == "queued"
    assert stack.status(table) == "chunked"


# -- advance_run --------------------------------------------------------------------------


def test_advance_run_enqueues_ready_tables_skips_after_a_failure_and_finalizes(stack: Stack) -> None:
    stack.ledger.create_run(
        RUN,
        "v1",
        "manual",
        {
            "asset_basics": [],
            "foraging_sessions": [],
            "source_data": ["asset_basics"],
            "platform_exaspim": ["asset_basics", "source_data"],
        },
    )
    assert advance_run(RUN, stack.ledger, stack.queues) == ["asset_basics", "foraging_sessions"]
    assert stack.work() == [("asset_basics", None), ("foraging_sessions", None)]
    assert advance_run(RUN, stack.ledger, stack.queues) == []  # a duplicate call sends nothing
    assert stack.work() == []

    stack.finish("asset_basics")
    assert advance_run(RUN, stack.ledger, stack.queues) == ["source_data"]
    assert stack.work() == [("source_data", None)]

    stack.finish("source_data", status="failed")
    stack.finish("foraging_sessions", status="unchanged")
    assert advance_run(RUN, stack.ledger, stack.queues) == []
    item = stack.ledger.get_item(RUN, "platform_exaspim") or {}
    assert item["status"] == "skipped"
    assert item["message"] == "not built because input source_data was not built"
    assert stack.work() == []
    assert (stack.ledger.get_run(RUN) or {})["state"] == "finalizing"
    assert stack.finalize_messages() == [RUN]
    # A redelivery after the hand-over sends the finalize message again (the finalizer is idempotent).
    advance_run(RUN, stack.ledger, stack.queues)
    assert stack.finalize_messages() == [RUN]


def test_advance_run_waits_for_a_running_input(stack: Stack) -> None:
    stack.ledger.create_run(RUN, "v1", "manual", {"asset_basics": [], "source_data": ["asset_basics"]})
    advance_run(RUN, stack.ledger, stack.queues)
    stack.ledger.claim(RUN, "asset_basics", LEASE)
    assert advance_run(RUN, stack.ledger, stack.queues) == []
    assert stack.status("source_data") == "waiting"
    assert stack.finalize_messages() == []


# -- table resolution ---------------------------------------------------------------------


def test_resolve_tables() -> None:
    assert resolve_tables(None) == buildable_tables()
    assert "qc_tag_status" not in buildable_tables()  # written by quality_control's build
    assert resolve_tables(["qc_tag_status"]) == ["quality_control"]
    # asset_basics' records are metadata_core's: asked for alone it is rebuilt with it.
    assert resolve_tables(["quality_control", "qc_tag_status", "asset_basics"]) == [
        "quality_control",
        "metadata_core",
        "asset_basics",
    ]
    assert resolve_tables(["platform_fib"]) == ["metadata_core", "asset_basics", "platform_fib"]
    assert resolve_tables(["metadata_core", "unique_project_names"]) == [
        "metadata_core",
        "unique_project_names",
    ]
    with pytest.raises(UnknownTableError, match="unknown table 'asset_basic'; known tables: asset_basics"):
        resolve_tables(["asset_basic"])


def test_a_run_waits_only_for_inputs_in_the_run(stack: Stack) -> None:
    started = start_run(
        RunRequest(trigger="manual", tables=["unique_project_names"]),
        stack.settings,
        stack.ledger,
        stack.queues,
    )
    # asset_basics is not in this run: its current file is the input, nothing to wait for.
    assert started["enqueued"] == ["unique_project_names"]
    run_id = started["run_id"]
    assert (stack.ledger.get_item(run_id, "unique_project_names") or {})["depends_on"] == []
    # An empty list is refused before anything is recorded.
    with pytest.raises(ValidationError, match="at least 1 item"):
        RunRequest(trigger="manual", tables=[])


# -- the registry merge -------------------------------------------------------------------


def entry(registry: dict[str, Any], name: str) -> dict[str, Any]:
    return next(e for e in registry["tables"] if e["name"] == name)


def outcome(status: str, finished_at: float, **fields: Any) -> Outcome:
    return Outcome.model_validate({"status": status, "finished_at": finished_at, "message": "", **fields})


def test_a_first_registry_lists_every_table_never_built() -> None:
    registry = merge_registry(None, {}, "r1", "bucket", "v1")
    assert [e["name"] for e in registry["tables"]] == [s.name for s in catalog.ALL_TABLES]
    assert {e["status"] for e in registry["tables"]} == {"never built"}
    # A partitioned table is located by its folder, the others by their file.
    assert entry(registry, "quality_control")["location"].endswith("/v1/qc/")
    assert entry(registry, "asset_basics")["location"].endswith("/v1/asset_basics.pqt")
    assert entry(registry, "quality_control")["partitioned"] is True


def test_registry_merge_over_runs() -> None:
    built = merge_registry(
        None, {"asset_basics": outcome("succeeded", 100.0, rows=5, content_sha256="a")}, "r1", "b", "v1"
    )
    first = entry(built, "asset_basics")
    assert (first["status"], first["rows"], first["built_by_run"], first["content_sha256"]) == (
        "ok",
        5,
        "r1",
        "a",
    )

    unchanged = merge_registry(built, {"asset_basics": outcome("unchanged", 200.0, rows=5)}, "r2", "b", "v1")
    kept = entry(unchanged, "asset_basics")
    assert kept["built_by_run"] == "r1" and kept["last_built"] == first["last_built"]
    assert kept["last_run_id"] == "r2" and kept["content_sha256"] == "a"

    failed = merge_registry(
        unchanged, {"asset_basics": outcome("failed", 300.0, rows=0, message="boom")}, "r3", "b", "v1"
    )
    after_failure = entry(failed, "asset_basics")
    # The previous good table stays described: rows, hash and build of the file still there.
    assert after_failure["status"] == "failed" and after_failure["message"] == "boom"
    assert (after_failure["rows"], after_failure["content_sha256"], after_failure["built_by_run"]) == (
        5,
        "a",
        "r1",
    )


def test_an_older_outcome_does_not_overwrite_a_later_build() -> None:
    later = merge_registry(
        None, {"asset_basics": outcome("succeeded", 500.0, rows=7, content_sha256="new")}, "late", "b", "v1"
    )
    # An overlapping run that finished the table earlier finalizes afterwards.
    merged = merge_registry(
        later, {"asset_basics": outcome("succeeded", 400.0, rows=6, content_sha256="old")}, "early", "b", "v1"
    )
    assert entry(merged, "asset_basics")["built_by_run"] == "late"
    assert entry(merged, "asset_basics")["rows"] == 7


def test_a_companion_takes_its_rows_from_the_build_that_writes_it() -> None:
    registry = merge_registry(
        None,
        {"quality_control": outcome("succeeded", 1.0, rows=10, companion_rows={"qc_tag_status": 4})},
        "r1",
        "b",
        "v1",
    )
    assert entry(registry, "quality_control")["rows"] == 10
    assert entry(registry, "qc_tag_status")["rows"] == 4
    assert entry(registry, "qc_tag_status")["status"] == "ok"
    # Tables not in the run keep what the registry said.
    assert entry(registry, "asset_basics")["status"] == "never built"


# -- the state machine (bdc_sync.flow.states) ----------------------------------------------


def test_the_state_machine_names_every_legal_move() -> None:
    legal = [
        (states.TABLE, Status.WAITING, Status.QUEUED),
        (states.TABLE, Status.WAITING, Status.SKIPPED),
        (states.TABLE, Status.QUEUED, Status.RUNNING),
        (states.TABLE, Status.RUNNING, Status.RUNNING),
        (states.TABLE, Status.RUNNING, Status.CHUNKED),
        (states.TABLE, Status.CHUNKED, Status.SUCCEEDED),
        (states.CHUNK, Status.QUEUED, Status.RUNNING),
        (states.CHUNK, Status.RUNNING, Status.FAILED),
        (states.RUN, RunState.RUNNING, RunState.FINALIZING),
        (states.RUN, RunState.FINALIZING, RunState.FINALIZED),
    ]
    for machine, source, target in legal:
        machine.check([source], target)
    illegal = [
        (states.TABLE, Status.SUCCEEDED, Status.QUEUED),
        (states.TABLE, Status.SKIPPED, Status.RUNNING),
        (states.TABLE, Status.QUEUED, Status.SKIPPED),
        (states.TABLE, Status.CHUNKED, Status.RUNNING),
        (states.CHUNK, Status.RUNNING, Status.CHUNKED),
        (states.CHUNK, Status.WAITING, Status.RUNNING),
        (states.RUN, RunState.FINALIZED, RunState.RUNNING),
        (states.RUN, RunState.RUNNING, RunState.FINALIZED),
        (states.RUN, RunState.COALESCED, RunState.FINALIZING),
    ]
    for machine, source, target in illegal:
        with pytest.raises(IllegalTransition, match=f"a {machine.kind} cannot go from {source} to {target}"):
            machine.check([source], target)
    # A terminal state is the end: nothing leaves it.
    for machine in (states.TABLE, states.CHUNK):
        assert not any(machine.moves.get(s) for s in states.TERMINAL)
    assert states.TERMINAL == states.BUILT | states.NOT_BUILT


def test_an_illegal_move_asked_of_the_ledger_raises_and_writes_nothing(stack: Stack) -> None:
    table = "quality_control"
    stack.ledger.create_run(RUN, "v1", "manual", {table: []})
    claim = stack.ledger.claim(RUN, table, LEASE)
    assert stack.ledger.start_chunks(RUN, table, claim.token, 1)
    before = stack.ledger.get_item(RUN, table, 0)
    # A chunk is never chunked itself, so it cannot be finished without a lease.
    with pytest.raises(IllegalTransition, match="a chunk cannot go from chunked to succeeded"):
        stack.ledger.record_outcome(RUN, table, None, {"status": "succeeded"}, chunk=0)
    assert stack.ledger.get_item(RUN, table, 0) == before


def test_states_are_stored_as_the_plain_strings(stack: Stack) -> None:
    stack.ledger.create_run(RUN, "v1", "manual", {"asset_basics": []})
    claim = stack.ledger.claim(RUN, "asset_basics", LEASE)
    stack.ledger.record_outcome(RUN, "asset_basics", claim.token, {"status": Status.UNCHANGED, "rows": 1})
    client = boto3.client("dynamodb", region_name=REGION)  # low level: the stored types
    key = {"pk": {"S": f"run#{RUN}"}, "sk": {"S": "table#asset_basics"}}
    assert client.get_item(TableName="ledger", Key=key)["Item"]["status"] == {"S": "unchanged"}
    run = client.get_item(TableName="ledger", Key={"pk": {"S": f"run#{RUN}"}, "sk": {"S": "run"}})
    assert run["Item"]["state"] == {"S": "running"}
    assert json.dumps({"status": Status.FAILED}) == '{"status": "failed"}'


# -- outcomes (bdc_sync.outcome) -----------------------------------------------------------


def test_an_item_keeps_the_fields_its_outcome_was_given(stack: Stack) -> None:
    stack.ledger.create_run(RUN, "v1", "manual", {"asset_basics": [], "source_data": []})
    for table, status in (("asset_basics", Status.FAILED), ("source_data", Status.SUCCEEDED)):
        claim = stack.ledger.claim(RUN, table, LEASE)
        ctx_figures = {"duration_seconds": 1.25, "docdb_requests": 2, "malformed": 0, "malformed_sample": []}
        if status == Status.FAILED:
            outcome = Outcome.model_validate({"status": status, "rows": 0, "message": "boom", **ctx_figures})
        else:
            written = {"rows": 4, "content_sha256": "", "partitions_written": 0, "companion_rows": {}}
            outcome = Outcome.model_validate({"status": status, "message": "", **written, **ctx_figures})
        assert stack.ledger.record_outcome(RUN, table, claim.token, outcome)
    bookkeeping = {"pk", "sk", "table", "depends_on", "attempts", "expiration", "lease_until", "lease_token"}
    failed = set(stack.ledger.get_item(RUN, "asset_basics") or {}) - bookkeeping
    assert failed == {"status", "rows", "message", "duration_seconds", "docdb_requests", "malformed",
                      "malformed_sample", "started_at", "finished_at"}  # fmt: skip
    succeeded = set(stack.ledger.get_item(RUN, "source_data") or {}) - bookkeeping - failed
    assert succeeded == {"content_sha256", "partitions_written", "companion_rows"}
    # Read back, a field an item lacks takes its default; the ledger's own fields come along.
    read = stack.ledger.table_outcomes(RUN)["asset_basics"]
    assert (read.status, read.rows, read.partitions_written, read.attempts) == (Status.FAILED, 0, 0, 1)
    assert read.finished_at is not None and read.duration_seconds == 1.25
