"""The fixtures, the lean templates cut from them, and the helpers every part of the generator uses.

Time formats, people and modality entries, and :class:`_Seeded`, the seeded random draws
that the builder and its quality-control part share.
"""

from __future__ import annotations

import functools
import json
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from bdc_local.corpus.families import FIXTURE_NAMES, FIXTURES_DIR, MODALITY_NAMES, PROCESSING_HORIZON, Record


# --------------------------------------------------------------------------------------
# Fixtures and the lean templates cut from them
# --------------------------------------------------------------------------------------
@functools.cache
def _fixture_text(name: str) -> str:
    return (FIXTURES_DIR / f"{name}.json").read_text(encoding="utf-8")


def load_fixture(name: str) -> Record:
    """A fresh copy of one real fixture record (``vr_foraging_raw``, ``fib_derived``, ...)."""
    if name not in FIXTURE_NAMES:
        raise ValueError(f"unknown fixture {name!r}; expected one of {FIXTURE_NAMES}")
    return json.loads(_fixture_text(name))


def _short(text: Any, limit: int = 100) -> Any:
    if isinstance(text, str) and len(text) > limit:
        return text[: limit - 1] + "…"
    return text


def _clone(value: Any) -> Any:
    """Copy the containers of a JSON-like value and share its leaves.

    Strings and numbers are immutable, so records may share them with the templates
    and with each other; that keeps 100,000 records in a fraction of the memory a
    ``json.loads`` copy (fresh strings and keys everywhere) would take. Leaves are
    copied inline rather than by a recursive call: most nodes are leaves.
    """
    kind = type(value)
    if kind is dict:
        return {k: _clone(v) if type(v) in _CONTAINERS else v for k, v in value.items()}
    if kind is list:
        return [_clone(v) if type(v) in _CONTAINERS else v for v in value]
    return value


_CONTAINERS = (dict, list)


@dataclass(frozen=True)
class _Templates:
    """The fixture parts reused per record; always :func:`_clone` them before use."""

    subject_details: Record
    vr_procedures: Record
    pophys_procedures: Record
    fib_surgery: Record
    raw_processing: Record
    instrument_full: dict[str, Record]
    calibrations_full: dict[str, list[Any]]
    stimulus_epochs_full: dict[str, list[Any]]
    metric_pools: dict[str, list[Record]]  # lean metrics (short descriptions)
    metric_pools_full: dict[str, list[Record]]
    default_grouping: dict[str, list[Any]]


@functools.cache
def _templates() -> _Templates:
    vr_raw = load_fixture("vr_foraging_raw")
    vr_derived = load_fixture("vr_foraging_derived")
    pophys = load_fixture("pophys_derived")
    fib = load_fixture("fib_derived")
    fixtures = {"vr": vr_derived, "fib": fib, "pophys": pophys}

    pools: dict[str, list[Record]] = {}
    pools_full: dict[str, list[Record]] = {}
    for kind, record in fixtures.items():
        metrics = record["quality_control"]["metrics"]
        pools_full[kind] = metrics
        pools[kind] = [{**m, "description": _short(m.get("description"), 40)} for m in metrics]

    fib_surgery = next(
        s for s in fib["procedures"]["subject_procedures"] if s.get("object_type") == "Surgery"
    )
    fib_surgery = dict(fib_surgery)
    # Implants and injections are rebuilt per subject; keep the surgery envelope and headframe.
    fib_surgery["procedures"] = [p for p in fib_surgery["procedures"] if p.get("object_type") == "Headframe"]

    return _Templates(
        subject_details=vr_raw["subject"]["subject_details"],
        vr_procedures=vr_raw["procedures"],
        pophys_procedures=pophys["procedures"],
        fib_surgery=fib_surgery,
        raw_processing=vr_raw["processing"],
        instrument_full={k: r["instrument"] for k, r in fixtures.items()},
        calibrations_full={k: r["acquisition"]["calibrations"] for k, r in fixtures.items()},
        stimulus_epochs_full={k: r["acquisition"]["stimulus_epochs"] for k, r in fixtures.items()},
        metric_pools=pools,
        metric_pools_full=pools_full,
        default_grouping={k: r["quality_control"]["default_grouping"] for k, r in fixtures.items()},
    )


# --------------------------------------------------------------------------------------
# Small helpers: time formats, weighted choice, people
# --------------------------------------------------------------------------------------
def _iso_z(dt: datetime) -> str:
    # isoformat is several times faster than strftime, which matters at 100,000 records.
    return dt.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def _iso_ms_z(dt: datetime) -> str:
    """DocDB's own bookkeeping format: ``2026-02-14T12:34:44.410Z``."""
    return dt.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _pacific(dt: datetime) -> datetime:
    # Lab clocks are Pacific; an approximate DST rule is enough for realistic offsets.
    hours = -7 if 3 <= dt.month <= 10 else -8
    return dt.astimezone(timezone(timedelta(hours=hours)))


def _iso_offset(dt: datetime, sep: str = "T") -> str:
    return _pacific(dt).isoformat(sep=sep, timespec="microseconds")


def _stamp(dt: datetime) -> str:
    return f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}_{dt.hour:02d}-{dt.minute:02d}-{dt.second:02d}"


def _person(name: str) -> Record:
    return {
        "name": name,
        "object_type": "Person",
        "registry": "Open Researcher and Contributor ID (ORCID)",
        "registry_identifier": None,
    }


def _modality(abbreviation: str) -> Record:
    return {"abbreviation": abbreviation, "name": MODALITY_NAMES[abbreviation]}


def _dotted(name: str) -> str:
    return ".".join(name.lower().split())


@dataclass
class _TimeStyle:
    """How one subject's lab writes times: ``Z`` or a Pacific offset, ``T`` or space."""

    offset: bool
    sep: str = "T"

    def fmt(self, dt: datetime) -> str:
        return _iso_offset(dt, self.sep) if self.offset else _iso_z(dt)

    def name_clock(self, dt: datetime) -> datetime:
        return _pacific(dt) if self.offset else dt.astimezone(UTC)



class _Seeded:
    """One seeded RNG (so output is reproducible), the templates, and the draws every part makes."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.t = _templates()

    # -- randomness helpers ------------------------------------------------------------
    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def weighted(self, options: Sequence[tuple[Any, float]]) -> Any:
        total = sum(w for _, w in options)
        x = self.rng.random() * total
        for value, weight in options:
            x -= weight
            if x < 0:
                return value
        return options[-1][0]

    def between(self, start: datetime, hours_lo: float, hours_hi: float) -> datetime:
        return start + timedelta(hours=self.rng.uniform(hours_lo, hours_hi))

    def before_horizon(self, start: datetime, hours_lo: float, hours_hi: float) -> datetime:
        """Like :meth:`between`, but not past PROCESSING_HORIZON when there is room before it."""
        room = (PROCESSING_HORIZON - start).total_seconds() / 3600
        if room > hours_lo:
            hours_hi = min(hours_hi, room)
        return self.between(start, hours_lo, hours_hi)

