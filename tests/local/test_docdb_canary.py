"""bench/docdb_canary.py against the local stand-in: a self-test of the canary.

The stand-in runs the ``gateway`` profile with its timeout scaled down; the canary
must find each of its settings by probing, as it would against the live API.
"""

from __future__ import annotations

import importlib.util
import json
import random
import sys
from pathlib import Path
from typing import Any

import pytest

from bdc_local.docdb_server import DocDBServer
from bdc_local.record_sizes import enlarge

CANARY = Path(__file__).resolve().parents[2] / "bench" / "docdb_canary.py"


def load_canary() -> Any:
    spec = importlib.util.spec_from_file_location("docdb_canary", CANARY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_canary_finds_the_stand_in_settings(capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(5)
    records = [
        enlarge(
            {"_id": f"{i:08d}-0000-4000-8000-000000000000", "name": f"a{i}", "acquisition": {}}, 100_000, rng
        )
        for i in range(30)
    ]
    huge = enlarge(
        {"_id": "ffffffff-0000-4000-8000-000000000000", "name": "huge", "acquisition": {}}, 7_000_000, rng
    )
    settings = {"latency_ms": 0.0, "per_mb_ms": 1000.0, "integration_timeout_seconds": 1.0}
    # 20 records of 100 KB: 2 MB at 1 s a MB, twice the scaled-down timeout.
    slow = json.dumps([{"$sort": {"_id": 1}}, {"$limit": 20}])
    with DocDBServer([*records, huge], profile="gateway", settings=settings) as server:
        canary = load_canary()
        args = [server.host, "--plain-http", "--large-id", huge["_id"], "--slow-pipeline", slow, "--json"]
        assert canary.main(args) == 0
        result = json.loads(capsys.readouterr().out)
        canary.main(args[:-1])  # the human-readable report prints too
        report = capsys.readouterr().out
    found = result["stand_in_settings"]
    assert found["unknown_route_status"] == 403
    assert found["oversize_status"] == 502
    assert found["return_oversized_single"] is False
    assert 1.0 <= found["integration_timeout_seconds"] < 2.0
    url = result["url_limit"]
    assert url["longest_passed"] <= 10_240 < url["shortest_refused"] and url["refused_status"] == 414
    assert found["max_url_bytes"] == url["longest_passed"]
    assert result["records"] == 31 and result["find_without_sort_stable"] is True
    bodies = {p["name"]: p["body"] for p in result["probes"]}
    assert "Endpoint request timed out" in bodies["slow query"]
    assert "stand-in settings that would match" in report and "slow query" in report
