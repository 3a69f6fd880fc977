"""Changed copies of corpus records, for incremental runs."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from datetime import datetime, timedelta

from bdc_local.corpus.builder import latest_modified
from bdc_local.corpus.families import LATEST_MODIFIED, PROJECT_NAMES, Record
from bdc_local.corpus.templates import _iso_ms_z, _iso_z


def mutate_records(records: Sequence[Record], fraction: float, *, seed: int) -> list[Record]:
    """Changed copies of a deterministic ``fraction`` of ``records`` (for incremental runs).

    Each copy keeps its ``_id`` and ``name``, gets a ``_last_modified`` later than any
    in ``records`` (distinct per copy), and one changed field: ``project_name``, a QC
    status (``quality_control.status`` entry plus a new ``status_history`` entry), or
    the experimenters. The inputs are not modified.
    """
    if not 0 <= fraction <= 1:
        raise ValueError("fraction must be within [0, 1]")
    rng = random.Random(f"mutate:{seed}")
    count = round(len(records) * fraction)
    if fraction > 0 and records and count == 0:
        count = 1
    indices = sorted(rng.sample(range(len(records)), count))
    base = max(latest_modified(records) or LATEST_MODIFIED, LATEST_MODIFIED) + timedelta(days=1)
    changed = []
    for j, i in enumerate(indices):
        record = json.loads(json.dumps(records[i]))  # a deep copy that keeps odd strings intact
        when = base + timedelta(seconds=j, milliseconds=rng.randrange(1000))
        kind = rng.choice(("project", "qc", "qc", "experimenters"))
        if not (kind == "qc" and _mutate_qc(record, rng, when)):
            if not (kind == "experimenters" and _mutate_experimenters(record, rng)):
                _mutate_project(record, rng)
        record["_last_modified"] = _iso_ms_z(when)
        changed.append(record)
    return changed


def _mutate_project(record: Record, rng: random.Random) -> None:
    description = record.get("data_description")
    if not isinstance(description, dict):
        description = {}
        record["data_description"] = description
    current = description.get("project_name")
    description["project_name"] = rng.choice([p for p in PROJECT_NAMES if p != current])


def _mutate_qc(record: Record, rng: random.Random, when: datetime) -> bool:
    qc = record.get("quality_control")
    if not isinstance(qc, dict) or not isinstance(qc.get("status"), dict) or not qc["status"]:
        return False
    key = rng.choice(sorted(qc["status"]))
    old = qc["status"][key]
    new = rng.choice([s for s in ("Pass", "Fail", "Pending") if s != old])
    qc["status"][key] = new
    for metric in qc.get("metrics") or []:
        if isinstance(metric, dict) and isinstance(metric.get("status_history"), list):
            metric["status_history"].append(
                {
                    "object_type": "QC status",
                    "evaluator": "Huy Nguyen",
                    "status": new,
                    "timestamp": _iso_z(when),
                }
            )
            break
    return True


def _mutate_experimenters(record: Record, rng: random.Random) -> bool:
    acquisition = record.get("acquisition")
    if not isinstance(acquisition, dict) or not isinstance(acquisition.get("experimenters"), list):
        return False
    acquisition["experimenters"] = acquisition["experimenters"] + [
        rng.choice(("Olivia Unokesan", "huy.nguyen"))
    ]
    return True
