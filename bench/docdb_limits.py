"""A full run under the gateway-like DocDB stand-in, at real record sizes, per cap.

    .venv/bin/python bench/docdb_limits.py                 # 1,000 assets, caps 1, 2, 4
    .venv/bin/python bench/docdb_limits.py --n 5000 --caps 1 4
    nice .venv/bin/python bench/docdb_limits.py --n 100000 --caps 1 --workers 32 \
        --unchanged-run --out bench/results/docdb_limits-100k.json

For each DocDB concurrency cap (requests in flight per worker, DOCDB_MAX_CONCURRENCY)
a fresh local stack serves the same corpus at real sizes (``record_sizes``' realistic
profile: 50-130 KB a record, a tail near 300 KB, applied by the stand-in itself at load,
``--size-profile``) through the stand-in's ``gateway`` profile: Lambda's
6,291,556-byte envelope limit answered 502, 40 ms a request plus 50 ms a MB, the
29 s integration timeout, 429 without Retry-After beyond 32 requests in flight. One
full nightly run with ``--workers`` workers; printed per cap: wall time, DocDB requests,
what the client absorbed (splits, 502/504/429, listing retries, records skipped) and
the most requests the stand-in had in flight; the peak memory of the stand-in and of
this process (whose threads are the workers). Ratios are against the first cap, in the
same invocation. ``--unchanged-run`` adds a second run with nothing changed, measured as
``bench/nightly.py`` measures it (DocDB requests, Lambda invocations, GB-seconds, the
monthly cost by cadence). Results go to bench/results/docdb_limits.json.

The corpus is generated, written and loaded at generated size (about 8 KB a record);
the stand-in grows it, with the bulk drawn from a bounded pool of shared series, so
100,000 records at real sizes (about 10 GB of JSON served) fit in memory, while every
answer still carries all of its bytes, and the envelope limit, the latency by bytes
and the splits see them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for part in ("layers/sync", "client/src", "local"):
    sys.path.insert(0, str(REPO / part))

sys.path.insert(0, str(REPO / "bench"))

from nightly import SOURCE_RECHECK_SECONDS, measure_unchanged_run, monthly_costs  # noqa: E402

from bdc_local import corpus, record_sizes  # noqa: E402
from bdc_local.runner import run_and_wait  # noqa: E402
from bdc_local.stack import LocalStack, StackConfig, local_stack  # noqa: E402
from biodata_cache import layout  # noqa: E402

RESULTS = REPO / "bench" / "results" / "docdb_limits.json"
SIZE_PROFILE = "realistic"
# The stand-in grows records seeded by its --seed, which the local stack leaves at 0.
STAND_IN_SIZE_SEED = 0


def memory_mb(pid: int | str = "self") -> dict[str, float]:
    """Resident (VmRSS) and peak resident (VmHWM) memory of a process, in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {name: round(int(fields[name].split()[0]) / 1024, 1) for name in ("VmRSS", "VmHWM")}


def run_with_cap(
    corpus_path: Path,
    records: list[dict],
    cap: int,
    workers: int,
    seed: int,
    settings: dict[str, Any],
    unchanged_run: bool,
) -> dict[str, Any]:
    config = StackConfig(
        worker_timeout_seconds=900,
        extra_env={"DOCDB_MAX_CONCURRENCY": str(cap)},
        docdb_settings=settings,
        docdb_size_profile=SIZE_PROFILE,
        source_recheck_seconds=SOURCE_RECHECK_SECONDS,
    )
    with local_stack(corpus_path, config=config) as stack:
        stand_in = stack.processes[1].pid
        stack.load_sources(records, seed=seed)
        loaded = memory_mb(stand_in)
        stack.docdb_admin("reset_stats", {})
        started = time.monotonic()
        result = run_and_wait(stack, workers=workers, timeout=4 * 3600)
        wall = time.monotonic() - started
        stats = stack.docdb_admin("stats")
        report = latest_report(stack)
        after_full = memory_mb(stand_in)
        # The host's load (1, 5, 15 min) at the end of each run: the measured durations,
        # so the GB-seconds, grow with whatever else shares these cores.
        load = {"after_full_run": os.getloadavg()}
        unchanged = measure_unchanged_run(stack, workers, len(records))[1] if unchanged_run else {}
        load["at_end"] = os.getloadavg()
        if unchanged:
            unchanged["unchanged"]["failed_tables"] = failed(latest_report(stack))
        stand_in_memory = {"after_load": loaded, "after_full_run": after_full, "at_end": memory_mb(stand_in)}
    tables = report["tables"]
    row = {
        "cap": cap,
        "wall_seconds": round(wall, 1),
        "failed_tables": failed(report),
        "docdb_requests": stats["requests_total"],
        "responses_by_status": stats["responses_by_status"],
        "timeouts": stats["timeouts"],
        "throttled": stats["throttled"],
        "peak_in_flight": stats["peak_in_flight"],
        "response_mb": round(stats["response_bytes"] / 1e6, 1),
        "splits": sum(t.get("docdb_splits") or 0 for t in tables),
        "listing_retries": sum(t.get("docdb_listing_retries") or 0 for t in tables),
        "unreturnable_records": sum(t.get("unreturnable_records") or 0 for t in tables),
        "run_state": result.run.get("state"),
        "stand_in_memory_mb": stand_in_memory,
        "bench_process_memory_mb": memory_mb(),
        "host_load_average": load,
    }
    if unchanged:
        row.update(unchanged)
        row.update(monthly_costs(unchanged))
    return row


def latest_report(stack: LocalStack) -> dict[str, Any]:
    key = layout.latest_run_report_key(layout.package_folder())
    return json.loads(stack.s3().get_object(Bucket=stack.config.bucket, Key=key)["Body"].read())


def failed(report: dict[str, Any]) -> list[str]:
    return sorted(t["table"] for t in report["tables"] if t["status"] == "failed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--caps", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument(
        "--stand-in-settings",
        default="{}",
        help="JSON options over the gateway profile, e.g. '{\"max_in_flight\": 4}' for a busier service",
    )
    parser.add_argument(
        "--unchanged-run",
        action="store_true",
        help="after each full run, a run with nothing changed (requests, invocations, GB-seconds)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    settings = json.loads(args.stand_in_settings)

    began = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="bdc-bench-limits-"))
    records = corpus.generate_corpus(args.n, seed=args.seed)
    corpus_path = workdir / "records.jsonl"
    corpus.write_jsonl(records, corpus_path)  # at generated size: the stand-in grows them
    # The same growth here, for the sizes printed (its bulk is shared: little memory).
    record_sizes.apply_profile(records, SIZE_PROFILE, seed=STAND_IN_SIZE_SEED)
    sizes = sorted(record_sizes.compact_size(r) for r in records)
    print(
        f"corpus: {len(records)} records, median {sizes[len(sizes) // 2] / 1e3:.0f} KB, "
        f"largest {sizes[-1] / 1e3:.0f} KB, {sum(sizes) / 1e6:.0f} MB in all; {args.workers} workers; "
        f"gateway profile with {settings or 'no changes'}"
    )
    rows = []
    for cap in args.caps:
        row = run_with_cap(corpus_path, records, cap, args.workers, args.seed, settings, args.unchanged_run)
        rows.append(row)
        base = rows[0]["wall_seconds"] or 1.0
        statuses = row["responses_by_status"]
        print(
            f"cap {cap}: {row['wall_seconds']:.1f} s wall ({row['wall_seconds'] / base:.2f}x cap "
            f"{rows[0]['cap']}), {row['docdb_requests']} requests ({row['response_mb']} MB), "
            f"502: {statuses.get('502', 0)}, 504: {statuses.get('504', 0)}, 429: {statuses.get('429', 0)}, "
            f"splits {row['splits']}, listing retries {row['listing_retries']}, skipped records "
            f"{row['unreturnable_records']}, peak in flight {row['peak_in_flight']}, "
            f"failed tables {row['failed_tables'] or 'none'}, stand-in memory "
            f"{row['stand_in_memory_mb']}, this process {row['bench_process_memory_mb']}",
            flush=True,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "command": "bench/docdb_limits.py " + " ".join(sys.argv[1:] if argv is None else argv),
                "corpus_records": len(records),
                "record_bytes": {
                    "median": sizes[len(sizes) // 2],
                    "largest": sizes[-1],
                    "total": sum(sizes),
                },
                "size_profile": SIZE_PROFILE,
                "workers": args.workers,
                "bench_seconds": round(time.monotonic() - began, 1),
                "stand_in_settings": settings,
                "runs": rows,
            },
            indent=1,
        )
        + "\n"
    )
    print(f"written to {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
