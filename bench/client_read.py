"""Benchmark of the client's reads against a local S3 (moto server, over HTTP).

Serves a 100,000-row ``asset_basics`` and a few thousand ``qc/`` partitions, then
measures:

* first read of ``asset_basics()`` (empty local cache) against a bare
  ``pyarrow.parquet.read_table`` of the same object over pyarrow's S3 filesystem;
  target: at most 1.3x;
* second read (local cache, one conditional GET answered 304): target at least 5x
  faster than the first; also measured with a new ``Cache`` object on the same
  directory (what a new process sees);
* one subject's ``qc()``: target one GET of data;
* a SQL join filtered on one subject: which ``qc/`` partitions were fetched.

Requests are counted from the moto server's log, i.e. on the wire.

Run: ``PYTHONPATH=layers/sync:client/src .venv/bin/python bench/client_read.py``
(``--rows``, ``--subjects``, ``--repeat`` to change the size).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from biodata_cache import catalog, layout
from biodata_cache.reader import Cache, to_pandas

BUCKET = "bench-cache"
FOLDER = layout.package_folder()
_REQUEST = re.compile(r'"(GET|HEAD|PUT|POST) (\S+) HTTP/[\d.]+"?\S*\s+(\d{3})')
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def parquet_bytes(table: pa.Table) -> bytes:
    """The Lambdas' writer settings when the sync layer is importable, else zstd."""
    try:
        from bdc_sync.store import parquet_bytes as lambda_writer
    except ImportError:
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd", row_group_size=131_072)
        return sink.getvalue()
    return lambda_writer(table)


def asset_basics_table(rows: int, subjects: list[str], seed: int = 7) -> pa.Table:
    rnd = random.Random(seed)
    modalities = ["ecephys", "behavior", "behavior-videos", "SPIM", "fib", "pophys", "slap2"]
    projects = [f"Project {i}" for i in range(60)]
    people = [f"Person {i}" for i in range(200)]
    columns: dict[str, list[Any]] = {name: [] for name in catalog.ASSET_BASICS.column_names}
    for i in range(rows):
        subject = rnd.choice(subjects)
        start = f"2025-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}T{rnd.randint(0, 23):02d}:00:00Z"
        level = "raw" if rnd.random() < 0.6 else "derived"
        name = f"{rnd.choice(modalities)}_{subject}_{start[:10]}_{i:06d}"
        crew = rnd.sample(people, 2)
        row = {
            "_id": f"{i:024x}",
            "_last_modified": start,
            "modalities": rnd.sample(modalities, rnd.randint(1, 2)),
            "project_name": rnd.choice(projects),
            "data_level": level,
            "subject_id": subject,
            "acquisition_start_time": start,
            "acquisition_end_time": start,
            "code_ocean": [f"{rnd.getrandbits(128):032x}"] if rnd.random() < 0.3 else None,
            "process_date": start[:10] if level == "derived" else None,
            "genotype": rnd.choice(["wt/wt", "Ai14/wt", "Sst-IRES-Cre/wt;Ai14/wt", None]),
            "age": rnd.randint(30, 400),
            "acquisition_type": rnd.choice(["Coupled Baiting", "AindVrForaging", "imaging", None]),
            "location": f"s3://aind-open-data/{name}",
            "name": name,
            "experimenters": crew,
            "experimenters_normalized": crew,
            "instrument_id": f"323_EPHYS{rnd.randint(1, 9)}_20240101",
            "instrument_id_normalized": f"EPHYS{rnd.randint(1, 9)}",
            "investigators": crew[:1],
            "investigators_normalized": crew[:1],
        }
        for key, value in row.items():
            columns[key].append(value)
    return pa.table(columns, schema=catalog.ASSET_BASICS.schema)


def qc_partition(subject: str, rnd: random.Random) -> pa.Table:
    timestamp = pa.scalar(1748772000000000, pa.timestamp("us", tz="UTC")).as_py()
    rows = [
        {
            "name": f"metric_{m}",
            "stage": "Processing",
            "modality": "ecephys",
            "value": f"{rnd.random():.3f}",
            "status": rnd.choice(["Pass", "Fail", "Pending"]),
            "asset_name": f"ecephys_{subject}_2025-06-01_{a}",
            "subject_id": subject,
            "timestamp": timestamp,
        }
        for a in range(2)
        for m in range(8)
    ]
    return pa.Table.from_pylist(rows, schema=catalog.QUALITY_CONTROL.schema)


class LocalS3:
    """``python -m moto.server`` on a free port, with its request log."""

    def __init__(self, workdir: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{port}"
        self.log_path = workdir / "moto.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("moto server did not start")

    def requests(self) -> list[tuple[str, str, int]]:
        time.sleep(0.1)  # the server logs after answering
        text = _ANSI.sub("", self.log_path.read_text(errors="replace"))
        return [(m[1], m[2], int(m[3])) for m in _REQUEST.finditer(text)]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        self._log.close()


def populate(endpoint: str, rows: int, subjects: int) -> tuple[str, int]:
    """Upload the cache; returns (asset_basics key, its size)."""
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket=BUCKET, ACL="public-read")
    subject_ids = [str(600000 + i) for i in range(subjects)]
    basics_key = layout.table_key(FOLDER, "asset_basics")
    body = parquet_bytes(asset_basics_table(rows, subject_ids))
    objects: dict[str, bytes] = {
        basics_key: body,
        layout.versions_key(): json.dumps([FOLDER]).encode(),
        layout.registry_key(FOLDER): json.dumps(
            {
                "version": FOLDER,
                "tables": [
                    {
                        "name": spec.name,
                        "description": spec.description,
                        "location": layout.s3_url(
                            BUCKET,
                            layout.partition_folder_key(FOLDER, spec.folder or spec.name)
                            if spec.partitioned
                            else layout.table_key(FOLDER, spec.name),
                        ),
                        "partitioned": spec.partitioned,
                        "partition_key": spec.partition_key,
                        "type": spec.type,
                        "columns": spec.column_docs(),
                        "status": "ok",
                    }
                    for spec in (catalog.ASSET_BASICS, catalog.UNIQUE_SUBJECT_IDS, catalog.QUALITY_CONTROL)
                ],
            }
        ).encode(),
        layout.table_key(FOLDER, "unique_subject_ids"): parquet_bytes(pa.table({"subject_id": subject_ids})),
    }
    rnd = random.Random(11)
    for subject in subject_ids:
        key = layout.partition_key(FOLDER, "qc", "subject_id", subject)
        objects[key] = parquet_bytes(qc_partition(subject, rnd))
    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda item: client.put_object(Bucket=BUCKET, Key=item[0], Body=item[1]), objects.items()
            )
        )
    return basics_key, len(body)


def timed(function: Callable[[], Any], repeat: int, before: Callable[[], Any] | None = None) -> float:
    """Median seconds of ``function()`` over ``repeat`` runs (``before()`` untimed)."""
    samples = []
    for _ in range(repeat):
        if before is not None:
            before()
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--subjects", type=int, default=3_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    workdir = Path(tempfile.mkdtemp(prefix="bdc-bench-"))
    server = LocalS3(workdir)
    try:
        started = time.perf_counter()
        basics_key, size = populate(server.endpoint, args.rows, args.subjects)
        print(
            f"served {args.rows:,} asset_basics rows ({size / 1e6:.1f} MB parquet) and "
            f"{args.subjects:,} qc/ partitions in {time.perf_counter() - started:.0f} s"
        )

        # Bare pyarrow over its own S3 filesystem (warmed by a first read).
        endpoint = server.endpoint.removeprefix("http://")
        filesystem = pafs.S3FileSystem(
            endpoint_override=endpoint,
            scheme="http",
            access_key="bench",
            secret_key="bench",
            region="us-east-1",
        )
        path = f"{BUCKET}/{basics_key}"
        pq.read_table(path, filesystem=filesystem)
        bare_pandas = timed(lambda: to_pandas(pq.read_table(path, filesystem=filesystem)), args.repeat)

        cache_root = workdir / "cache"
        state: dict[str, Cache] = {}
        bare_samples: list[float] = []
        first_samples: list[float] = []
        immediate_samples: list[float] = []
        second_samples: list[float] = []

        def new_cache(name: str) -> Cache:
            # An empty cache directory; the boto3 client is warmed as pyarrow's filesystem is.
            cache = Cache(bucket=BUCKET, endpoint_url=server.endpoint, cache_dir=cache_root / name)
            cache.list_versions()
            return cache

        # Interleaved, so that load from other processes hits every measurement alike.
        for run in range(args.repeat):
            bare_samples.append(timed(lambda: pq.read_table(path, filesystem=filesystem), 1))
            first_cache = new_cache(f"a{run}")
            first_samples.append(timed(lambda c=first_cache: c.read("asset_basics"), 1))
            # Right after the first read, while its cache file is still being written.
            immediate_samples.append(timed(lambda c=first_cache: c.read("asset_basics"), 1))
            second_cache = new_cache(f"b{run}")
            second_cache.read("asset_basics")
            second_cache.cache_usage()  # waits until the local cache file is written
            second_samples.append(timed(lambda c=second_cache: c.read("asset_basics"), 1))
            state["cache"] = second_cache
        bare = statistics.median(bare_samples)
        first = statistics.median(first_samples)
        immediate = statistics.median(immediate_samples)
        second = statistics.median(second_samples)
        same_dir = state["cache"].config.cache_dir

        def reopened() -> None:
            state["reopened"] = Cache(bucket=BUCKET, endpoint_url=server.endpoint, cache_dir=same_dir)
            state["reopened"].list_versions()

        second_new_object = timed(
            lambda: state["reopened"].read("asset_basics"), args.repeat, before=reopened
        )

        cache = state["cache"]
        before = len(server.requests())
        cache.read("asset_basics")
        second_requests = server.requests()[before:]

        subject = str(600000 + args.subjects // 2)
        before = len(server.requests())
        qc_start = time.perf_counter()
        frame = cache.qc(subject)
        qc_seconds = time.perf_counter() - qc_start
        qc_requests = server.requests()[before:]
        qc_data_gets = [r for r in qc_requests if r[0] == "GET" and "?" not in r[1]]

        other = str(600000 + args.subjects // 3)
        before = len(server.requests())
        sql_start = time.perf_counter()
        joined = cache.sql(
            "SELECT asset_basics.name, quality_control.status FROM asset_basics "
            f"JOIN quality_control USING (subject_id) WHERE subject_id = '{other}'"
        )
        sql_seconds = time.perf_counter() - sql_start
        sql_requests = server.requests()[before:]
        again = str(600000 + args.subjects // 4)
        sql_start = time.perf_counter()
        cache.sql(f"SELECT count(*) FROM quality_control WHERE subject_id = '{again}'")
        sql_again_seconds = time.perf_counter() - sql_start
        partitions = sorted(
            {r[1].split("/qc/")[1] for r in sql_requests if "/qc/" in r[1] and "?" not in r[1]}
        )
        listings = [r for r in sql_requests if "?" in r[1]]
    finally:
        server.stop()

    # Medians of per-run ratios (each run measures both sides back to back), and the
    # ratio of the fastest runs, which is least disturbed by other load.
    first_ratio = statistics.median(f / b for f, b in zip(first_samples, bare_samples, strict=True))
    first_ratio_best = min(first_samples) / min(bare_samples)
    speedup = statistics.median(f / s for f, s in zip(first_samples, second_samples, strict=True))
    speedup_best = min(first_samples) / min(second_samples)

    def line(label: str, seconds: float, note: str = "") -> None:
        print(f"{label:<44}{seconds * 1000:8.1f} ms   {note}")

    print()
    line("bare pq.read_table over S3", bare)
    line("bare pq.read_table + to_pandas", bare_pandas)
    line(
        "asset_basics() first read",
        first,
        f"{first_ratio:.2f}x the bare read_table (fastest runs: {first_ratio_best:.2f}x)",
    )
    line(
        "asset_basics() second read",
        second,
        f"{speedup:.1f}x faster than the first (fastest runs: {speedup_best:.1f}x)",
    )
    line(
        "  same, new Cache object (as a new process)", second_new_object, f"{first / second_new_object:.1f}x"
    )
    line("  right after the first (cache write pending)", immediate, f"{first / immediate:.1f}x")
    print(f"  requests of a second read: {second_requests}")
    line(f"qc('{subject}')", qc_seconds, f"{len(frame)} rows; requests: {qc_requests}")
    line(
        "sql join filtered on one subject",
        sql_seconds,
        f"{len(joined)} rows; qc partitions fetched: {partitions}; listing requests: {len(listings)}",
    )
    line("  another subject (partition listing reused)", sql_again_seconds)
    print()
    checks = [
        (f"first read <= 1.3x bare read_table ({first_ratio:.2f}x)", first_ratio <= 1.3),
        (f"second read >= 5x faster than first ({speedup:.1f}x)", speedup >= 5),
        (f"qc() = one GET of data ({len(qc_data_gets)})", len(qc_data_gets) == 1),
        (f"sql reads one qc partition ({len(partitions)})", len(partitions) == 1),
    ]
    for label, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {label}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
