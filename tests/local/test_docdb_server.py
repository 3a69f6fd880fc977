"""The local DocDB REST stand-in, exercised through real HTTP with the real client.

Every API test goes ``MetadataDbClient`` -> ``build_session(plain_http=True)`` ->
``DocDBServer``, i.e. the exact path the sync code takes in the local stack. The
``mongo`` unit tests at the end pin down the query semantics the server relies on.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from aind_data_access_api.document_db import MetadataDbClient

from bdc_local import mongo
from bdc_local.corpus import real_fixtures_dir
from bdc_local.docdb_server import DocDBServer, load_jsonl
from bdc_sync.docdb_session import CountingRetry, PlainHTTPAdapter, build_session

REPO = Path(__file__).resolve().parents[2]
FIXTURES = real_fixtures_dir()
FIXTURE_NAMES = ("vr_foraging_raw", "vr_foraging_derived", "pophys_derived", "fib_derived")


@pytest.fixture(scope="module")
def fixture_records() -> list[dict[str, Any]]:
    return [json.loads((FIXTURES / f"{name}.json").read_text()) for name in FIXTURE_NAMES]


@pytest.fixture
def server(fixture_records: list[dict[str, Any]]) -> Iterator[DocDBServer]:
    # A deep copy per test: tests upsert/delete, and the server keeps records as given.
    with DocDBServer(copy.deepcopy(fixture_records)) as running:
        yield running


def make_client(server: DocDBServer, version: str = "v2", **session_options: Any) -> MetadataDbClient:
    options: dict[str, Any] = {"backoff_factor": 0.001, "backoff_max": 0.01, "jitter": 0.0}
    options.update(session_options)
    return MetadataDbClient(
        host=server.host, version=version, session=build_session(plain_http=True, **options)
    )


@pytest.fixture
def client(server: DocDBServer) -> Iterator[MetadataDbClient]:
    with make_client(server) as running:
        yield running


def small_records(n: int) -> list[dict[str, Any]]:
    return [
        {
            "_id": f"id-{i:05d}",
            "name": f"asset_{i:05d}",
            "subject": {"subject_id": str(600000 + i % 37)},
            "data_description": {"modalities": [{"abbreviation": "ecephys" if i % 3 else "fib"}]},
            "payload": "x" * (i % 50),
        }
        for i in range(n)
    ]


# --------------------------------------------------------------------------------------
# find
# --------------------------------------------------------------------------------------
def test_find_with_filter_and_projection(client: MetadataDbClient) -> None:
    records = client.retrieve_docdb_records(
        filter_query={"data_description.modalities.abbreviation": "fib"},
        projection={"name": 1, "data_description.source_data": 1},
    )
    assert records == [
        {
            "_id": "1750a84b-f873-4845-bd21-13b6520235fb",
            "name": "808054_2026-04-16_19-38-24_processed_2026-04-17_15-47-55",
            "data_description": {"source_data": ["808054_2026-04-16_19-38-24"]},
        }
    ]


def test_find_exclusion_projection_sort_and_limit(client: MetadataDbClient) -> None:
    records = client.retrieve_docdb_records(
        filter_query={"subject.subject_id": "828418"},
        projection={"_id": 0, "name": 1},
        sort={"name": -1},
    )
    assert records == [
        {"name": "828418_2026-02-13_18-31-13_processed_2026-02-14_12-44-45"},
        {"name": "828418_2026-02-13_18-31-13"},
    ]
    limited = client.retrieve_docdb_records(projection={"name": 1}, sort={"name": 1}, limit=2)
    assert [r["name"] for r in limited] == [
        "808054_2026-04-16_19-38-24_processed_2026-04-17_15-47-55",
        "828418_2026-02-13_18-31-13",
    ]
    full = client.retrieve_docdb_records(filter_query={"name": "828418_2026-02-13_18-31-13"},
                                         projection={"instrument": 0})
    assert len(full) == 1 and "instrument" not in full[0] and "acquisition" in full[0]


def test_find_without_filter_returns_insertion_order(
    client: MetadataDbClient, fixture_records: list[dict[str, Any]]
) -> None:
    records = client.retrieve_docdb_records()
    assert records == fixture_records


def test_pagination_under_tiny_payload_limit_returns_every_record_once(
    server: DocDBServer, client: MetadataDbClient, fixture_records: list[dict[str, Any]]
) -> None:
    server.configure(payload_limit_bytes=1_000)  # smaller than any one record
    server.reset_stats()
    records = client.retrieve_docdb_records(filter_query={})
    assert [r["_id"] for r in records] == [r["_id"] for r in fixture_records]
    assert records == fixture_records
    # One record per page, then the empty page that ends the client's loop.
    assert server.stats()["requests_by_endpoint"]["find"] == len(fixture_records) + 1


def test_pagination_of_many_records_with_filter_and_sort() -> None:
    corpus = small_records(600)
    with DocDBServer(corpus, payload_limit_bytes=1_000) as server, make_client(server) as client:
        records = client.retrieve_docdb_records(
            filter_query={"data_description.modalities.abbreviation": "ecephys"},
            projection={"name": 1},
            sort={"subject.subject_id": 1, "name": -1},
        )
        expected = mongo.sort_records(
            [r for r in corpus if r["data_description"]["modalities"][0]["abbreviation"] == "ecephys"],
            {"subject.subject_id": 1, "name": -1},
        )
        assert [r["_id"] for r in records] == [r["_id"] for r in expected]
        assert len({r["_id"] for r in records}) == 400
        stats = server.stats()
        # Pages were cut by the payload limit (several records each, fewer than asked).
        assert 10 < stats["requests_by_endpoint"]["find"] < 400
        assert stats["records_returned"] == 400


def test_find_limit_is_respected_across_short_pages() -> None:
    with DocDBServer(small_records(100), payload_limit_bytes=500) as server, make_client(server) as client:
        records = client.retrieve_docdb_records(limit=25)
        assert [r["_id"] for r in records] == [f"id-{i:05d}" for i in range(25)]


# --------------------------------------------------------------------------------------
# aggregate, fetch_records_by_filter_list, count_documents
# --------------------------------------------------------------------------------------
def test_aggregate_match_unwind_group_project(client: MetadataDbClient) -> None:
    pipeline = [
        {"$match": {"data_description.data_level": {"$in": ["raw", "derived"]}}},
        {"$project": {"name": 1, "modality": "$data_description.modalities.abbreviation"}},
        {"$unwind": "$modality"},
        {"$group": {"_id": "$modality", "n": {"$sum": 1}, "names": {"$addToSet": "$name"}}},
        {"$sort": {"n": -1, "_id": 1}},
    ]
    result = client.aggregate_docdb_records(pipeline)
    assert [(g["_id"], g["n"]) for g in result] == [
        ("behavior", 2),
        ("behavior-videos", 2),
        ("fib", 1),
        ("pophys", 1),
    ]
    assert sorted(result[0]["names"]) == [
        "828418_2026-02-13_18-31-13",
        "828418_2026-02-13_18-31-13_processed_2026-02-14_12-44-45",
    ]


def test_aggregate_count_replace_root_and_limits(client: MetadataDbClient) -> None:
    assert client.aggregate_docdb_records(
        [{"$match": {"data_description.source_data": {"$ne": None}}}, {"$count": "derived"}]
    ) == [{"derived": 3}]
    roots = client.aggregate_docdb_records(
        [
            {"$sort": {"_created": 1}},
            {"$skip": 1},
            {"$limit": 2},
            {"$replaceRoot": {"newRoot": "$subject"}},
            {"$project": {"_id": 0, "subject_id": 1}},
        ]
    )
    assert roots == [{"subject_id": "828418"}, {"subject_id": "828418"}]


def test_fetch_records_by_filter_list_uses_id_in(client: MetadataDbClient) -> None:
    ids = ["c9888108-f413-41cc-9a1d-418937a04410", "nope", "ad668ba9-326a-4b5d-abc1-63ddefaf0a41"]
    records = client.fetch_records_by_filter_list("_id", ids, projection={"name": 1, "_id": 1})
    # Natural (insertion) order, not the order of the ids.
    assert records == [
        {"_id": "ad668ba9-326a-4b5d-abc1-63ddefaf0a41", "name": "828418_2026-02-13_18-31-13"},
        {
            "_id": "c9888108-f413-41cc-9a1d-418937a04410",
            "name": "multiplane-ophys_692478_2023-09-29_08-53-45_processed_2025-04-22_20-50-47",
        },
    ]
    by_subject = client.fetch_records_by_filter_list("subject.subject_id", ["828418"], {"name": 1})
    assert len(by_subject) == 2


def test_count_documents(client: MetadataDbClient) -> None:
    assert client._count_records() == {"total_record_count": 4, "filtered_record_count": 4}
    assert client._count_records({"data_description.data_level": "derived"}) == {
        "total_record_count": 4,
        "filtered_record_count": 3,
    }
    assert client._count_records({"name": {"$regex": "^828418_", "$options": "i"}})[
        "filtered_record_count"
    ] == 2


def test_v1_corpus_is_separate(fixture_records: list[dict[str, Any]]) -> None:
    v1 = [{"_id": "old-1", "name": "legacy"}]
    with DocDBServer(copy.deepcopy(fixture_records), v1) as server:
        with make_client(server, "v1") as client_v1:
            assert client_v1.retrieve_docdb_records() == v1
        with make_client(server, "v2") as client_v2:
            assert client_v2._count_records()["total_record_count"] == 4
    with DocDBServer(copy.deepcopy(fixture_records)) as server, make_client(server, "v1") as client:
        assert client.retrieve_docdb_records() == []


def test_aggregate_over_payload_limit_is_413(server: DocDBServer, client: MetadataDbClient) -> None:
    server.configure(payload_limit_bytes=10_000)
    with pytest.raises(requests.HTTPError) as caught:
        client.aggregate_docdb_records([{"$match": {}}])
    assert caught.value.response.status_code == 413
    assert client.aggregate_docdb_records([{"$project": {"name": 1}}])  # small results are fine


def test_url_length_limit_like_api_gateway(server: DocDBServer, client: MetadataDbClient) -> None:
    ids = [f"{i:08d}-0000-0000-0000-000000000000" for i in range(300)]
    server.configure(max_url_bytes=None)
    assert client.retrieve_docdb_records({"_id": {"$in": ids}}) == []  # without the limit
    server.configure(max_url_bytes=10_240)  # the default
    with pytest.raises(requests.HTTPError) as caught:
        client.retrieve_docdb_records({"_id": {"$in": ids}})
    assert caught.value.response.status_code == 414
    # The same lookup as an aggregate sends the ids in the body and is unaffected.
    assert client.fetch_records_by_filter_list("_id", ids) == []


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------
def test_protocol_errors(server: DocDBServer) -> None:
    base = f"{server.url}/v2/metadata_index/data_assets"
    unknown = requests.get(f"{server.url}/v2/metadata_index/other/find", timeout=5)
    assert unknown.status_code == 404 and "message" in unknown.json()
    assert requests.get(f"{server.url}/v3/metadata_index/data_assets/find", timeout=5).status_code == 404
    bad_json = requests.get(f"{base}/find", params={"filter": "{not json"}, timeout=5)
    assert bad_json.status_code == 400 and "filter" in bad_json.json()["message"]
    bad_limit = requests.get(f"{base}/find", params={"limit": "ten"}, timeout=5)
    assert bad_limit.status_code == 400
    bad_operator = requests.get(f"{base}/find", params={"filter": json.dumps({"a": {"$near": 1}})}, timeout=5)
    assert bad_operator.status_code == 400 and "$near" in bad_operator.json()["message"]
    bad_stage = requests.post(f"{base}/aggregate", json=[{"$lookup": {}}], timeout=5)
    assert bad_stage.status_code == 400 and "$lookup" in bad_stage.json()["message"]
    bad_body = requests.post(f"{base}/aggregate", data=b"[{", timeout=5)
    assert bad_body.status_code == 400
    assert requests.post(f"{base}/find", timeout=5).status_code == 405


def test_routes(server: DocDBServer) -> None:
    base = f"{server.url}/v2/metadata_index/data_assets"
    assert requests.get(f"{base}/count_documents/", timeout=5).status_code == 200  # outer slashes
    doubled = requests.get(f"{server.url}/v2/metadata_index//data_assets/find", timeout=5)
    assert doubled.status_code == 404
    assert doubled.json() == {"message": "Not Found: /v2/metadata_index//data_assets/find"}
    # The version is checked before the method.
    unknown_version = requests.post(f"{server.url}/v3/metadata_index/data_assets/find", timeout=5)
    assert unknown_version.status_code == 404
    assert unknown_version.json() == {"message": "unknown API version: v3"}
    wrong_method = requests.get(f"{base}/aggregate", timeout=5)
    assert wrong_method.status_code == 405 and wrong_method.headers["Allow"] == "POST"
    assert wrong_method.json() == {"message": "GET not allowed on aggregate"}
    assert requests.head(f"{base}/find", timeout=5).status_code == 501  # no HEAD, as before
    by_endpoint = server.stats()["requests_by_endpoint"]
    assert by_endpoint == {"find": 1, "aggregate": 1, "count_documents": 1, "other": 1}
    admin = f"{server.url}/_admin"
    wrong_admin_method = requests.post(f"{admin}/health", timeout=5)
    assert wrong_admin_method.json() == {"message": "POST not allowed on /_admin/health"}
    unknown_admin = requests.get(f"{admin}/health/", timeout=5)
    assert unknown_admin.json() == {"message": "unknown admin endpoint: health/"}
    assert requests.get(f"{admin}/upsert", timeout=5).status_code == 405


def test_gateway_routes_answer_403_missing_authentication_token() -> None:
    with DocDBServer([], profile="gateway", settings={"latency_ms": 0.0, "per_mb_ms": 0.0}) as gateway:
        base = f"{gateway.url}/v2/metadata_index/data_assets"
        for method, url in [
            ("GET", f"{gateway.url}/v2/metadata_index/other/find"),
            ("GET", f"{gateway.url}/v3/metadata_index/data_assets/find"),
            ("POST", f"{base}/find"),
            ("GET", f"{base}/aggregate"),
        ]:
            answer = requests.request(method, url, timeout=5)
            assert answer.status_code == 403
            assert answer.content == b'{"message":"Missing Authentication Token"}'
            assert "Allow" not in answer.headers
        assert requests.get(f"{base}/count_documents", timeout=5).status_code == 200


def test_client_surfaces_bad_request(client: MetadataDbClient) -> None:
    with pytest.raises(requests.HTTPError) as caught:
        client.aggregate_docdb_records([{"$bogus": 1}])
    assert caught.value.response.status_code == 400
    assert client.session.request_counter.retries == 0  # 4xx other than 429 is not retried


# --------------------------------------------------------------------------------------
# Faults, retries, latency
# --------------------------------------------------------------------------------------
def test_faults_at_half_rate_are_retried_transparently(
    fixture_records: list[dict[str, Any]],
) -> None:
    with DocDBServer(copy.deepcopy(fixture_records), fault_rate=0.5, seed=3) as server:
        with make_client(server, total_retries=12) as client:
            names = {r["name"] for r in fixture_records}
            for _ in range(5):
                records = client.retrieve_docdb_records(projection={"name": 1})
                assert {r["name"] for r in records} == names
                assert len(client.fetch_records_by_filter_list("_id", [r["_id"] for r in records])) == 4
                assert client._count_records()["filtered_record_count"] == 4
            stats = server.stats()
            counter = client.session.request_counter
            assert stats["faults_injected"] > 10
            assert {"429", "503"} <= set(stats["responses_by_status"])
            # Every fault was retried inside urllib3 and never reached the client.
            assert counter.retries == stats["faults_injected"]
            assert counter.by_status == {200: counter.responses}
            assert counter.attempts == stats["requests_total"]


def test_fault_sequence_is_deterministic_for_a_seed(fixture_records: list[dict[str, Any]]) -> None:
    def statuses(seed: int) -> list[int]:
        with DocDBServer(fixture_records, fault_rate=0.5, seed=seed) as server:
            url = f"{server.url}/v2/metadata_index/data_assets/count_documents"
            with requests.Session() as plain:
                return [plain.get(url, timeout=5).status_code for _ in range(20)]

    assert statuses(11) == statuses(11)
    assert set(statuses(11)) == {200, 429, 503}


def test_down_raises_http_error_after_bounded_retries(server: DocDBServer) -> None:
    server.configure(down=True)
    with make_client(server, total_retries=3) as client:
        started = time.monotonic()
        with pytest.raises(requests.HTTPError) as caught:
            client.retrieve_docdb_records()
        assert caught.value.response.status_code == 503
        assert time.monotonic() - started < 5
        assert server.stats()["requests_total"] == 4  # the first attempt and 3 retries
        assert client.session.request_counter.snapshot()["retries_by_status"] == {"503": 3}
    server.configure(down=False)
    with make_client(server) as client:
        assert len(client.retrieve_docdb_records(projection={"_id": 1})) == 4


def test_retry_after_is_honoured_for_429(server: DocDBServer) -> None:
    server.configure(fault_rate=1.0, fault_statuses=[429])
    with make_client(server, total_retries=2) as client:
        with pytest.raises(requests.HTTPError) as caught:
            client._count_records()
    assert caught.value.response.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "0"


def test_latency_injection(server: DocDBServer, client: MetadataDbClient) -> None:
    server.configure(latency_ms=40, per_record_ms=10)
    server.reset_stats()
    started = time.monotonic()
    client.retrieve_docdb_records(projection={"name": 1}, limit=4)
    elapsed = time.monotonic() - started
    # One request: 40 ms + 4 records x 10 ms.
    assert elapsed >= 0.08
    stats = server.stats()
    assert stats["injected_latency_seconds"] == pytest.approx(0.08, abs=1e-6)
    assert stats["processing_seconds"] < elapsed


def test_build_session_configuration() -> None:
    session = build_session(total_retries=4, backoff_factor=0.25, backoff_max=3.0, jitter=0.2)
    adapter = session.get_adapter("https://api.example.org/v2/x")
    retry = adapter.max_retries
    assert isinstance(retry, CountingRetry)
    assert retry.total == 4 and retry.backoff_factor == 0.25 and retry.backoff_max == 3.0
    assert retry.backoff_jitter == 0.2 and retry.raise_on_status is False
    assert set(retry.status_forcelist) == {429, 500, 502, 503, 504}
    assert {"GET", "POST"} <= set(retry.allowed_methods)
    assert retry.counter is session.request_counter
    # A huge Retry-After is capped at backoff_max so a throttled Lambda does not stall.
    assert retry.parse_retry_after("3600") == 3.0
    assert not isinstance(adapter, PlainHTTPAdapter)
    assert isinstance(build_session(plain_http=True).get_adapter("https://h/x"), PlainHTTPAdapter)


def test_plain_http_adapter_rewrites_only_the_scheme(server: DocDBServer) -> None:
    session = build_session(plain_http=True)
    url = f"https://{server.host}/v2/metadata_index/data_assets/count_documents"
    response = session.get(url, params={"filter": json.dumps({"name": "x"})})
    assert response.status_code == 200
    assert response.url.startswith(f"http://{server.host}/v2/metadata_index/data_assets/count_documents?")
    snapshot = session.request_counter.snapshot()
    assert snapshot["responses"] == 1 and snapshot["by_status"] == {"200": 1}
    assert snapshot["bytes_received"] == len(response.content)
    session.request_counter.reset()
    assert session.request_counter.attempts == 0


# --------------------------------------------------------------------------------------
# Admin endpoints
# --------------------------------------------------------------------------------------
def test_admin_upsert_delete_and_stats_over_http(server: DocDBServer, client: MetadataDbClient) -> None:
    admin = f"{server.url}/_admin"
    raw_id = "ad668ba9-326a-4b5d-abc1-63ddefaf0a41"
    replaced = {"_id": raw_id, "name": "renamed_raw", "subject": {"subject_id": "999999"}}
    added = {"_id": "new-1", "name": "brand_new", "subject": {"subject_id": "828418"}}
    response = requests.post(f"{admin}/upsert", params={"version": "v2"}, json=[replaced, added], timeout=5)
    assert response.json() == {"inserted": 1, "replaced": 1, "total": 5}

    # Indexes follow the change: old name and subject are gone, new ones answer.
    assert client.retrieve_docdb_records({"name": "828418_2026-02-13_18-31-13"}) == []
    assert client.retrieve_docdb_records({"name": "renamed_raw"}) == [replaced]
    assert [r["_id"] for r in client.retrieve_docdb_records({"subject.subject_id": {"$in": ["828418"]}})] == [
        "3b3cad8f-774b-42a1-bdce-a84269078db2",
        "new-1",
    ]
    # A replaced record keeps its position; a new one is appended.
    assert [r["_id"] for r in client.retrieve_docdb_records(projection={"_id": 1})] == [
        raw_id,
        "3b3cad8f-774b-42a1-bdce-a84269078db2",
        "c9888108-f413-41cc-9a1d-418937a04410",
        "1750a84b-f873-4845-bd21-13b6520235fb",
        "new-1",
    ]

    response = requests.post(f"{admin}/delete", params={"version": "v2"}, json=[raw_id, "missing"], timeout=5)
    assert response.json() == {"deleted": 1, "total": 4}
    assert client.fetch_records_by_filter_list("_id", [raw_id]) == []
    assert client._count_records()["total_record_count"] == 4

    requests.post(f"{admin}/reset_stats", timeout=5).raise_for_status()
    client.retrieve_docdb_records(projection={"name": 1})
    client.aggregate_docdb_records([{"$count": "n"}])
    client._count_records()
    stats = requests.get(f"{admin}/stats", timeout=5).json()
    assert stats["requests_total"] == 4
    assert stats["requests_by_endpoint"] == {"find": 2, "aggregate": 1, "count_documents": 1, "other": 0}
    assert stats["records_returned"] == 4 + 1
    assert stats["response_bytes"] > 0 and stats["faults_injected"] == 0
    assert stats["processing_seconds"] > 0
    counter = client.session.request_counter.snapshot()
    assert counter["bytes_received"] >= stats["response_bytes"]


def test_admin_config_and_errors(server: DocDBServer) -> None:
    admin = f"{server.url}/_admin"
    config = requests.post(f"{admin}/config", json={"latency_ms": 5, "fault_statuses": [503]}, timeout=5)
    assert config.status_code == 200
    assert config.json()["latency_ms"] == 5 and config.json()["fault_statuses"] == [503]
    assert requests.get(f"{admin}/config", timeout=5).json() == server.config()
    assert requests.post(f"{admin}/config", json={"bogus": 1}, timeout=5).status_code == 400
    assert requests.post(f"{admin}/config", json={"fault_rate": 2}, timeout=5).status_code == 400
    assert requests.post(f"{admin}/upsert", params={"version": "v9"}, json=[], timeout=5).status_code == 400
    assert requests.get(f"{admin}/nope", timeout=5).status_code == 404
    assert requests.get(f"{admin}/health", timeout=5).json() == {"ok": True, "records": {"v1": 0, "v2": 4}}
    # Admin traffic is not counted as API traffic.
    assert server.stats()["requests_total"] == 0


def test_python_admin_methods(server: DocDBServer) -> None:
    assert server.upsert([{"name": "no id yet"}]) == {"inserted": 1, "replaced": 0, "total": 5}
    generated = server.records()[-1]
    assert isinstance(generated["_id"], str) and generated["name"] == "no id yet"
    assert server.delete([generated["_id"]]) == {"deleted": 1, "total": 4}
    with pytest.raises(ValueError, match="unknown config option"):
        server.configure(nonsense=True)


# --------------------------------------------------------------------------------------
# Command line (how the local stack starts it)
# --------------------------------------------------------------------------------------
def test_command_line_server(tmp_path: Path, fixture_records: list[dict[str, Any]]) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in fixture_records))
    assert load_jsonl(corpus) == fixture_records
    port_file = tmp_path / "port"
    env_path = f"{REPO / 'local'}:{REPO / 'layers' / 'sync'}"
    process = subprocess.Popen(
        [sys.executable, "-m", "bdc_local.docdb_server", "--corpus", str(corpus), "--port", "0",
         "--port-file", str(port_file), "--latency-ms", "1", "--log-level", "WARNING"],
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "server did not write its port file"
            time.sleep(0.05)
        port = int(port_file.read_text())
        health = requests.get(f"http://127.0.0.1:{port}/_admin/health", timeout=5).json()
        assert health["records"] == {"v1": 0, "v2": 4}
        client = MetadataDbClient(
            host=f"127.0.0.1:{port}", version="v2", session=build_session(plain_http=True)
        )
        assert len(client.retrieve_docdb_records(projection={"name": 1})) == 4
        assert requests.get(f"http://127.0.0.1:{port}/_admin/config", timeout=5).json()["latency_ms"] == 1
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


# --------------------------------------------------------------------------------------
# mongo.py semantics
# --------------------------------------------------------------------------------------
DOC: dict[str, Any] = {
    "_id": "a",
    "name": "Mouse_Session",
    "n": 5,
    "flag": True,
    "nothing": None,
    "tags": ["x", "y"],
    "modalities": [{"abbreviation": "fib", "name": "Fiber"}, {"abbreviation": "behavior"}],
    "subject": {"subject_id": "123", "genotype": "wt"},
    "metrics": [{"name": "m1", "value": 3}, {"name": "m2", "value": 8}],
    "matrix": [[1, 2], [3]],
}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"modalities.abbreviation": "fib"}, True),
        ({"modalities.abbreviation": "pophys"}, False),
        ({"modalities.name": None}, True),  # one element lacks "name"
        ({"modalities.0.abbreviation": "fib"}, True),
        ({"modalities.1.abbreviation": "fib"}, False),
        ({"tags": "x"}, True),  # equality against a list containing the value
        ({"tags": ["x", "y"]}, True),
        ({"tags": ["y", "x"]}, False),
        ({"subject": {"subject_id": "123", "genotype": "wt"}}, True),
        ({"subject.subject_id": {"$in": ["1", "123"]}}, True),
        ({"tags": {"$in": ["z", "y"]}}, True),
        ({"tags": {"$nin": ["z", "y"]}}, False),
        ({"missing": {"$exists": False}}, True),
        ({"nothing": {"$exists": True}}, True),
        ({"modalities.name": {"$exists": True}}, True),
        ({"modalities.other": {"$exists": True}}, False),
        ({"nothing": None}, True),
        ({"missing": None}, True),
        ({"n": None}, False),
        ({"nothing": {"$ne": None}}, False),
        ({"missing": {"$ne": None}}, False),
        ({"n": {"$ne": None}}, True),
        ({"missing": {"$in": [None, 1]}}, True),
        ({"n": {"$gt": 4, "$lte": 5}}, True),
        ({"n": {"$gt": "4"}}, False),  # no comparison across types
        ({"name": {"$lt": "N"}}, True),
        ({"metrics.value": {"$gte": 8}}, True),
        ({"flag": 1}, False),  # booleans are not numbers
        ({"flag": True}, True),
        ({"n": 5.0}, True),
        ({"metrics": {"$elemMatch": {"name": "m1", "value": {"$gt": 5}}}}, False),
        ({"metrics": {"$elemMatch": {"name": "m2", "value": {"$gt": 5}}}}, True),
        ({"tags": {"$elemMatch": {"$regex": "^y"}}}, True),
        ({"metrics": {"$size": 2}}, True),
        ({"tags": {"$size": 1}}, False),
        ({"name": {"$regex": "^mouse"}}, False),
        ({"name": {"$regex": "^mouse", "$options": "i"}}, True),
        ({"tags": {"$regex": "Y", "$options": "i"}}, True),
        ({"name": {"$not": {"$regex": "^mouse", "$options": "i"}}}, False),
        ({"n": {"$not": {"$gt": 10}}}, True),
        ({"$or": [{"n": 1}, {"tags": "y"}]}, True),
        ({"$and": [{"n": 5}, {"tags": "q"}]}, False),
        ({"$nor": [{"n": 1}, {"tags": "q"}]}, True),
        ({"tags": {"$all": ["y", "x"]}}, True),
        ({"matrix": [3]}, True),
        ({"n": {"$type": "number"}}, True),
        ({}, True),
    ],
)
def test_matches(query: dict[str, Any], expected: bool) -> None:
    assert mongo.matches(DOC, query) is expected


@pytest.mark.parametrize(
    "query",
    [
        {"$where": "1"},
        {"$not": {"n": 1}},
        {"n": {"$near": 1}},
        {"n": {"$regex": "("}},
        {"n": {"$options": "i"}},
        {"$or": []},
    ],
)
def test_bad_filters_raise_value_error(query: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        mongo.matches(DOC, query)


def test_projection() -> None:
    assert mongo.project(DOC, {"modalities.abbreviation": 1, "subject.subject_id": 1}) == {
        "_id": "a",
        "modalities": [{"abbreviation": "fib"}, {"abbreviation": "behavior"}],
        "subject": {"subject_id": "123"},
    }
    assert mongo.project(DOC, {"modalities.name": 1, "_id": 0}) == {
        "modalities": [{"name": "Fiber"}, {}]
    }
    assert mongo.project(DOC, {"name": 1, "missing.deep": 1}) == {"_id": "a", "name": "Mouse_Session"}
    excluded = mongo.project(DOC, {"modalities.name": 0, "metrics": 0, "matrix": 0, "tags": 0})
    assert excluded == {
        "_id": "a",
        "name": "Mouse_Session",
        "n": 5,
        "flag": True,
        "nothing": None,
        "modalities": [{"abbreviation": "fib"}, {"abbreviation": "behavior"}],
        "subject": {"subject_id": "123", "genotype": "wt"},
    }
    assert mongo.project(DOC, {"_id": 0, "subject": {"genotype": 1}}) == {"subject": {"genotype": "wt"}}
    assert mongo.project(DOC, {"sid": "$subject.subject_id", "k": {"$literal": 1}, "_id": 0}) == {
        "sid": "123",
        "k": 1,
    }
    assert "modalities" in DOC and DOC["modalities"][0]["name"] == "Fiber"  # input untouched
    with pytest.raises(ValueError, match="exclusion"):
        mongo.project(DOC, {"name": 1, "n": 0})
    with pytest.raises(ValueError, match="collision"):
        mongo.project(DOC, {"subject": 1, "subject.subject_id": 1})


def test_aggregate_stages() -> None:
    docs = [
        {"_id": 1, "g": "a", "v": 3, "items": ["p", "q"]},
        {"_id": 2, "g": "b", "v": 1, "items": []},
        {"_id": 3, "g": "a", "v": 7},
        {"_id": 4, "g": None, "v": "text", "items": "single"},
    ]
    grouped = mongo.aggregate(
        docs,
        [
            {"$group": {
                "_id": "$g",
                "total": {"$sum": "$v"},
                "count": {"$sum": 1},
                "first": {"$first": "$_id"},
                "last": {"$last": "$_id"},
                "max": {"$max": "$v"},
                "min": {"$min": "$v"},
                "all": {"$push": "$_id"},
                "distinct": {"$addToSet": "$g"},
            }},
            {"$sort": {"_id": 1}},
        ],
    )
    assert grouped == [
        {"_id": None, "total": 0, "count": 1, "first": 4, "last": 4, "max": "text", "min": "text",
         "all": [4], "distinct": [None]},
        {"_id": "a", "total": 10, "count": 2, "first": 1, "last": 3, "max": 7, "min": 3,
         "all": [1, 3], "distinct": ["a"]},
        {"_id": "b", "total": 1, "count": 1, "first": 2, "last": 2, "max": 1, "min": 1,
         "all": [2], "distinct": ["b"]},
    ]
    assert mongo.aggregate(docs, [{"$group": {"_id": None, "n": {"$sum": 1}}}]) == [{"_id": None, "n": 4}]
    assert mongo.aggregate(docs, [{"$group": {"_id": {"g": "$g", "big": "$nope"}, "n": {"$count": {}}}},
                                  {"$limit": 1}]) == [{"_id": {"g": "a"}, "n": 2}]
    unwound = mongo.aggregate(docs, [{"$unwind": "$items"}, {"$project": {"items": 1}}])
    assert unwound == [{"_id": 1, "items": "p"}, {"_id": 1, "items": "q"}, {"_id": 4, "items": "single"}]
    preserved = mongo.aggregate(
        docs,
        [{"$unwind": {"path": "$items", "preserveNullAndEmptyArrays": True, "includeArrayIndex": "i"}},
         {"$project": {"_id": 1, "items": 1, "i": 1}}],
    )
    assert preserved == [
        {"_id": 1, "items": "p", "i": 0},
        {"_id": 1, "items": "q", "i": 1},
        {"_id": 2, "i": None},
        {"_id": 3, "i": None},
        {"_id": 4, "items": "single", "i": None},
    ]
    assert mongo.aggregate(docs, [{"$match": {"v": {"$gt": 2}}}, {"$count": "n"}]) == [{"n": 2}]
    assert mongo.aggregate(docs, [{"$match": {"v": 99}}, {"$count": "n"}]) == []
    assert mongo.aggregate(docs, [{"$sort": {"v": -1}}, {"$skip": 1}, {"$limit": 2},
                                  {"$project": {"_id": 1}}]) == [{"_id": 3}, {"_id": 1}]
    assert mongo.aggregate([{"_id": 1, "s": {"x": 1}}], [{"$replaceRoot": {"newRoot": "$s"}}]) == [{"x": 1}]
    assert docs[0]["items"] == ["p", "q"]  # input untouched


@pytest.mark.parametrize(
    ("pipeline", "name"),
    [
        ([{"$lookup": {}}], "$lookup"),
        ([{"$group": {"_id": None, "x": {"$median": "$v"}}}], "$median"),
        ([{"$project": {"x": {"$dateToString": "$d"}}}], "$dateToString"),
        ([{"$replaceRoot": {"newRoot": "$v"}}], "object"),
        ([{"$limit": 0}], "limit"),
        ([{"$match": {}, "$limit": 1}], "exactly one"),
    ],
)
def test_aggregate_errors_name_the_problem(pipeline: list[dict[str, Any]], name: str) -> None:
    with pytest.raises(ValueError, match=name.replace("$", r"\$")):
        mongo.aggregate([{"_id": 1, "v": 2}], pipeline)


def test_sort_orders_mixed_types_like_mongo() -> None:
    docs = [
        {"_id": i, "v": v}
        for i, v in enumerate(["b", 2, None, True, {"a": 1}, [0, 5], 1.5, "a", False])
    ] + [{"_id": 99}]
    ascending = [d["_id"] for d in mongo.sort_records(docs, {"v": 1})]
    # null/missing < numbers (an array sorts by its smallest element) < strings < objects < booleans
    assert ascending == [2, 99, 5, 6, 1, 7, 0, 4, 8, 3]
    descending = [d["_id"] for d in mongo.sort_records(docs, [("v", -1)])]
    assert descending == [3, 8, 4, 0, 7, 5, 1, 6, 2, 99]
