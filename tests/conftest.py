"""Shared test fixtures: the four real DocDB records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "local" / "bdc_local" / "fixtures"


def load_fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@pytest.fixture(scope="session")
def real_records() -> dict[str, dict]:
    """The four real v2 records, by fixture name (vr_foraging_raw, fib_derived, ...)."""
    return {
        name: load_fixture(name)
        for name in ("vr_foraging_raw", "vr_foraging_derived", "pophys_derived", "fib_derived")
    }
