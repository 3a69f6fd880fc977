"""The benchmark's Lambda projection: a schedule of measured step times."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "nightly.py"


@pytest.fixture(scope="module")
def nightly() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_nightly", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_nightly"] = module
    spec.loader.exec_module(module)
    return module


STEPS = {
    "asset_basics": {"plan": 5.0, "chunks": [], "finish": 0.0},
    "behavior_curriculum": {"plan": 1.0, "chunks": [3.0, 3.0, 3.0], "finish": 1.0},
    "quality_control": {"plan": 2.0, "chunks": [4.0] * 10, "finish": 1.0},
    "unique_genotypes": {"plan": 1.0, "chunks": [], "finish": 0.0},
}


def test_projection_follows_dependencies_and_chunks(nightly: ModuleType) -> None:
    wall, path = nightly.projected_run(STEPS, 32, 0.5)
    # asset_basics (0.5 + 5), then QC's plan (0.5 + 2), a chunk (0.5 + 4), its finish (1).
    assert path == pytest.approx(13.5)
    assert wall == pytest.approx(13.5)  # 32 workers: nothing waits for a worker


def test_projection_on_one_worker_is_the_sum(nightly: ModuleType) -> None:
    total = sum(s["plan"] + sum(s["chunks"]) + s["finish"] for s in STEPS.values())
    wall, path = nightly.projected_run(STEPS, 1, 0.0)
    assert wall == pytest.approx(total)
    assert path == pytest.approx(12.0)
    two, _ = nightly.projected_run(STEPS, 2, 0.5)
    assert path < two < total
