"""DocDB requests and seconds of metadata_core and the record consistency tables.

    .venv/bin/python bench/consistency_tables.py              # 100,000 assets
    .venv/bin/python bench/consistency_tables.py --n 20000    # a quicker look

On the local stack (moto server, DocDB stand-in in its default gateway profile), the
two builds run in this process as a worker would run them, three times: a first
build (every record fetched, with metadata_core's presence-flag projection and the
checks' name/location projection), a build with nothing changed, and a build after
1 % of the v2 records changed. The open-data bucket holds one object under each
record's top-level prefix plus the planted orphans; v1 holds n/50 records. As a
baseline measured in the same run, metadata_core is also built once with a plain
projection of the seven core files (what a build without the computed flags would
fetch). Figures are printed and written to bench/results/consistency_tables.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for part in ("layers/sync", "client/src", "local"):
    sys.path.insert(0, str(REPO / part))

from bdc_local import consistency_plants, corpus  # noqa: E402
from bdc_local.stack import StackConfig, local_stack  # noqa: E402
from bdc_sync.framework import BuildContext, Table  # noqa: E402
from bdc_sync.settings import settings_from_env  # noqa: E402
from bdc_sync.tables import metadata_core, record_consistency  # noqa: E402
from biodata_cache import layout  # noqa: E402
from biodata_cache.catalog import CORE_FILES, get_spec  # noqa: E402

RESULTS = REPO / "bench" / "results" / "consistency_tables.json"
OPEN_DATA = "s3://aind-open-data/"


def build(stack: Any, table: Table, run: str) -> dict[str, Any]:
    ctx = BuildContext(settings_from_env(), run, spec=get_spec(table.spec.name))
    bytes_before = stack.docdb_admin("stats")["response_bytes"]
    started = time.perf_counter()
    result = table.build(ctx)
    seconds = time.perf_counter() - started
    return {
        "status": result.status,
        "rows": result.rows,
        "seconds": round(seconds, 2),
        "docdb_requests": ctx.docdb_requests,
        "docdb_response_mb": round((stack.docdb_admin("stats")["response_bytes"] - bytes_before) / 1e6, 2),
        "docdb_records": ctx.docdb_records,
        "message": result.message,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-baseline", action="store_true", help="skip the plain-projection build")
    args = parser.parse_args(argv)

    records = consistency_plants.with_duplicate_names(
        corpus.generate_corpus(args.n, seed=args.seed), seed=args.seed
    )
    workdir = Path(tempfile.mkdtemp(prefix="bdc-bench-consistency-"))
    path = workdir / "records.jsonl"
    corpus.write_jsonl(records, path)
    figures: dict[str, Any] = {"n": len(records)}
    with local_stack(path, config=StackConfig()) as stack:
        s3 = stack.s3()
        s3.create_bucket(
            Bucket="aind-open-data", CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
        )
        prefixes = sorted(
            {
                r["location"][len(OPEN_DATA) :].split("/")[0]
                for r in records
                if isinstance(r.get("location"), str) and r["location"].startswith(OPEN_DATA)
            }
            - {""}
        )
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(
                pool.map(lambda p: s3.put_object(Bucket="aind-open-data", Key=f"{p}/x", Body=b"{}"), prefixes)
            )
        stack.upsert_v1(corpus.v1_records(records, max(5, len(records) // 50), seed=args.seed))
        consistency_plants.plant_sources(s3, stack.upsert_v1, records, seed=args.seed)
        figures["open_data_prefixes"] = len(prefixes) + consistency_plants.ORPHAN_PREFIXES

        print(f"{len(records)} v2 records, {figures['open_data_prefixes']} prefixes", flush=True)
        for label in ("first", "unchanged"):
            figures[label] = {
                "metadata_core": build(stack, metadata_core.TABLE, f"bench-{label}"),
                "record_consistency": build(stack, record_consistency.TABLE, f"bench-{label}"),
            }
            print(label, json.dumps(figures[label]), flush=True)
        changed = corpus.mutate_records(records, 0.01, seed=args.seed + 1)
        stack.docdb_admin("upsert?version=v2", changed)
        figures["one_percent_changed"] = {
            "changed": len(changed),
            "metadata_core": build(stack, metadata_core.TABLE, "bench-changed"),
            "record_consistency": build(stack, record_consistency.TABLE, "bench-changed"),
        }
        print("one_percent_changed", json.dumps(figures["one_percent_changed"]), flush=True)
        if args.no_baseline:
            return finish(figures, args.out)
        # Baseline: the same first build projecting the core files themselves.
        plain = replace(metadata_core.TABLE, projection=("_id", "_last_modified", *CORE_FILES))
        stack.s3().delete_object(
            Bucket=stack.config.bucket, Key=layout.state_key(layout.package_folder(), "metadata_core")
        )
        baseline = build(stack, plain, "bench-baseline")
        figures["baseline_plain_projection_first"] = baseline

    first = figures["first"]["metadata_core"]
    figures["first_metadata_core_vs_plain_projection_seconds"] = round(
        first["seconds"] / baseline["seconds"], 3
    )
    return finish(figures, args.out)


def finish(figures: dict[str, Any], out: Path) -> int:
    print(json.dumps(figures, indent=1))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
