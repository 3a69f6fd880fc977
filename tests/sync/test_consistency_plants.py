"""The planted consistency cases: the checks find exactly those (and the corpus's own v1-only records)."""

from __future__ import annotations

from collections import Counter

import boto3
from table_harness import Harness, mocked_aws

from bdc_local import consistency_plants, corpus, sources
from bdc_sync.tables import metadata_core, record_consistency

SEED = 7


def failures(harness: Harness) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for row in harness.read("record_consistency_results").to_pylist():
        found.setdefault(row["check_key"], set())
        if row["result"] == "fail":
            found[row["check_key"]].add(row["record_id"])
    return found


def test_the_plants_are_deterministic_and_what_they_say() -> None:
    records = corpus.generate_corpus(120, seed=SEED)
    planted_corpus = consistency_plants.with_duplicate_names(records, seed=SEED)
    assert planted_corpus == consistency_plants.with_duplicate_names(records, seed=SEED)
    plants = consistency_plants.planted(planted_corpus, seed=SEED)
    names = Counter(r["name"] for r in planted_corpus)
    assert len(plants.duplicate_ids) == 2 * consistency_plants.DUPLICATES
    assert all(names[r["name"]] == 2 for r in planted_corpus if r["_id"] in plants.duplicate_ids)
    assert len(plants.v1_records) == consistency_plants.V1_ONLY
    assert not {r["name"] for r in plants.v1_records} & set(names)
    assert len(plants.orphan_prefixes) == consistency_plants.ORPHAN_PREFIXES
    # Without the copies in the corpus nothing is claimed to be duplicated.
    assert consistency_plants.planted(records, seed=SEED).duplicate_ids == frozenset()


def test_the_checks_find_exactly_what_was_planted() -> None:
    records = consistency_plants.with_duplicate_names(corpus.generate_corpus(300, seed=SEED), seed=SEED)
    v1 = corpus.v1_records(records, 20, seed=SEED)
    with mocked_aws():
        harness = Harness(records, v1)
        s3 = boto3.client("s3", region_name="us-east-1")
        sources.write_sources(s3, records, seed=SEED)

        def upsert_v1(planted_v1: list[dict]) -> None:
            for record in planted_v1:
                harness.v1.upsert(record)

        plants = consistency_plants.plant_sources(s3, upsert_v1, records, seed=SEED)
        harness.build(metadata_core.TABLE)
        result, _ = harness.build(record_consistency.TABLE)
        found = failures(harness)
    assert result.status == "succeeded"
    assert found["docdb_duplicate_name_v2"] == set(plants.duplicate_ids)
    assert found["open_data_prefix_missing_docdb_v2"] == {f"{name}/" for name in plants.orphan_prefixes}
    # corpus.v1_records makes ~30 % of its records v1-only (new names): those fail too.
    v2_names = {r.get("name") for r in records}
    corpus_v1_only = {r["_id"] for r in v1 if r["name"] not in v2_names}
    assert 0 < len(corpus_v1_only) < len(v1)
    assert found["docdb_v1_name_missing_in_v2"] == plants.v1_only_ids | corpus_v1_only
