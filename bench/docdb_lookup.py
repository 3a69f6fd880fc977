"""Benchmark: an ``_id $in`` lookup of 1,000 ids over 100,000 records on the local DocDB.

The sync code fetches changed records by id in batches; the local stand-in must answer
such a lookup from its ``_id`` index, not by scanning, or local runs would be dominated
by the stand-in itself. The model budget is 40 ms server-side for one lookup.

Prints the median server-side processing time (the ``X-Processing-Ms`` header: JSON
parsing, index lookup, filter recheck and serialisation, no injected latency) for the
aggregate form (``$match`` first stage, what ``fetch_records_by_filter_list`` sends) and
the find form (what ``bdc_sync.docdb`` sends), their client round trips, and the ratio
of the aggregate median to the 40 ms model.

Run: ``PYTHONPATH=layers/sync:local .venv/bin/python bench/docdb_lookup.py``
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import time
from typing import Any

import requests

from bdc_local.docdb_server import DocDBServer

MODEL_MS = 40.0


def synthetic_records(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` small records (a few hundred bytes) with distinct ids, names and subjects."""
    rng = random.Random(seed)
    modalities = ["ecephys", "fib", "pophys", "behavior", "SPIM"]
    records = []
    for i in range(n):
        subject_id = str(600_000 + rng.randrange(n // 4 or 1))
        day = f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}"
        records.append(
            {
                "_id": f"{rng.getrandbits(128):032x}",
                "name": f"{rng.choice(modalities)}_{subject_id}_{day}_{i:06d}",
                "subject": {"subject_id": subject_id},
                "data_description": {
                    "data_level": "raw" if i % 3 else "derived",
                    "modalities": [{"abbreviation": rng.choice(modalities)}],
                    "project_name": f"project {i % 17}",
                },
                "location": f"s3://bucket/{i:06d}",
                "_last_modified": f"{day}T12:00:00Z",
            }
        )
    return records


def measure(
    server: DocDBServer, ids_pool: list[str], n_ids: int, repeats: int, rng: random.Random
) -> dict[str, tuple[float, float]]:
    """Median (server-side ms, round-trip ms) per query form; ids are drawn without
    replacement from ``ids_pool`` so no run reuses a record another run touched."""
    base = f"{server.url}/v2/metadata_index/data_assets"
    rng.shuffle(ids_pool)
    timings: dict[str, list[float]] = {"aggregate": [], "find": []}
    round_trips: dict[str, list[float]] = {"aggregate": [], "find": []}
    with requests.Session() as session:
        for run in range(repeats + 1):  # run 0 warms the connection and code paths up
            for form in ("aggregate", "find"):
                start = (run * 2 + (form == "find")) * n_ids
                ids = ids_pool[start : start + n_ids]
                sent = time.perf_counter()
                if form == "aggregate":
                    response = session.post(
                        f"{base}/aggregate", json=[{"$match": {"_id": {"$in": ids}}}], timeout=60
                    )
                else:
                    params = {"filter": json.dumps({"_id": {"$in": ids}}), "limit": "0", "skip": "0"}
                    response = session.get(f"{base}/find", params=params, timeout=60)
                elapsed_ms = (time.perf_counter() - sent) * 1000
                response.raise_for_status()
                assert len(response.json()) == n_ids, "lookup lost records"
                if run:
                    timings[form].append(float(response.headers["X-Processing-Ms"]))
                    round_trips[form].append(elapsed_ms)
    return {
        form: (statistics.median(timings[form]), statistics.median(round_trips[form]))
        for form in timings
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--ids", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if (args.repeats + 1) * 2 * args.ids > args.records:
        parser.error("--records must cover (repeats + 1) * 2 * ids distinct ids")

    started = time.perf_counter()
    records = synthetic_records(args.records, args.seed)
    generated = time.perf_counter() - started
    # As the command-line server does: keep the GC from rescanning the corpus.
    gc.collect()
    gc.freeze()
    ids = [r["_id"] for r in records]
    rng = random.Random(args.seed)
    print(f"corpus: {args.records} records (generated in {generated:.2f} s)")
    print(f"lookup: _id $in {args.ids} distinct ids, {args.repeats} runs per form, fresh ids per run")

    results = {}
    for label, warm in (("cold JSON cache", False), ("warm JSON cache", True)):
        started = time.perf_counter()
        with DocDBServer(records, warm_cache=warm) as server:
            indexed = time.perf_counter() - started
            server.wait_warm()
            ready = time.perf_counter() - started
            results[label] = measure(server, list(ids), args.ids, args.repeats, rng)
        print(f"{label} (indexed in {indexed:.2f} s, ready in {ready:.2f} s):")
        for form, (server_ms, trip_ms) in results[label].items():
            print(f"  {form:9s}: median server-side {server_ms:6.2f} ms, round trip {trip_ms:6.2f} ms")

    for label in results:
        server_ms = results[label]["aggregate"][0]
        print(
            f"aggregate $match lookup, {label}: median {server_ms:.2f} ms server-side = "
            f"{server_ms / MODEL_MS:.3f} x the modelled {MODEL_MS:.0f} ms"
        )


if __name__ == "__main__":
    main()
