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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--ids", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=25)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    started = time.perf_counter()
    records = synthetic_records(args.records, args.seed)
    with DocDBServer(records) as server:
        load_seconds = time.perf_counter() - started
        base = f"{server.url}/v2/metadata_index/data_assets"
        rng = random.Random(args.seed)
        all_ids = [r["_id"] for r in records]
        timings: dict[str, list[float]] = {"aggregate": [], "find": []}
        round_trips: dict[str, list[float]] = {"aggregate": [], "find": []}
        with requests.Session() as session:
            for repeat in range(args.repeats + 1):  # the first round warms caches up
                ids = rng.sample(all_ids, args.ids)
                calls = {
                    "aggregate": lambda ids=ids: session.post(
                        f"{base}/aggregate", json=[{"$match": {"_id": {"$in": ids}}}], timeout=60
                    ),
                    "find": lambda ids=ids: session.get(
                        f"{base}/find",
                        params={"filter": json.dumps({"_id": {"$in": ids}}), "limit": "0", "skip": "0"},
                        timeout=60,
                    ),
                }
                for form, call in calls.items():
                    sent = time.perf_counter()
                    response = call()
                    elapsed_ms = (time.perf_counter() - sent) * 1000
                    response.raise_for_status()
                    assert len(response.json()) == args.ids, "lookup lost records"
                    if repeat:
                        timings[form].append(float(response.headers["X-Processing-Ms"]))
                        round_trips[form].append(elapsed_ms)

    print(f"corpus: {args.records} records generated and indexed in {load_seconds:.2f} s")
    print(f"lookup: _id $in {args.ids} ids, {args.repeats} runs each, random ids per run")
    for form in ("aggregate", "find"):
        server_ms = statistics.median(timings[form])
        trip_ms = statistics.median(round_trips[form])
        print(f"  {form:9s}: median server-side {server_ms:6.2f} ms, round trip {trip_ms:6.2f} ms")
    median_ms = statistics.median(timings["aggregate"])
    print(f"aggregate median vs modelled {MODEL_MS:.0f} ms: {median_ms / MODEL_MS:.3f}x")


if __name__ == "__main__":
    main()
