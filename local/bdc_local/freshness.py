"""Freshness on the local stack: a DocDB change until the client reads it.

:class:`EmulatedSchedule` delivers EventBridge's scheduled event to the dispatcher
every ``interval`` seconds, as ``rate(N minutes)`` would (a tick while a scheduled
run is still building is coalesced by the dispatcher, as in AWS).
:func:`measure_freshness` changes one record's ``project_name`` in the DocDB stand-in
while that schedule runs, and times how long until ``biodata_cache.asset_basics()``
returns the changed row.
"""

from __future__ import annotations

import copy
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import biodata_cache as client
from bdc_local.runner import LocalLambdas, deliver_schedule, ledger_for, wait_for_runs


class EmulatedSchedule:
    """A thread that fires the schedule every ``interval`` seconds until stopped."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.responses: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bdc-schedule", daemon=True)

    def __enter__(self) -> EmulatedSchedule:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        # The first tick one interval after the start, like a new EventBridge rate rule.
        while not self._stop.wait(self.interval):
            self.responses.append(deliver_schedule())

    @property
    def coalesced(self) -> int:
        return sum(1 for r in self.responses if r.get("coalesced"))


@dataclass
class Freshness:
    seconds: float
    interval: float
    ticks: int
    coalesced: int
    runs_started: list[str] = field(default_factory=list)


def changed_project(record: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """A copy of ``record`` with a new project name and a ``_last_modified`` of now."""
    changed = copy.deepcopy(record)
    probe = f"freshness-probe-{uuid.uuid4().hex[:8]}"
    description = changed.get("data_description")
    if not isinstance(description, dict):
        description = changed["data_description"] = {}
    description["project_name"] = probe
    changed["_last_modified"] = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return changed, probe


def client_sees(name: str, project: str) -> bool:
    basics = client.asset_basics()
    rows = basics[basics["name"] == name]
    return bool(len(rows)) and (rows["project_name"] == project).all()


def measure_freshness(
    stack: Any,
    record: dict[str, Any],
    *,
    interval: float,
    timeout: float,
    workers: int = 4,
    poll: float = 1.0,
) -> Freshness:
    """Seconds from changing ``record`` in DocDB until the client reads the change."""
    changed, probe = changed_project(record)
    ledger = ledger_for(stack)
    with LocalLambdas(stack, workers=workers):
        with EmulatedSchedule(interval) as schedule:
            stack.docdb_admin("upsert?version=v2", [changed])
            changed_at = time.monotonic()
            while not client_sees(changed["name"], probe):
                if time.monotonic() - changed_at > timeout:
                    raise TimeoutError(f"the client did not read the change within {timeout:.0f} s")
                time.sleep(poll)
            seconds = time.monotonic() - changed_at
        started = [r["run_id"] for r in schedule.responses if r.get("ok") and not r.get("coalesced")]
        wait_for_runs(ledger, started, timeout=timeout)  # leave no run holding the schedule
    return Freshness(
        seconds=round(seconds, 2),
        interval=interval,
        ticks=len(schedule.responses),
        coalesced=schedule.coalesced,
        runs_started=started,
    )
