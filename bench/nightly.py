"""The nightly run at AIND's scale, on the local stack, against its own baselines.

    make bench                      # 20,000 assets, beside biodata-cache 0.33.2
    make bench ARGS="--n 100000 --no-seed-baseline"   # AIND's scale, ~8,000 subjects

Measures, in one run of this script:
1. a full nightly run (32 concurrent workers): wall time, DocDB requests, bytes
   written, each table's duration, the critical path and the Lambda GB-seconds;
2. the same tables built one after another in one process (the old nightly job);
3. a second run with nothing changed; 4. a run after 1% of records changed;
5. the worker's peak memory building asset_basics and the largest QC chunk, each
   in a fresh process as Lambda would run it.
On this host every worker shares a few cores and one moto process, so the full run's
speedup over the sequential baseline is bounded by the host, not by the design. The
"Lambda projection" schedules the run's steps (tables, plans, chunks, finishes) at
their uncontended durations, measured in the sequential baseline, on 32 workers with
the queue hop measured in the full run: the wall time the design gives when each
worker has a CPU of its own, as on Lambda. It is a projection and is labelled so.
The local DocDB API models the real one: 40 ms a request plus 0.02 ms a returned
record, 6 MB pages. Figures are printed and written to bench/results/nightly-<scale>.json
(``nightly-20k.json`` for 20,000 assets); bench/goals.py collects the goals' figures
from the results files into bench/results/nightly.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for part in ("layers/sync", "client/src", "local", "bench"):
    sys.path.insert(0, str(REPO / part))

from seed_baseline import run_seed  # noqa: E402  (biodata-cache 0.33.2 in its own venv)

import biodata_cache as client  # noqa: E402
from bdc_local import corpus  # noqa: E402
from bdc_local.cfn import load_template  # noqa: E402
from bdc_local.freshness import measure_freshness  # noqa: E402
from bdc_local.runner import RunResult, run_and_wait  # noqa: E402
from bdc_local.stack import LocalStack, StackConfig, local_stack  # noqa: E402
from biodata_cache import layout  # noqa: E402
from biodata_cache.catalog import get_spec  # noqa: E402

TEMPLATE_PARAMETERS = load_template()["Parameters"]
# The worker's configured memory (template.yaml's WorkerMemorySize default), in GB.
WORKER_MEMORY_GB = float(TEMPLATE_PARAMETERS["WorkerMemorySize"]["Default"]) / 1024
# How often sources in other buckets are re-read while the input tables are unchanged
# (template.yaml's SourceRecheckSeconds default): the benchmarks' stacks use it.
SOURCE_RECHECK_SECONDS = int(TEMPLATE_PARAMETERS["SourceRecheckSeconds"]["Default"])
USD_PER_GB_SECOND = 0.0000166667  # Lambda on x86_64, us-west-2, first pricing tier
RESULTS = REPO / "bench" / "results"

# us-west-2 list prices as publicly known in 2025 (DynamoDB on-demand after its
# November 2024 reduction); free tiers ignored. Lambda GB-second: USD_PER_GB_SECOND.
USD_PER_LAMBDA_REQUEST = 0.20 / 1e6
USD_PER_SQS_REQUEST = 0.40 / 1e6
USD_PER_DYNAMODB_WRITE = 0.625 / 1e6
USD_PER_DYNAMODB_READ = 0.125 / 1e6
USD_PER_S3_PUT_OR_LIST = 0.005 / 1000
USD_PER_S3_GET = 0.0004 / 1000
# The comparison with biodata-cache 0.33.2 and the freshness figure (bench/goals.py
# collects these into nightly.json).
SEED_KEYS = (
    "seed_full_wall_s",
    "seed_full_docdb_requests",
    "seed_unchanged_wall_s",
    "seed_unchanged_docdb_requests",
    "speedup_vs_seed_full",
    "request_ratio_vs_seed_full",
    "speedup_vs_seed_unchanged",
    "projected_speedup_vs_seed_full",
    "freshness_seconds",
)
CADENCE_SECONDS = {"15min": 900, "hourly": 3600, "nightly": 86400}
# The SQS event source polls both queues whether or not a run is on: about 5 pollers
# a queue, one 20 s long poll each at a time.
IDLE_SQS_REQUESTS_PER_MONTH = 2 * 5 * 3 * 60 * 24 * 30


def monthly_costs(figures: dict[str, Any]) -> dict[str, float]:
    """Monthly USD of unchanged runs at each cadence, from the unchanged run's measured
    Lambda GB-seconds (each invocation timed alone) and invocations.

    A run re-reads the sources in other teams' buckets at most every
    ``SOURCE_RECHECK_SECONDS`` (``lambda_gb_seconds_sources_read``: an unchanged run
    that does); the others skip them (``lambda_gb_seconds``). So a cadence of interval
    I pays the first in min(1, I / recheck) of its runs. SQS, DynamoDB and S3
    requests per run are estimated from the flow (per invocation: 3 SQS requests for
    its message, 6 ledger writes and 4 reads, 8 S3 GETs/HEADs and 1 PUT/LIST)."""
    unchanged = figures["unchanged"]
    invocations = unchanged["lambda_invocations"]
    skipping = unchanged["lambda_gb_seconds"]
    reading = unchanged.get("lambda_gb_seconds_sources_read", skipping)
    recheck = float(unchanged.get("source_recheck_seconds") or 0)
    requests = (
        invocations * USD_PER_LAMBDA_REQUEST
        + invocations * 3 * USD_PER_SQS_REQUEST
        + invocations * (6 * USD_PER_DYNAMODB_WRITE + 4 * USD_PER_DYNAMODB_READ)
        + invocations * (8 * USD_PER_S3_GET + 1 * USD_PER_S3_PUT_OR_LIST)
    )
    idle = IDLE_SQS_REQUESTS_PER_MONTH * USD_PER_SQS_REQUEST
    costs = {}
    for cadence, interval in CADENCE_SECONDS.items():
        runs = 30 * 86400 / interval
        reads = min(1.0, interval / recheck) if recheck > 0 else 1.0
        gb_seconds = reads * reading + (1 - reads) * skipping
        per_run = gb_seconds * USD_PER_GB_SECOND + requests
        costs[f"monthly_cost_{cadence}_usd"] = round(runs * per_run + idle, 2)
    return costs


def critical_path(result: RunResult) -> tuple[float, list[str]]:
    """The longest chain of dependent tables, by each table's own build time."""
    durations = {
        name: float(item["finished_at"]) - float(item["started_at"])
        for name, item in result.tables.items()
        if item.get("started_at") and item.get("finished_at")
    }
    best: dict[str, tuple[float, list[str]]] = {}

    def longest(name: str) -> tuple[float, list[str]]:
        if name not in best:
            deps = [d for d in result.tables[name].get("depends_on", []) if d in durations]
            before = max((longest(d) for d in deps), default=(0.0, []))
            best[name] = (before[0] + durations.get(name, 0.0), [*before[1], name])
        return best[name]

    return max((longest(name) for name in durations), default=(0.0, []))


def gb_seconds(result: RunResult, stack: LocalStack) -> float:
    """Lambda GB-seconds from measured durations: every table and every chunk."""
    from bdc_local.runner import ledger_for

    ledger = ledger_for(stack)
    seconds = 0.0
    for name, item in result.tables.items():
        seconds += float(item.get("duration_seconds") or 0.0)
        if item.get("chunks"):
            seconds -= float(item.get("duration_seconds") or 0.0)  # chunk durations, summed below
            seconds += sum(
                float(c.get("duration_seconds") or 0.0)
                for c in ledger.chunk_items(result.run_id, name).values()
            )
    return seconds * WORKER_MEMORY_GB


def docdb_figures(stack: LocalStack) -> dict[str, Any]:
    stats = stack.docdb_admin("stats")
    return {
        "requests": stats["requests_total"],
        "records": stats["records_returned"],
        "server_seconds": stats["processing_seconds"],
    }


def cpu_seconds(stack: LocalStack) -> dict[str, float]:
    """CPU time used so far by the moto server, the DocDB stand-in and this process
    (whose threads are the emulated Lambda workers)."""
    ticks = os.sysconf("SC_CLK_TCK")

    def of_process(pid: int) -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime

    moto, docdb = stack.processes[:2]
    own = os.times()
    return {
        "moto_server": of_process(moto.pid),
        "docdb_server": of_process(docdb.pid),
        "workers": own.user + own.system,
    }


def cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: round(after[name] - before[name], 1) for name in before}


def run_measured(stack: LocalStack, workers: int) -> tuple[RunResult, dict[str, Any]]:
    stack.docdb_admin("reset_stats", {})
    before = cpu_seconds(stack)
    result = run_and_wait(stack, workers=workers, timeout=4 * 3600)
    return result, {**docdb_figures(stack), "cpu_seconds": cpu_used(before, cpu_seconds(stack))}


def scale_name(records: int) -> str:
    """``100k`` for 100,000 records: the suffix of the ``unchanged_run_*`` keys."""
    return f"{records // 1000}k" if records % 1000 == 0 else str(records)


def measure_unchanged_run(stack: LocalStack, workers: int, records: int) -> tuple[RunResult, dict[str, Any]]:
    """Runs with nothing changed since the last; figures under ``unchanged`` and as the
    ``unchanged_run_*_<scale>`` keys.

    The first, with ``workers`` workers, gives the wall time, the DocDB requests, the
    tables rebuilt and the Lambda invocations (dispatcher + finalizer + one a build
    attempt, from the ledger). Its durations are *contended*: ``workers`` threads and
    the two servers share this host's cores, so an invocation's duration is largely
    waiting for a core, which a Lambda invocation (one vCPU of its own at the worker's
    1769 MB) does not. So it is run again with one worker, each invocation timed
    alone: the durations Lambda bills, and the GB-seconds the cost uses
    (``lambda_gb_seconds``; the contended ones stay beside them as a ceiling). These
    runs come right after a build, so the sources in other buckets are not due to be
    read again; a third run, one worker again with ``SOURCE_RECHECK_SECONDS=0``,
    measures a run that reads them (``lambda_gb_seconds_sources_read``).
    """
    unchanged, docdb = run_measured(stack, workers)
    invocations = 2 + sum(int(i.get("attempts") or 0) for i in unchanged.tables.values())
    alone, alone_docdb = run_measured(stack, 1)
    recheck = stack.env.get("SOURCE_RECHECK_SECONDS", "0")
    os.environ["SOURCE_RECHECK_SECONDS"] = "0"
    try:
        reading, reading_docdb = run_measured(stack, 1)
    finally:
        os.environ["SOURCE_RECHECK_SECONDS"] = recheck
    run = {
        "wall_seconds": round(unchanged.wall_seconds, 2),
        "docdb": docdb,
        "rebuilt": rebuilt(unchanged),
        "lambda_invocations": invocations,
        "lambda_gb_seconds": round(gb_seconds(alone, stack), 2),
        "lambda_gb_seconds_contended": round(gb_seconds(unchanged, stack), 2),
        "lambda_gb_seconds_sources_read": round(gb_seconds(reading, stack), 2),
        "source_recheck_seconds": int(recheck),
        "one_worker": one_worker_figures(alone, alone_docdb),
        "one_worker_sources_read": one_worker_figures(reading, reading_docdb),
    }
    print(
        f"unchanged run: {unchanged.wall_seconds:.1f} s, {docdb['requests']} DocDB requests, "
        f"rebuilt {run['rebuilt']}, {invocations} Lambda invocations, "
        f"{run['lambda_gb_seconds']} GB-s one at a time ({run['lambda_gb_seconds_contended']} GB-s "
        f"with {workers} workers sharing the host; {run['lambda_gb_seconds_sources_read']} GB-s "
        "one at a time when the sources in other buckets are read again)",
        flush=True,
    )
    scale = scale_name(records)
    return unchanged, {
        "unchanged": run,
        f"unchanged_run_docdb_requests_{scale}": docdb["requests"],
        f"unchanged_run_gb_seconds_{scale}": run["lambda_gb_seconds"],
        f"unchanged_run_lambda_invocations_{scale}": invocations,
    }


def rebuilt(result: RunResult) -> list[str]:
    return sorted(name for name, item in result.tables.items() if item["status"] != "unchanged")


def one_worker_figures(result: RunResult, docdb: dict[str, Any]) -> dict[str, Any]:
    """A run with one worker: wall, DocDB requests, what it rebuilt, each build's seconds."""
    return {
        "wall_seconds": round(result.wall_seconds, 2),
        "docdb_requests": docdb["requests"],
        "rebuilt": rebuilt(result),
        "seconds_by_table": {
            name: round(float(item.get("duration_seconds") or 0.0), 2)
            for name, item in sorted(result.tables.items())
        },
    }


def sequential_baseline(stack: LocalStack) -> dict[str, Any]:
    """Every table built from scratch, one after another, in this process.

    A chunked table's plan, chunks and finish run back to back; each step is timed,
    which gives the uncontended step durations the Lambda projection schedules.
    """
    from bdc_sync.chunked import ChunkedBuild
    from bdc_sync.framework import BuildContext
    from bdc_sync.settings import settings_from_env
    from bdc_sync.tables import BUILDS, buildable_tables

    bucket = "bdc-sequential-baseline"
    stack.s3().create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    for key in (
        stack.s3()
        .list_objects_v2(
            Bucket=stack.config.bucket, Prefix=layout.folder_prefix(layout.package_folder()) + "custom/"
        )
        .get("Contents", [])
    ):
        stack.s3().copy_object(
            Bucket=bucket, Key=key["Key"], CopySource={"Bucket": stack.config.bucket, "Key": key["Key"]}
        )
    # One process, as the old job: the pickle is decoded here too (the stack's decoder
    # function would stage it in the stack's bucket, not this one).
    settings = settings_from_env().model_copy(update={"cache_bucket": bucket, "decoder_function": ""})
    order = topological(buildable_tables())
    stack.docdb_admin("reset_stats", {})
    seconds: dict[str, float] = {}
    steps: dict[str, dict[str, Any]] = {}
    cpu_before = cpu_seconds(stack)
    started = time.monotonic()
    for name in order:
        ctx = BuildContext(settings, "sequential")
        build = BUILDS[name]
        begin = time.monotonic()
        if isinstance(build, ChunkedBuild):
            planned = build.plan(ctx)
            plan_seconds = time.monotonic() - begin
            chunk_seconds: list[float] = []
            if isinstance(planned, int):
                statuses = {}
                for index in range(planned):
                    chunk_began = time.monotonic()
                    statuses[index] = build.build_chunk(BuildContext(settings, "sequential"), index).status
                    chunk_seconds.append(time.monotonic() - chunk_began)
                finish_began = time.monotonic()
                build.finish(ctx, statuses)
                build.clean_up(ctx, planned)
                steps[name] = {
                    "plan": plan_seconds,
                    "chunks": chunk_seconds,
                    "finish": time.monotonic() - finish_began,
                }
            else:
                steps[name] = {"plan": plan_seconds, "chunks": [], "finish": 0.0}
        else:
            build.build(ctx)
        seconds[name] = time.monotonic() - begin
        steps.setdefault(name, {"plan": seconds[name], "chunks": [], "finish": 0.0})
    return {
        "wall_seconds": time.monotonic() - started,
        "tables": seconds,
        "steps": steps,
        "docdb": docdb_figures(stack),
        "cpu_seconds": cpu_used(cpu_before, cpu_seconds(stack)),
    }


def queue_hop_seconds(result: RunResult) -> float:
    """Median time from a table being queued to a worker starting it, in the full run."""
    hops = sorted(
        float(item["started_at"]) - float(item["queued_at"])
        for item in result.tables.values()
        if item.get("started_at") and item.get("queued_at")
    )
    return hops[len(hops) // 2] if hops else 0.0


def projected_run(steps: dict[str, dict[str, Any]], workers: int, hop: float) -> tuple[float, float]:
    """Wall time of the run on Lambda: every step at its uncontended duration.

    A discrete-event schedule of the run's steps on ``workers`` concurrent workers:
    a table (or a chunked table's plan) starts ``hop`` seconds after the tables it
    reads are finished, each chunk ``hop`` after its plan, and the finish right after
    the last chunk (it runs in that chunk's invocation). Returns the run's wall time
    and its critical path (the same schedule with unlimited workers).
    """
    import heapq

    def schedule(slots: float) -> float:
        tasks: dict[str, tuple[float, float, list[str]]] = {}  # name: (seconds, hop, after)
        for table, step in steps.items():
            after = [f"{dep}:done" for dep in get_spec(table).depends_on if dep in steps]
            if step["chunks"]:
                tasks[f"{table}:plan"] = (step["plan"], hop, after)
                chunks = [f"{table}:chunk{i}" for i in range(len(step["chunks"]))]
                for chunk, seconds in zip(chunks, step["chunks"], strict=True):
                    tasks[chunk] = (seconds, hop, [f"{table}:plan"])
                tasks[f"{table}:done"] = (step["finish"], 0.0, chunks)
            else:
                tasks[f"{table}:done"] = (step["plan"], hop, after)
        waiting = {name: len(after) for name, (_, _, after) in tasks.items()}
        followers: dict[str, list[str]] = {name: [] for name in tasks}
        for name, (_, _, after) in tasks.items():
            for before in after:
                followers[before].append(name)
        ready = [(tasks[name][1], name) for name, count in waiting.items() if count == 0]
        heapq.heapify(ready)
        running: list[tuple[float, str]] = []
        free, now = slots, 0.0
        while ready or running:
            while free > 0 and ready and ready[0][0] <= now:
                _, name = heapq.heappop(ready)
                heapq.heappush(running, (now + tasks[name][0], name))
                free -= 1
            upcoming = [running[0][0]] if running else []
            if ready and free > 0:
                upcoming.append(ready[0][0])
            now = max(now, min(upcoming))
            while running and running[0][0] <= now:
                _, name = heapq.heappop(running)
                free += 1
                for follower in followers[name]:
                    waiting[follower] -= 1
                    if waiting[follower] == 0:
                        heapq.heappush(ready, (now + tasks[follower][1], follower))
        return now

    return schedule(workers), schedule(float("inf"))


def topological(names: list[str]) -> list[str]:
    done: list[str] = []

    def visit(name: str) -> None:
        if name in done:
            return
        for dep in get_spec(name).depends_on:
            if dep in names:
                visit(dep)
        done.append(name)

    for name in names:
        visit(name)
    return done


PEAK_SCRIPT = """
import json, resource, sys
from bdc_sync.chunked import SubjectPartitionedTable
from bdc_sync.framework import BuildContext
from bdc_sync.settings import settings_from_env
from bdc_sync.tables import BUILDS
settings = settings_from_env().model_copy(update={"cache_bucket": sys.argv[2]})
build = BUILDS[sys.argv[1]]
ctx = BuildContext(settings, "peak-" + sys.argv[1])
if isinstance(build, SubjectPartitionedTable):
    chunks = build.plan(ctx)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    plan = ctx.cache.get_json(build._plan_key(ctx))[0]
    sizes = [sum(len(plan["changed"].get(s, [])) for s in chunk) for chunk in plan["chunks"]]
    build.build_chunk(ctx, sizes.index(max(sizes)))
else:
    build.build(ctx)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork+exec from the parent.
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"peak_rss_mb": int(hwm.split()[1]) / 1024}))
"""


def peak_memory(stack: LocalStack, table: str, bucket: str) -> float:
    """Peak RSS (MB) of a fresh process building one table (or its largest chunk) from
    scratch in ``bucket``, with the files of the tables that list its records copied in
    from the run's (asset_basics': metadata_core's)."""
    from bdc_sync.flow.dispatch import listing_sources

    for source in listing_sources(table):
        key = layout.table_key(layout.package_folder(), source)
        stack.s3().copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": stack.config.bucket, "Key": key})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(REPO / p) for p in ("layers/sync", "client/src"))}
    output = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, table, bucket],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(json.loads(output.strip().splitlines()[-1])["peak_rss_mb"])


def count_subjects(records: list[dict[str, Any]]) -> int:
    return len({r["subject"].get("subject_id") for r in records if isinstance(r.get("subject"), dict)})


def table_figures(result: RunResult) -> dict[str, Any]:
    return {
        name: {
            "status": item["status"],
            "rows": item.get("rows"),
            "seconds": round(float(item["finished_at"]) - float(item["started_at"]), 2)
            if item.get("started_at") and item.get("finished_at")
            else None,
            "docdb_requests": item.get("docdb_requests"),
            "bytes_written": item.get("bytes_written"),
        }
        for name, item in sorted(result.tables.items())
    }


def print_projections(figures: dict[str, Any]) -> int:
    """How the projection of one run's steps moves with the queue hop and the workers."""
    steps, sequential = figures["sequential"]["steps"], figures["sequential"]["wall_seconds"]
    print("workers  hop s  projected wall s  critical path s  speedup vs sequential")
    for workers, hop in ((32, 0.05), (32, 0.5), (32, 1.0), (32, 2.0), (16, 0.5), (64, 0.5)):
        wall, path = projected_run(steps, workers, hop)
        print(f"{workers:>7}  {hop:>5}  {wall:>16.1f}  {path:>15.1f}  {sequential / wall:>21.2f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # 20,000: the scale of the comparison with the old job (0.33.2 is slow); the
    # README's 100,000-asset figures come from --n 100000 --no-seed-baseline.
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument(
        "--no-seed-baseline",
        action="store_true",
        help="skip biodata-cache 0.33.2's update_all_tables() (first build and unchanged rerun)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--latency-ms", type=float, default=40.0)
    parser.add_argument("--per-record-ms", type=float, default=0.02)
    parser.add_argument(
        "--freshness-interval",
        type=float,
        default=15.0,
        help="seconds between the emulated schedule's ticks in the freshness measurement",
    )
    parser.add_argument("--out", type=Path, help="default bench/results/nightly-<scale>.json")
    parser.add_argument(
        "--project",
        type=Path,
        metavar="RESULTS",
        help="no run: the Lambda projection of a results file's step times, for other "
        "queue hops and worker counts",
    )
    args = parser.parse_args(argv)
    if args.project:
        return print_projections(json.loads(args.project.read_text()))

    workdir = Path(tempfile.mkdtemp(prefix="bdc-bench-"))
    began = time.monotonic()
    records = corpus.generate_corpus(args.n, seed=args.seed)
    corpus_path = workdir / "records.jsonl"
    corpus.write_jsonl(records, corpus_path)
    print(
        f"corpus: {len(records)} records, {count_subjects(records)} subjects "
        f"({time.monotonic() - began:.0f} s)"
    )
    config = StackConfig(
        docdb_latency_ms=args.latency_ms,
        docdb_per_record_ms=args.per_record_ms,
        worker_timeout_seconds=900,
        source_recheck_seconds=SOURCE_RECHECK_SECONDS,
    )
    figures: dict[str, Any] = {"corpus_records": len(records), "workers": args.workers}
    with local_stack(corpus_path, config=config) as stack:
        stack.load_sources(records, seed=args.seed)

        full, full_docdb = run_measured(stack, args.workers)
        path_seconds, path = critical_path(full)
        report = json.loads(
            stack.s3()
            .get_object(
                Bucket=stack.config.bucket, Key=layout.latest_run_report_key(layout.package_folder())
            )["Body"]
            .read()
        )
        figures["full"] = {
            "wall_seconds": round(full.wall_seconds, 2),
            "docdb": full_docdb,
            "bytes_written": report["totals"]["bytes_written"],
            "critical_path_seconds": round(path_seconds, 2),
            "critical_path": path,
            "lambda_gb_seconds": round(gb_seconds(full, stack), 1),
            "tables": table_figures(full),
        }
        print(
            f"full run: {full.wall_seconds:.1f} s wall, {full_docdb['requests']} DocDB requests, "
            f"critical path {path_seconds:.1f} s ({' → '.join(path)}), CPU s {full_docdb['cpu_seconds']}"
        )

        baseline = sequential_baseline(stack)
        figures["sequential"] = baseline
        print(
            f"sequential baseline: {baseline['wall_seconds']:.1f} s, "
            f"{baseline['docdb']['requests']} DocDB requests, CPU s {baseline['cpu_seconds']}"
        )
        hop = queue_hop_seconds(full)
        projected_wall, projected_path = projected_run(baseline["steps"], args.workers, hop)
        step_seconds = sum(
            step["plan"] + sum(step["chunks"]) + step["finish"] for step in baseline["steps"].values()
        )
        figures["lambda_projection"] = {
            "gb_seconds": round(step_seconds * WORKER_MEMORY_GB, 1),
            "usd": round(step_seconds * WORKER_MEMORY_GB * USD_PER_GB_SECOND, 4),
            "worker_memory_mb": round(WORKER_MEMORY_GB * 1024),
            "wall_seconds": round(projected_wall, 2),
            "critical_path_seconds": round(projected_path, 2),
            "queue_hop_seconds": round(hop, 2),
            "workers": args.workers,
        }
        print(
            f"Lambda projection (uncontended step times, {args.workers} workers, {hop:.2f} s a queue hop): "
            f"{projected_wall:.1f} s wall, critical path {projected_path:.1f} s"
        )

        unchanged, unchanged_figures = measure_unchanged_run(stack, args.workers, len(records))
        figures.update(unchanged_figures)
        unchanged_docdb = figures["unchanged"]["docdb"]

        if not args.no_seed_baseline:
            # The old job on the same stack and corpus, after ours (its own version folder).
            seed_full = run_seed(stack)
            print(f"biodata-cache 0.33.2 first build: {seed_full}")
            seed_unchanged = run_seed(stack)
            print(f"biodata-cache 0.33.2 unchanged rerun: {seed_unchanged}")
            figures["seed_0_33_2"] = {"full": seed_full, "unchanged": seed_unchanged}
            figures.update(
                {
                    "seed_full_wall_s": seed_full["wall_seconds"],
                    "seed_full_docdb_requests": seed_full["docdb_requests"],
                    "seed_unchanged_wall_s": seed_unchanged["wall_seconds"],
                    "seed_unchanged_docdb_requests": seed_unchanged["docdb_requests"],
                    "speedup_vs_seed_full": round(seed_full["wall_seconds"] / full.wall_seconds, 2),
                    "request_ratio_vs_seed_full": round(
                        seed_full["docdb_requests"] / max(1, full_docdb["requests"]), 2
                    ),
                    "speedup_vs_seed_unchanged": round(
                        seed_unchanged["wall_seconds"] / unchanged.wall_seconds, 2
                    ),
                    "projected_speedup_vs_seed_full": round(seed_full["wall_seconds"] / projected_wall, 2),
                }
            )

        changed = corpus.mutate_records(records, 0.01, seed=args.seed + 1)
        stack.docdb_admin("upsert?version=v2", changed)
        one_pct, one_pct_docdb = run_measured(stack, args.workers)
        figures["changed_1pct"] = {
            "records_changed": len(changed),
            "wall_seconds": round(one_pct.wall_seconds, 2),
            "docdb": one_pct_docdb,
        }
        print(f"1% changed run: {one_pct.wall_seconds:.1f} s, {one_pct_docdb['requests']} DocDB requests")

        # A record changed in DocDB while the schedule fires every interval: seconds
        # until the client reads it (bdc_local.freshness).
        client.configure()
        fresh = measure_freshness(
            stack, records[0], interval=args.freshness_interval, timeout=args.freshness_interval + 3600
        )
        figures["freshness"] = {
            "interval_seconds": fresh.interval,
            "ticks": fresh.ticks,
            "coalesced_ticks": fresh.coalesced,
        }
        figures["freshness_seconds"] = fresh.seconds
        print(f"freshness: {fresh.seconds:.1f} s at a {fresh.interval:.0f} s interval, {fresh}")

        peak_bucket = "bdc-peak-memory"
        stack.s3().create_bucket(
            Bucket=peak_bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
        )
        peaks = {
            table: peak_memory(stack, table, peak_bucket) for table in ("asset_basics", "quality_control")
        }
        figures["worker_peak_rss_mb_by_table"] = peaks

        basics_size = stack.s3().head_object(
            Bucket=stack.config.bucket, Key=layout.table_key(layout.package_folder(), "asset_basics")
        )["ContentLength"]
        basics_rows = full.tables["asset_basics"]["rows"]
        docdb_requests = full_docdb["requests"] or 1
    server_ms = 1000 * full_docdb["server_seconds"] / docdb_requests
    figures.update(
        {
            "speedup_vs_sequential": round(baseline["wall_seconds"] / full.wall_seconds, 2),
            "critical_path_ratio": round(full.wall_seconds / path_seconds, 2) if path_seconds else None,
            "projected_speedup_vs_sequential": round(baseline["wall_seconds"] / projected_wall, 2),
            "projected_critical_path_ratio": round(projected_wall / projected_path, 2),
            "unchanged_run_request_share": round(unchanged_docdb["requests"] / docdb_requests, 4),
            "changed_1pct_request_share": round(one_pct_docdb["requests"] / docdb_requests, 4),
            "worker_peak_rss_mb": round(max(peaks.values()), 1),
            "asset_basics_bytes_per_row": round(basics_size / max(1, basics_rows), 1),
            "docdb_server_ms_per_request": round(server_ms, 2),
            "docdb_server_share_of_modelled_latency": round(server_ms / args.latency_ms, 3)
            if args.latency_ms
            else None,
            "host_cores": os.cpu_count(),
            "bench_seconds": round(time.monotonic() - began, 1),
            "bench_peak_rss_mb_this_process": round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
            ),
        }
    )
    figures.update(monthly_costs(figures))
    for key in (
        *monthly_costs(figures),
        "speedup_vs_sequential",
        "critical_path_ratio",
        "projected_speedup_vs_sequential",
        "projected_critical_path_ratio",
        "unchanged_run_request_share",
        "changed_1pct_request_share",
        "worker_peak_rss_mb",
        "asset_basics_bytes_per_row",
        "docdb_server_ms_per_request",
        "docdb_server_share_of_modelled_latency",
        *SEED_KEYS,
    ):
        if key in figures:
            print(f"{key}: {figures[key]}")
    out = args.out or RESULTS / f"nightly-{scale_name(len(records))}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=1) + "\n")
    print(f"written to {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
