"""Dispatcher: starts a run from the nightly schedule or a manual request.

Scheduled: an EventBridge "Scheduled Event" → every table.
Manual: ``{"tables": ["asset_basics", "source_data"]}`` → just those tables.
A bad request is answered with an error and enqueues nothing.
A scheduled run while the previous scheduled run is still building is coalesced
into it (``"coalesced": true``, the reason, nothing enqueued).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import ValidationError, parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from bdc_sync.flow.dispatch import BadRunRequest, start_run
from bdc_sync.flow.events import RunRequest
from bdc_sync.lambda_logging import route_logs_through
from bdc_sync.runtime import runtime
from biodata_cache.catalog import UnknownTableError

logger = Logger()
# The layer's `logging.getLogger(__name__)` loggers log as this one does (JSON, LogLevel).
route_logs_through(logger)
metrics = Metrics()
# Once per container: settings, the ledger's DynamoDB, the queues' SQS.
deps = runtime()


def run_request_of(event: Any) -> RunRequest:
    """The run an event asks for; ValueError with the reason if it asks for none."""
    if isinstance(event, dict) and event.get("detail-type") == "Scheduled Event":
        parse(event=event, model=EventBridgeModel)
        return RunRequest(trigger="schedule")
    try:
        return parse(event=event, model=RunRequest)
    except ValidationError as exc:
        raise BadRunRequest(
            'malformed run request: expected {"tables": ["<table>", ...]} or a scheduled event; '
            f"{exc.errors(include_url=False)}"
        ) from None


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict[str, Any]:
    try:
        request = run_request_of(event)
        started = start_run(request, deps.settings, deps.ledger, deps.queues)
    except (BadRunRequest, UnknownTableError) as exc:
        logger.error("run request rejected", extra={"error": str(exc)})
        return {"ok": False, "error": str(exc)}
    if started.get("coalesced_into"):
        metrics.add_metric(name="RunsCoalesced", unit=MetricUnit.Count, value=1)
        return {"ok": True, "coalesced": True, **started}
    metrics.add_metric(name="RunsStarted", unit=MetricUnit.Count, value=1)
    return {"ok": True, **started}
