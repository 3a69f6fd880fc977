"""Untrusted sources on the local stack: a hostile df_sessions.pkl runs nothing and fails
foraging_sessions only, the previous file and registry entry kept, the reason reported."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest
import requests

from bdc_local.corpus import generate_corpus, write_jsonl
from bdc_local.demo import export_cache
from bdc_local.runner import run_and_wait
from bdc_local.sources import BEHAVIOR_BUCKET, FORAGING_SESSIONS_KEY
from bdc_local.stack import LocalStack, StackConfig, local_stack
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
    # Each decoding ran in a process of its own, not in the worker (this process).
    endpoint = stack.env["AWS_ENDPOINT_URL_LAMBDA"]
    pids = requests.get(f"{endpoint}/_admin/invocations", timeout=10).json()[stack.env["DECODER_FUNCTION"]]
    assert len(pids) >= 2 and os.getpid() not in pids and len(set(pids)) == len(pids)


HOSTILE_SUBJECT_IDS = ["6840\n39", "a/b", "x=y/z", "../../evil"]


def test_subject_ids_that_are_not_one_key_segment_are_skipped_and_named(
    tmp_path: Path, real_records: dict[str, dict]
) -> None:
    records = [*real_records.values(), *generate_corpus(120, seed=19)]
    hostile: dict[str, str] = {}
    with_subject = [
        r for r in records if isinstance(r.get("subject"), dict) and r["subject"].get("subject_id")
    ]
    for record, subject_id in zip(with_subject[:4], HOSTILE_SUBJECT_IDS, strict=True):
        record["subject"]["subject_id"] = subject_id
        hostile[record["_id"]] = subject_id
    good_subjects = {str(r["subject"]["subject_id"]) for r in with_subject[4:]}
    path = tmp_path / "records.jsonl"
    write_jsonl(records, path)
    with local_stack(path, config=StackConfig(worker_timeout_seconds=30)) as stack:
        stack.load_sources(records, seed=19)
        payload = {"tables": ["asset_basics", "quality_control", "platform_qc"], "trigger": "schedule"}
        result = run_and_wait(stack, payload, workers=3, timeout=180)
        report = _json(stack, layout.run_report_key(FOLDER, result.run_id))
        keys = [
            item["Key"]
            for page in stack.s3().get_paginator("list_objects_v2").paginate(Bucket=stack.config.bucket)
            for item in page.get("Contents", [])
        ]
        export = tmp_path / "export"
        export_cache(stack, export)

    assert result.wall_seconds < 180
    # metadata_core comes along: it lists asset_basics' records.
    assert {name: item["status"] for name, item in result.tables.items()} == dict.fromkeys(
        ["metadata_core", "asset_basics", "quality_control", "platform_qc"], "succeeded"
    )
    (qc,) = [t for t in report["tables"] if t["table"] == "quality_control"]
    named = {sample["id"] for sample in qc["malformed_sample"]}
    assert set(hostile) & named, (named, hostile)
    assert qc["malformed_records"] >= len(hostile)
    qc_prefix = layout.partition_folder_key(FOLDER, "qc")
    partitions = [key.removeprefix(qc_prefix) for key in keys if key.startswith(qc_prefix)]
    assert partitions and all(re.fullmatch(r"subject_id=[A-Za-z0-9_.+-]+/data\.pqt", p) for p in partitions)
    built = {p.split("/")[0].removeprefix("subject_id=") for p in partitions}
    assert built and built <= good_subjects
    assert not any("evil" in key or "\n" in key or "x=y" in key for key in keys)
    root = tmp_path.resolve()
    assert all(p.resolve().is_relative_to(export.resolve()) for p in export.rglob("*"))
    assert {p.name for p in root.iterdir()} == {"records.jsonl", "export"}
