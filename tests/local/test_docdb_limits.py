"""The DocDB reader against the gateway-like stand-in: oversize, timeouts, listing.

Real HTTP to an in-process ``DocDBServer`` with the ``gateway`` profile; limits are
scaled down (a 200 KB response limit, a 0.3 s integration timeout) so the records
stay small and the tests fast, but every code path is the production one.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from bdc_local.docdb_server import DocDBServer
from bdc_local.record_sizes import enlarge
from bdc_sync import docdb as docdb_module
from bdc_sync.docdb import DocDB, ListingIncomplete, UnreturnableRecords, escaped_size


def records(n: int, size: int = 20_000, seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        record = {
            "_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "name": f"asset_{i}",
            "_last_modified": f"2025-01-01T00:00:{i % 60:02d}Z",
            "acquisition": {"calibrations": []},
        }
        out.append(enlarge(record, size, rng))
    return out


@pytest.fixture
def corpus() -> list[dict[str, Any]]:
    return records(60)


def server_for(corpus: list[dict[str, Any]], seed: int = 0, **settings: Any) -> DocDBServer:
    return DocDBServer(
        corpus, profile="gateway", seed=seed, settings={"latency_ms": 0.0, "per_mb_ms": 0.0, **settings}
    )


def reader(server: DocDBServer, **kwargs: Any) -> DocDB:
    return DocDB(server.host, plain_http=True, backoff_seconds=0.01, **kwargs)


@pytest.fixture
def limited(corpus: list[dict[str, Any]]) -> Iterator[DocDBServer]:
    with server_for(corpus, payload_limit_bytes=200_000) as server:
        yield server


def test_escaped_size_counts_what_lambda_counts() -> None:
    body = b'[{"a":"x\\\\y"}]'
    assert escaped_size(body) == len(body) + 4 + 2 + 2  # 4 quotes, 2 backslashes, 2 around


def test_batches_split_on_502_and_shrink_to_what_fits(limited: DocDBServer, corpus: list[dict]) -> None:
    db = reader(limited, max_concurrency=2)
    ids = [r["_id"] for r in corpus]
    got = list(db.fetch_by_ids(ids))
    assert sorted(r["_id"] for r in got) == sorted(ids)
    stats = limited.stats()
    # The first batch (50 ids x 20 KB) is over the 200 KB envelope: 502, split; later
    # batches are sized from the bytes that came back, so few more splits follow.
    assert stats["responses_by_status"].get("502", 0) >= 1 and db.splits >= 1
    assert db.oversize_by_status[502] == stats["responses_by_status"]["502"]
    assert db.unreturnable == {}
    # The sizer learnt: the batches after the first fit (aim is half the limit).
    assert db.splits <= 8, db.report()


def test_502_of_an_aggregate_is_not_retried_by_the_session(limited: DocDBServer, corpus: list[dict]) -> None:
    db = reader(limited, max_concurrency=1)
    list(db.fetch_by_ids([r["_id"] for r in corpus[:20]]))
    session = db._local.client.session
    # urllib3 never repeated the oversized batch: the split saw the 502 at once.
    assert "502" not in session.request_counter.snapshot()["retries_by_status"]


def test_batches_split_on_504_at_the_integration_timeout(corpus: list[dict]) -> None:
    # 20 KB records at 1.5 s per MB: a batch over ~200 KB takes longer than 0.3 s.
    with server_for(corpus, integration_timeout_seconds=0.3, per_mb_ms=1500.0) as server:
        db = reader(server, max_concurrency=1)
        ids = [r["_id"] for r in corpus[:30]]
        got = list(db.fetch_by_ids(ids))
        stats = server.stats()
    assert sorted(r["_id"] for r in got) == sorted(ids)
    assert stats["timeouts"] >= 1 and stats["responses_by_status"]["504"] == stats["timeouts"]
    assert db.oversize_by_status[504] >= 1 and db.splits >= 1


def aggregate_ids(server: DocDBServer, ids: list[str]) -> requests.Response:
    return requests.post(
        f"{server.url}/v2/metadata_index/data_assets/aggregate",
        json=[{"$match": {"_id": {"$in": ids}}}],
        timeout=10,
    )


def test_the_timeout_follows_the_modelled_time_not_the_machine(corpus: list[dict]) -> None:
    # 20 KB records at 2 s a MB: one id is modelled at 0.04 s, ten at 0.4 s, with a
    # 0.2 s timeout. A stand-in held up for 0.5 s (its lock taken, as a loaded machine
    # or a huge answer next door would) still answers the one id, and the ten ids time
    # out however fast it is.
    settings = {"integration_timeout_seconds": 0.2, "per_mb_ms": 2000.0, "request_log_size": 10}
    with server_for(corpus, **settings) as server:
        ids = [r["_id"] for r in corpus[:10]]
        assert aggregate_ids(server, ids).status_code == 504
        held = threading.Event()

        def hold_the_stand_in() -> None:
            with server._data_lock:
                held.set()
                time.sleep(0.5)

        holder = threading.Thread(target=hold_the_stand_in)
        holder.start()
        held.wait()
        started = time.monotonic()
        one = aggregate_ids(server, ids[:1])
        waited = time.monotonic() - started
        holder.join()
        logged = server.requests()
    assert one.status_code == 200 and waited > 0.4 and len(one.json()) == 1
    assert [(e["status"], e["values"]) for e in logged] == [(504, ids), (200, ids[:1])]
    assert logged[0]["modelled_seconds"] > 0.2 > logged[1]["modelled_seconds"]


def test_work_after_a_504_keeps_its_place_in_flight(corpus: list[dict]) -> None:
    # Ten 20 KB records at 5 s a MB: modelled at ~1 s, answered 504 at 0.2 s; the
    # work holds the only place in flight until ~1 s, so a request at once is refused.
    settings = {"integration_timeout_seconds": 0.2, "per_mb_ms": 5000.0, "max_in_flight": 1}
    with server_for(corpus, **settings) as server:
        ids = [r["_id"] for r in corpus[:10]]
        assert aggregate_ids(server, ids).status_code == 504
        refused = aggregate_ids(server, ids[:1])
        time.sleep(1.0)
        answered = aggregate_ids(server, ids[:1])
        stats = server.stats()
    assert refused.status_code == 429 and "Retry-After" not in refused.headers
    assert answered.status_code == 200
    assert stats["timeouts"] == 1 and stats["throttled"] == 1


def test_a_record_over_the_limit_is_skipped_and_named(corpus: list[dict]) -> None:
    big = enlarge(dict(records(1, seed=9)[0]), 260_000, random.Random(3))
    near = enlarge(dict(records(1, seed=10)[0]), 150_000, random.Random(4))
    with server_for([*corpus, big, near], payload_limit_bytes=200_000) as server:
        db = reader(server, max_concurrency=2)
        ids = [r["_id"] for r in corpus] + [big["_id"], near["_id"]]
        got = {r["_id"] for r in db.fetch_by_ids(ids)}
    assert got == set(ids) - {big["_id"]}  # the large record that fits passes
    assert list(db.unreturnable) == [big["_id"]]
    assert db.unreturnable[big["_id"]].startswith("HTTP 502")


def test_many_unreturnable_records_are_an_outage_not_a_skip(corpus: list[dict]) -> None:
    with server_for(corpus, fault_rate=1.0, fault_statuses=[502]) as server:
        db = reader(server, max_concurrency=1, retries=1)
        with pytest.raises(UnreturnableRecords, match="outage"):
            list(db.fetch_by_ids([r["_id"] for r in corpus[:30]]))


def test_throttling_without_retry_after_is_retried_with_backoff(corpus: list[dict]) -> None:
    with server_for(corpus, fault_rate=0.5, fault_statuses=[429, 500], seed=3) as server:
        db = reader(server, max_concurrency=1, retries=8)
        ids = [r["_id"] for r in corpus[:10]]
        assert {r["_id"] for r in db.fetch_by_ids(ids, batch_size=1)} == set(ids)
        stats = server.stats()
    assert stats["faults_injected"] > 0
    retried = db._local.client.session.request_counter.snapshot()["retries_by_status"]
    assert sum(retried.values()) == stats["faults_injected"]


def test_load_beyond_the_cap_is_throttled_and_retried(corpus: list[dict]) -> None:
    # One request in flight at most, each taking 0.1 s: a reader with four at once is
    # refused (429, no Retry-After) and gets everything through its backoff.
    with server_for(corpus, max_in_flight=1, latency_ms=100.0) as server:
        db = reader(server, max_concurrency=4, retries=8)
        ids = [r["_id"] for r in corpus[:24]]
        assert {r["_id"] for r in db.fetch_by_ids(ids, batch_size=3)} == set(ids)
        stats = server.stats()
    assert stats["throttled"] > 0 and stats["responses_by_status"]["429"] == stats["throttled"]
    assert stats["peak_in_flight"] == 1


def test_throttled_answers_carry_no_retry_after(corpus: list[dict]) -> None:
    # The second request goes out once the stand-in counts the first in flight (not
    # after a fixed sleep, which a loaded host can outlast); the first is held 3 s.
    with server_for(corpus, max_in_flight=1, latency_ms=3000.0) as server:
        url = f"{server.url}/v2/metadata_index/data_assets/count_documents"
        slow = threading.Thread(target=requests.get, args=(url,), kwargs={"timeout": 10})
        slow.start()
        deadline = time.monotonic() + 2.0
        while server.stats()["peak_in_flight"] < 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert server.stats()["peak_in_flight"] == 1, "the first request never reached the stand-in"
        refused = requests.get(url, timeout=10)
        slow.join()
    assert refused.status_code == 429 and "Retry-After" not in refused.headers
    assert refused.json() == {"message": "Too Many Requests"}


# -- the listing ---------------------------------------------------------------------
def hook_find_pages(db: DocDB, action: Any) -> None:
    """Run ``action(page_number)`` after each listing page the reader receives."""
    db._client()
    pages = [0]

    def after(response: Any, *args: Any, **kwargs: Any) -> None:
        if "/find" in response.url:
            pages[0] += 1
            action(pages[0])

    db._local.client.session.hooks["response"].append(after)


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(docdb_module, "LISTING_PAGE", 25)


def test_a_full_listing_page_fits_the_lambda_envelope() -> None:
    # LISTING_PAGE entries of the longest usual shape (uuid ids, microsecond offsets).
    from bdc_local.docdb_server import LAMBDA_RESPONSE_LIMIT, answer_size, dumps

    entry = dumps({"_id": str(uuid.uuid4()), "_last_modified": "2025-01-10T12:34:56.123456+00:00"})
    size = answer_size([entry] * docdb_module.LISTING_PAGE, "envelope")
    assert 0.8 * LAMBDA_RESPONSE_LIMIT < size < 0.9 * LAMBDA_RESPONSE_LIMIT, size


def listing_requests(server: DocDBServer) -> tuple[int, int]:
    by_endpoint = server.stats()["requests_by_endpoint"]
    return by_endpoint["find"], by_endpoint["count_documents"]


def test_listing_is_its_pages_and_one_count(small_pages: None, corpus: list[dict]) -> None:
    with server_for(corpus) as server:
        db = reader(server)
        listing = db.list_modified()
        # 60 records in pages of 25: the short third page is the last, the count agrees.
        assert listing_requests(server) == (3, 1)
    assert listing == {r["_id"]: r["_last_modified"] for r in corpus}
    assert db.listing_retries == 0


def test_the_last_listing_size_spares_the_page_after_a_full_one(small_pages: None) -> None:
    corpus = records(50)
    with server_for(corpus) as server:
        first = reader(server).list_modified()
        # 50 records in pages of 25: only an empty third page tells that the second was the last...
        assert listing_requests(server) == (3, 1)
        server.reset_stats()
        # ...unless the last build listed 50: then two pages and the count.
        again = reader(server).list_modified(expected=50)
        assert listing_requests(server) == (2, 1)
    assert again == first == {r["_id"]: r["_last_modified"] for r in corpus}


def test_more_records_than_expected_are_paged_on_not_listed_again(small_pages: None) -> None:
    corpus = records(55)
    with server_for(corpus) as server:
        db = reader(server)
        listing = db.list_modified(expected=50)
        # Two pages reach the 50 expected; the count says 55: one more page, one more count.
        assert listing_requests(server) == (3, 2)
    assert listing == {r["_id"]: r["_last_modified"] for r in corpus}
    assert db.listing_retries == 0


def test_a_page_the_service_cut_short_is_not_taken_for_the_last(
    small_pages: None, monkeypatch: pytest.MonkeyPatch, corpus: list[dict]
) -> None:
    # The permissive stand-in answers fewer records than asked when a page would pass
    # its payload limit, as find may. A page that short and that large may be cut.
    monkeypatch.setattr(docdb_module, "LISTING_PAGE_MAX_BYTES", 1_000)
    with DocDBServer(corpus, payload_limit_bytes=1_500) as server:
        db = reader(server)
        listing = db.list_modified()
        finds, counts = listing_requests(server)
    assert listing == {r["_id"]: r["_last_modified"] for r in corpus}
    # The pages held fewer than the 25 asked (more pages than the 3 of uncut ones); only
    # the short and small last one ended the listing, so the one count agreed at once.
    assert finds > 3 and counts == 1, (finds, counts)
    assert db.listing_retries == 0


@pytest.mark.parametrize("change", ["delete_listed", "insert_before", "delete_ahead"])
def test_listing_detects_records_written_between_pages(
    small_pages: None, corpus: list[dict], change: str
) -> None:
    ordered = sorted(corpus, key=lambda r: r["_id"])
    extra = {"_id": "00000000-0000-0000-0000-000000000000", "_last_modified": "2025-02-01T00:00:00Z"}
    with server_for(corpus) as server:
        db = reader(server)

        def between_pages(page: int) -> None:
            if page != 1:
                return
            if change == "delete_listed":  # a record the first page already listed
                server.delete([ordered[3]["_id"]])
            elif change == "insert_before":  # a new record before the pages to come
                server.upsert([dict(extra)])
            else:  # a record of a page still to come: the listing is right as it is
                server.delete([ordered[-1]["_id"]])

        hook_find_pages(db, between_pages)
        listing = db.list_modified()
        final = {r["_id"]: r.get("_last_modified", "") for r in server.records()}
    assert listing == final
    assert db.listing_retries == (0 if change == "delete_ahead" else 1)


def test_listing_that_never_settles_fails_cleanly(small_pages: None, corpus: list[dict]) -> None:
    with server_for(corpus) as server:
        db = reader(server)
        victims = iter(sorted(r["_id"] for r in corpus))

        def churn(page: int) -> None:
            server.delete([next(victims)])  # every page, a listed record goes

        hook_find_pages(db, churn)
        with pytest.raises(ListingIncomplete, match="count_documents"):
            db.list_modified()
    assert db.listing_retries == docdb_module.LISTING_ATTEMPTS
