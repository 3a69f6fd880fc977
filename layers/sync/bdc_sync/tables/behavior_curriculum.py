"""behavior_curriculum: curriculum and stage of each behavior asset, from its trainer state.

The input is S3, not DocDB: the first ``.json`` under ``<asset>/behavior/trainer_state``
(or the older ``<asset>/behavior/Logs/.launcher/TrainerState_``) in the source bucket.
A trainer state never changes once written, so the build is incremental on its own
previous output: an asset already in the table keeps its row and is not read again,
except rows with a curriculum but no stage node id (worth another look). Only new
behavior assets cost S3 requests (a LIST and a GET each); no DocDB request is made
at all. Rebuilt when asset_basics changed (new assets); rows of assets no longer
there are dropped. A first build reads tens of thousands of assets, so the reads are
split into chunks of assets, each its own invocation (``AssetReadsTable``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from bdc_sync.chunked import AssetRead, AssetReadsTable
from bdc_sync.fields import as_text, get_path
from bdc_sync.framework import BuildContext, Row
from bdc_sync.store import ObjectStore
from bdc_sync.tables.assets import (
    first_json_key,
    key_in_bucket,
    modality_contains,
    source_bucket_required,
)
from biodata_cache.catalog import BEHAVIOR_CURRICULUM

logger = logging.getLogger(__name__)

TRAINER_STATE_PREFIXES = ("behavior/trainer_state", "behavior/Logs/.launcher/TrainerState_")


@dataclass(frozen=True)
class Curriculum:
    """What one asset's trainer state says, or why it says nothing."""

    curriculum_name: str | None = None
    stage_name: str | None = None
    stage_node_id: int | None = None
    error: str | None = None  # the trainer state exists but cannot be read


def graph_nodes(state: dict) -> list[tuple[Any, Any]]:
    """``(node id, node)`` pairs of the curriculum graph.

    pydantic writes ``dict[int, Stage]`` as an object keyed by the id as text; some
    writers give a list of ``[id, node]`` pairs instead.
    """
    nodes = get_path(state, "curriculum.graph.nodes")
    if isinstance(nodes, dict):
        return list(nodes.items())
    if isinstance(nodes, list):
        return [(pair[0], pair[1]) for pair in nodes if isinstance(pair, list) and len(pair) == 2]
    return []


def stage_node_id(state: dict, stage_name: str | None) -> int | None:
    """Integer id of the curriculum graph node named like the stage."""
    if not stage_name:
        return None
    for key, node in graph_nodes(state):
        if isinstance(node, dict) and node.get("name") == stage_name:
            try:
                return int(key)
            except (TypeError, ValueError):
                return None
    return None


def curriculum_of(state: Any) -> Curriculum:
    """The curriculum fields of a parsed trainer state."""
    if not isinstance(state, dict):
        return Curriculum(error=f"trainer state is {type(state).__name__}, expected an object")
    stage = as_text(get_path(state, "stage.name")) or None
    return Curriculum(
        curriculum_name=as_text(get_path(state, "curriculum.name")) or None,
        stage_name=stage,
        stage_node_id=stage_node_id(state, stage),
    )


def read_curriculum(source: ObjectStore, asset_key: str | None) -> Curriculum:
    """Find and parse an asset's trainer state; an asset stored elsewhere has none."""
    if asset_key is None:
        return Curriculum()
    # One listing of behavior/ serves both places a trainer state may be (a behavior
    # folder holds tens of files: one LIST page instead of two requests).
    listed = list(source.list_keys(f"{asset_key}/behavior/"))
    for prefix in TRAINER_STATE_PREFIXES:
        key = first_json_key(k for k in listed if k.startswith(f"{asset_key}/{prefix}"))
        if key is None:
            continue
        found = source.get_bytes(key)
        if found is None:  # deleted between listing and reading
            return Curriculum()
        try:
            return curriculum_of(json.loads(found[0]))
        except ValueError as exc:
            return Curriculum(error=f"{key}: not JSON: {exc}")
    return Curriculum()


def behavior_assets(ctx: BuildContext) -> dict[str, str | None]:
    """Behavior assets by name, with their key in the source bucket (None: stored elsewhere)."""
    basics = ctx.upstream("asset_basics", columns=["name", "location", "modalities"])
    behavior = basics.filter(modality_contains(basics, "behavior"))
    bucket = ctx.settings.source_bucket
    with source_bucket_required(bucket):
        ctx.source(bucket).require_bucket()  # a missing bucket fails the plan, not every chunk
    assets: dict[str, str | None] = {}
    for name, location in zip(behavior["name"].to_pylist(), behavior["location"].to_pylist(), strict=True):
        if name and name not in assets:
            assets[name] = key_in_bucket(location, bucket)
    return assets


def read_row(ctx: BuildContext, name: str, asset_key: str | None) -> AssetRead:
    bucket = ctx.settings.source_bucket
    with source_bucket_required(bucket):
        curriculum = read_curriculum(ctx.source(bucket), asset_key)
    row = {
        "asset_name": name,
        "curriculum_name": curriculum.curriculum_name,
        "stage_name": curriculum.stage_name,
        "stage_node_id": curriculum.stage_node_id,
    }
    return row, curriculum.error


def worth_keeping(row: Row) -> bool:
    """A row is read again if it names a curriculum but found no node for its stage."""
    return not (row["curriculum_name"] and row["stage_node_id"] is None)


TABLE = AssetReadsTable(
    spec=BEHAVIOR_CURRICULUM, assets=behavior_assets, read=read_row, reusable=worth_keeping
)
