"""The synthetic corpus generator and the non-DocDB sources derived from it."""

from __future__ import annotations

import io
import json
import re
import statistics
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
from moto import mock_aws

from bdc_local import corpus, sources
from bdc_local.corpus import (
    MALFORMED_KINDS,
    generate_corpus,
    iter_corpus,
    malformed_records,
    mutate_records,
    read_jsonl,
    v1_records,
    write_jsonl,
)

N = 4000
SEED = 11
# Lean records: ~8 KB, plus the ~0.7 KB the schema requires of what the generator emits
# (a detector per fiber channel, an implant's coordinate system and transform, the stub
# instrument's coordinate system) since records validate against aind-data-schema.
BUDGET_BYTES = 9 * 1024
STAMP = re.compile(r"\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}$")


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    return generate_corpus(N, seed=SEED)


def modalities(record: dict[str, Any]) -> list[str]:
    entries = (record.get("data_description") or {}).get("modalities") or []
    return [m["abbreviation"] for m in entries if isinstance(m, dict) and "abbreviation" in m]


def level(record: dict[str, Any]) -> str | None:
    return record["data_description"].get("data_level")


def qc_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r.get("quality_control")]


# -- determinism and shape ------------------------------------------------------------
def test_same_seed_gives_identical_records() -> None:
    first = generate_corpus(300, seed=5)
    assert json.dumps(first) == json.dumps(generate_corpus(300, seed=5))
    assert json.dumps(first) == json.dumps(list(iter_corpus(300, seed=5)))
    other = generate_corpus(300, seed=6)
    assert {r["_id"] for r in first}.isdisjoint({r["_id"] for r in other})
    assert [r["name"] for r in first] != [r["name"] for r in other]


def test_exact_count_unique_ids_and_names(records: list[dict[str, Any]]) -> None:
    assert len(records) == N
    assert len({r["_id"] for r in records}) == N
    assert len({r["name"] for r in records}) == N
    assert all(re.fullmatch(r"[0-9a-f-]{36}", r["_id"]) for r in records)


def test_many_subjects_with_several_sessions(records: list[dict[str, Any]]) -> None:
    subjects = Counter(r["data_description"]["subject_id"] for r in records)
    assert len(subjects) == round(N / 12)
    raws_per_subject = Counter(r["data_description"]["subject_id"] for r in records if level(r) == "raw")
    assert statistics.median(raws_per_subject.values()) >= 2
    assert max(raws_per_subject.values()) >= 20  # mice in training: many sessions
    assert len(generate_corpus(200, seed=1, subjects=5)) == 200
    assert len({r["data_description"]["subject_id"] for r in generate_corpus(200, seed=1, subjects=5)}) == 5


def test_modality_and_level_shares_are_sensible(records: list[dict[str, Any]]) -> None:
    def share(abbreviation: str) -> float:
        return sum(abbreviation in modalities(r) for r in records) / N

    assert 0.3 < share("behavior") < 0.75
    assert 0.2 < share("behavior-videos") < 0.6
    for abbreviation in ("pophys", "fib", "ecephys"):
        assert 0.05 < share(abbreviation) < 0.3, abbreviation
    assert 0.03 < share("SPIM") < 0.2
    assert 0.01 < share("slap2") < 0.1
    combined = Counter(tuple(modalities(r)) for r in records)
    assert combined[("behavior", "behavior-videos", "fib")] > 0
    assert combined[("pophys", "behavior-videos")] > 0
    raw_share = sum(level(r) == "raw" for r in records) / N
    assert 0.4 < raw_share < 0.65
    assert len({r["data_description"]["project_name"] for r in records} - {None}) >= 15


def test_every_derived_source_names_an_existing_raw_asset(records: list[dict[str, Any]]) -> None:
    raws = {r["name"] for r in records if level(r) == "raw"}
    derived = [r for r in records if level(r) == "derived"]
    sources_seen = 0
    for record in derived:
        for source in record["data_description"].get("source_data") or []:
            assert source in raws
            sources_seen += 1
        assert STAMP.search(record["name"])
        assert any(
            record["name"].startswith(raw) for raw in record["data_description"].get("source_data") or [""]
        )
    assert sources_seen >= len(derived) * 0.95
    suffixes = Counter(re.search(r"_([a-z]+)_\d{4}-\d{2}-\d{2}_[\d-]+$", r["name"]).group(1) for r in derived)
    assert {"processed", "stitched", "fused", "sorted"} <= set(suffixes)
    # Several derived assets of one raw asset, from different pipelines.
    pipelines_per_raw: dict[str, set[str]] = {}
    for record in derived:
        pipelines = (record.get("processing") or {}).get("pipelines") or [{}]
        for source in record["data_description"].get("source_data") or []:
            pipelines_per_raw.setdefault(source, set()).add(pipelines[0].get("name"))
    assert sum(len(p) > 1 for p in pipelines_per_raw.values()) > 20
    # Derived assets are created after the raw asset they come from.
    created = {r["name"]: r["_created"] for r in records}
    assert all(
        r["_created"] > created[s] for r in derived for s in r["data_description"].get("source_data") or []
    )


def test_experimenters_come_in_messy_forms(records: list[dict[str, Any]]) -> None:
    values = [e for r in records for e in (r.get("acquisition") or {}).get("experimenters") or []]
    texts = {e for e in values if isinstance(e, str)}
    assert {"huy.nguyen", "Huy Nguyen", "Huy"} <= texts
    assert "olivia.unokesan" in texts
    assert any(re.fullmatch(r"[A-Z][a-z]+ [A-Z][a-z]+, [A-Z][a-z]+ [A-Z][a-z]+", t) for t in texts)
    assert all(isinstance(e, str) for e in values)  # the schema's experimenters are strings
    assert {"Grace Liu", "Grace Huang"} <= texts  # an ambiguous first name
    # Unicode letters, and a one-word Tom beside a Tomás (who must not absorb him).
    assert {"tomás.ibarra", "Tom"} <= texts and any("Ana-Lucía" in t for t in texts)
    investigators = [i for r in records for i in r["data_description"].get("investigators") or []]
    assert investigators and all(isinstance(i, dict) and "name" in i for i in investigators)


def test_acquisition_types_instruments_genotypes_births(records: list[dict[str, Any]]) -> None:
    acquisitions = [r["acquisition"] for r in records if r.get("acquisition")]
    types = {a["acquisition_type"] for a in acquisitions}
    assert {
        "AindVrForaging",
        "Coupled Baiting",
        "Uncoupled Without Baiting",
        "Coupled Without Baiting",
    } <= types
    instruments = {a["instrument_id"] for a in acquisitions}
    expected = {"429-mesoscope-20220321", "SmartSPIM1-2_20240101", "exaSPIM-01_2024-05-01", "4A", "13A"}
    assert expected | {"323_EPHYS1_20231115"} <= instruments
    assert all(isinstance(i, str) and i for i in instruments)  # null and "" ids: malformed set
    starts = [a["acquisition_start_time"] for a in acquisitions]
    assert any(s.endswith("Z") for s in starts) and any(re.search(r" .*-0[78]:00$", s) for s in starts)
    details = [(r.get("subject") or {}).get("subject_details") for r in records]
    genotypes = {d.get("genotype") for d in details if d}
    assert len(genotypes - {None}) >= 8
    mice = [d for d in details if d and d["object_type"] == "Mouse subject"]
    assert mice and all(d["date_of_birth"] and d["genotype"] for d in mice)
    # Subjects without a birth date (and genotype), as the schema allows them.
    assert any(d and d["object_type"] == "Calibration object" for d in details)


def test_legacy_shapes_are_in_the_malformed_set() -> None:
    """Shapes outside the schema that tables still read (tables.md) come from ``malformed_records``."""
    damaged = malformed_records(len(MALFORMED_KINDS) * 6, seed=5)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for record in damaged:
        by_kind.setdefault(record["_damage"], []).append(record)
    objects = [e for r in by_kind["experimenters_objects"] for e in r["acquisition"]["experimenters"]]
    assert objects and all(isinstance(e, dict) and isinstance(e["name"], str) for e in objects)
    details = [r["subject"]["subject_details"] for r in by_kind["birth_legacy"]]
    assert any(d is None for d in details)
    assert any(d and "year_of_birth" in d and "date_of_birth" not in d for d in details)
    assert any(d and d.get("date_of_birth") is None for d in details)


def test_quality_control_shapes(records: list[dict[str, Any]]) -> None:
    with_qc = qc_records(records)
    assert 0.2 < len(with_qc) / N < 0.8
    metrics = [m for r in with_qc for m in r["quality_control"]["metrics"]]
    value_types = {type(m["value"]).__name__ for m in metrics}
    assert {"NoneType", "int", "float", "str", "dict", "list", "bool"} <= value_types
    assert any(m["object_type"] == "Curation metric" for m in metrics)
    assert any(isinstance(m.get("tags"), list) for m in metrics)
    assert any(len(m["status_history"]) > 1 for m in metrics)
    for record in with_qc:
        qc = record["quality_control"]
        scored = [m for m in qc["metrics"] if m["object_type"] != "Curation metric"]
        tag_keys = {
            f"{k}:{v}" for m in scored if isinstance(m.get("tags"), dict) for k, v in m["tags"].items()
        }
        assert set(qc["status"].values()) <= {"Pass", "Fail", "Pending"}
        assert tag_keys <= set(qc["status"])
        metric_modalities = {m["modality"]["abbreviation"] for m in scored}
        assert metric_modalities <= set(qc["status"])


def test_fiber_photometry_records_connect_patch_cords_to_fibers(records: list[dict[str, Any]]) -> None:
    linked = 0
    for record in records:
        if "fib" not in modalities(record) or not record.get("acquisition") or not record.get("procedures"):
            continue
        fibers = {
            p["implanted_device"]["name"]
            for s in record["procedures"]["subject_procedures"]
            for p in s.get("procedures") or []
            if p.get("object_type") == "Probe implant"
        }
        for stream in record["acquisition"]["data_streams"]:
            cords = {
                c["source_device"]
                for c in stream["connections"]
                if c["target_device"].replace(" ", "_") in fibers
            }
            configs = [c for c in stream["configurations"] if c["object_type"] == "Patch cord config"]
            if cords and any(c["device_name"] in cords and c["channels"] for c in configs):
                linked += 1
    assert linked > 100


def test_optional_sections_are_sometimes_missing(records: list[dict[str, Any]]) -> None:
    assert any(r["acquisition"] is None for r in records)
    assert any(r["processing"] is None for r in records)
    assert any(r["procedures"] is None for r in records)
    assert any(r["data_description"].get("modalities") == [] for r in records)
    assert any(r["other_identifiers"] is None for r in records)
    assert any((r.get("processing") or {}).get("data_processes") == [] for r in records)
    locations = Counter(r["location"].split("/")[2] for r in records)
    assert locations["aind-open-data"] > 0.85 * N and locations[corpus.CODEOCEAN_BUCKET] > 0
    code_ocean = [r["other_identifiers"]["Code Ocean"] for r in records if r["other_identifiers"]]
    assert all(isinstance(ids, list) and ids for ids in code_ocean)


def test_bookkeeping_times_are_iso_z(records: list[dict[str, Any]]) -> None:
    for record in records:
        assert record["_created"].endswith("Z") and record["_last_modified"].endswith("Z")
        assert datetime.fromisoformat(record["_last_modified"]) >= datetime.fromisoformat(record["_created"])


def test_records_are_lean_with_a_few_full_size(records: list[dict[str, Any]]) -> None:
    sizes = [len(json.dumps(r)) for r in records]
    full = [s for s in sizes if s > 40_000]
    assert 1 <= len(full) <= 0.01 * N
    assert statistics.mean(s for s in sizes if s <= 40_000) < BUDGET_BYTES
    assert any(len(json.dumps(r.get("instrument"))) > 10_000 for r in records)


@pytest.mark.slow
def test_100k_records_generate_fast_within_the_size_budget() -> None:
    # Streamed, so memory stays small. Only the generator's own CPU time is measured:
    # wall time would also count serialising here and other processes on the machine.
    generator = iter_corpus(100_000, seed=0)
    elapsed = 0.0
    count = total = 0
    while True:
        started = time.process_time()
        record = next(generator, None)
        elapsed += time.process_time() - started
        if record is None:
            break
        count += 1
        total += len(json.dumps(record))
    assert count == 100_000
    assert total / count <= BUDGET_BYTES
    assert elapsed < 60


# -- incremental, malformed, v1 -------------------------------------------------------
def test_mutate_records_changes_one_percent(records: list[dict[str, Any]]) -> None:
    changed = mutate_records(records, 0.01, seed=3)
    assert len(changed) == N // 100
    again = generate_corpus(N, seed=SEED)
    picked = {r["_id"] for r in changed}
    assert [r for r in records if r["_id"] in picked] == [r for r in again if r["_id"] in picked]  # untouched
    assert json.dumps(changed) == json.dumps(mutate_records(records, 0.01, seed=3))
    latest = max(r["_last_modified"] for r in records)
    by_id = {r["_id"]: r for r in records}
    for record in changed:
        original = by_id[record["_id"]]
        assert record["_last_modified"] > latest
        assert record["name"] == original["name"]
        assert {**record, "_last_modified": None} != {**original, "_last_modified": None}
    assert len({r["_last_modified"] for r in changed}) == len(changed)


def test_malformed_records_are_damaged_but_serialisable(tmp_path: Path) -> None:
    damaged = malformed_records(len(MALFORMED_KINDS) + 5, seed=2)
    assert {r["_damage"] for r in damaged} == set(MALFORMED_KINDS)
    assert sum(len(json.dumps(r)) > 1_000_000 for r in damaged) <= 3
    for record in damaged:
        assert isinstance(record["_id"], str) and isinstance(record["name"], str)
        datetime.fromisoformat(record["_last_modified"])
        assert json.loads(json.dumps(record)) == record
    assert any(not isinstance(r.get("data_description"), dict) for r in damaged)
    path = tmp_path / "bad.jsonl"
    write_jsonl(damaged, path)
    path.read_bytes().decode("utf-8")  # valid UTF-8 even with lone surrogates
    assert read_jsonl(path) == damaged
    assert json.dumps(damaged) == json.dumps(malformed_records(len(MALFORMED_KINDS) + 5, seed=2))


def test_v1_records_and_upgrade_status(records: list[dict[str, Any]]) -> None:
    v1 = v1_records(records, 40, seed=1)
    assert len(v1) == 40
    v2_ids = {r["_id"] for r in records}
    assert all(r["_id"] not in v2_ids for r in v1)
    assert all({"name", "data_level", "project_name"} <= set(r["data_description"]) for r in v1)
    assert all("subject_id" in r["subject"] for r in v1)
    status = sources.metadata_upgrade_status(records, v1, seed=1)
    assert list(status.columns) == [
        "v1_id",
        "v2_id",
        "upgrader_version",
        "status",
        "last_modified",
        "upgrade_datetime",
    ]
    assert list(status["v1_id"]) == [r["_id"] for r in v1]
    assert status["upgrader_version"].nunique() == 1
    assert set(status["status"]) == {"success", "failed", "skipped"}
    assert (status["v2_id"].notna() == (status["status"] == "success")).all()
    assert set(status["v2_id"].dropna()) <= v2_ids


# -- the non-DocDB sources ------------------------------------------------------------
def test_spim_source_objects(records: list[dict[str, Any]]) -> None:
    objects = sources.spim_source_objects(records, seed=1)
    stitched = [
        r for r in records if "SPIM" in modalities(r) and level(r) == "derived" and "stitched" in r["name"]
    ]
    channel_keys = [
        k for k in objects if "/image_cell_segmentation/" in k and k.endswith("/neuroglancer_config.json")
    ]
    channels = {k.split("/")[2] for k in channel_keys}
    assert channels <= set(sources.SPIM_CHANNELS) and len(channels) >= 3
    assert {k.split("/")[0] for k in channel_keys} <= {r["name"] for r in stitched}
    configs = {
        k: json.loads(v)
        for k, v in objects.items()
        if k.endswith("/SPIM/derivatives/neuroglancer_config.json")
    }
    links = [c.get("ng_link") for c in configs.values()]
    assert any(link and "/SPIM/derivatives/" in link for link in links)
    assert any(link and "/SPIM/derivatives/" not in link for link in links)
    assert any(link is None for link in links)
    assert any(k.endswith("/neuroglancer.json") for k in objects)
    assert any(k.endswith("/process_output.json") for k in objects)
    assert sources.spim_source_objects(records, seed=1) == objects
    assert sources.spim_source_objects(list(reversed(records)), seed=1) == objects


def test_trainer_state_objects(records: list[dict[str, Any]]) -> None:
    objects = sources.trainer_state_objects(records, seed=1)
    keys = list(objects)
    assert any("/behavior/trainer_state/" in k for k in keys)
    assert any("/behavior/Logs/.launcher/TrainerState_" in k for k in keys)
    open_keys = {r["location"].removeprefix("s3://aind-open-data/") for r in records}
    assert all(k.split("/behavior/")[0] in open_keys for k in keys)
    parsed = []
    for key, body in objects.items():
        if key.endswith(".json"):
            try:
                parsed.append(json.loads(body))
            except json.JSONDecodeError:
                continue
    assert len(parsed) > 0.95 * sum(k.endswith(".json") for k in keys)
    with_curriculum = [p for p in parsed if p["curriculum"]]
    assert any(isinstance(p["curriculum"]["graph"]["nodes"], dict) for p in with_curriculum)
    assert any(isinstance(p["curriculum"]["graph"]["nodes"], list) for p in with_curriculum)
    assert any(p["curriculum"] is None for p in parsed)

    def node_names(state: dict[str, Any]) -> set[str]:
        nodes = state["curriculum"]["graph"]["nodes"]
        entries = nodes.values() if isinstance(nodes, dict) else (node for _, node in nodes)
        return {n["name"] for n in entries}

    assert any(p["stage"]["name"] not in node_names(p) for p in with_curriculum)
    assert sum(p["stage"]["name"] in node_names(p) for p in with_curriculum) > 0.8 * len(with_curriculum)


def test_foraging_sessions_pickle(records: list[dict[str, Any]]) -> None:
    frame = pd.read_pickle(io.BytesIO(sources.foraging_sessions_pickle(records, seed=1)))
    assert list(frame.index.names) == ["subject_id", "session_date", "session", "nwb_suffix"]
    assert set(sources.FORAGING_COLUMNS) == set(frame.columns)
    assert len(frame) > 100
    dynamic_subjects = {
        r["data_description"]["subject_id"]
        for r in records
        if level(r) == "raw"
        and re.match(
            r"(Uncoupled|Coupled)( Without)? Baiting",
            str((r.get("acquisition") or {}).get("acquisition_type")),
        )
    }
    assert dynamic_subjects & set(frame.index.get_level_values("subject_id"))
    assert frame[("session_stats", "total_trials")].dtype == "int64"
    assert frame[("metadata", "user_name")].isna().any()


def test_write_sources_puts_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    small = generate_corpus(400, seed=4)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-west-2")
        counts = sources.write_sources(s3, small, seed=4)
        expected = len(sources.spim_source_objects(small, seed=4)) + len(
            sources.trainer_state_objects(small, seed=4)
        )
        assert counts == {"aind-open-data": expected, "aind-behavior-data": 1}
        listed = s3.list_objects_v2(Bucket="aind-open-data")["KeyCount"]
        assert listed == min(expected, 1000)
        body = s3.get_object(Bucket="aind-behavior-data", Key=sources.FORAGING_SESSIONS_KEY)["Body"].read()
        assert len(pd.read_pickle(io.BytesIO(body))) > 0
        sources.write_sources(s3, small, seed=4)  # buckets already there: fine


# -- files and CLI --------------------------------------------------------------------
def test_jsonl_round_trip_and_cli(tmp_path: Path) -> None:
    small = generate_corpus(50, seed=1)
    path = tmp_path / "records.jsonl"
    assert write_jsonl(small, path) == 50
    assert read_jsonl(path) == small
    out = tmp_path / "cli.jsonl"
    v1_out = tmp_path / "v1.jsonl"
    assert (
        corpus.main(["--n", "50", "--seed", "1", "--out", str(out), "--v1", "5", "--v1-out", str(v1_out)])
        == 0
    )
    assert read_jsonl(out) == small
    assert len(read_jsonl(v1_out)) == 5
