"""platform_smartspim: SmartSPIM assets, their latest stitched asset and viewer links.

Reads asset_basics (raw SmartSPIM assets, locations) and source_data (which derived
asset is the latest ``stitched`` one of each raw), then S3 in the source bucket:
the channel folders under ``<stitched>/image_cell_segmentation/`` and the raw
asset's ``SPIM/derivatives/neuroglancer_config.json``. DocDB is asked only for
what asset_basics lacks (institution, processing end time), only when a rebuild is
due, and only for stitched records new or changed since the last build: the
answers are kept by record id and ``_last_modified`` in the table's state file.

Fingerprint: asset_basics, source_data and the S3 answers themselves (channel
names, raw links). A run where none of these changed makes no DocDB request and
writes nothing; while asset_basics and source_data are unchanged, S3 is read again
at most every ``SOURCE_RECHECK_SECONDS`` (thousands of small reads a run).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from bdc_sync.docdb import projection_of
from bdc_sync.fields import as_list, as_text, get_path
from bdc_sync.framework import BuildContext, DerivedTable, Row
from bdc_sync.tables.assets import (
    Asset,
    PerBuild,
    assets_by_name,
    key_in_bucket,
    latest_derived,
    parallel_map,
    raw_spim_names,
    source_bucket_required,
)
from biodata_cache import layout
from biodata_cache.catalog import PLATFORM_SMARTSPIM

VIEWER = "https://allen.neuroglass.io/new#!"
RAW_CONFIG = "SPIM/derivatives/neuroglancer_config.json"
BASICS_COLUMNS = ["_id", "_last_modified", "name", "data_level", "modalities", "instrument_id", "location"]
STITCHED_PROJECTION = (
    "_id",
    "data_description.institution.abbreviation",
    "processing.data_processes.end_date_time",
)

# What the state file keeps per stitched record (DocDB's answers, by _last_modified).
DETAILS_SCHEMA = pa.schema(
    [
        ("_id", pa.string()),
        ("_last_modified", pa.string()),
        ("institution", pa.string()),
        ("processing_end_time", pa.string()),
    ]
)


@dataclass(frozen=True)
class SmartSpimInputs:
    """Everything a build reads besides DocDB."""

    raws: list[str]
    stitched: dict[str, Asset]  # raw name → its latest stitched asset
    channels: dict[str, list[str]]  # stitched name → channel folders
    raw_links: dict[str, str | None]  # raw name → ng_link of its neuroglancer config
    unreadable: dict[str, str]  # raw name → why its neuroglancer config was unusable


def raw_link_of(config: Any) -> str | None:
    """``ng_link`` of a raw config, pointing into ``SPIM/derivatives/`` as the files are."""
    link = as_text(config.get("ng_link")) if isinstance(config, dict) else None
    if link and "/derivatives/" in link and "/SPIM/derivatives/" not in link:
        link = link.replace("/derivatives/", "/SPIM/derivatives/")
    return link or None


def gather(ctx: BuildContext) -> SmartSpimInputs:
    basics = ctx.upstream("asset_basics", columns=BASICS_COLUMNS)
    links = ctx.upstream("source_data", columns=["name", "source_data", "processing_time"])
    raws = raw_spim_names(basics, exa=False)
    latest = latest_derived(links, raws, "stitched")
    assets = assets_by_name(basics, latest.values())
    stitched = {raw: assets[name] for raw, name in latest.items()}

    bucket = ctx.settings.source_bucket
    source = ctx.source(bucket)

    def channels_of(asset: Asset) -> list[str]:
        # Only the source bucket is listed: other buckets are not the viewer's either.
        key = key_in_bucket(asset.location, bucket)
        return sorted(source.list_prefixes(f"{key}/image_cell_segmentation/")) if key else []

    def raw_config(raw: str) -> tuple[str | None, str | None]:
        try:
            found = source.get_json(f"{raw}/{RAW_CONFIG}")
        except ValueError as exc:
            return None, f"{RAW_CONFIG} is not JSON: {exc}"
        return (raw_link_of(found[0]), None) if found is not None else (None, None)

    with source_bucket_required(bucket):
        processed = list(stitched.values())
        channels = dict(zip((a.name for a in processed), parallel_map(channels_of, processed), strict=True))
        configs = dict(zip(raws, parallel_map(raw_config, raws), strict=True))
    return SmartSpimInputs(
        raws=raws,
        stitched=stitched,
        channels=channels,
        raw_links={raw: link for raw, (link, _) in configs.items()},
        unreadable={raw: error for raw, (_, error) in configs.items() if error},
    )


inputs_of = PerBuild(gather)


def s3_state(ctx: BuildContext) -> dict[str, Any]:
    inputs = inputs_of(ctx)
    for raw, error in inputs.unreadable.items():
        ctx.malformed.add(raw, error)
    return {"channels": inputs.channels, "raw_links": inputs.raw_links}


def last_process_end(record: dict) -> str | None:
    processes = [p for p in as_list(get_path(record, "processing.data_processes")) if isinstance(p, dict)]
    return as_text(processes[-1].get("end_date_time")) if processes else None


def details_of(record: dict) -> Row:
    return {
        "institution": as_text(get_path(record, "data_description.institution.abbreviation")),
        "processing_end_time": last_process_end(record),
    }


def stitched_details(ctx: BuildContext, assets: Iterable[Asset]) -> dict[str, Row]:
    """Institution and processing end of stitched records by id; DocDB only for changed ones."""
    key = layout.state_key(ctx.folder, PLATFORM_SMARTSPIM.name)
    known: dict[str, Row] = {}
    previous = ctx.cache.read_table(key)
    if previous is not None and previous.schema.equals(DETAILS_SCHEMA):
        known = {row["_id"]: row for row in previous.to_pylist()}
    wanted = {asset.id: asset.modified for asset in assets if asset.id}
    changed = sorted(
        rid for rid, modified in wanted.items() if known.get(rid, {}).get("_last_modified") != modified
    )
    for record in ctx.docdb().fetch_by_ids(changed, projection_of(STITCHED_PROJECTION)):
        rid = as_text(record.get("_id"))
        if rid in wanted:
            known[rid] = {"_id": rid, "_last_modified": wanted[rid], **details_of(record)}
    details = {rid: known[rid] for rid in sorted(wanted) if rid in known}
    # Records DocDB did not return are not kept, so they are asked for again next time.
    ctx.cache.write_table(key, pa.Table.from_pylist(list(details.values()), schema=DETAILS_SCHEMA))
    return details


def asset_rows(
    raw: str, stitched: Asset | None, details: Row, channels: list[str], raw_link: str | None
) -> list[Row]:
    """The rows of one raw asset: one per channel, or one without channel links."""
    if stitched is None:
        return [{"name": raw, "raw_name": raw, "processed": False, "raw_link": raw_link}]
    location = stitched.location
    base: Row = {
        "name": stitched.name,
        "raw_name": raw,
        "processed": True,
        "institution": details.get("institution"),
        "processing_end_time": details.get("processing_end_time"),
        "stitched_link": f"{VIEWER}{location}/neuroglancer_config.json" if location else None,
        "raw_link": raw_link,
        "alignment_link": f"{VIEWER}{location}/image_atlas_alignment/neuroglancer_config.json"
        if location
        else None,
    }
    if not channels or not location:
        return [{**base, "channel": None, "segmentation_link": None, "quantification_link": None}]
    return [
        {
            **base,
            "channel": channel,
            "segmentation_link": f"{VIEWER}{location}/image_cell_segmentation/{channel}"
            "/visualization/neuroglancer_config.json",
            "quantification_link": f"{VIEWER}{location}/image_cell_quantification/{channel}"
            "/visualization/neuroglancer_config.json",
        }
        for channel in channels
    ]


def derive(ctx: BuildContext) -> list[Row]:
    inputs = inputs_of(ctx)
    details = stitched_details(ctx, inputs.stitched.values())
    rows: list[Row] = []
    for raw in inputs.raws:
        stitched = inputs.stitched.get(raw)
        found = details.get(stitched.id, {}) if stitched and stitched.id else {}
        channels = inputs.channels.get(stitched.name, []) if stitched else []
        rows.extend(asset_rows(raw, stitched, found, channels, inputs.raw_links.get(raw)))
    return rows


TABLE = DerivedTable(spec=PLATFORM_SMARTSPIM, derive=derive, extra_inputs=s3_state, sources_elsewhere=True)
