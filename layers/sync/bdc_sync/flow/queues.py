"""Sending work and finalize messages."""

from __future__ import annotations

from typing import Any

import boto3

from bdc_sync.flow.events import FinalizeItem, WorkItem


class Queues:
    """The work queue and the finalize queue of a deployment."""

    def __init__(self, work_queue_url: str, finalize_queue_url: str, client: Any | None = None) -> None:
        self.work_queue_url = work_queue_url
        self.finalize_queue_url = finalize_queue_url
        self.client = client or boto3.client("sqs")

    def send_work(self, item: WorkItem) -> None:
        self.client.send_message(QueueUrl=self.work_queue_url, MessageBody=item.model_dump_json())

    def send_finalize(self, run_id: str) -> None:
        self.client.send_message(
            QueueUrl=self.finalize_queue_url,
            MessageBody=FinalizeItem(run_id=run_id).model_dump_json(),
        )
