"""behavior_curriculum from trainer-state objects in a mocked aind-open-data."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import pytest
from table_harness import CACHE_BUCKET, SOURCE_BUCKET, Harness, basic_record, mocked_aws

from bdc_sync.framework import MissingInput, TableResult
from bdc_sync.tables import behavior_curriculum
from biodata_cache import layout

NODES = {"0": {"name": "STAGE_1"}, "3": {"name": "STAGE_2"}, "7": {"name": "GRADUATED"}}


def state(stage: str, nodes: object = NODES, curriculum: str | None = "Uncoupled Baiting") -> str:
    body = {
        "curriculum": None if curriculum is None else {"name": curriculum, "graph": {"nodes": nodes}},
        "stage": {"name": stage},
    }
    return json.dumps(body)


def test_stage_node_id_reads_both_node_forms() -> None:
    as_dict = json.loads(state("STAGE_2"))
    assert behavior_curriculum.stage_node_id(as_dict, "STAGE_2") == 3
    as_pairs = json.loads(state("STAGE_2", nodes=[[10, {"name": "STAGE_1"}], [12, {"name": "STAGE_2"}]]))
    assert behavior_curriculum.stage_node_id(as_pairs, "STAGE_2") == 12
    assert behavior_curriculum.stage_node_id(as_dict, "STAGE_9") is None
    assert behavior_curriculum.curriculum_of(json.loads(state("STAGE_1", curriculum=None))) == (
        behavior_curriculum.Curriculum(curriculum_name=None, stage_name="STAGE_1", stage_node_id=None)
    )


RECORDS = [
    basic_record("a", "behavior_1_2026-01-01_10-00-00", modalities=["behavior", "behavior-videos"]),
    basic_record("b", "vr_2_2026-01-01_10-00-00", modalities=["behavior"]),
    basic_record("c", "videos_only_2026-01-01_10-00-00", modalities=["behavior-videos"]),
    basic_record("d", "no_state_2026-01-01_10-00-00", modalities=["Behavior"]),
    basic_record("e", "elsewhere_2026-01-01_10-00-00", modalities=["behavior"], location="s3://other-bucket/e"),
    basic_record("f", "truncated_2026-01-01_10-00-00", modalities=["behavior"]),
    basic_record("g", "off_graph_2026-01-01_10-00-00", modalities=["behavior"]),
    basic_record("h", "ecephys_1_2026-01-01_10-00-00", modalities=["ecephys"]),
]


@pytest.fixture
def harness() -> Iterator[Harness]:
    with mocked_aws():
        h = Harness(RECORDS)
        put = h.put
        # The standard folder, with a non-JSON file that sorts first.
        put(SOURCE_BUCKET, "behavior_1_2026-01-01_10-00-00/behavior/trainer_state/.DS_Store", b"\x00")
        put(SOURCE_BUCKET, "behavior_1_2026-01-01_10-00-00/behavior/trainer_state/1_2026-01-01.json",
            state("STAGE_2"))
        # The older launcher folder, nodes as [id, node] pairs.
        launcher = "vr_2_2026-01-01_10-00-00/behavior/Logs/.launcher"
        put(SOURCE_BUCKET, f"{launcher}/TrainerState_20260101T100000.bak", b"not json")
        pairs = [[4, {"name": "s_one"}], [5, {"name": "s_full"}]]
        put(SOURCE_BUCKET, f"{launcher}/TrainerState_20260101T100000.json",
            state("s_full", nodes=pairs, curriculum="vr_depletion"))
        folder = "behavior/trainer_state"
        put(SOURCE_BUCKET, f"videos_only_2026-01-01_10-00-00/{folder}/x.json", state("STAGE_1"))
        put(SOURCE_BUCKET, f"truncated_2026-01-01_10-00-00/{folder}/x.json", state("STAGE_1")[:20])
        put(SOURCE_BUCKET, f"off_graph_2026-01-01_10-00-00/{folder}/x.json", state("MANUAL"))
        yield h


def rows_by_name(harness: Harness) -> dict[str, tuple]:
    return {
        r["asset_name"]: (r["curriculum_name"], r["stage_name"], r["stage_node_id"])
        for r in harness.read("behavior_curriculum").to_pylist()
    }


def test_build_reads_trainer_states(harness: Harness) -> None:
    harness.build_upstream()
    result, ctx = harness.build(behavior_curriculum.TABLE)
    assert result.status == "succeeded"
    assert rows_by_name(harness) == {
        "behavior_1_2026-01-01_10-00-00": ("Uncoupled Baiting", "STAGE_2", 3),
        "vr_2_2026-01-01_10-00-00": ("vr_depletion", "s_full", 5),
        "videos_only_2026-01-01_10-00-00": ("Uncoupled Baiting", "STAGE_1", 0),  # behavior-videos counts
        "no_state_2026-01-01_10-00-00": (None, None, None),
        "elsewhere_2026-01-01_10-00-00": (None, None, None),  # not in aind-open-data
        "truncated_2026-01-01_10-00-00": (None, None, None),
        "off_graph_2026-01-01_10-00-00": ("Uncoupled Baiting", "MANUAL", None),
    }
    assert ctx.malformed.count == 1
    assert ctx.malformed.sample[0]["id"] == "truncated_2026-01-01_10-00-00"
    assert ctx.docdb_requests == 0


def test_incremental_reads_only_new_assets_and_incomplete_rows(harness: Harness) -> None:
    harness.build_upstream()
    harness.build(behavior_curriculum.TABLE)
    # Known assets are not read again: even a deleted state keeps its row ...
    harness.delete(SOURCE_BUCKET, "behavior_1_2026-01-01_10-00-00/behavior/trainer_state/1_2026-01-01.json")
    # ... but a row with a curriculum and no node id is.
    folder = "behavior/trainer_state"
    harness.put(SOURCE_BUCKET, f"off_graph_2026-01-01_10-00-00/{folder}/x.json", state("GRADUATED"))
    harness.put(SOURCE_BUCKET, f"new_2026-02-01_10-00-00/{folder}/x.json", state("STAGE_1"))
    harness.v2.upsert(basic_record("n", "new_2026-02-01_10-00-00", modalities=["behavior"]))
    del harness.v2.records["d"]  # a deleted asset loses its row
    harness.build_asset_basics()

    result, _ = harness.build(behavior_curriculum.TABLE)
    assert result.status == "succeeded"
    rows = rows_by_name(harness)
    assert rows["behavior_1_2026-01-01_10-00-00"] == ("Uncoupled Baiting", "STAGE_2", 3)
    assert rows["off_graph_2026-01-01_10-00-00"] == ("Uncoupled Baiting", "GRADUATED", 7)
    assert rows["new_2026-02-01_10-00-00"] == ("Uncoupled Baiting", "STAGE_1", 0)
    assert "no_state_2026-01-01_10-00-00" not in rows


def test_unchanged_asset_basics_skips_the_build(harness: Harness) -> None:
    harness.build_upstream()
    harness.build(behavior_curriculum.TABLE)
    result, _ = harness.build(behavior_curriculum.TABLE)
    assert result.status == "unchanged"


def test_missing_source_bucket_is_a_missing_input(harness: Harness) -> None:
    harness.build_upstream()
    harness.remove_bucket(SOURCE_BUCKET)
    with pytest.raises(MissingInput, match=SOURCE_BUCKET):
        harness.build(behavior_curriculum.TABLE)
    assert harness.etag("behavior_curriculum") is None


# -- chunks: a first build reads tens of thousands of assets, two per chunk here --------
SMALL_CHUNKS = dataclasses.replace(behavior_curriculum.TABLE, assets_per_chunk=2)


def test_chunked_build_gives_the_same_table(harness: Harness) -> None:
    harness.build_upstream()
    ctx = harness.context()
    chunks = SMALL_CHUNKS.plan(ctx)
    assert chunks == 4  # 7 behavior assets, 2 a chunk
    plan = ctx.cache.get_json(SMALL_CHUNKS._plan_key(ctx))[0]
    assert [len(c) for c in plan["chunks"]] == [2, 2, 2, 1]
    assert plan["chunks"][0] == {
        "behavior_1_2026-01-01_10-00-00": "behavior_1_2026-01-01_10-00-00",
        "vr_2_2026-01-01_10-00-00": "vr_2_2026-01-01_10-00-00",
    }
    # Each chunk in a context of its own, as each is its own invocation.
    contexts = [harness.context() for _ in range(chunks)]
    for index, chunk_ctx in enumerate(contexts):
        chunk_ctx.run_id = ctx.run_id
        assert SMALL_CHUNKS.build_chunk(chunk_ctx, index).status == "succeeded"
    assert sum(c.malformed.count for c in contexts) == 1  # the truncated state
    result = SMALL_CHUNKS.finish(ctx, dict.fromkeys(range(chunks), "succeeded"))
    assert result.status == "succeeded" and result.rows == 7
    chunked_rows = rows_by_name(harness)
    SMALL_CHUNKS.clean_up(ctx, chunks)
    run_state = layout.chunk_state_prefix(ctx.folder, SMALL_CHUNKS.spec.name, ctx.run_id)
    assert list(ctx.cache.list_keys(run_state)) == []

    harness.s3.delete_object(Bucket=CACHE_BUCKET, Key=layout.table_key(harness.folder, "behavior_curriculum"))
    harness.build(behavior_curriculum.TABLE)  # one chunk
    assert rows_by_name(harness) == chunked_rows


def test_failed_chunk_keeps_the_previous_table(harness: Harness) -> None:
    harness.build_upstream()
    harness.build(SMALL_CHUNKS)
    before = harness.etag("behavior_curriculum")
    harness.v2.upsert(basic_record("n", "new_2026-02-01_10-00-00", modalities=["behavior"]))
    harness.build_asset_basics()
    ctx = harness.context()
    assert SMALL_CHUNKS.plan(ctx) == 1  # the new asset, and the row without a node id again
    assert ctx.cache.get_json(SMALL_CHUNKS._plan_key(ctx))[0]["chunks"] == [
        {
            "off_graph_2026-01-01_10-00-00": "off_graph_2026-01-01_10-00-00",
            "new_2026-02-01_10-00-00": "new_2026-02-01_10-00-00",
        }
    ]
    result = SMALL_CHUNKS.finish(ctx, {0: "failed"})
    assert result.status == "failed"
    assert harness.etag("behavior_curriculum") == before


def test_nothing_to_read_publishes_without_chunks(harness: Harness) -> None:
    folder = "off_graph_2026-01-01_10-00-00/behavior/trainer_state"
    harness.put(SOURCE_BUCKET, f"{folder}/x.json", state("GRADUATED"))  # every row complete
    harness.build_upstream()
    harness.build(SMALL_CHUNKS)
    del harness.v2.records["a"]  # a vanished asset: a new asset_basics, no asset to read
    harness.build_asset_basics()
    ctx = harness.context()
    result = SMALL_CHUNKS.plan(ctx)
    assert isinstance(result, TableResult) and result.status == "succeeded"
    assert "behavior_1_2026-01-01_10-00-00" not in rows_by_name(harness)
    assert ctx.cache.get_json(SMALL_CHUNKS._plan_key(ctx)) is None
