"""checkov's CloudFormation scan of template.yaml: no failed check, every skip explained.

checkov lives in .venv-tools/checkov (``make tools``; ``make test`` installs it); a
skip is a ``checkov: skip: [{id, comment}]`` entry in the resource's Metadata, and
README "Deploying to AWS" lists them.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECKOV = ROOT / ".venv-tools" / "checkov" / "bin" / "checkov"

# What the template fixes rather than skips: each must pass on these resources.
MUST_PASS = {
    ("CKV_AWS_115", "AWS::Serverless::Function.DispatcherFunction"),  # reserved concurrency
    ("CKV_AWS_115", "AWS::Serverless::Function.WorkerFunction"),
    ("CKV_AWS_115", "AWS::Serverless::Function.FinalizerFunction"),
    ("CKV_AWS_116", "AWS::Serverless::Function.DispatcherFunction"),  # async DLQ
}


@pytest.fixture(scope="module")
def scan() -> dict[str, Any]:
    if not CHECKOV.is_file():
        pytest.fail(f"no checkov at {CHECKOV.relative_to(ROOT)}: run `make tools` (make test does)")
    result = subprocess.run(
        [str(CHECKOV), "-f", "template.yaml", "--framework", "cloudformation", "-o", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    # checkov exits 1 when a check failed; the JSON says which.
    assert result.returncode in (0, 1), f"checkov did not run:\n{result.stderr[-3000:]}"
    report = json.loads(result.stdout)
    assert report["summary"]["parsing_errors"] == 0, report["summary"]
    return report


def _ids(checks: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted((c["check_id"], c["resource"]) for c in checks)


def test_no_failed_check(scan: dict[str, Any]) -> None:
    failed = scan["results"]["failed_checks"]
    assert failed == [], "checkov failed checks:\n" + "\n".join(
        f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in failed
    )
    assert scan["summary"]["passed"] >= 30  # it scanned the template, not nothing


def test_every_skip_has_a_reason(scan: dict[str, Any]) -> None:
    skipped = scan["results"]["skipped_checks"]
    for check in skipped:
        comment = (check["check_result"].get("suppress_comment") or "").strip()
        # checkov writes "No comment provided" for a bare skip.
        assert len(comment) >= 40 and comment != "No comment provided", (
            f"{check['check_id']} on {check['resource']} is skipped without a reason"
        )


def test_the_fixed_checks_pass(scan: dict[str, Any]) -> None:
    passed = set(_ids(scan["results"]["passed_checks"]))
    assert passed >= MUST_PASS, f"not passing: {sorted(MUST_PASS - passed)}"
