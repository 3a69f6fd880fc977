"""The old job as a baseline: biodata-cache 0.33.2 from PyPI, in a venv of its own.

0.33.2 has the same import name as our client, so it cannot share the bench's venv.
:func:`seed_python` makes ``bench/.seed-venv`` once (pinned: the package, duckdb 1.4.4
and the ``duckdb-ext-httpfs`` wheel that carries DuckDB's httpfs extension, since the
extension cannot be downloaded offline); :func:`run_seed` runs ``bench/seed_job.py``
in it against a local stack and measures the wall and the DocDB requests the stand-in
served.

``python bench/seed_baseline.py --n 2000`` runs it alone: first build and unchanged rerun.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SEED_VENV = HERE / ".seed-venv"
SEED_REQUIREMENTS = [
    "biodata-cache==0.33.2",
    "duckdb==1.4.4",
    "duckdb-ext-httpfs==1.4.4.20260205",  # DuckDB's httpfs for 1.4.4, installed as a wheel
]


def seed_python() -> Path:
    """The venv's interpreter, creating and installing the venv the first time."""
    python = SEED_VENV / "bin" / "python"
    stamp = SEED_VENV / ".installed"
    wanted = "\n".join(SEED_REQUIREMENTS)
    if stamp.exists() and stamp.read_text() == wanted:
        return python
    venv.create(SEED_VENV, with_pip=True, clear=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *SEED_REQUIREMENTS], check=True)
    stamp.write_text(wanted)
    return python


def run_seed(stack: Any) -> dict[str, Any]:
    """One ``update_all_tables()`` of 0.33.2 against the stack: wall and DocDB requests."""
    python = seed_python()
    docdb_host = stack.docdb_url.split("://", 1)[-1].rstrip("/")
    stack.docdb_admin("reset_stats", {})
    started = time.monotonic()
    done = subprocess.run(
        [str(python), str(HERE / "seed_job.py"), "--docdb-host", docdb_host, "--moto-url", stack.moto_url],
        # No PYTHONPATH: ours would put our biodata_cache before 0.33.2's.
        env={
            **{k: v for k, v in stack.env.items() if k != "PYTHONPATH"},
            "PATH": str(python.parent),
            "HOME": tempfile.gettempdir(),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"biodata-cache 0.33.2 failed ({done.returncode}):\n{done.stderr[-4000:]}")
    stats = stack.docdb_admin("stats")
    inner = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "wall_seconds": round(wall, 2),
        "update_all_tables_seconds": inner["wall_seconds"],
        "docdb_requests": stats["requests_total"],
        "docdb_records": stats["records_returned"],
    }


def main(argv: list[str] | None = None) -> int:
    sys.path[:0] = [str(HERE.parent / p) for p in ("layers/sync", "client/src", "local")]
    from bdc_local import corpus
    from bdc_local.stack import StackConfig, local_stack

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=40.0)
    parser.add_argument("--per-record-ms", type=float, default=0.02)
    args = parser.parse_args(argv)
    seed_python()
    records = corpus.generate_corpus(args.n, seed=args.seed)
    path = Path(tempfile.mkdtemp(prefix="bdc-seed-")) / "records.jsonl"
    corpus.write_jsonl(records, path)
    config = StackConfig(docdb_latency_ms=args.latency_ms, docdb_per_record_ms=args.per_record_ms)
    with local_stack(path, config=config) as stack:
        stack.load_sources(records, seed=args.seed)
        full = run_seed(stack)
        print(f"0.33.2 first build at {args.n} assets: {full}")
        unchanged = run_seed(stack)
        print(f"0.33.2 unchanged rerun: {unchanged}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
