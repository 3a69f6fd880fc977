"""Runs the Lambda handlers on one machine the way AWS would.

``deliver_schedule`` hands the dispatcher the EventBridge scheduled event.
``QueuePoller`` plays Lambda's SQS event source mapping: it receives messages with
long polling, calls the handler with an SQS event of the real shape, deletes the
records the handler did not report as failed, and leaves the others to reappear
after the visibility timeout (and to go to the dead-letter queue after
``maxReceiveCount`` receives), with a configurable number of concurrent workers.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3

from bdc_sync.flow.ledger import Ledger
from bdc_sync.flow.states import RUN_DONE, TERMINAL

REPO = Path(__file__).resolve().parents[2]
# Powertools warns on every invocation that publishes no metric; with metrics
# disabled on one machine that is all noise.
warnings.filterwarnings("ignore", message="No application metrics to publish")
logger = logging.getLogger(__name__)

Handler = Callable[[dict, Any], Any]


def load_function(name: str) -> ModuleType:
    """Import ``functions/<name>/app.py`` under a unique module name."""
    path = REPO / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(f"bdc_function_{name}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def handler_of(module: ModuleType) -> Handler:
    """A function module's handler, dropping its metrics after each call.

    The local stack turns Powertools metrics off (POWERTOOLS_METRICS_DISABLED) to keep
    output readable; Powertools 3 then publishes nothing at flush but also keeps the
    values, so a process that calls a handler many times collects them until the
    100-value overflow prints them anyway. Clearing them is what a flush does when
    metrics are on, as they are on AWS.
    """

    def invoke(event: dict, context: Any) -> Any:
        try:
            return module.lambda_handler(event, context)
        finally:
            metrics = getattr(module, "metrics", None)
            if metrics is not None:
                metrics.clear_metrics()

    return invoke


@dataclass
class FakeContext:
    """The parts of a Lambda context object the handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int = 2048
    timeout_seconds: int = 900
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-west-2:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000))


def scheduled_event() -> dict[str, Any]:
    """An EventBridge scheduled event as the nightly rule delivers it."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-west-2",
        "resources": ["arn:aws:events:us-west-2:123456789012:rule/bdc-nightly"],
        "detail": {},
    }


def invoke_dispatcher(payload: dict[str, Any]) -> dict[str, Any]:
    """Call the dispatcher handler directly, as ``aws lambda invoke`` would."""
    return handler_of(load_function("dispatcher"))(payload, FakeContext("bdc-dispatcher"))


def deliver_schedule() -> dict[str, Any]:
    return invoke_dispatcher(scheduled_event())


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping passes to a function."""
    records = []
    for message in messages:
        attributes = message.get("Attributes", {})
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": {
                    "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
                    "SentTimestamp": attributes.get("SentTimestamp", "0"),
                    "SenderId": attributes.get("SenderId", "local"),
                    "ApproximateFirstReceiveTimestamp": attributes.get(
                        "ApproximateFirstReceiveTimestamp", "0"
                    ),
                },
                "messageAttributes": {},
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-west-2",
            }
        )
    return {"Records": records}


def container(function: str) -> Callable[[], Handler]:
    """What starts one execution environment of ``function``: a fresh import of its
    ``app.py`` (a cold start: its module-scope clients are built from the environment
    of now), whose handler then serves invocation after invocation."""
    return lambda: handler_of(load_function(function))


class QueuePoller:
    """One SQS event source mapping: ``concurrency`` pollers, each one container.

    Lambda runs concurrent invocations in separate execution environments, each
    with its own module-scope clients; so each poller thread starts its own
    container (``start_container``) and calls only its handler.
    """

    def __init__(
        self,
        queue_url: str,
        start_container: Callable[[], Handler],
        function_name: str,
        *,
        concurrency: int = 1,
        batch_size: int = 1,
        before_invoke: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.queue_url = queue_url
        self.start_container = start_container
        self.function_name = function_name
        self.concurrency = concurrency
        self.batch_size = batch_size
        self.before_invoke = before_invoke
        self.sqs = boto3.client("sqs")
        self.queue_arn = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.invocations = 0
        self.failures = 0
        self._lock = threading.Lock()

    def start(self) -> QueuePoller:
        for index in range(self.concurrency):
            thread = threading.Thread(target=self._poll, name=f"{self.function_name}-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _poll(self) -> None:
        sqs = boto3.client("sqs")  # one client per thread
        try:
            handler = self.start_container()
        except Exception:
            logger.exception("%s: the container did not start", self.function_name)
            raise
        while not self._stop.is_set():
            response = sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=self.batch_size,
                WaitTimeSeconds=1,
                MessageSystemAttributeNames=["All"],
            )
            messages = response.get("Messages", [])
            if messages:
                self._invoke(sqs, handler, messages)

    def _invoke(self, sqs: Any, handler: Handler, messages: list[dict[str, Any]]) -> None:
        event = sqs_event(messages, self.queue_arn)
        failed: set[str] = set()
        try:
            if self.before_invoke is not None:
                self.before_invoke(event)
            result = handler(event, FakeContext(self.function_name))
            failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
        except BaseException:  # as in Lambda, a crashed invocation returns its messages
            logger.info("invocation of %s failed; its messages return to the queue", self.function_name)
            failed = {m["MessageId"] for m in messages}
        with self._lock:
            self.invocations += 1
            self.failures += len(failed)
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )


@dataclass
class RunResult:
    run_id: str
    wall_seconds: float
    run: dict[str, Any]
    tables: dict[str, dict[str, Any]]


def wait_for_runs(ledger: Ledger, run_ids: list[str], *, timeout: float = 3600.0, poll: float = 0.2) -> None:
    """Block until every run is finalized (or coalesced); TimeoutError naming the unfinished ones."""
    deadline = time.monotonic() + timeout
    pending = list(run_ids)
    while pending:
        pending = [r for r in pending if (ledger.get_run(r) or {}).get("state") not in RUN_DONE]
        if not pending:
            return
        if time.monotonic() > deadline:
            unfinished = {
                run: {
                    name: (item["status"], item.get("last_error") or item.get("message") or "")
                    for name, item in ledger.table_items(run).items()
                    if item["status"] not in TERMINAL
                }
                for run in pending
            }
            raise TimeoutError(f"runs not finalized within {timeout:.0f} s; tables still open: {unfinished}")
        time.sleep(poll)


class LocalLambdas:
    """The worker and finalizer, polling their queues, for as long as the block runs."""

    def __init__(self, stack: Any, *, workers: int = 8, before_worker: Callable | None = None) -> None:
        self.stack = stack
        self.workers = workers
        self.before_worker = before_worker
        self.worker_poller: QueuePoller | None = None
        self.finalizer_poller: QueuePoller | None = None

    def __enter__(self) -> LocalLambdas:
        self.worker_poller = QueuePoller(
            self.stack.work_queue_url,
            container("worker"),
            "bdc-worker",
            concurrency=self.workers,
            before_invoke=self.before_worker,
        ).start()
        self.finalizer_poller = QueuePoller(
            self.stack.finalize_queue_url, container("finalizer"), "bdc-finalizer"
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        for poller in (self.worker_poller, self.finalizer_poller):
            if poller is not None:
                poller.stop()


def ledger_for(stack: Any) -> Ledger:
    return Ledger(stack.config.ledger_table)


def run_and_wait(
    stack: Any,
    payload: dict[str, Any] | None = None,
    *,
    workers: int = 8,
    timeout: float = 3600.0,
) -> RunResult:
    """Deliver the schedule (or a manual payload) and run the Lambdas until finalized."""
    ledger = ledger_for(stack)
    with LocalLambdas(stack, workers=workers):
        started = time.monotonic()
        response = deliver_schedule() if payload is None else invoke_dispatcher(payload)
        if not response.get("ok"):
            raise RuntimeError(f"dispatcher refused the run: {response.get('error')}")
        wait_for_runs(ledger, [response["run_id"]], timeout=timeout)
        wall = time.monotonic() - started
    run_id = response["run_id"]
    return RunResult(
        run_id=run_id,
        wall_seconds=wall,
        run=ledger.get_run(run_id) or {},
        tables=ledger.table_items(run_id),
    )
