"""platform_qc: tag-level QC statuses of each platform's assets, one file per platform.

A record's status entries are kept for a platform when the key is a tag key
(``<tag_type>:<tag_value>``) of one of its metrics of a platform modality, or is a
platform modality itself. Incremental per record; the asset_basics columns
(timestamp, normalised instrument and experimenters) are joined at publish time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc

from bdc_sync.fields import as_list, as_text, get_path, require_dict
from bdc_sync.framework import ID_COL, BuildContext, RecordTable, Row, assets_where
from biodata_cache.catalog import PLATFORM_QC

BEHAVIOR = frozenset({"behavior", "behavior-videos"})
# Platform → the modality abbreviations (lower case) that select it and its tags.
PLATFORM_MODALITIES: dict[str, frozenset[str]] = {
    "spim": frozenset({"spim"}),
    "fib": frozenset({"fib"}),
    "vr": BEHAVIOR,
    "dynamic_foraging": BEHAVIOR,
    "slap2": frozenset({"slap2"}),
}
DYNAMIC_FORAGING = re.compile(r"^(Uncoupled|Coupled)( Without)? Baiting")


def platforms_of(modalities: Iterable[str], acquisition_type: str | None) -> list[str]:
    """The platforms an asset belongs to, by its modalities and acquisition type."""
    present = {m.lower() for m in modalities if m}
    found = []
    for platform, wanted in PLATFORM_MODALITIES.items():
        if not present & wanted:
            continue
        if platform == "vr" and acquisition_type != "AindVrForaging":
            continue
        if platform == "dynamic_foraging" and not DYNAMIC_FORAGING.match(acquisition_type or ""):
            continue
        found.append(platform)
    return found


def rows(record: dict) -> list[Row]:
    quality = require_dict(record, "quality_control")
    status = quality.get("status")
    if not isinstance(status, dict):
        return []
    modalities = [
        abbreviation
        for m in as_list(get_path(record, "data_description.modalities"))
        if isinstance(m, dict) and isinstance(abbreviation := m.get("abbreviation"), str)
    ]
    acquisition_type = as_text(get_path(record, "acquisition.acquisition_type"))
    out: list[Row] = []
    for platform in platforms_of(modalities, acquisition_type):
        wanted = PLATFORM_MODALITIES[platform]
        tag_keys: set[str] = set()
        for metric in as_list(quality.get("metrics")):
            if not isinstance(metric, dict):
                continue
            modality = metric.get("modality")
            abbreviation = modality.get("abbreviation") if isinstance(modality, dict) else None
            if not isinstance(abbreviation, str) or abbreviation.lower() not in wanted:
                continue
            tags = metric.get("tags")
            if isinstance(tags, dict):
                tag_keys.update(f"{kind}:{value}" for kind, value in tags.items())
        for tag, value in status.items():
            if tag in tag_keys or str(tag).lower() in wanted:
                out.append(
                    {
                        "asset_name": as_text(record.get("name")),
                        "tag": str(tag),
                        "status": as_text(value),
                        "platform": platform,
                    }
                )
    return out


def selected(basics: pa.Table) -> pa.Array:
    """asset_basics rows that belong to at least one platform."""
    flags = [
        bool(platforms_of(modalities or [], acquisition_type))
        for modalities, acquisition_type in zip(
            basics["modalities"].to_pylist(), basics["acquisition_type"].to_pylist(), strict=True
        )
    ]
    return pa.array(flags, pa.bool_())


def join_asset_basics(table: pa.Table, ctx: BuildContext) -> pa.Table:
    """Timestamp, normalised instrument and experimenters from asset_basics, by record id."""
    basics = ctx.upstream(
        "asset_basics",
        columns=["_id", "acquisition_start_time", "instrument_id_normalized", "experimenters_normalized"],
    )
    index = pc.index_in(table[ID_COL], value_set=basics["_id"].combine_chunks())
    for column, source in (
        ("timestamp", "acquisition_start_time"),
        ("instrument_id_normalized", "instrument_id_normalized"),
        ("experimenters_normalized", "experimenters_normalized"),
    ):
        values = pc.take(basics[source].combine_chunks(), index)
        table = table.set_column(table.schema.get_field_index(column), column, values)
    return table


TABLE = RecordTable(
    spec=PLATFORM_QC,
    listing=assets_where(selected, columns=("modalities", "acquisition_type")),
    projection=(
        "_id",
        "name",
        "data_description.modalities",
        "acquisition.acquisition_type",
        "quality_control.status",
        "quality_control.metrics.modality",
        "quality_control.metrics.tags",
    ),
    rows=rows,
    finish=join_asset_basics,
    sort_by=("platform", "asset_name", "tag"),
)
