"""Worker: builds one table (or chunk) per SQS message and reports partial failures."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.typing import LambdaContext

from bdc_sync.flow.events import WorkMessage
from bdc_sync.flow.work import build_work_item
from bdc_sync.lambda_logging import route_logs_through
from bdc_sync.runtime import runtime

logger = Logger()
# The layer's `logging.getLogger(__name__)` loggers log as this one does (JSON, LogLevel).
route_logs_through(logger)
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS, model=WorkMessage)
# Once per container: settings, the ledger's DynamoDB, the queues' SQS, the cache's S3.
deps = runtime()


def build_message(record: WorkMessage) -> None:
    item = record.body
    logger.append_keys(run_id=item.run_id, table=item.table, chunk=item.chunk)
    outcome = build_work_item(
        item,
        receive_count=int(record.attributes.ApproximateReceiveCount),
        settings=deps.settings,
        ledger=deps.ledger,
        queues=deps.queues,
        cache=deps.cache,
    )
    if outcome is not None:
        metrics.add_metric(name="TablesBuilt", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="DocDBRequests", unit=MetricUnit.Count, value=outcome.docdb_requests)
        metrics.add_metric(name="MalformedRecords", unit=MetricUnit.Count, value=outcome.malformed)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=build_message, processor=processor, context=context
    )
