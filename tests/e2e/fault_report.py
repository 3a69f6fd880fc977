"""Collects what the fault-injection tests measured and renders it as a Markdown table.

Registered as a pytest plugin by ``tests/e2e/test_faults.py`` (``pytest_plugins``).
Each fault test records one or more rows through the ``fault_report`` fixture: the
fault, how it was injected, what survived and the number of things lost, all
*measured* by the test. A row counts only if its test passed.

The report is written only when every expected fault row was produced in this
session, so a partial run never overwrites a complete report. By default it goes to
``build/fault-report/fault-report.md`` (ignored by git), so ``make test`` leaves the
work tree clean. With ``BDC_FAULT_REPORT_PUBLISH=1`` (``make fault-report``) it also
refreshes the committed copies: ``docs/fault-report.md`` and the table between the
markers ``<!-- fault-report:begin -->`` / ``<!-- fault-report:end -->`` in
``README.md``. The README's table carries no timings, so it changes only when what
was measured changes.

Under pytest-xdist every worker is a session of its own, and the controller does not
import test modules (so it does not load this plugin): each worker writes its rows to
``build/fault-report/fragments/<testrunuid>-<worker>.json`` and then renders if the fragments
of this test run together hold every expected row. Whichever worker finishes last
therefore renders; both may, harmlessly, since they render the same fragments. If the
plugin is also loaded in the controller (e.g. ``-p fault_report``), it renders there.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
PUBLISHED_REPORT = DOCS / "fault-report.md"
OUTPUT = REPO / "build" / "fault-report"
REPORT = OUTPUT / "fault-report.md"
FRAGMENTS = OUTPUT / "fragments"
README = REPO / "README.md"
# Set by `make fault-report`: refresh the committed report and README's table.
PUBLISH_VARIABLE = "BDC_FAULT_REPORT_PUBLISH"
BEGIN = "<!-- fault-report:begin -->"
END = "<!-- fault-report:end -->"

# Every row the complete report must have, in the order it is shown. Each id is
# recorded by exactly one test in test_faults.py.
EXPECTED: tuple[str, ...] = (
    "docdb-bursts",
    "docdb-down",
    "docdb-gateway-limits",
    "docdb-listing-churn",
    "worker-exception",
    "worker-timeout",
    "poison-message",
    "duplicate-delivery",
    "concurrent-finalizers",
    "overlapping-runs",
    "malformed-records",
    "client-corrupt-objects",
    "old-job-versions-file",
)
# A row produced from a test in another module, shown when that test ran here.
REFERENCED = {
    "bad-manual-input": (
        "tests/e2e/test_nightly.py::test_bad_manual_requests_enqueue_nothing",
        "Bad manual input (unknown table, malformed event, empty list)",
        'dispatcher invoked with `{"tables": ["asset_basic"]}`, `{"table": ...}`, `{"tables": []}`',
        "each refused with a clear error naming the problem; work queue still empty",
    ),
}
# A fragment is read moments after it is written; older ones of other runs are leftovers
# of partial sessions (e.g. `-k` selections), which never render.
STALE_SECONDS = 600


@dataclass
class Row:
    """One measured line of the report."""

    fault_id: str
    fault: str
    injected: str
    survived: str
    lost: int
    # Figures that differ from run to run (durations, race counts, timestamps): shown in
    # the full report only, so README's table changes only when an outcome does.
    varying: str = ""
    test: str = ""
    seconds: float = 0.0


@dataclass
class _Collector:
    """Rows recorded by the tests of this process, and which tests passed."""

    rows: dict[str, list[Row]] = field(default_factory=dict)
    passed: dict[str, float] = field(default_factory=dict)  # nodeid -> seconds
    failed: set[str] = field(default_factory=set)

    def passed_rows(self) -> list[Row]:
        rows: list[Row] = []
        for nodeid, recorded in self.rows.items():
            if nodeid in self.passed and nodeid not in self.failed:
                for row in recorded:
                    rows.append(Row(**{**asdict(row), "test": nodeid, "seconds": self.passed[nodeid]}))
        return rows


_COLLECTOR = _Collector()


class FaultRecorder:
    """What a test gets from the ``fault_report`` fixture."""

    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid

    def record(
        self, fault_id: str, *, fault: str, injected: str, survived: str, lost: int, varying: str = ""
    ) -> None:
        if fault_id not in EXPECTED:
            raise ValueError(f"unknown fault id {fault_id!r}; expected one of {EXPECTED}")
        _COLLECTOR.rows.setdefault(self.nodeid, []).append(
            Row(
                fault_id=fault_id,
                fault=fault,
                injected=injected,
                survived=survived,
                lost=int(lost),
                varying=varying,
            )
        )


@pytest.fixture
def fault_report(request: pytest.FixtureRequest) -> FaultRecorder:
    """Record a measured row of the fault report for the current test."""
    return FaultRecorder(request.node.nodeid)


# -- hooks ---------------------------------------------------------------------------
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.failed:
        _COLLECTOR.failed.add(report.nodeid)
    elif report.when == "call" and report.passed:
        _COLLECTOR.passed[report.nodeid] = round(report.duration, 1)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    controller_uid = _controller_uid(config) if workerinput is None else None
    if workerinput is None and controller_uid is None:
        # A plain session: everything ran in this process.
        rows = _COLLECTOR.passed_rows()
        if _complete(rows):
            render(rows, _referenced_passed())
        return
    if workerinput is not None:
        run_uid = str(workerinput["testrunuid"])
        _write_fragment(run_uid, str(workerinput.get("workerid", "gw")))
    else:
        assert controller_uid is not None
        run_uid = controller_uid
    rows, referenced = _read_fragments(run_uid)
    if _complete(rows):
        render(rows, referenced)
        _remove_fragments(run_uid)


def _controller_uid(config: pytest.Config) -> str | None:
    """The xdist test run uid when this process is the xdist controller, else None."""
    dsession = config.pluginmanager.getplugin("dsession")
    nodemanager = getattr(dsession, "nodemanager", None)
    uid = getattr(nodemanager, "testrunuid", None)
    return str(uid) if uid else None


def _referenced_passed() -> dict[str, str]:
    """How the referenced tests of other modules did in this process: "passed (N s)" or "FAILED"."""
    results: dict[str, str] = {}
    for nodeid, *_ in REFERENCED.values():
        if nodeid in _COLLECTOR.failed:
            results[nodeid] = "FAILED"
        elif nodeid in _COLLECTOR.passed:
            results[nodeid] = f"passed ({_COLLECTOR.passed[nodeid]:.0f} s)"
    return results


# -- fragments -----------------------------------------------------------------------
def _write_fragment(run_uid: str, worker: str) -> None:
    FRAGMENTS.mkdir(parents=True, exist_ok=True)
    payload = {
        "run_uid": run_uid,
        "worker": worker,
        "rows": [asdict(r) for r in _COLLECTOR.passed_rows()],
        "referenced": _referenced_passed(),
    }
    _atomic_write(FRAGMENTS / f"{run_uid}-{worker}.json", json.dumps(payload, indent=1))
    # Fragments of earlier, incomplete sessions would otherwise pile up.
    for old in FRAGMENTS.glob("*.json"):
        if not old.name.startswith(run_uid) and time.time() - old.stat().st_mtime > STALE_SECONDS:
            old.unlink(missing_ok=True)


def _read_fragments(run_uid: str) -> tuple[list[Row], dict[str, str]]:
    rows: list[Row] = []
    referenced: dict[str, str] = {}
    if not FRAGMENTS.exists():
        return rows, referenced
    for path in sorted(FRAGMENTS.glob(f"{run_uid}-*.json")):
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # being replaced by its writer right now; the other process renders
        rows.extend(Row(**row) for row in payload.get("rows", []))
        referenced.update(payload.get("referenced", {}))
    return rows, referenced


def _remove_fragments(run_uid: str) -> None:
    for path in FRAGMENTS.glob(f"{run_uid}-*.json"):
        path.unlink(missing_ok=True)
    try:
        FRAGMENTS.rmdir()
    except OSError:
        pass  # other fragments (or another process's) remain


# -- rendering -----------------------------------------------------------------------
def _complete(rows: list[Row]) -> bool:
    ids = {row.fault_id for row in rows}
    return all(fault_id in ids for fault_id in EXPECTED)


def _cell(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("|", "\\|")).strip()


def render_table(rows: list[Row], referenced: dict[str, str], *, timings: bool = True) -> str:
    """The Markdown table: one line per fault, in ``EXPECTED`` order.

    ``timings=False`` (README) leaves out each test's seconds, which differ every run.
    """
    by_id: dict[str, Row] = {}
    for row in rows:
        by_id.setdefault(row.fault_id, row)
    lines = [
        "| Fault | How it was injected | What survived (measured) | Lost | "
        + ("Test (seconds) |" if timings else "Test |"),
        "|---|---|---|---|---|",
    ]
    for fault_id in EXPECTED:
        row = by_id[fault_id]
        test = f"`{row.test.split('::', 1)[-1]}`"
        if timings:
            test += f" ({row.seconds:.0f} s)"
        survived = row.survived
        if timings and row.varying:
            survived += f" ({row.varying})"
        lines.append(
            f"| {_cell(row.fault)} | {_cell(row.injected)} | {_cell(survived)} | lost: {row.lost} | {test} |"
        )
    for _, (nodeid, fault, injected, survived) in REFERENCED.items():
        state = referenced.get(nodeid, "not run in this session")
        if not timings:
            state = re.sub(r" \(\d+ s\)$", "", state)
        lines.append(
            f"| {_cell(fault)} | {_cell(injected)} | {_cell(survived)} | "
            f"enqueued: 0 | `{nodeid.split('::', 1)[-1]}` in `test_nightly.py`, {state} |"
        )
    return "\n".join(lines) + "\n"


def render(rows: list[Row], referenced: dict[str, str]) -> None:
    table = render_table(rows, referenced)
    total = sum(row.lost for row in rows if row.fault_id in EXPECTED)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    document = (
        "# Faults survived\n\n"
        "Produced by `tests/e2e/test_faults.py` (run by `make test`); every figure is "
        "measured by the test against the local stack (moto server + local DocDB API over "
        'HTTP), and a row is only written when its test passed. "Lost" counts tables whose '
        "content differs from a fault-free reference run over the same corpus, previous good "
        "files or registry entries that disappeared or changed when they should not have, "
        "writes or builds beyond one per run, and reads that returned wrong data.\n\n"
        f"{table}\n"
        f"Total lost: {total}. Generated {stamp}.\n"
    )
    OUTPUT.mkdir(parents=True, exist_ok=True)
    _atomic_write(REPORT, document)
    if os.environ.get(PUBLISH_VARIABLE) != "1":
        return
    _atomic_write(PUBLISHED_REPORT, document)
    if README.exists():
        text = README.read_text(encoding="utf-8")
        start, end = text.find(BEGIN), text.find(END)
        if 0 <= start < end:
            readme_table = render_table(rows, referenced, timings=False)
            body = f"{BEGIN}\n{readme_table}\nTotal lost: {total} ([details](docs/fault-report.md)).\n{END}"
            _atomic_write(README, text[:start] + body + text[end + len(END) :])


def _atomic_write(path: Path, text: str) -> None:
    # Two xdist workers may render at the same moment: a reader must never see half.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:6]}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
