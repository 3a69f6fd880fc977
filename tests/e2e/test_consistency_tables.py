"""metadata_core and the record consistency tables end to end, through the HTTP servers.

A small corpus with planted cases (duplicate v2 names, v1-only names, open-data
prefixes without a record). The tests share one stack and run in order: a nightly
run, an unchanged nightly run (no record fetched, no check evaluated), then a new
open-data prefix (only the check that reads prefixes is evaluated again).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import biodata_cache as client
from bdc_local import consistency_plants, corpus
from bdc_local.runner import run_and_wait
from bdc_local.stack import LocalStack

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e_consistency")]

SEED = 11
TABLES = ("metadata_core", "record_consistency_results")


@pytest.fixture(scope="module")
def corpus_records(real_records: dict[str, dict]) -> list[dict]:
    generated = corpus.generate_corpus(60, seed=SEED)
    return consistency_plants.with_duplicate_names([*real_records.values(), *generated], seed=SEED)


@pytest.fixture(scope="module")
def stack(corpus_records: list[dict], tmp_path_factory: pytest.TempPathFactory) -> object:
    from bdc_local.corpus import write_jsonl
    from bdc_local.stack import StackConfig, local_stack

    path: Path = tmp_path_factory.mktemp("corpus") / "records.jsonl"
    write_jsonl(corpus_records, path)
    with local_stack(path, config=StackConfig(worker_timeout_seconds=60)) as running:
        running.load_sources(corpus_records, seed=SEED)
        client.configure()
        yield running


def checks_by_key() -> dict[str, dict]:
    frame = client.record_consistency_checks(use_cache=False)
    return {row["check_key"]: row for row in frame.to_dict("records")}


def test_first_run_finds_the_planted_cases(stack: LocalStack, corpus_records: list[dict]) -> None:
    result = run_and_wait(stack, workers=4, timeout=600)
    assert {t: result.tables[t]["status"] for t in TABLES} == dict.fromkeys(TABLES, "succeeded")
    core = client.metadata_core()
    assert len(core) == len(corpus_records)
    # The real raw VR session's quality_control is null: not present.
    raw = core.set_index("_id").loc["ad668ba9-326a-4b5d-abc1-63ddefaf0a41"]
    assert raw["quality_control"] == False and raw["acquisition"] == True  # noqa: E712 (numpy bools)

    plants = consistency_plants.planted(corpus_records, seed=SEED)
    failed = client.record_consistency(failed_only=True)
    by_check = {key: set(group["record_id"]) for key, group in failed.groupby("check_key")}
    assert by_check["docdb_duplicate_name_v2"] == set(plants.duplicate_ids)
    assert by_check["open_data_prefix_missing_docdb_v2"] == {f"{p}/" for p in plants.orphan_prefixes}
    assert plants.v1_only_ids <= by_check["docdb_v1_name_missing_in_v2"]
    one = client.record_consistency("docdb_duplicate_name_v2")
    assert set(one["check_key"]) == {"docdb_duplicate_name_v2"} and len(one) == len(corpus_records)
    assert set(one["result"]) == {"pass", "fail"}
    with pytest.raises(ValueError, match="unknown check 'nope'; checks: docdb_duplicate_name_v2, "):
        client.record_consistency("nope")
    checks = checks_by_key()
    assert set(checks) == {
        "docdb_duplicate_name_v2",
        "docdb_v1_name_missing_in_v2",
        "open_data_prefix_missing_docdb_v2",
    }
    assert all(row["status"] == "ok" and row["version"] == 1 for row in checks.values())
    assert checks["docdb_duplicate_name_v2"]["failed"] == len(plants.duplicate_ids)
    registry = {t.name: t for t in client.get_cache_registry().tables}
    for name in (*TABLES, "record_consistency_checks"):
        assert registry[name].status == "ok" and registry[name].rows > 0, name
    assert registry["record_consistency_checks"].rows == 3


def test_an_unchanged_run_fetches_no_record_and_evaluates_no_check(stack: LocalStack) -> None:
    before = checks_by_key()
    stack.docdb_admin("reset_stats", {})
    result = run_and_wait(stack, workers=4, timeout=600)
    stats = stack.docdb_admin("stats")
    assert {t: result.tables[t]["status"] for t in TABLES} == dict.fromkeys(TABLES, "unchanged")
    # Listings only (v2 for asset_basics and metadata_core, v1 for the checks): no aggregate.
    assert stats["requests_by_endpoint"]["aggregate"] == 0
    assert result.tables["record_consistency_results"]["message"] == "no source changed since the last build"
    assert checks_by_key() == before


def test_a_new_prefix_reevaluates_only_the_prefix_check(stack: LocalStack) -> None:
    before = checks_by_key()
    stack.s3().put_object(Bucket="aind-open-data", Key="new_prefix_without_record/x.json", Body=b"{}")
    stack.docdb_admin("reset_stats", {})
    result = run_and_wait(stack, {"tables": list(TABLES)}, workers=2, timeout=300)
    stats = stack.docdb_admin("stats")
    assert result.tables["metadata_core"]["status"] == "unchanged"
    assert result.tables["record_consistency_results"]["status"] == "succeeded"
    assert stats["requests_by_endpoint"]["aggregate"] == 0  # no v1 or v2 record changed
    after = checks_by_key()
    prefix = "open_data_prefix_missing_docdb_v2"
    assert after[prefix]["ran_at"] > before[prefix]["ran_at"]
    assert after[prefix]["failed"] == before[prefix]["failed"] + 1
    assert after[prefix]["recomputed"] == after[prefix]["records_checked"]
    for key in ("docdb_duplicate_name_v2", "docdb_v1_name_missing_in_v2"):
        assert after[key] == before[key], key
    assert "evaluated" in result.tables["record_consistency_results"]["message"]
    failed = client.record_consistency(prefix, failed_only=True)
    assert "new_prefix_without_record/" in set(failed["record_id"])
