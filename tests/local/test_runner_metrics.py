"""The local runner keeps Powertools' metrics quiet across many warm invocations."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from bdc_local.runner import handler_of


def test_disabled_metrics_do_not_pile_up(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    metrics = Metrics(namespace="Test", service="test")

    @metrics.log_metrics
    def lambda_handler(event: dict, context: Any) -> str:
        metrics.add_metric(name="TablesBuilt", unit=MetricUnit.Count, value=1)
        return "ok"

    module = SimpleNamespace(lambda_handler=lambda_handler, metrics=metrics)
    handler = handler_of(module)  # type: ignore[arg-type]
    for _ in range(150):  # past Powertools' 100-value overflow
        assert handler({}, None) == "ok"
    assert metrics.metric_set == {}
    assert capsys.readouterr().out == ""
    metrics.clear_metrics()
