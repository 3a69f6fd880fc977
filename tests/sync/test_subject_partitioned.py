"""SubjectPartitionedTable (quality_control's shape): plan → chunks → finish, fast.

moto in-process S3 and the harness's fake DocDB; each chunk runs in a context of its
own, as each is its own invocation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from table_harness import CACHE_BUCKET, Harness, basic_record, mocked_aws

from bdc_sync.chunked import SubjectPartitionedTable
from bdc_sync.framework import BuildContext, TableResult
from bdc_sync.tables import quality_control
from biodata_cache import layout

ONE_SUBJECT_A_CHUNK = dataclasses.replace(quality_control.TABLE, subjects_per_chunk=1)


def qc_record(
    rid: str, subject: str, metric: str, status: str = "Pass", modified: str = "2026-01-01"
) -> dict:
    return basic_record(
        rid,
        f"{rid}_2026-01-01_10-00-00",
        modified=modified,
        subject={"subject_id": subject},
        acquisition={"acquisition_start_time": "2026-01-01T10:00:00Z"},
        quality_control={
            "metrics": [
                {
                    "object_type": "QC metric",
                    "name": metric,
                    "stage": "Raw data",
                    "modality": {"abbreviation": "ecephys"},
                    "value": 1,
                    "status_history": [{"status": status, "timestamp": "2026-01-01T11:00:00Z"}],
                }
            ],
            "status": {"ecephys": status},
        },
    )


RECORDS = [qc_record("a", "S1", "m_a"), qc_record("b", "S2", "m_b"), qc_record("c", "S3", "m_c")]


@pytest.fixture
def harness() -> Iterator[Harness]:
    with mocked_aws():
        h = Harness(RECORDS)
        h.build_asset_basics()
        yield h


def run_chunked(
    harness: Harness, build: SubjectPartitionedTable, fail: frozenset[int] = frozenset()
) -> tuple[TableResult | int, TableResult | None, BuildContext]:
    """Plan, each chunk in a context of its own, finish.

    A chunk in ``fail`` runs (and leaves its files) but is recorded as failed, as when
    its invocation timed out after writing: finish must not take its results.
    """
    ctx = harness.context(build.spec)
    planned = build.plan(ctx)
    if isinstance(planned, TableResult):
        return planned, None, ctx
    statuses: dict[int, str] = {}
    for index in range(planned):
        chunk_ctx = harness.context(build.spec)
        chunk_ctx.run_id = ctx.run_id
        statuses[index] = build.build_chunk(chunk_ctx, index).status
        if index in fail:
            statuses[index] = "failed"
    result = build.finish(ctx, statuses)
    build.clean_up(ctx, planned)
    return planned, result, ctx


def subject_rows(harness: Harness, folder: str, subject: str) -> list[dict] | None:
    key = layout.partition_key(harness.folder, folder, "subject_id", subject)
    try:
        body = harness.s3.get_object(Bucket=CACHE_BUCKET, Key=key)["Body"].read()
    except harness.s3.exceptions.NoSuchKey:
        return None
    return pq.read_table(pa.BufferReader(body)).to_pylist()


def test_first_build_plans_one_chunk_per_subject_and_publishes_each(harness: Harness) -> None:
    planned, result, ctx = run_chunked(harness, ONE_SUBJECT_A_CHUNK)
    assert planned == 3
    assert result is not None and result.status == "succeeded"
    assert result.rows == 3 and result.companion_rows == {"qc_tag_status": 3}
    for rid, subject in (("a", "S1"), ("b", "S2"), ("c", "S3")):
        rows = subject_rows(harness, "qc", subject) or []
        assert [(r["name"], r["status"]) for r in rows] == [(f"m_{rid}", "Pass")]
        tags = subject_rows(harness, "qc_tag_status", subject) or []
        assert [(t["tag"], t["status"]) for t in tags] == [("ecephys", "Pass")]
    # The run's plan and chunk results are gone once the outcome is recorded.
    run_state = layout.chunk_state_prefix(ctx.folder, ONE_SUBJECT_A_CHUNK.spec.name, ctx.run_id)
    assert list(ctx.cache.list_keys(run_state)) == []


def test_nothing_changed_plans_no_chunk(harness: Harness) -> None:
    run_chunked(harness, ONE_SUBJECT_A_CHUNK)
    planned, result, _ = run_chunked(harness, ONE_SUBJECT_A_CHUNK)
    assert isinstance(planned, TableResult) and planned.status == "unchanged" and planned.rows == 3
    assert result is None


def test_a_changed_record_rebuilds_only_its_subject(harness: Harness) -> None:
    run_chunked(harness, ONE_SUBJECT_A_CHUNK)
    key_s1 = layout.partition_key(harness.folder, "qc", "subject_id", "S1")
    before_s1 = harness.s3.head_object(Bucket=CACHE_BUCKET, Key=key_s1)["ETag"]
    harness.v2.upsert(qc_record("b", "S2", "m_b", status="Fail", modified="2026-02-01"))
    harness.build_asset_basics()
    planned, result, _ = run_chunked(harness, ONE_SUBJECT_A_CHUNK)
    assert planned == 1
    assert result is not None and result.status == "succeeded" and result.rows == 3
    assert [r["status"] for r in subject_rows(harness, "qc", "S2") or []] == ["Fail"]
    assert harness.s3.head_object(Bucket=CACHE_BUCKET, Key=key_s1)["ETag"] == before_s1


def test_a_vanished_subject_loses_its_files(harness: Harness) -> None:
    run_chunked(harness, ONE_SUBJECT_A_CHUNK)
    del harness.v2.records["c"]
    harness.build_asset_basics()
    planned, result, _ = run_chunked(harness, ONE_SUBJECT_A_CHUNK)
    assert planned == 1
    assert result is not None and result.rows == 2
    assert subject_rows(harness, "qc", "S3") is None
    assert subject_rows(harness, "qc_tag_status", "S3") is None


def test_a_failed_chunk_fails_the_table_and_is_planned_again(harness: Harness) -> None:
    planned, result, _ = run_chunked(harness, ONE_SUBJECT_A_CHUNK, fail=frozenset({1}))
    assert planned == 3
    assert result is not None and result.status == "failed"
    assert "chunks failed: [1]" in result.message
    # The state took in only the chunks that succeeded: the next run plans S2 again.
    planned, result, _ = run_chunked(harness, ONE_SUBJECT_A_CHUNK)
    assert planned == 1
    assert result is not None and result.status == "succeeded" and result.rows == 3
    assert [r["name"] for r in subject_rows(harness, "qc", "S2") or []] == ["m_b"]
