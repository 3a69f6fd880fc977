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

The enlarging series come from a bounded pool of shared list objects (lengths on a
5% ladder, a few variants each), so 100,000 records at real sizes cost the memory
of 100,000 generated ones plus the pool; the JSON of a record still carries every
byte. :func:`json_pieces` encodes a record with each shared series' JSON text
encoded once, which is how the DocDB stand-in serves such records without holding
~10 GB of JSON text.
"""

from __future__ import annotations

import copy
import json
import math
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

Record = dict[str, Any]

_COMPACT = json.JSONEncoder(separators=(",", ":"), default=str)


def compact_size(record: Record) -> int:
    """Bytes of the record as compact JSON (what the DocDB stand-in sends)."""
    return sum(len(piece) for piece in json_pieces(record))


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


# Shared series by (kind, ladder step, variant), and their compact JSON by id() of the
# list. The pool keeps every series alive, so an id() here is never reused by another
# list. Series must never be mutated: many records hold the same object.
_LADDER = 1.05
_VARIANTS = 4
_SCALES = {"samples": 1.0, "calibration_input": 0.3, "calibration_output": 20.0}
_POOL: dict[tuple[str, int, int], list[float]] = {}
_POOL_JSON: dict[int, str] = {}


def _series(rng: random.Random, count: int, kind: str) -> list[float]:
    """A shared series of at most ``count`` values (the ladder step at or below it)."""
    step = int(math.log(count) / math.log(_LADDER)) if count > 1 else 0
    while step > 0 and math.floor(_LADDER**step) > count:  # float rounding at the boundary
        step -= 1
    key = (kind, step, rng.randrange(_VARIANTS))
    series = _POOL.get(key)
    if series is None:
        values = random.Random(f"series-{key}")
        created = [round(values.random() * _SCALES[kind], 6) for _ in range(math.floor(_LADDER**step))]
        if kind == "calibration_input":
            created.sort()
        # setdefault: of two threads creating the same series, both keep the pool's one
        # (a series not in the pool could be freed and its id() reused).
        series = _POOL.setdefault(key, created)
        if series is created:
            _POOL_JSON[id(series)] = _COMPACT.encode(series)
    return series


def pooled_series_bytes() -> int:
    """Compact JSON bytes of every shared series created so far (the pool's size)."""
    return sum(len(text) for text in _POOL_JSON.values())


_MARKER = "\x00bdc-series:"
_MARKER_JSON = re.compile(r'"\\u0000bdc-series:(\d+)"')


def _marked(value: Any, found: list[str]) -> Any:
    """A copy of ``value`` with each shared series replaced by a marker string."""
    if isinstance(value, dict):
        return {key: _marked(item, found) for key, item in value.items()}
    if isinstance(value, list):
        text = _POOL_JSON.get(id(value))
        if text is not None:
            found.append(text)
            return f"{_MARKER}{len(found) - 1}"
        return [_marked(item, found) for item in value]
    return value


def json_pieces(doc: Any) -> tuple[str, ...]:
    """Compact JSON of ``doc`` as pieces to join, each shared series as its cached text.

    ``"".join(json_pieces(doc))`` equals the compact JSON of ``doc``; the pieces share
    the series' texts, so keeping them costs about the JSON of the rest of the record.
    """
    if not _POOL_JSON:
        return (_COMPACT.encode(doc),)
    found: list[str] = []
    text = _COMPACT.encode(_marked(doc, found))
    if not found:
        return (text,)
    parts = _MARKER_JSON.split(text)
    # split() alternates text and captured series numbers.
    return tuple(found[int(part)] if i % 2 else part for i, part in enumerate(parts))


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
        before = compact_size(value)
        value["samples"] = _series(rng, max(1, per_metric // _BYTES_PER_FLOAT), "samples")
        added += compact_size(value) - before
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
        calibration["input"] = _series(rng, points, "calibration_input")
        calibration["output"] = _series(rng, points, "calibration_output")
        calibrations.append(calibration)
        added += compact_size(calibration) + 1
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
    for record in records:
        # One RNG a record, keyed by its id: a record gets the same size wherever the
        # profile is applied (generator or stand-in) and when it is upserted again.
        rng = random.Random(f"record-sizes-{seed}-{record.get('_id')}")
        enlarge(record, chosen.draw(rng), rng, qc_share=chosen.qc_share)


def oversized(record: Record, size: int = 7_000_000, *, seed: int = 0) -> Record:
    """A copy of ``record`` grown past the Lambda response limit (6,291,556 bytes)."""
    grown = copy.deepcopy(record)
    return enlarge(grown, size, random.Random(seed), qc_share=0.0)
