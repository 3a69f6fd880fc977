"""A full run under the gateway-like DocDB stand-in, at real record sizes, per cap.

    .venv/bin/python bench/docdb_limits.py                 # 1,000 assets, caps 1, 2, 4
    .venv/bin/python bench/docdb_limits.py --n 5000 --caps 1 4

For each DocDB concurrency cap (requests in flight per worker, DOCDB_MAX_CONCURRENCY)
a fresh local stack serves the same corpus (``size_profile="realistic"``: 50-130 KB a
record, a tail near 300 KB) through the stand-in's ``gateway`` profile: Lambda's
6,291,556-byte envelope limit answered 502, 40 ms a request plus 50 ms a MB, the
29 s integration timeout, 429 without Retry-After beyond 32 requests in flight. One
full nightly run with ``--workers`` workers; printed per cap: wall time, DocDB requests,
what the client absorbed (splits, 502/504/429, listing retries, records skipped) and
the most requests the stand-in had in flight. Ratios are against the first cap, in the
same invocation. Results go to bench/results/docdb_limits.json.

At 100,000 assets the corpus would be ~10 GB of JSON held by the stand-in and the
generator at once; this host cannot, so the default is 1,000 (the per-request
figures, which are what the cap changes, do not depend on N).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for part in ("layers/sync", "client/src", "local"):
    sys.path.insert(0, str(REPO / part))

from bdc_local import corpus  # noqa: E402
from bdc_local.record_sizes import compact_size  # noqa: E402
from bdc_local.runner import run_and_wait  # noqa: E402
from bdc_local.stack import StackConfig, local_stack  # noqa: E402
from biodata_cache import layout  # noqa: E402

RESULTS = REPO / "bench" / "results" / "docdb_limits.json"


def run_with_cap(
    corpus_path: Path, records: list[dict], cap: int, workers: int, seed: int, settings: dict[str, Any]
) -> dict[str, Any]:
    config = StackConfig(
        worker_timeout_seconds=900,
        extra_env={"DOCDB_MAX_CONCURRENCY": str(cap)},
        docdb_settings=settings,
    )
    with local_stack(corpus_path, config=config) as stack:
        stack.load_sources(records, seed=seed)
        stack.docdb_admin("reset_stats", {})
        started = time.monotonic()
        result = run_and_wait(stack, workers=workers, timeout=4 * 3600)
        wall = time.monotonic() - started
        stats = stack.docdb_admin("stats")
        report = json.loads(
            stack.s3()
            .get_object(
                Bucket=stack.config.bucket, Key=layout.latest_run_report_key(layout.package_folder())
            )["Body"]
            .read()
        )
    tables = report["tables"]
    return {
        "cap": cap,
        "wall_seconds": round(wall, 1),
        "failed_tables": sorted(t["table"] for t in tables if t["status"] == "failed"),
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
    }


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
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    settings = json.loads(args.stand_in_settings)

    workdir = Path(tempfile.mkdtemp(prefix="bdc-bench-limits-"))
    records = corpus.generate_corpus(args.n, seed=args.seed, size_profile="realistic")
    sizes = sorted(compact_size(r) for r in records)
    corpus_path = workdir / "records.jsonl"
    corpus.write_jsonl(records, corpus_path)
    print(
        f"corpus: {len(records)} records, median {sizes[len(sizes) // 2] / 1e3:.0f} KB, "
        f"largest {sizes[-1] / 1e3:.0f} KB, {sum(sizes) / 1e6:.0f} MB in all; {args.workers} workers; "
        f"gateway profile with {settings or 'no changes'}"
    )
    rows = []
    for cap in args.caps:
        row = run_with_cap(corpus_path, records, cap, args.workers, args.seed, settings)
        rows.append(row)
        base = rows[0]["wall_seconds"] or 1.0
        statuses = row["responses_by_status"]
        print(
            f"cap {cap}: {row['wall_seconds']:.1f} s wall ({row['wall_seconds'] / base:.2f}x cap "
            f"{rows[0]['cap']}), {row['docdb_requests']} requests ({row['response_mb']} MB), "
            f"502: {statuses.get('502', 0)}, 504: {statuses.get('504', 0)}, 429: {statuses.get('429', 0)}, "
            f"splits {row['splits']}, listing retries {row['listing_retries']}, skipped records "
            f"{row['unreturnable_records']}, peak in flight {row['peak_in_flight']}, "
            f"failed tables {row['failed_tables'] or 'none'}",
            flush=True,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "corpus_records": len(records),
                "workers": args.workers,
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
