"""platform_exaspim: exaSPIM assets, their latest fused asset and viewer links.

Reads asset_basics (raw exaSPIM assets, the fused asset's location) and source_data
(the latest ``fused`` derived asset of each raw), and asks S3 which of the raw
asset's ``neuroglancer.json`` / ``process_output.json`` exists. Everything the rows
need is there, so this table makes no DocDB request at all.

Fingerprint: asset_basics, source_data and the raw links found in S3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bdc_sync.framework import BuildContext, DerivedTable, Row
from bdc_sync.tables.assets import (
    Asset,
    PerBuild,
    assets_by_name,
    latest_derived,
    parallel_map,
    raw_spim_names,
    source_bucket_required,
)
from biodata_cache.catalog import PLATFORM_EXASPIM

VIEWER = "https://neuroglancer-demo.appspot.com/#!"
BASICS_COLUMNS = ["_id", "_last_modified", "name", "data_level", "modalities", "instrument_id", "location"]
# The raw link opens the first of these that exists.
RAW_VIEWER_FILES = ("neuroglancer.json", "process_output.json")


@dataclass(frozen=True)
class ExaSpimInputs:
    raws: list[str]
    fused: dict[str, Asset]  # raw name → its latest fused asset
    raw_links: dict[str, str | None]


def gather(ctx: BuildContext) -> ExaSpimInputs:
    basics = ctx.upstream("asset_basics", columns=BASICS_COLUMNS)
    links = ctx.upstream("source_data", columns=["name", "source_data", "processing_time"])
    raws = raw_spim_names(basics, exa=True)
    latest = latest_derived(links, raws, "fused")
    assets = assets_by_name(basics, latest.values())
    bucket = ctx.settings.source_bucket
    source = ctx.source(bucket)

    def raw_link(raw: str) -> str | None:
        for filename in RAW_VIEWER_FILES:
            if source.head(f"{raw}/{filename}") is not None:
                return f"{VIEWER}s3://{bucket}/{raw}/{filename}"
        return None

    with source_bucket_required(bucket):
        found = parallel_map(raw_link, raws)
    return ExaSpimInputs(
        raws=raws,
        fused={raw: assets[name] for raw, name in latest.items()},
        raw_links=dict(zip(raws, found, strict=True)),
    )


inputs_of = PerBuild(gather)


def s3_state(ctx: BuildContext) -> dict[str, Any]:
    return {"raw_links": inputs_of(ctx).raw_links}


def derive(ctx: BuildContext) -> list[Row]:
    inputs = inputs_of(ctx)
    rows: list[Row] = []
    for raw in inputs.raws:
        fused = inputs.fused.get(raw)
        rows.append(
            {
                "name": fused.name if fused else raw,
                "raw_name": raw,
                "processed": fused is not None,
                "raw_link": inputs.raw_links.get(raw),
                "fused_link": f"{VIEWER}{fused.location}" if fused and fused.location else None,
            }
        )
    return rows


TABLE = DerivedTable(spec=PLATFORM_EXASPIM, derive=derive, extra_inputs=s3_state, sources_elsewhere=True)
