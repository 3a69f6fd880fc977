"""The catalog tables' functions, for type checkers and IDEs.

Generated from the catalog by ``python -m biodata_cache._table_functions``; do not edit.
"""

from collections.abc import Sequence

import pandas as pd

from biodata_cache.reader import Filters

__all__ = [
    "behavior_curriculum",
    "foraging_sessions",
    "metadata_core",
    "metadata_upgrade",
    "platform_exaspim",
    "platform_fib",
    "platform_smartspim",
    "record_consistency_checks",
    "record_consistency_results",
    "source_data",
    "time_to_qc",
    "unique_genotypes",
    "unique_instruments",
    "unique_project_names",
    "unique_subject_ids",
]


def unique_project_names(
    *,
    version: str | None = None,
    use_cache: bool | None = None,
) -> list[str]:
    """Unique project names across all assets, sorted."""


def unique_subject_ids(
    *,
    version: str | None = None,
    use_cache: bool | None = None,
) -> list[str]:
    """Unique subject IDs across all assets, sorted."""


def unique_genotypes(
    *,
    version: str | None = None,
    use_cache: bool | None = None,
) -> list[str]:
    """Unique genotypes across all assets that record one, sorted."""


def unique_instruments(
    *,
    version: str | None = None,
    use_cache: bool | None = None,
) -> list[str]:
    """Unique normalized instrument IDs across all assets, sorted."""


def source_data(
    columns: Sequence[str] | None = None,
    filters: Filters | None = None,
    *,
    version: str | None = None,
    use_cache: bool | None = None,
) -> pd.DataFrame:
    """Mapping from derived asset names to their source raw asset names.

    Columns: name, source_data, pipeline_name, processing_time. Arguments as for ``asset_basics``.
    """


def platform_smartspim(
    columns: Sequence[str] | None = None,
    filters: Filters | None = None,
    *,
    version: str | None = None,
    use_cache: bool | None = None,
) -> pd.DataFrame:
    """SmartSPIM assets with processing status and neuroglancer links, one row per (asset, channel).

    Columns: name, raw_name, processed, institution, processing_end_time, stitched_link, raw_link, channel, segmentation_link, quantification_link, alignment_link. Arguments as for ``asset_basics``.
    """  # noqa: E501


def platform_exaspim(
    columns: Sequence[str] | None = None,
    filters: Filters | None = None,
    *,
    version: str | None = None,
    use_cache: bool | None = None,
) -> pd.DataFrame:
    """ExaSPIM assets with processing status and neuroglancer links, one row per asset.

    Columns: name, raw_name, processed, raw_link, fused_link. Arguments as for ``asset_basics``.
    """


def platform_fib(
    columns: Sequence[str] | None = None,
    filters: Filters | None = None,
    *,
    version: str | None = None,
    use_cache: bool | None = None,
) -> pd.DataFrame:
    """Fiber photometry assets in long form, one row per asset/fiber/channel combination.

    Columns: asset_name, fiber, patch_cord, channel, intended_measurement, targeted_structure. Arguments as for ``asset_basics``.
    """  # noqa: E501


def metadata_upgrade(
    columns: Sequence[str] | None = None,
    filters: Filters | None = None,
    *,
    version: str | None = None,
    use_cache: bool | None = None,
) -> pd.DataFrame:
    """Metadata upgrade status for each asset across versions.

    Columns: _id, name, project_name, data_level, v2_id, upgrader_version, last_modified, status, upgrade_datetime. Arguments as for ``asset_basics``.
    """  # noqa: E501


def foraging_sessions(
    columns: Sequence[str] | None = None,
    filters: Filters | None = None,
    *,
    version: str | None = None,
    use_cache: bool | None = None,
) -> pd.DataFrame:
    """Foraging behavior sessions with key performance metrics, one row per session.

    Columns: subject_id, session_date, session, nwb_suffix, rig, trainer, trainer_normalized, task, curriculum_name, curriculum_version, current_stage_actual, foraging_eff, foraging_eff_random_seed, finished_trials, finished_rate, total_trials, bias_naive. Arguments as for ``asset_basics``.
    """  # noqa: E501


def behavior_curriculum(
    columns: Sequence[str] | None = None,
    filters: Filters | None = None,
    *,
    version: str | None = None,
    use_cache: bool | None = None,
) -> pd.DataFrame:
    """Behavior assets with curriculum name and stage, one row per behavior asset.

    Columns: asset_name, curriculum_name, stage_name, stage_node_id. Arguments as for ``asset_basics``.
    """


def time_to_qc(
    columns: Sequence[str] | None = None,
    filters: Filters | None = None,
    *,
    version: str | None = None,
    use_cache: bool | None = None,
) -> pd.DataFrame:
    """Time from processing completion to QC completion for derived assets.

    Columns: name, process_end_time, qc_time. Arguments as for ``asset_basics``.
    """


def metadata_core(
    columns: Sequence[str] | None = None,
    filters: Filters | None = None,
    *,
    version: str | None = None,
    use_cache: bool | None = None,
) -> pd.DataFrame:
    """Presence of the core metadata files of each DocDB v2 record, one row per record.

    Columns: _id, _last_modified, subject, data_description, procedures, instrument, acquisition, processing, quality_control. Arguments as for ``asset_basics``.
    """  # noqa: E501


def record_consistency_results(
    columns: Sequence[str] | None = None,
    filters: Filters | None = None,
    *,
    version: str | None = None,
    use_cache: bool | None = None,
) -> pd.DataFrame:
    """Record consistency results, one row per checked record and check.

    Columns: check_key, record_id, name, location, record_last_modified, result, checked_at. Arguments as for ``asset_basics``.
    """  # noqa: E501


def record_consistency_checks(
    columns: Sequence[str] | None = None,
    filters: Filters | None = None,
    *,
    version: str | None = None,
    use_cache: bool | None = None,
) -> pd.DataFrame:
    """Record consistency checks, one row per check.

    Columns: check_key, description, reads, per_record, version, status, error, records_checked, failed, recomputed, ran_at. Arguments as for ``asset_basics``.
    """  # noqa: E501
