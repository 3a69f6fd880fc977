"""Issue 2 end to end: the whole event flow through the HTTP servers.

The tests in this module share one stack and run in order: a nightly run, a second
run with nothing changed, a run after 1% of records changed, manual runs.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import biodata_cache as client
from bdc_local.corpus import mutate_records, write_jsonl
from bdc_local.freshness import measure_freshness
from bdc_local.runner import (
    LocalLambdas,
    deliver_schedule,
    invoke_dispatcher,
    ledger_for,
    run_and_wait,
    wait_for_runs,
)
from bdc_local.stack import LocalStack, StackConfig, local_stack
from biodata_cache import catalog, layout

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e_nightly")]

FIRST_TABLES = {
    "asset_basics",
    "unique_project_names",
    "unique_subject_ids",
    "unique_genotypes",
    "source_data",
}
FOLDER = layout.package_folder()


# Tables that list DocDB themselves: metadata_core the v2 records (asset_basics takes its
# listing, the others select theirs from asset_basics), record consistency the v1 ones.
LISTING_TABLES = ("metadata_core", "record_consistency_results")


def v1_count(stack: LocalStack) -> int:
    from bdc_sync.docdb import DocDB

    return DocDB(stack.docdb_host, version="v1", plain_http=True).count()


def read_json(stack: LocalStack, key: str) -> dict | list:
    body = stack.s3().get_object(Bucket=stack.config.bucket, Key=key)["Body"].read()
    return json.loads(body)


def test_nightly_run_builds_tables_readable_by_the_client(stack: LocalStack, corpus: list[dict]) -> None:
    result = run_and_wait(stack, workers=4, timeout=600)
    statuses = {name: item["status"] for name, item in result.tables.items()}
    assert FIRST_TABLES <= set(statuses)
    assert all(status == "succeeded" for status in statuses.values()), statuses

    basics = client.asset_basics()
    assert len(basics) == len({r["_id"] for r in corpus})
    raw = basics.set_index("name").loc["828418_2026-02-13_18-31-13"]
    assert list(raw["experimenters_normalized"]) == ["Huy Nguyen"]
    assert raw["age"] == 199
    assert list(raw["modalities"]) == ["behavior", "behavior-videos"]

    projects = client.unique_project_names()
    assert projects == sorted(
        {
            r["data_description"]["project_name"]
            for r in corpus
            if isinstance(r.get("data_description"), dict) and r["data_description"].get("project_name")
        }
    )
    assert "828418" in client.unique_subject_ids()
    assert "Dbh-Cre-KI/wt" in client.unique_genotypes()
    links = client.source_data()
    vr = links[links["name"] == "828418_2026-02-13_18-31-13_processed_2026-02-14_12-44-45"]
    assert vr["source_data"].tolist() == ["828418_2026-02-13_18-31-13"]


def test_written_schemas_are_the_catalog(stack: LocalStack) -> None:
    """Every table's parquet schema, as written, is the catalog's (open schemas: plus text columns)."""
    s3 = stack.s3()
    bucket = stack.config.bucket
    checked = []
    for spec in catalog.TABLES.values():
        if spec.partitioned:
            prefix = layout.partition_folder_key(FOLDER, spec.folder or spec.name)
            listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
            keys = [item["Key"] for item in listed if item["Key"].endswith(layout.PARTITION_FILE)][:3]
        else:
            keys = [layout.table_key(FOLDER, spec.name)]
        for key in keys:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            schema = pq.read_schema(io.BytesIO(body))
            # A partition file may leave its hive key to the folder name: compare without it.
            declared = [(f.name, f.type) for f in spec.schema if f.name != spec.partition_key]
            written = [(f.name, f.type) for f in schema if f.name != spec.partition_key]
            if spec.open_schema:
                assert written[: len(declared)] == declared, (spec.name, written)
                assert all(dtype == pa.string() for _, dtype in written[len(declared) :]), spec.name
            else:
                assert written == declared, (spec.name, written)
            checked.append(spec.name)
    assert set(checked) == set(catalog.TABLES), set(catalog.TABLES) - set(checked)


def test_registry_versions_and_report(stack: LocalStack) -> None:
    registry = read_json(stack, layout.registry_key(FOLDER))
    entries = {entry["name"]: entry for entry in registry["tables"]}
    assert set(entries) >= FIRST_TABLES
    basics = entries["asset_basics"]
    assert basics["location"] == f"s3://allen-data-views/data-asset-cache/{FOLDER}/asset_basics.pqt"
    assert basics["partitioned"] is False and basics["partition_key"] is None
    assert basics["type"] == "metadata"
    assert basics["columns"][0] == {"name": "_id", "description": "DocDB record ID for the asset"}
    assert basics["status"] == "ok" and basics["rows"] > 0
    qc = entries["quality_control"]
    assert qc["location"].endswith(f"/{FOLDER}/qc/") and qc["partition_key"] == "subject_id"
    assert read_json(stack, layout.versions_key()) == [FOLDER]
    report = read_json(stack, layout.latest_run_report_key(FOLDER))
    assert {t["table"] for t in report["tables"]} >= FIRST_TABLES
    basics_report = next(t for t in report["tables"] if t["table"] == "asset_basics")
    assert basics_report["docdb_requests"] > 0 and basics_report["bytes_written"] > 0
    # The columns file beside each table.
    assert read_json(stack, layout.columns_key(FOLDER, "source_data")) == {
        "columns": ["name", "source_data", "pipeline_name", "processing_time"]
    }


def test_unchanged_corpus_fetches_only_the_listing(stack: LocalStack, corpus: list[dict]) -> None:
    before = {
        key: stack.s3().head_object(Bucket=stack.config.bucket, Key=layout.table_key(FOLDER, t))["ETag"]
        for t in FIRST_TABLES
        for key in [t]
    }
    v1_records = v1_count(stack)
    stack.docdb_admin("reset_stats", {})
    result = run_and_wait(stack, workers=4, timeout=600)
    stats = stack.docdb_admin("stats")
    rebuilt = {name for name, item in result.tables.items() if item["status"] != "unchanged"}
    # time_to_qc is the one table whose content depends on the clock (pending QC is "now").
    assert rebuilt <= {"time_to_qc"}, {n: result.tables[n]["message"] for n in rebuilt}
    # Pages of `_id, _last_modified` and nothing else: no record fetched in full.
    assert stats["requests_by_endpoint"]["aggregate"] == 0
    listed = {name: int(result.tables[name]["docdb_records"]) for name in LISTING_TABLES}
    assert listed == {"metadata_core": len(corpus), "record_consistency_results": v1_records}
    # Each listing fits one page: the page and one count_documents; asset_basics asks nothing.
    assert {name: int(result.tables[name]["docdb_requests"]) for name in LISTING_TABLES} == dict.fromkeys(
        LISTING_TABLES, 2
    )
    assert int(result.tables["asset_basics"]["docdb_requests"]) == 0
    assert stats["records_returned"] == sum(listed.values())
    assert stats["requests_total"] == sum(
        int(result.tables[name]["docdb_requests"]) for name in LISTING_TABLES
    )
    after = {
        t: stack.s3().head_object(Bucket=stack.config.bucket, Key=layout.table_key(FOLDER, t))["ETag"]
        for t in FIRST_TABLES
    }
    assert after == before  # nothing rewritten


def test_one_percent_changed_fetches_only_those(stack: LocalStack, corpus: list[dict]) -> None:
    changed = mutate_records(corpus, 0.01, seed=3)
    assert changed
    v1_records = v1_count(stack)
    stack.docdb_admin("upsert?version=v2", changed)
    stack.docdb_admin("reset_stats", {})
    result = run_and_wait(stack, workers=4, timeout=600)
    stats = stack.docdb_admin("stats")
    fetched = {name: int(item.get("docdb_records") or 0) for name, item in result.tables.items()}
    # metadata_core: the `_id, _last_modified` listing of every record, then exactly the
    # changed records; record consistency lists v1 and fetches the changed names; every
    # other table (asset_basics too, from metadata_core's listing) at most the changed records.
    listings = {name: fetched.pop(name) for name in LISTING_TABLES}
    assert fetched["asset_basics"] == len(changed)
    assert listings == {
        "metadata_core": len(corpus) + len(changed),
        "record_consistency_results": v1_records + len(changed),
    }
    assert all(count <= len(changed) for count in fetched.values()), [i for i in fetched.items() if i[1]]
    assert stats["records_returned"] == sum(listings.values()) + sum(fetched.values())
    assert result.tables["asset_basics"]["status"] == "succeeded"
    # Only the subjects of changed records get their qc/ and qc_tag_status/ files rewritten.
    subjects = {r["subject"]["subject_id"] for r in changed if isinstance(r.get("subject"), dict)}
    qc = result.tables["quality_control"]
    assert qc["message"].startswith(f"{len(subjects)} subjects rebuilt")
    assert qc["partitions_written"] <= 2 * len(subjects)
    all_partitions = stack.s3().list_objects_v2(
        Bucket=stack.config.bucket, Prefix=layout.partition_folder_key(FOLDER, "qc")
    )["KeyCount"]
    assert all_partitions > 2 * len(subjects)  # so "only those" is a real restriction
    basics = client.asset_basics().set_index("_id")
    for record in changed:
        assert basics.loc[record["_id"], "_last_modified"] == record["_last_modified"]


def test_manual_run_of_one_table_updates_the_registry(stack: LocalStack) -> None:
    before = {e["name"]: e for e in read_json(stack, layout.registry_key(FOLDER))["tables"]}
    # Remove the file so the manual run must really write it again.
    stack.s3().delete_object(Bucket=stack.config.bucket, Key=layout.table_key(FOLDER, "source_data"))
    result = run_and_wait(stack, {"tables": ["source_data"]}, workers=2, timeout=300)
    # The tables that list source_data's records come along, so the rebuild sees the
    # records DocDB has now; with nothing changed they are unchanged.
    assert {name: item["status"] for name, item in result.tables.items()} == {
        "metadata_core": "unchanged",
        "asset_basics": "unchanged",
        "source_data": "succeeded",
    }
    after = {e["name"]: e for e in read_json(stack, layout.registry_key(FOLDER))["tables"]}
    assert after["source_data"]["last_run_id"] == result.run_id
    assert after["unique_project_names"]["last_run_id"] == before["unique_project_names"]["last_run_id"]
    body = stack.s3().get_object(Bucket=stack.config.bucket, Key=layout.table_key(FOLDER, "source_data"))
    assert pq.read_table(io.BytesIO(body["Body"].read())).num_rows > 0


def test_behavior_curriculum_rebuilt_in_chunks(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    from bdc_local.runner import ledger_for
    from bdc_sync.tables import behavior_curriculum

    key = layout.table_key(FOLDER, "behavior_curriculum")
    s3 = stack.s3()
    before = pq.read_table(io.BytesIO(s3.get_object(Bucket=stack.config.bucket, Key=key)["Body"].read()))
    assert before.num_rows > 60
    # Without its file every behavior asset is read again: chunks of 20 make several.
    s3.delete_object(Bucket=stack.config.bucket, Key=key)
    monkeypatch.setattr(behavior_curriculum.TABLE, "assets_per_chunk", 20)
    result = run_and_wait(stack, {"tables": ["behavior_curriculum"]}, workers=4, timeout=300)
    item = result.tables["behavior_curriculum"]
    chunks = ledger_for(stack).chunk_items(result.run_id, "behavior_curriculum")
    assert item["status"] == "succeeded" and int(item["rows"]) == before.num_rows
    assert len(chunks) == -(-before.num_rows // 20)
    assert {chunk["status"] for chunk in chunks.values()} == {"succeeded"}
    assert int(item["chunks_done"]) == len(chunks)
    after = pq.read_table(io.BytesIO(s3.get_object(Bucket=stack.config.bucket, Key=key)["Body"].read()))
    assert after.equals(before)
    # The run's plan and chunk files are gone once the table is finished.
    leftovers = s3.list_objects_v2(
        Bucket=stack.config.bucket, Prefix=f"{layout.folder_prefix(FOLDER)}_state/behavior_curriculum/"
    )
    assert leftovers.get("KeyCount", 0) == 0


def test_bad_manual_requests_enqueue_nothing(stack: LocalStack) -> None:
    unknown = invoke_dispatcher({"tables": ["asset_basic"]})
    assert unknown["ok"] is False
    assert unknown["error"].startswith("unknown table 'asset_basic'; known tables: ")
    assert "asset_basics" in unknown["error"]
    malformed = invoke_dispatcher({"table": "asset_basics"})
    assert malformed["ok"] is False and "malformed run request" in malformed["error"]
    empty = invoke_dispatcher({"tables": []})
    assert empty["ok"] is False
    attributes = stack.sqs().get_queue_attributes(
        QueueUrl=stack.work_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"


def test_schedule_tick_during_a_scheduled_run_is_coalesced(stack: LocalStack) -> None:
    # The ticks arrive before any worker runs, so the first run is certainly still building.
    first = deliver_schedule()
    second = deliver_schedule()
    assert first["ok"] and "coalesced" not in first
    assert second["ok"] and second["coalesced"] is True and second["coalesced_into"] == first["run_id"]
    assert second["enqueued"] == [] and first["run_id"] in second["reason"]
    ledger = ledger_for(stack)
    with LocalLambdas(stack, workers=4):
        wait_for_runs(ledger, [first["run_id"]], timeout=600)
        report_key = layout.run_report_key(FOLDER, second["run_id"])
        polls = 120
        while polls and "Contents" not in stack.s3().list_objects_v2(
            Bucket=stack.config.bucket, Prefix=report_key
        ):
            time.sleep(0.5)
            polls -= 1
        # After the first run finalized, the next tick starts a run of its own.
        third = deliver_schedule()
        assert third["ok"] and "coalesced" not in third
        wait_for_runs(ledger, [third["run_id"]], timeout=600)
    report = read_json(stack, report_key)
    assert isinstance(report, dict) and report["state"] == "coalesced"
    assert report["coalesced_into"] == first["run_id"] and report["tables"] == []
    assert ledger.get_run(first["run_id"])["state"] == "finalized"  # type: ignore[index]
    assert not read_json(stack, layout.latest_run_report_key(FOLDER)).get("state")  # type: ignore[union-attr]


def test_freshness_a_docdb_change_reaches_the_client_within_an_interval(
    stack: LocalStack, corpus: list[dict]
) -> None:
    run_and_wait(stack, {"tables": ["asset_basics"]}, workers=4, timeout=600)  # a built table to change
    interval = 5.0
    measured = measure_freshness(stack, corpus[0], interval=interval, timeout=interval + 120)
    print(f"freshness_seconds={measured.seconds} at a {interval:.0f} s interval ({measured})")
    assert measured.ticks >= 1 and measured.runs_started
    assert measured.seconds <= interval + 120


@pytest.mark.xdist_group("e2e_template")
def test_nightly_run_on_the_resources_the_template_created(
    real_records: dict[str, dict], tmp_path: Path
) -> None:
    """Issue 5: the queues and ledger come from template.yaml deployed into moto."""
    corpus_path = tmp_path / "records.jsonl"
    write_jsonl(list(real_records.values()), corpus_path)
    with local_stack(corpus_path, config=StackConfig(from_template=True)) as from_template:
        assert from_template.work_queue_url.split("/")[-1].startswith("bdc-local-")
        assert from_template.config.ledger_table.startswith("bdc-local-")
        from_template.load_sources(list(real_records.values()), seed=1)
        result = run_and_wait(from_template, workers=2, timeout=300)
        assert {item["status"] for item in result.tables.values()} == {"succeeded"}
        # A new stack: a fresh reader (the module-level one was set up for another).
        reader = client.configure()
        assert len(reader.read("asset_basics")) == len(real_records)
