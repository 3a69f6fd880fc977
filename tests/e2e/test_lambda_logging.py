"""Logs as CloudWatch gets them: one JSON object a line, at LogLevel, layer included.

Each function runs in a fresh process set up as the Lambda Python runtime sets itself
up without ``LoggingConfig`` (tests/e2e/lambda_runtime.py: a root handler with a plain
text formatter, no level, so WARNING), against the local stack, for one manual run of
one table: dispatcher, then the worker on the message it enqueued, then the finalizer
on the message the worker enqueued. Everything each process prints must be JSON, and
the INFO lines of the layer's own loggers (``bdc_sync.*``) must be there, with their
``extra`` fields and the keys the handlers append.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bdc_local.corpus import write_jsonl
from bdc_local.runner import sqs_event
from bdc_local.stack import PYTHONPATH, LocalStack, StackConfig, local_stack

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "tests" / "e2e" / "lambda_runtime.py"
# One table that reads no other: one worker invocation builds the whole run.
TABLE = "metadata_core"
# Keys every line of a Powertools Logger carries. (The logger's name, which
# copy_config_to_registered_loggers appends, is cleared with the rest of the state at
# each invocation by inject_lambda_context(clear_state=True); "location" remains.)
BASE_KEYS = {"level", "location", "message", "timestamp", "service"}
LAMBDA_CONTEXT_KEYS = {"cold_start", "function_name", "function_request_id"}


@pytest.fixture(scope="module")
def stack(real_records: dict[str, dict], tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    records = list(real_records.values())
    path = tmp_path_factory.mktemp("corpus") / "records.jsonl"
    write_jsonl(records, path)
    # LogLevel INFO, the template's default (POWERTOOLS_LOG_LEVEL).
    with local_stack(path, config=StackConfig(log_level="INFO", worker_timeout_seconds=60)) as running:
        running.load_sources(records, seed=3)
        yield running


def invoke(
    stack: LocalStack, function: str, event: dict[str, Any], tmp_path: Path, *, metrics: bool = False
) -> tuple[Any, list[str]]:
    """Run ``function``'s handler in a runtime-like process; its result and stdout lines.

    ``metrics=True`` turns Powertools metrics on, as in AWS: they are printed as
    CloudWatch embedded-metric-format (EMF) lines among the log lines.
    """
    event_file = tmp_path / f"{function}-event-{uuid.uuid4().hex[:6]}.json"
    result_file = event_file.with_suffix(".result")
    event_file.write_text(json.dumps(event))
    env = {**os.environ, **stack.env, "PYTHONPATH": PYTHONPATH}
    if metrics:
        env["POWERTOOLS_METRICS_DISABLED"] = "false"
    process = subprocess.run(
        [sys.executable, str(RUNTIME), function, str(event_file), str(result_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, f"{function} failed:\n{process.stdout[-3000:]}\n{process.stderr[-3000:]}"
    return json.loads(result_file.read_text()), [line for line in process.stdout.splitlines() if line.strip()]


def parse_lines(function: str, lines: list[str]) -> list[dict[str, Any]]:
    """Every line parsed; fails on the first line that is not one JSON object."""
    parsed = []
    for line in lines:
        try:
            value = json.loads(line)
        except ValueError:
            pytest.fail(f"{function}: a log line is not JSON: {line!r}")
        assert isinstance(value, dict), f"{function}: {line!r}"
        parsed.append(value)
    return parsed


def metric_lines(function: str, lines: list[str]) -> list[dict[str, Any]]:
    """The EMF lines (metrics) among ``lines``."""
    return [value for value in parse_lines(function, lines) if "_aws" in value]


def json_lines(function: str, lines: list[str]) -> list[dict[str, Any]]:
    """The log lines, each checked for the keys every line carries (EMF lines left out)."""
    parsed = []
    for value in parse_lines(function, lines):
        if "_aws" in value:
            continue
        missing = (BASE_KEYS | LAMBDA_CONTEXT_KEYS) - set(value)
        assert not missing, f"{function}: line lacks {sorted(missing)}: {value}"
        assert value["service"] == "biodata-cache"
        parsed.append(value)
    return parsed


def one_line(lines: list[dict[str, Any]], function: str, message: str) -> dict[str, Any]:
    """The line ``message`` logged by the layer's function ``function`` (its "location")."""
    found = [
        line for line in lines if line["message"] == message and line["location"].startswith(f"{function}:")
    ]
    assert found, (
        f"no {message!r} line from {function}(); got {[(x['location'], x['message']) for x in lines]}"
    )
    return found[0]


def receive_one(stack: LocalStack, queue_url: str) -> dict[str, Any]:
    sqs = stack.sqs()
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    messages = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=5, MessageSystemAttributeNames=["All"]
    ).get("Messages", [])
    assert len(messages) == 1, f"expected one message in {queue_url}"
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=messages[0]["ReceiptHandle"])
    return sqs_event(messages, arn)


def test_every_line_of_a_run_is_json_at_log_level(
    stack: LocalStack, real_records: dict[str, dict], tmp_path: Path
) -> None:
    started, dispatcher_out = invoke(stack, "dispatcher", {"tables": [TABLE]}, tmp_path)
    assert started["ok"], started
    run_id = started["run_id"]
    dispatcher = json_lines("dispatcher", dispatcher_out)
    line = one_line(dispatcher, "start_run", "run started")
    assert line["level"] == "INFO"
    assert line["run_id"] == run_id and line["tables"] == [TABLE]  # its `extra` fields

    result, worker_out = invoke(stack, "worker", receive_one(stack, stack.work_queue_url), tmp_path)
    assert result == {"batchItemFailures": []}
    worker = json_lines("worker", worker_out)
    print("worker log lines:\n" + "\n".join(worker_out))
    done = one_line(worker, "build_work_item", "done")
    assert done["level"] == "INFO"
    # Its `extra` figures.
    assert done["status"] == "succeeded" and done["rows"] == len(real_records)
    assert {"bytes_written", "duration_seconds", "docdb_requests"} <= set(done)
    assert (done["run_id"], done["table"]) == (run_id, TABLE)
    # The handler's Lambda context keys reach the layer's line too (json_lines checks
    # every line has them); a chunk of None is left out of the line by Powertools.
    assert done["cold_start"] is True and done["function_name"] == "bdc-worker"

    finalize_event = receive_one(stack, stack.finalize_queue_url)
    result, finalizer_out = invoke(stack, "finalizer", finalize_event, tmp_path, metrics=True)
    assert result == {"batchItemFailures": []}
    finalizer = json_lines("finalizer", finalizer_out)
    finalized = one_line(finalizer, "finalize_run", "run finalized")
    assert finalized["level"] == "INFO" and finalized["run_id"] == run_id

    # The metric NoRunFinalizedAlarm watches (tests/deploy/test_template.py checks the
    # alarm names this namespace, metric and dimension): one per finalized run.
    assert runs_finalized(metric_lines("finalizer", finalizer_out)) == 1
    # A redelivered finalize message is answered from the idempotency record: no
    # second run is counted.
    result, again_out = invoke(stack, "finalizer", finalize_event, tmp_path, metrics=True)
    assert result == {"batchItemFailures": []}
    assert runs_finalized(metric_lines("finalizer", again_out)) == 0


def runs_finalized(emf_lines: list[dict[str, Any]]) -> float:
    """Sum of RunsFinalized in namespace BiodataCache, dimension service=biodata-cache."""
    total = 0.0
    for line in emf_lines:
        for directive in line["_aws"]["CloudWatchMetrics"]:
            names = {metric["Name"] for metric in directive["Metrics"]}
            if directive["Namespace"] != "BiodataCache" or "RunsFinalized" not in names:
                continue
            assert ["service"] in directive["Dimensions"] and line["service"] == "biodata-cache"
            value = line["RunsFinalized"]
            total += sum(value) if isinstance(value, list) else value
    return total


def test_below_log_level_nothing_is_printed(stack: LocalStack, tmp_path: Path) -> None:
    """At LogLevel WARNING a clean manual run prints nothing: the level is the template's."""
    env_level = stack.env["POWERTOOLS_LOG_LEVEL"]
    stack.env["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    try:
        started, lines = invoke(stack, "dispatcher", {"tables": [TABLE]}, tmp_path)
    finally:
        stack.env["POWERTOOLS_LOG_LEVEL"] = env_level
    assert started["ok"]
    assert lines == []
