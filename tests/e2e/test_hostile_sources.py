"""Untrusted sources on the local stack: a hostile df_sessions.pkl runs nothing and fails
foraging_sessions only, the previous file and registry entry kept, the reason reported."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bdc_local.runner import run_and_wait
from bdc_local.sources import BEHAVIOR_BUCKET, FORAGING_SESSIONS_KEY
from bdc_local.stack import LocalStack
from bdc_sync.tables import buildable_tables
from biodata_cache import layout

sys.path.insert(0, str(Path(__file__).parents[1] / "sync"))
from hostile_pickles import corpus as hostile_corpus

pytestmark = [pytest.mark.e2e]
FOLDER = layout.package_folder()


def _json(stack: LocalStack, key: str) -> dict:
    return json.loads(stack.s3().get_object(Bucket=stack.config.bucket, Key=key)["Body"].read())


def _run_all(stack: LocalStack) -> tuple[str, dict[str, dict]]:
    payload = {"tables": buildable_tables(), "trigger": "schedule"}
    result = run_and_wait(stack, payload, workers=3, timeout=600)
    return result.run_id, result.tables


def test_a_hostile_pickle_fails_only_foraging_sessions(stack: LocalStack, tmp_path: Path) -> None:
    s3 = stack.s3()
    _, first = _run_all(stack)
    assert first["foraging_sessions"]["status"] in ("succeeded", "unchanged"), first["foraging_sessions"]
    table_key = layout.table_key(FOLDER, "foraging_sessions")
    before = s3.head_object(Bucket=stack.config.bucket, Key=table_key)["ETag"]
    registry_before = {e["name"]: e for e in _json(stack, layout.registry_key(FOLDER))["tables"]}

    marker = tmp_path / "the-payload-ran"
    payload = hostile_corpus(str(marker))["dotted names"]["__builtins__.get (the issue's report)"]
    s3.put_object(Bucket=BEHAVIOR_BUCKET, Key=FORAGING_SESSIONS_KEY, Body=payload)
    run_id, second = _run_all(stack)

    assert second["foraging_sessions"]["status"] == "failed"
    others = {name: item["status"] for name, item in second.items() if name != "foraging_sessions"}
    assert all(status in ("succeeded", "unchanged") for status in others.values()), others
    report = _json(stack, layout.run_report_key(FOLDER, run_id))
    (entry,) = [t for t in report["tables"] if t["table"] == "foraging_sessions"]
    assert "refusing global pandas.core.common.__builtins__.get" in json.dumps(entry), entry
    assert s3.head_object(Bucket=stack.config.bucket, Key=table_key)["ETag"] == before
    registry_after = {e["name"]: e for e in _json(stack, layout.registry_key(FOLDER))["tables"]}
    # The entry still describes the previous file; it says this run's build failed, and why.
    checked = {"status", "message", "last_checked", "last_checked_epoch", "last_run_id"}
    old, new = registry_before["foraging_sessions"], registry_after["foraging_sessions"]
    kept = {k: v for k, v in old.items() if k not in checked}
    assert {k: v for k, v in new.items() if k not in checked} == kept
    assert new["status"] == "failed" and "refusing global" in new["message"]
    assert not marker.exists()
