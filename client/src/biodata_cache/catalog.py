"""Every cache table, declared once: name, description, type, columns, partitioning, inputs.

The sync Lambdas build exactly these tables with exactly these schemas, the finalizer
writes their registry entries from here, and the client reads with them (each table's
function in ``biodata_cache`` is made from its spec). Adding a column means editing one
line here and the one table module that derives it; adding a table, a spec here, a
module in ``bdc_sync.tables`` whose build has that spec, and its tests (README, "Code layout").
Only pyarrow and the standard library are imported: the Lambdas carry pyarrow but
not pandas or duckdb.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa

TableType = Literal["metadata", "asset", "event", "realtime", "platform"]

STRING = pa.string()
STRINGS = pa.list_(pa.string())
UTC_TIME = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Column:
    """One column of a table: its name, arrow type and meaning."""

    name: str
    type: pa.DataType
    description: str


@dataclass(frozen=True)
class TableSpec:
    """What a table is, independent of how it is built."""

    name: str
    description: str
    type: TableType
    columns: tuple[Column, ...]
    depends_on: tuple[str, ...] = ()
    # Partitioned tables: the folder under the version prefix and the hive key.
    folder: str | None = None
    partition_key: str | None = None
    partition_values: tuple[str, ...] = ()
    # Written by another table's build (one pass over DocDB feeds both).
    built_with: str | None = None
    # The table may carry extra columns beyond the declared ones (metadata_upgrade
    # adds one column per upgrader version).
    open_schema: bool = False
    extra: dict[str, str] = field(default_factory=dict)
    # The client function (``biodata_cache.<function>``), made from this spec unless
    # ``api`` writes it by hand: its name (default: the table's), what it returns
    # ("frame": a DataFrame; "values": the one column's values as a sorted list) and
    # the first line of its docstring (default: ``description``).
    function: str | None = None
    returns: Literal["frame", "values"] = "frame"
    summary: str | None = None

    @property
    def partitioned(self) -> bool:
        return self.partition_key is not None

    @property
    def function_name(self) -> str:
        return self.function or self.name

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(column.name, column.type) for column in self.columns])

    def column_docs(self) -> list[dict[str, str]]:
        """The registry's ``columns`` list."""
        return [{"name": c.name, "description": c.description} for c in self.columns]


def _cols(*columns: tuple[str, pa.DataType, str]) -> tuple[Column, ...]:
    return tuple(Column(name, dtype, description) for name, dtype, description in columns)


ASSET_BASICS = TableSpec(
    name="asset_basics",
    description="Commonly used asset metadata, one row per data asset",
    type="metadata",
    columns=_cols(
        ("_id", STRING, "DocDB record ID for the asset"),
        ("_last_modified", STRING, "When the DocDB record last changed (ISO text as stored)"),
        ("modalities", STRINGS, "Abbreviations of the asset's modalities"),
        ("project_name", STRING, "Project the asset belongs to"),
        ("data_level", STRING, "raw or derived"),
        ("subject_id", STRING, "ID of the subject (mouse)"),
        ("acquisition_start_time", STRING, "Acquisition start (text as stored)"),
        ("acquisition_end_time", STRING, "Acquisition end (text as stored)"),
        ("code_ocean", STRINGS, "Code Ocean data asset IDs, null if none"),
        ("process_date", STRING, "Date (YYYY-MM-DD) of the latest data process, null if none"),
        ("genotype", STRING, "Subject genotype"),
        ("age", pa.int32(), "Whole days from birth to the acquisition start date"),
        ("acquisition_type", STRING, "Type of acquisition (task or protocol)"),
        ("location", STRING, "S3 location of the asset"),
        ("name", STRING, "Asset name"),
        ("experimenters", STRINGS, "Experimenter names as recorded"),
        ("experimenters_normalized", STRINGS, "Experimenter names, cleaned and merged"),
        ("instrument_id", STRING, "Instrument ID as recorded"),
        ("instrument_id_normalized", STRING, "Instrument name without prefix, date and separators"),
        ("investigators", STRINGS, "Investigator names as recorded"),
        ("investigators_normalized", STRINGS, "Investigator names, cleaned and merged"),
    ),
    # Its records, and when each last changed, are metadata_core's rows.
    depends_on=("metadata_core",),
)

UNIQUE_PROJECT_NAMES = TableSpec(
    name="unique_project_names",
    description="Unique project names across all assets",
    type="metadata",
    columns=_cols(("project_name", STRING, "Project name")),
    depends_on=("asset_basics",),
    returns="values",
)

UNIQUE_SUBJECT_IDS = TableSpec(
    name="unique_subject_ids",
    description="Unique subject_ids across all assets",
    type="metadata",
    columns=_cols(("subject_id", STRING, "Subject ID")),
    depends_on=("asset_basics",),
    returns="values",
    summary="Unique subject IDs across all assets",
)

UNIQUE_GENOTYPES = TableSpec(
    name="unique_genotypes",
    description=("Unique genotypes across all assets where `subject.subject_details.genotype` is present"),
    type="metadata",
    columns=_cols(("genotype", STRING, "Genotype")),
    depends_on=("asset_basics",),
    returns="values",
    summary="Unique genotypes across all assets that record one",
)

UNIQUE_INSTRUMENTS = TableSpec(
    name="unique_instruments",
    description="Unique normalized instrument IDs across all assets",
    type="metadata",
    columns=_cols(("instrument_id_normalized", STRING, "Normalized instrument ID")),
    depends_on=("asset_basics",),
    returns="values",
)

SOURCE_DATA = TableSpec(
    name="source_data",
    description="Mapping from derived asset names to their source raw asset names",
    type="metadata",
    columns=_cols(
        ("name", STRING, "Derived asset name"),
        ("source_data", STRING, "Name of one source asset (empty if none recorded)"),
        ("pipeline_name", STRING, "Name of the first processing pipeline (empty if none)"),
        ("processing_time", STRING, "Trailing YYYY-MM-DD_HH-MM-SS of the asset name"),
    ),
    depends_on=("asset_basics",),
)

QUALITY_CONTROL = TableSpec(
    name="quality_control",
    description="Quality control table with one row per QC metric, partitioned by subject_id",
    type="asset",
    columns=_cols(
        ("name", STRING, "Metric name"),
        ("stage", STRING, "Stage of the pipeline the metric belongs to"),
        ("modality", STRING, "Modality abbreviation of the metric"),
        ("value", STRING, "Metric value as text ({dict} for objects)"),
        ("status", STRING, "Latest status of the metric"),
        ("asset_name", STRING, "Asset name"),
        ("subject_id", STRING, "Subject ID (also the partition key)"),
        ("timestamp", UTC_TIME, "Acquisition start of the asset, UTC"),
    ),
    depends_on=("asset_basics",),
    folder="qc",
    partition_key="subject_id",
    function="qc",
)

QC_TAG_STATUS = TableSpec(
    name="qc_tag_status",
    description="QC status per tag of each asset, partitioned by subject_id",
    type="asset",
    columns=_cols(
        ("tag", STRING, "Tag key or modality of the QC status entry"),
        ("status", STRING, "Status of that tag"),
        ("asset_name", STRING, "Asset name"),
        ("subject_id", STRING, "Subject ID (also the partition key)"),
        ("timestamp", UTC_TIME, "Acquisition start of the asset, UTC"),
    ),
    depends_on=("asset_basics",),
    folder="qc_tag_status",
    partition_key="subject_id",
    built_with="quality_control",
)

PLATFORMS = ("spim", "fib", "vr", "dynamic_foraging", "slap2")

PLATFORM_QC = TableSpec(
    name="platform_qc",
    description=("Tag-level QC statuses aggregated per platform, one row per asset/tag combination"),
    type="platform",
    columns=_cols(
        ("asset_name", STRING, "Asset name"),
        ("tag", STRING, "Tag key or modality of the QC status entry"),
        ("status", STRING, "Status of that tag"),
        ("timestamp", STRING, "Acquisition start of the asset (text as stored)"),
        ("instrument_id_normalized", STRING, "Normalized instrument ID"),
        ("experimenters_normalized", STRINGS, "Normalized experimenter names"),
        ("platform", STRING, "Platform (also the partition key)"),
    ),
    depends_on=("asset_basics",),
    folder="platform_qc",
    partition_key="platform",
    partition_values=PLATFORMS,
)

PLATFORM_SMARTSPIM = TableSpec(
    name="platform_smartspim",
    description=(
        "SmartSPIM assets with processing status and neuroglancer links, one row per (asset, channel)"
    ),
    type="metadata",
    columns=_cols(
        ("name", STRING, "Stitched asset name, or the raw name if unprocessed"),
        ("raw_name", STRING, "Raw asset name"),
        ("processed", pa.bool_(), "Whether a stitched asset exists"),
        ("institution", STRING, "Institution abbreviation of the stitched asset"),
        ("processing_end_time", STRING, "End of the stitched asset's latest data process"),
        ("stitched_link", STRING, "Neuroglancer link to the stitched image"),
        ("raw_link", STRING, "Neuroglancer link to the raw image"),
        ("channel", STRING, "Channel folder name"),
        ("segmentation_link", STRING, "Neuroglancer link to the cell segmentation"),
        ("quantification_link", STRING, "Neuroglancer link to the cell quantification"),
        ("alignment_link", STRING, "Neuroglancer link to the atlas alignment"),
    ),
    depends_on=("asset_basics", "source_data"),
)

PLATFORM_EXASPIM = TableSpec(
    name="platform_exaspim",
    description=("ExaSPIM assets with processing status and neuroglancer links, one row per asset"),
    type="metadata",
    columns=_cols(
        ("name", STRING, "Fused asset name, or the raw name if unprocessed"),
        ("raw_name", STRING, "Raw asset name"),
        ("processed", pa.bool_(), "Whether a fused asset exists"),
        ("raw_link", STRING, "Neuroglancer link to the raw image"),
        ("fused_link", STRING, "Neuroglancer link to the fused image"),
    ),
    depends_on=("asset_basics", "source_data"),
)

PLATFORM_FIB = TableSpec(
    name="platform_fib",
    description=("Fiber photometry assets in long form, one row per asset/fiber/channel combination"),
    type="metadata",
    columns=_cols(
        ("asset_name", STRING, "Asset name"),
        ("fiber", STRING, "Implanted fiber name"),
        ("patch_cord", STRING, "Patch cord connected to the fiber"),
        ("channel", STRING, "Channel name"),
        ("intended_measurement", STRING, "What the channel is meant to measure"),
        ("targeted_structure", STRING, "Acronym of the fiber's targeted structure"),
    ),
    depends_on=("asset_basics",),
)

METADATA_UPGRADE = TableSpec(
    name="metadata_upgrade",
    description="Metadata upgrade status for each asset across versions",
    type="metadata",
    columns=_cols(
        ("_id", STRING, "v1 DocDB record ID"),
        ("name", STRING, "Asset name"),
        ("project_name", STRING, "Project name"),
        ("data_level", STRING, "raw or derived"),
        ("v2_id", STRING, "v2 DocDB record ID, null if not upgraded"),
        ("upgrader_version", STRING, "Upgrader version of the latest run"),
        ("last_modified", STRING, "When the upgrader last touched the record"),
        ("status", STRING, "Upgrade status of the latest run"),
        ("upgrade_datetime", UTC_TIME, "When the upgrade ran (UTC)"),
    ),
    depends_on=("asset_basics",),
    open_schema=True,
)

FORAGING_SESSIONS = TableSpec(
    name="foraging_sessions",
    description="Foraging behavior sessions with key performance metrics, one row per session",
    type="metadata",
    columns=_cols(
        ("subject_id", STRING, "Subject ID"),
        ("session_date", STRING, "Session date (YYYY-MM-DD)"),
        ("session", pa.int64(), "Session number"),
        ("nwb_suffix", pa.int64(), "Suffix of the NWB file"),
        ("rig", STRING, "Rig name"),
        ("trainer", STRING, "Trainer name as recorded"),
        ("trainer_normalized", STRING, "Trainer name, normalized"),
        ("task", STRING, "Task name"),
        ("curriculum_name", STRING, "Curriculum name"),
        ("curriculum_version", STRING, "Curriculum version"),
        ("current_stage_actual", STRING, "Training stage the session ran"),
        ("foraging_eff", pa.float64(), "Foraging efficiency"),
        ("foraging_eff_random_seed", pa.float64(), "Foraging efficiency (random seed)"),
        ("finished_trials", pa.int64(), "Finished trials"),
        ("finished_rate", pa.float64(), "Share of finished trials"),
        ("total_trials", pa.int64(), "Total trials"),
        ("bias_naive", pa.float64(), "Naive side bias"),
    ),
)

BEHAVIOR_CURRICULUM = TableSpec(
    name="behavior_curriculum",
    description="Behavior assets with curriculum name and stage, one row per behavior asset",
    type="asset",
    columns=_cols(
        ("asset_name", STRING, "Asset name"),
        ("curriculum_name", STRING, "Curriculum name from the trainer state"),
        ("stage_name", STRING, "Stage name from the trainer state"),
        ("stage_node_id", pa.int64(), "Node ID of the stage in the curriculum graph"),
    ),
    depends_on=("asset_basics",),
)

TIME_TO_QC = TableSpec(
    name="time_to_qc",
    description="Time from processing completion to QC completion for derived assets",
    type="metadata",
    columns=_cols(
        ("name", STRING, "Derived asset name"),
        ("process_end_time", STRING, "End of the latest data process (text as stored)"),
        ("qc_time", UTC_TIME, "When QC completed (now, if any status is Pending)"),
    ),
    depends_on=("asset_basics",),
)

CORE_FILES = (
    "subject",
    "data_description",
    "procedures",
    "instrument",
    "acquisition",
    "processing",
    "quality_control",
)

METADATA_CORE = TableSpec(
    name="metadata_core",
    description="Presence of the core metadata files of each DocDB v2 record, one row per record",
    type="metadata",
    columns=_cols(
        ("_id", STRING, "DocDB record ID"),
        ("_last_modified", STRING, "When the DocDB record last changed (ISO text as stored)"),
        *((core, pa.bool_(), f"Whether the record's {core} is present and not null") for core in CORE_FILES),
    ),
)

RECORD_CONSISTENCY_RESULTS = TableSpec(
    name="record_consistency_results",
    description="Record consistency results, one row per checked record and check",
    type="metadata",
    columns=_cols(
        ("check_key", STRING, "The check (joins record_consistency_checks)"),
        ("record_id", STRING, "DocDB record ID, or the prefix (with its slash) for an S3 prefix"),
        ("name", STRING, "Record name (the prefix without its slash for an S3 prefix)"),
        ("location", STRING, "S3 location of the record (s3://bucket/prefix for an S3 prefix)"),
        ("record_last_modified", STRING, "The record's _last_modified when it was checked, null if none"),
        ("result", STRING, "pass or fail"),
        ("checked_at", UTC_TIME, "When this result was computed (kept while it is reused)"),
    ),
    depends_on=("metadata_core",),
)

RECORD_CONSISTENCY_CHECKS = TableSpec(
    name="record_consistency_checks",
    description="Record consistency checks, one row per check",
    type="metadata",
    columns=_cols(
        ("check_key", STRING, "Check identifier (its module's name)"),
        ("description", STRING, "What the check fails"),
        ("reads", STRINGS, "Sources the check reads: docdb_v2, docdb_v1, open_data_prefixes"),
        ("per_record", pa.bool_(), "Whether a record's result depends on that record alone"),
        ("version", pa.int32(), "The check's version; a new version recomputes every result"),
        ("status", STRING, "ok, or crashed (the previous results are kept)"),
        ("error", STRING, "Why the check crashed in the last run, null if it did not"),
        ("records_checked", pa.int64(), "Records with a result in record_consistency_results"),
        ("failed", pa.int64(), "Records that failed the check"),
        ("recomputed", pa.int64(), "Results computed (not reused) by the run that last changed this row"),
        ("ran_at", UTC_TIME, "When the check last computed results"),
    ),
    depends_on=("metadata_core",),
    built_with="record_consistency_results",
)

ALL_TABLES: tuple[TableSpec, ...] = (
    UNIQUE_PROJECT_NAMES,
    UNIQUE_SUBJECT_IDS,
    UNIQUE_GENOTYPES,
    UNIQUE_INSTRUMENTS,
    ASSET_BASICS,
    SOURCE_DATA,
    QUALITY_CONTROL,
    QC_TAG_STATUS,
    PLATFORM_QC,
    PLATFORM_SMARTSPIM,
    PLATFORM_EXASPIM,
    PLATFORM_FIB,
    METADATA_UPGRADE,
    FORAGING_SESSIONS,
    BEHAVIOR_CURRICULUM,
    TIME_TO_QC,
    METADATA_CORE,
    RECORD_CONSISTENCY_RESULTS,
    RECORD_CONSISTENCY_CHECKS,
)

TABLES: dict[str, TableSpec] = {spec.name: spec for spec in ALL_TABLES}


class UnknownTableError(KeyError):
    """A table name that the catalog does not know."""

    def __str__(self) -> str:  # KeyError quotes its message; this one should read plainly
        return str(self.args[0])


def get_spec(name: str) -> TableSpec:
    """The spec of a table, or UnknownTableError naming the known tables."""
    try:
        return TABLES[name]
    except KeyError:
        raise UnknownTableError(
            f"unknown table {name!r}; known tables: {', '.join(sorted(TABLES))}"
        ) from None
