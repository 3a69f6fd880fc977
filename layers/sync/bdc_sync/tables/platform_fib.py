"""platform_fib: one row per (fiber photometry asset, fiber, channel).

Fibers and their targets come from the implant procedures; which patch cord carries
which fiber comes from the connections of each acquisition data stream; channels
come from the patch cords' configurations. Incremental: only fib assets whose
record changed are fetched.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from bdc_sync.fields import as_list, as_text, get_path, require_dict
from bdc_sync.framework import RecordTable, Row, assets_where
from bdc_sync.tables.assets import modality_contains
from biodata_cache.catalog import PLATFORM_FIB

MISSING = "missing"

# Only the leaves the rows use: a fib record's procedures and data streams carry
# much more (coordinates, calibrations) than a fiber map needs.
PROJECTION = (
    "_id",
    "name",
    "procedures.subject_procedures.procedures.object_type",
    "procedures.subject_procedures.procedures.implanted_device.name",
    "procedures.subject_procedures.procedures.device_config.primary_targeted_structure.acronym",
    "acquisition.data_streams.connections.source_device",
    "acquisition.data_streams.connections.target_device",
    "acquisition.data_streams.configurations.object_type",
    "acquisition.data_streams.configurations.device_name",
    "acquisition.data_streams.configurations.channels.channel_name",
    "acquisition.data_streams.configurations.channels.intended_measurement",
)


def _dicts(value: Any) -> list[dict]:
    return [item for item in as_list(value) if isinstance(item, dict)]


def fiber_structures(record: dict) -> dict[str, str]:
    """Implanted fiber name → acronym of its primary targeted structure (``missing`` if none or root)."""
    structures: dict[str, str] = {}
    for surgery in _dicts(get_path(record, "procedures.subject_procedures")):
        for procedure in _dicts(surgery.get("procedures")):
            if procedure.get("object_type") != "Probe implant":
                continue
            fiber = as_text(get_path(procedure, "implanted_device.name"))
            if not fiber:
                continue
            acronym = as_text(get_path(procedure, "device_config.primary_targeted_structure.acronym"))
            structures[fiber] = MISSING if not acronym or acronym == "root" else acronym
    return structures


def fiber_key(name: str) -> str:
    """A fiber name with spaces and underscores treated alike (``Fiber 0`` is ``Fiber_0``)."""
    return name.replace(" ", "_")


def cord_fibers(stream: dict, fibers: set[str]) -> dict[str, str]:
    """Patch cord → fiber (the implant's own spelling), from connections whose target names a fiber.

    Both sides are compared with spaces and underscores alike: the schema's own
    examples write ``Fiber 0`` on both, other records ``Fiber_0`` on one side.
    """
    by_key = {fiber_key(fiber): fiber for fiber in fibers}
    cords: dict[str, str] = {}
    for connection in _dicts(stream.get("connections")):
        cord = as_text(connection.get("source_device"))
        target = as_text(connection.get("target_device"))
        fiber = by_key.get(fiber_key(target)) if target else None
        if cord and fiber is not None:
            cords[cord] = fiber
    return cords


def rows(record: dict) -> list[Row]:
    """One row per channel of each patch cord that is connected to an implanted fiber."""
    require_dict(record, "acquisition")
    require_dict(record, "procedures")
    name = as_text(record.get("name"))
    structures = fiber_structures(record)
    produced: list[Row] = []
    for stream in _dicts(get_path(record, "acquisition.data_streams")):
        cords = cord_fibers(stream, set(structures))
        for config in _dicts(stream.get("configurations")):
            if config.get("object_type") != "Patch cord config":
                continue
            cord = as_text(config.get("device_name"))
            fiber = cords.get(cord) if cord else None
            if fiber is None:
                continue
            for channel in _dicts(config.get("channels")):
                produced.append(
                    {
                        "asset_name": name,
                        "fiber": fiber,
                        "patch_cord": cord,
                        "channel": as_text(channel.get("channel_name")) or MISSING,
                        "intended_measurement": as_text(channel.get("intended_measurement")) or MISSING,
                        "targeted_structure": structures[fiber],
                    }
                )
    return produced


def is_fib(basics: pa.Table) -> pa.Array:
    return modality_contains(basics, "fib")


TABLE = RecordTable(
    spec=PLATFORM_FIB,
    listing=assets_where(is_fib, columns=("modalities",)),
    projection=PROJECTION,
    rows=rows,
    sort_by=("asset_name", "fiber", "channel"),
)
