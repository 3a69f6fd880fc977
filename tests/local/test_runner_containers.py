"""Clients live as long as a container: a function's app.py builds them once, at import,
and the local runner starts one container (a fresh import) per concurrent poller."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from bdc_local.runner import Handler, QueuePoller, load_function

REGION = "us-west-2"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        yield


def test_a_function_reads_its_settings_and_builds_its_clients_once_per_container(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CACHE_BUCKET", "first")
    monkeypatch.setenv("RUN_LEDGER_TABLE", "ledger-1")
    worker = load_function("worker")
    finalizer = load_function("finalizer")
    monkeypatch.setenv("CACHE_BUCKET", "second")
    # A warm container keeps what it started with.
    assert worker.deps.settings.cache_bucket == "first"
    assert worker.deps.cache.bucket == "first"
    assert finalizer.persistence.table_name == "ledger-1"
    # A new container reads the environment of now.
    assert load_function("worker").deps.settings.cache_bucket == "second"


def test_each_concurrent_poller_is_its_own_container(aws: None) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="work")["QueueUrl"]
    for index in range(12):
        sqs.send_message(QueueUrl=url, MessageBody=str(index))
    started: list[int] = []
    served: list[tuple[str, int]] = []  # (poller thread, container) per invocation
    lock = threading.Lock()

    def start_container() -> Handler:
        with lock:
            container = len(started)
            started.append(container)

        def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
            with lock:
                served.append((threading.current_thread().name, container))
            time.sleep(0.05)  # let the other pollers take messages too
            return {"batchItemFailures": []}

        return handler

    poller = QueuePoller(url, start_container, "bdc-worker", concurrency=3).start()
    deadline = time.monotonic() + 30
    while len(served) < 12 and time.monotonic() < deadline:
        time.sleep(0.05)
    poller.stop()
    assert len(served) == 12
    assert sorted(started) == [0, 1, 2]
    # A thread always calls the one container it started, and no container serves two threads.
    containers_of = {thread: {c for t, c in served if t == thread} for thread, _ in served}
    assert all(len(containers) == 1 for containers in containers_of.values())
    owners = [next(iter(containers)) for containers in containers_of.values()]
    assert len(owners) == len(set(owners))
