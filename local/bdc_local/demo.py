"""`make demo`: a nightly run end to end on the embedded local stack.

Generates a corpus (or takes ``--corpus records.jsonl``), starts moto and the local
DocDB API, delivers the scheduled event to the dispatcher, runs the worker and
finalizer on their queues until the run is finalized, then reads every table back
through the pip client and prints one line per table and the run's wall time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import pandas as pd

import biodata_cache as client
from bdc_local import consistency_plants
from bdc_local import corpus as corpus_module
from bdc_local.runner import run_and_wait
from bdc_local.stack import LocalStack, StackConfig, local_stack
from bdc_sync.flow.states import BUILT
from biodata_cache import layout
from biodata_cache.catalog import ALL_TABLES, TableSpec


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, help="JSON Lines file of DocDB records to serve")
    parser.add_argument("--n", type=int, default=2000, help="records to generate (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated corpus")
    parser.add_argument("--workers", type=int, default=8, help="concurrent worker invocations")
    parser.add_argument("--export", type=Path, help="copy the finished cache folder here")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of results")
    parser.add_argument("--verbose", action="store_true", help="show the Lambdas' INFO logs")
    return parser.parse_args(argv)


def table_rows(spec: TableSpec) -> int:
    """Rows of a table read back through the pip client (all partitions counted)."""
    if spec.partitioned:
        return len(client.read_table(spec.name))
    return len(getattr(client, spec.function_name)())


def export_cache(stack: LocalStack, target: Path) -> int:
    """Copy the cache folder tree (data-asset-cache/...) to a local directory."""
    s3 = stack.s3()
    paginator = s3.get_paginator("list_objects_v2")
    root = target.resolve()
    copied = 0
    for page in paginator.paginate(Bucket=stack.config.bucket, Prefix=f"{layout.ROOT_PREFIX}/"):
        for item in page.get("Contents", []):
            path = (target / item["Key"]).resolve()
            # A key is text someone wrote: it never names a file outside the target.
            if not path.is_relative_to(root) or path == root:
                print(f"skipped a key that would leave {target}: {item['Key']!r}")
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(stack.config.bucket, item["Key"], str(path))
            copied += 1
    return copied


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bdc-demo-"))
    if args.corpus:
        corpus_path = args.corpus
        records = corpus_module.read_jsonl(corpus_path)
        print(f"corpus: {len(records)} records from {corpus_path}")
    else:
        records = corpus_module.generate_corpus(args.n, seed=args.seed)
        # A few duplicate names for the record consistency checks to find.
        records = consistency_plants.with_duplicate_names(records, seed=args.seed)
        corpus_path = workdir / "records.jsonl"
        corpus_module.write_jsonl(records, corpus_path)
        print(f"corpus: {len(records)} generated records (seed {args.seed})")
    config = StackConfig(log_level="INFO" if args.verbose else "WARNING")
    try:
        with local_stack(corpus_path, config=config) as stack:
            stack.load_sources(records, seed=args.seed)
            result = run_and_wait(stack, workers=args.workers)
            folder = result.run["folder"]
            registry = client.get_cache_registry()
            lines = []
            for spec in ALL_TABLES:
                location = registry[spec.name].location
                status = result.tables.get(spec.built_with or spec.name, {}).get("status", "not run")
                rows = table_rows(spec) if status in BUILT else 0
                lines.append({"name": spec.name, "rows": rows, "location": location, "status": status})
            print(pd.DataFrame(lines, columns=["name", "rows", "location", "status"]).to_string(index=False))
            print(f"run {result.run_id} ({folder}): wall time {result.wall_seconds:.1f} s")
            if args.export:
                copied = export_cache(stack, args.export)
                print(f"exported {copied} objects to {args.export}")
            if args.json:
                print(
                    json.dumps(
                        {
                            "tables": [{k: line[k] for k in ("name", "rows", "location")} for line in lines],
                            "wall_seconds": round(result.wall_seconds, 3),
                        }
                    )
                )
            failed = [line["name"] for line in lines if line["status"] not in BUILT]
            return 1 if failed else 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
