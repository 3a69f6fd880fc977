"""bench/goals.py: the goals' figures from the results files, each with its source."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def goals() -> ModuleType:
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("bench_goals", BENCH / "goals.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_goals"] = module
    spec.loader.exec_module(module)
    return module


def seed_results() -> dict[str, Any]:
    return {
        "seed_full_wall_s": 300.0,
        "seed_full_docdb_requests": 4000,
        "seed_unchanged_wall_s": 200.0,
        "seed_unchanged_docdb_requests": 4000,
        "speedup_vs_seed_full": 2.0,
        "request_ratio_vs_seed_full": 12.0,
        "speedup_vs_seed_unchanged": 7.5,  # below its goal of 8
        "projected_speedup_vs_seed_full": 15.0,
        "freshness_seconds": 20.0,
        "freshness": {"interval_seconds": 15.0},
    }


def limits_results(records: int = 100_000) -> dict[str, Any]:
    return {
        "command": "bench/docdb_limits.py --n 100000 --unchanged-run",
        "corpus_records": records,
        "runs": [
            {
                "unchanged": {"lambda_invocations": 16, "lambda_gb_seconds": 50.0},
                "unchanged_run_docdb_requests_100k": 4,
                "unchanged_run_gb_seconds_100k": 50.0,
                "unchanged_run_lambda_invocations_100k": 16,
            }
        ],
    }


def write(folder: Path, seed: dict[str, Any], limits: dict[str, Any]) -> None:
    (folder / "nightly-20k.json").write_text(json.dumps(seed))
    (folder / "docdb_limits-100k.json").write_text(json.dumps(limits))


def test_every_goal_key_with_its_source_and_verdict(goals: ModuleType, tmp_path: Path) -> None:
    write(tmp_path, seed_results(), limits_results())
    collected = goals.collect(tmp_path)
    assert collected["unchanged_run_docdb_requests_100k"] == 4
    assert collected["unchanged_run_gb_seconds_100k"] == 50.0
    assert collected["goals"]["unchanged_run_docdb_requests_100k"]["met"] is True
    assert collected["goals"]["speedup_vs_seed_unchanged"] == {"goal": ">= 8", "met": False}
    assert collected["goals"]["freshness_seconds"] == {"goal": "<= 135", "met": True}
    # The monthly cost is computed from the 100k run's unchanged figures.
    assert 0 < collected["monthly_cost_nightly_usd"] < collected["monthly_cost_15min_usd"]
    assert collected["sources"]["unchanged_run_gb_seconds_100k"]["command"].endswith("--unchanged-run")
    assert collected["sources"]["seed_full_wall_s"] == {
        "file": "bench/results/nightly-20k.json",
        "command": goals.SEED_COMPARISON[1],
    }
    assert set(collected["sources"]) >= {k for k in collected if k not in {"goals", "sources", "written_by"}}


def test_a_run_at_another_scale_is_refused(goals: ModuleType, tmp_path: Path) -> None:
    write(tmp_path, seed_results(), limits_results(records=20_000))
    with pytest.raises(ValueError, match="not 100,000"):
        goals.collect(tmp_path)


def test_the_committed_goals_file_is_what_the_script_writes(goals: ModuleType) -> None:
    committed = json.loads((BENCH / "results" / "nightly.json").read_text())
    assert committed == json.loads(json.dumps(goals.collect()))


def test_the_cost_pays_the_source_reads_in_the_share_of_runs_that_make_them(goals: ModuleType) -> None:
    nightly = sys.modules["nightly"]  # what goals.py imports its monthly_costs from
    unchanged = {"lambda_invocations": 0, "lambda_gb_seconds": 20.0}
    base = nightly.monthly_costs({"unchanged": unchanged})
    reading = {**unchanged, "lambda_gb_seconds_sources_read": 100.0, "source_recheck_seconds": 3600}
    costs = nightly.monthly_costs({"unchanged": reading})
    idle = nightly.IDLE_SQS_REQUESTS_PER_MONTH * nightly.USD_PER_SQS_REQUEST
    per_gb_second = nightly.USD_PER_GB_SECOND
    # Every 15 minutes: one run in four reads the sources (3 x 20 + 100) / 4 = 40 GB-s a run.
    assert costs["monthly_cost_15min_usd"] == round(2880 * 40.0 * per_gb_second + idle, 2)
    # Hourly and nightly: every run reads them.
    assert costs["monthly_cost_hourly_usd"] == round(720 * 100.0 * per_gb_second + idle, 2)
    assert costs["monthly_cost_nightly_usd"] == round(30 * 100.0 * per_gb_second + idle, 2)
    # Without a recheck figure every run costs what the unchanged run measured.
    assert base["monthly_cost_15min_usd"] == round(2880 * 20.0 * per_gb_second + idle, 2)
