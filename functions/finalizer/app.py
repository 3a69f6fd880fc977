"""Finalizer: writes the registry, the versions list and the run report, once per run."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from bdc_sync.flow.events import FinalizeItem, FinalizeMessage
from bdc_sync.flow.finalize import finalize_run
from bdc_sync.lambda_logging import route_logs_through
from bdc_sync.runtime import runtime

logger = Logger()
# The layer's `logging.getLogger(__name__)` loggers log as this one does (JSON, LogLevel).
route_logs_through(logger)
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS, model=FinalizeMessage)
idempotency = IdempotencyConfig(event_key_jmespath="run_id", expires_after_seconds=7 * 86400)
# Once per container: settings, the ledger's DynamoDB, the cache's S3, and the
# idempotency store. The ledger table doubles as that store (pk/sk keys, TTL on
# `expiration`): a finalize message delivered twice finalizes once.
deps = runtime()
persistence = DynamoDBPersistenceLayer(
    table_name=deps.settings.run_ledger_table,
    key_attr="pk",
    sort_key_attr="sk",
    static_pk_value="idempotency#finalizer",
)


# The function keeps its name: it is part of the idempotency records' keys.
@idempotent_function(data_keyword_argument="item", persistence_store=persistence, config=idempotency)
def _finalize(item: FinalizeItem) -> dict[str, Any]:
    result = finalize_run(item.run_id, deps.settings, deps.ledger, deps.cache)
    if result.get("finalized_now"):
        # One per run (a redelivery is answered from the idempotency record and does
        # not get here): NoRunFinalizedAlarm fires when none arrives for 1.5 intervals.
        metrics.add_metric(name="RunsFinalized", unit=MetricUnit.Count, value=1)
    return result


def finalize_message(record: FinalizeMessage) -> None:
    logger.append_keys(run_id=record.body.run_id)
    _finalize(item=record.body)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict[str, Any]:
    idempotency.register_lambda_context(context)
    return process_partial_response(
        event=event, record_handler=finalize_message, processor=processor, context=context
    )
