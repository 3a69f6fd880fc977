"""The paths the layout derives from a table's spec are the contract's (spec/layout.md),
character for character: the registry's locations, the partition files, and the
bookkeeping keys of a chunked table's run."""

from __future__ import annotations

from biodata_cache import catalog, layout

FOLDER = "bdc-v1.0"
PREFIX = "data-asset-cache/bdc-v1.0/"


def test_a_partitioned_table_lives_in_its_folder() -> None:
    qc = catalog.get_spec("quality_control")
    assert layout.table_folder(qc) == "qc"
    assert layout.table_folder_key(FOLDER, qc) == f"{PREFIX}qc/"
    assert layout.table_partition_key(FOLDER, qc, "S1") == f"{PREFIX}qc/subject_id=S1/data.pqt"
    platform_qc = catalog.get_spec("platform_qc")
    fib = layout.table_partition_key(FOLDER, platform_qc, "fib")
    assert fib == f"{PREFIX}platform_qc/platform=fib/data.pqt"


def test_registry_locations() -> None:
    locations = {spec.name: layout.table_url("b", FOLDER, spec) for spec in catalog.ALL_TABLES}
    assert locations["quality_control"] == f"s3://b/{PREFIX}qc/"
    assert locations["qc_tag_status"] == f"s3://b/{PREFIX}qc_tag_status/"
    assert locations["asset_basics"] == f"s3://b/{PREFIX}asset_basics.pqt"
    for spec in catalog.ALL_TABLES:
        expected = f"{PREFIX}{spec.folder or spec.name}/" if spec.partitioned else f"{PREFIX}{spec.name}.pqt"
        assert locations[spec.name] == f"s3://b/{expected}"


def test_a_chunked_tables_run_state() -> None:
    run_state = f"{PREFIX}_state/quality_control/run-1/"
    assert layout.chunk_state_prefix(FOLDER, "quality_control", "run-1") == run_state
    assert layout.chunk_plan_key(FOLDER, "quality_control", "run-1") == f"{run_state}plan.json"
    assert layout.chunk_result_key(FOLDER, "quality_control", "run-1", 3) == f"{run_state}chunk-00003.pqt"
    # Beside, never inside, the table's own incremental state.
    assert layout.state_key(FOLDER, "quality_control") == f"{PREFIX}_state/quality_control.pqt"
