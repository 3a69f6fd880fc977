"""Real record sizes change no table: the same corpus built at generated size and grown
to real sizes by the DocDB stand-in (``--size-profile realistic``) publishes the same
tables, row for row."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests

from bdc_local.corpus import generate_corpus, write_jsonl
from bdc_local.record_sizes import compact_size
from bdc_local.runner import run_and_wait
from bdc_local.stack import LocalStack, StackConfig, local_stack
from biodata_cache import layout
from biodata_cache.catalog import ALL_TABLES, get_spec

pytestmark = [pytest.mark.e2e]

FOLDER = layout.package_folder()
# The tables that read DocDB records (quality_control reads the QC metrics the profile
# grows; source_data and asset_basics the acquisition it grows).
TABLES = ["asset_basics", "source_data", "quality_control", "platform_qc", "unique_subject_ids"]
PUBLISHED = [spec.name for spec in ALL_TABLES if (spec.built_with or spec.name) in TABLES]


def published(stack: LocalStack) -> dict[str, pa.Table]:
    """Every published file of the tables, read back (partitions by key)."""
    s3 = stack.s3()
    tables: dict[str, pa.Table] = {}
    for name in PUBLISHED:
        spec = get_spec(name)
        if spec.partitioned:
            prefix = layout.partition_folder_key(FOLDER, spec.folder or spec.name)
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=stack.config.bucket, Prefix=prefix)
            keys = sorted(o["Key"] for page in pages for o in page.get("Contents", []))
        else:
            keys = [layout.table_key(FOLDER, name)]
        for key in keys:
            body = s3.get_object(Bucket=stack.config.bucket, Key=key)["Body"].read()
            tables[key] = pq.read_table(pa.BufferReader(body))
    return tables


def build(corpus_file: Path, records: list[dict], size_profile: str | None) -> dict[str, pa.Table]:
    config = StackConfig(worker_timeout_seconds=60, docdb_size_profile=size_profile)
    with local_stack(corpus_file, config=config) as stack:
        stack.load_sources(records, seed=3)
        result = run_and_wait(stack, {"tables": TABLES, "trigger": "manual"}, workers=3, timeout=600)
        assert all(item["status"] == "succeeded" for item in result.tables.values()), result.tables
        served = stack.docdb_admin("stats")["response_bytes"]
        tables = published(stack)
        page = requests.get(
            f"{stack.docdb_url}/v2/metadata_index/data_assets/find", params={"limit": "50"}, timeout=30
        )
    largest = max(compact_size(record) for record in page.json())
    return {"served_bytes": served, "largest_record": largest, **tables}


def test_tables_are_the_same_with_and_without_real_record_sizes(tmp_path: Path) -> None:
    records = generate_corpus(120, seed=3)
    corpus_file = tmp_path / "records.jsonl"
    write_jsonl(records, corpus_file)

    plain = build(corpus_file, records, None)
    grown = build(corpus_file, records, "realistic")

    # The profile really was applied: records of real size, several times the bytes served.
    assert plain.pop("largest_record") < 50_000 < 130_000 < grown.pop("largest_record")
    assert grown.pop("served_bytes") > 3 * plain.pop("served_bytes")
    assert sorted(grown) == sorted(plain)
    assert len(plain) >= len(PUBLISHED)
    for key, table in plain.items():
        assert table.num_rows > 0 or key.endswith("qc_tag_status.parquet"), key
        assert grown[key].equals(table), f"{key} differs with real record sizes"
