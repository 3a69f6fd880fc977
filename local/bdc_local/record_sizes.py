"""Real record sizes for the generated corpus.

Real DocDB records are 50-130 KB, a few near 300 KB (the four fixtures: 50-130 KB,
of which 41-81 KB is quality control); generated records are about 8 KB. A corpus of
small records never makes a batch split, time out or throttle, so the end-to-end
tests and the bench would not see what production sees.

:func:`apply_profile` grows generated records to sizes drawn from a profile, with
content where the bulk of real records is and in shapes aind-data-schema accepts:

* the dict ``value`` of QC metrics gets per-sample arrays, as real metric values
  carry (the fiber photometry fixture's values hold per-channel fit arrays); tables
  show a dict value as ``{dict}``, so no row changes;
* ``acquisition.calibrations`` gets more calibrations cloned from the real
  fixture's, with longer measurement series; no table reads calibrations.

Everything the tables read stays as generated, so table contents are the same with
and without the profile.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

Record = dict[str, Any]

_COMPACT = json.JSONEncoder(separators=(",", ":"), default=str)


def compact_size(record: Record) -> int:
    """Bytes of the record as compact JSON (what the DocDB stand-in sends)."""
    return len(_COMPACT.encode(record))


@dataclass(frozen=True)
class SizeProfile:
    """Shares of records in compact-JSON size bands (bytes)."""

    bands: tuple[tuple[float, int, int], ...]  # (share, low, high)
    qc_share: float = 0.7  # of the added bytes, in QC metric values when there are any

    def draw(self, rng: random.Random) -> int:
        pick = rng.random()
        for share, low, high in self.bands:
            if pick < share:
                return rng.randint(low, high)
            pick -= share
        _, low, high = self.bands[-1]
        return rng.randint(low, high)


PROFILES: dict[str, SizeProfile] = {
    # Most records 50-130 KB, some up to 200 KB, a tail near 300 KB.
    "realistic": SizeProfile(
        bands=((0.88, 50_000, 130_000), (0.09, 130_000, 200_000), (0.03, 250_000, 310_000))
    ),
}

# A calibration of the real VR foraging fixture's shape (aind-data-schema 2.x
# `Calibration`): a device, its inputs and the measured outputs.
_CALIBRATION: Record = {
    "object_type": "Calibration",
    "calibration_date": "2025-05-23T00:00:00-07:00",
    "device_name": "water_valve_solenoid",
    "description": "Volume measured for various solenoid opening times",
    "input": [],
    "input_unit": "second",
    "output": [],
    "output_unit": "microliter",
    "notes": None,
}


def _series(rng: random.Random, count: int, scale: float = 1.0) -> list[float]:
    return [round(rng.random() * scale, 6) for _ in range(count)]


# Compact bytes of one generated float and its comma: "0.123456," is 9 characters.
_BYTES_PER_FLOAT = 9


def _grow_metric_values(metrics: list[Record], extra: int, rng: random.Random) -> int:
    """Add per-sample arrays to dict-valued metrics; returns the bytes added."""
    if extra <= 0 or not metrics:
        return 0
    per_metric = extra // len(metrics)
    added = 0
    for metric in metrics:
        value = metric["value"]
        before = len(_COMPACT.encode(value))
        value["samples"] = _series(rng, max(1, per_metric // _BYTES_PER_FLOAT))
        added += len(_COMPACT.encode(value)) - before
    return added


def _grow_calibrations(acquisition: Record, extra: int, rng: random.Random) -> int:
    """Append calibrations with long series to the acquisition; returns the bytes added."""
    if extra <= 0:
        return 0
    calibrations = acquisition.get("calibrations")
    if not isinstance(calibrations, list):
        calibrations = acquisition["calibrations"] = []
    added = 0
    # Calibrations of up to ~40 KB each, like a long measurement series.
    while added < extra:
        chunk = min(extra - added, 40_000)
        points = max(1, chunk // (2 * _BYTES_PER_FLOAT))
        calibration = copy.deepcopy(_CALIBRATION)
        calibration["input"] = sorted(_series(rng, points, 0.3))
        calibration["output"] = _series(rng, points, 20.0)
        calibrations.append(calibration)
        added += len(_COMPACT.encode(calibration)) + 1
    return added


def enlarge(record: Record, target: int, rng: random.Random, *, qc_share: float = 0.7) -> Record:
    """Grow ``record`` (in place) to about ``target`` bytes of compact JSON.

    Records without an acquisition (and so nowhere schema-valid to put the bulk
    that no table reads) are left as they are.
    """
    extra = target - compact_size(record)
    if extra <= 0:
        return record
    quality = record.get("quality_control")
    metrics = []
    if isinstance(quality, dict) and isinstance(quality.get("metrics"), list):
        metrics = [m for m in quality["metrics"] if isinstance(m, dict) and isinstance(m.get("value"), dict)]
    extra -= _grow_metric_values(metrics, int(extra * qc_share), rng)
    acquisition = record.get("acquisition")
    if isinstance(acquisition, dict):
        _grow_calibrations(acquisition, extra, rng)
    return record


def apply_profile(records: Iterable[Record], profile: str, *, seed: int) -> None:
    """Grow each record to a size drawn from ``PROFILES[profile]`` (in place)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown size profile {profile!r}; expected one of {sorted(PROFILES)}")
    chosen = PROFILES[profile]
    rng = random.Random(f"record-sizes-{seed}")
    for record in records:
        enlarge(record, chosen.draw(rng), rng, qc_share=chosen.qc_share)


def oversized(record: Record, size: int = 7_000_000, *, seed: int = 0) -> Record:
    """A copy of ``record`` grown past the Lambda response limit (6,291,556 bytes)."""
    grown = copy.deepcopy(record)
    return enlarge(grown, size, random.Random(seed), qc_share=0.0)
