"""A scheduled run while the previous scheduled run is still building is coalesced into it.

moto in-process (DynamoDB, SQS, S3); the dispatcher's and finalizer's own code paths.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from table_harness import mocked_aws

from bdc_local.stack import create_ledger_table
from bdc_sync.flow.dispatch import start_run
from bdc_sync.flow.events import RunRequest
from bdc_sync.flow.finalize import finalize_run
from bdc_sync.flow.ledger import Ledger
from bdc_sync.flow.queues import Queues
from bdc_sync.settings import Settings
from bdc_sync.store import ObjectStore
from biodata_cache import layout

REGION = "us-west-2"
TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


class Deployment:
    def __init__(self) -> None:
        dynamodb = boto3.resource("dynamodb", region_name=REGION)
        create_ledger_table(dynamodb.meta.client, "ledger")
        self.sqs = boto3.client("sqs", region_name=REGION)
        work = self.sqs.create_queue(QueueName="work")["QueueUrl"]
        final = self.sqs.create_queue(QueueName="finalize")["QueueUrl"]
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="cache", CreateBucketConfiguration={"LocationConstraint": REGION})
        self.settings = Settings(
            cache_bucket="cache", work_queue_url=work, finalize_queue_url=final, run_ledger_table="ledger"
        )
        self.ledger = Ledger("ledger", resource=dynamodb)
        self.queues = Queues(work, final, client=self.sqs)
        self.cache = ObjectStore("cache", client=s3)

    def start(self, trigger: str = "schedule", tables: list[str] | None = None) -> dict[str, Any]:
        request = RunRequest(trigger=trigger, tables=tables)  # type: ignore[arg-type]
        return start_run(request, self.settings, self.ledger, self.queues)

    def work_messages(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.settings.work_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )
        return int(attributes["Attributes"]["ApproximateNumberOfMessages"])

    def finish(self, run_id: str) -> None:
        """The run's tables done: the finalizer's path from there."""
        assert self.ledger.start_finalizing(run_id)
        finalize_run(run_id, self.settings, self.ledger, self.cache)


@pytest.fixture
def deployment() -> Iterator[Deployment]:
    with mocked_aws(REGION):
        yield Deployment()


def test_scheduled_run_during_a_scheduled_run_is_coalesced_and_reported(deployment: Deployment) -> None:
    first = deployment.start()
    assert first["enqueued"] and "coalesced_into" not in first
    queued = deployment.work_messages()

    second = deployment.start()

    assert second["coalesced_into"] == first["run_id"]
    assert second["enqueued"] == [] and second["tables"] == []
    assert deployment.work_messages() == queued, "a coalesced run enqueued work"
    run = deployment.ledger.get_run(second["run_id"])
    assert run is not None and run["state"] == "coalesced" and run["coalesced_into"] == first["run_id"]
    # Its one message is for the finalizer, which writes the report that says so.
    received = deployment.sqs.receive_message(
        QueueUrl=deployment.settings.finalize_queue_url, MaxNumberOfMessages=10
    )
    assert [json.loads(m["Body"])["run_id"] for m in received["Messages"]] == [second["run_id"]]
    finalize_run(second["run_id"], deployment.settings, deployment.ledger, deployment.cache)
    report, _ = deployment.cache.get_json(
        layout.run_report_key(deployment.settings.version_folder, second["run_id"])
    )
    assert report["state"] == "coalesced" and report["coalesced_into"] == first["run_id"]
    assert first["run_id"] in report["reason"] and report["tables"] == []


def test_after_the_run_finalizes_the_next_tick_starts_a_run(deployment: Deployment) -> None:
    first = deployment.start()
    deployment.finish(first["run_id"])
    second = deployment.start()
    assert "coalesced_into" not in second and second["enqueued"]
    assert deployment.start()["coalesced_into"] == second["run_id"]


def test_a_redelivered_finalize_does_not_free_a_later_runs_slot(deployment: Deployment) -> None:
    first = deployment.start()
    deployment.finish(first["run_id"])
    second = deployment.start()
    finalize_run(first["run_id"], deployment.settings, deployment.ledger, deployment.cache)  # duplicate
    assert deployment.start()["coalesced_into"] == second["run_id"]


def test_manual_runs_are_never_coalesced_and_do_not_take_the_slot(deployment: Deployment) -> None:
    scheduled = deployment.start()
    manual = deployment.start(trigger="manual", tables=["metadata_core"])
    assert "coalesced_into" not in manual and manual["enqueued"] == ["metadata_core"]
    deployment.finish(manual["run_id"])
    assert deployment.start()["coalesced_into"] == scheduled["run_id"]


def test_a_run_that_never_finalizes_stops_holding_the_schedule(deployment: Deployment) -> None:
    stuck = deployment.start()
    # The slot stuck took lasts its hold; a later tick after the deadline takes it over.
    deployment.ledger.table.update_item(
        Key={"pk": f"slot#{deployment.settings.version_folder}", "sk": "scheduled"},
        UpdateExpression="SET hold_until = :past",
        ExpressionAttributeValues={":past": 0},
    )
    later = deployment.start()
    assert "coalesced_into" not in later and later["run_id"] != stuck["run_id"]


# -- the template's schedule parameter -----------------------------------------------------
def schedule_parameter() -> dict[str, Any]:
    class Loader(yaml.SafeLoader):
        """Safe loading; CloudFormation's !Ref/!Sub tags read as None."""

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    return yaml.load(TEMPLATE.read_text(), Loader=Loader)["Parameters"]["ScheduleExpression"]


def schedule_pattern() -> re.Pattern[str]:
    return re.compile(schedule_parameter()["AllowedPattern"])


@pytest.mark.parametrize(
    "expression",
    [
        "rate(15 minutes)",
        "rate(5 minutes)",
        "rate(1 minute)",
        "rate(1 hour)",
        "rate(6 hours)",
        "rate(1 day)",
        "cron(0 8 * * ? *)",
        "cron(*/15 * * * ? *)",
    ],
)
def test_schedule_parameter_accepts(expression: str) -> None:
    assert schedule_pattern().fullmatch(expression)


@pytest.mark.parametrize(
    "expression",
    [
        "rate(0 minutes)",
        "rate(1 minutes)",
        "rate(15 minute)",
        "rate(15 mins)",
        "rate(15)",
        "every 15 minutes",
        "cron(0 8 * * ?)",
        "rate(15 minutes) ",
        "",
    ],
)
def test_schedule_parameter_rejects(expression: str) -> None:
    assert not schedule_pattern().fullmatch(expression)


def test_schedule_default_is_valid() -> None:
    parameter = schedule_parameter()
    assert re.fullmatch(parameter["AllowedPattern"], parameter["Default"])
