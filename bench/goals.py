"""The figures of the performance goals, collected into bench/results/nightly.json.

    .venv/bin/python bench/goals.py

No run of its own: it reads the results files that measured each figure and writes
one file with every goal's key, its goal, whether it is met, and where it comes from
(``sources``: the results file and the command that wrote it). The comparison with
biodata-cache 0.33.2 and the freshness come from ``make bench`` at 20,000 assets (the
old job is slow); the unchanged run at 100,000 assets, and the monthly cost computed
from it, from the 100,000-asset run of bench/docdb_limits.py (real record sizes, the
gateway-like stand-in, then a run with nothing changed).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
sys.path.insert(0, str(REPO / "bench"))

from nightly import SEED_KEYS, monthly_costs  # noqa: E402

# The results files, and the command that writes each when the file does not say.
SEED_COMPARISON = ("nightly-20k.json", "make bench  # bench/nightly.py --n 20000")
UNCHANGED_100K = (
    "docdb_limits-100k.json",
    "bench/docdb_limits.py --n 100000 --caps 1 --workers 32 --unchanged-run "
    "--out bench/results/docdb_limits-100k.json",
)

UNCHANGED_KEYS = (
    "unchanged_run_docdb_requests_100k",
    "unchanged_run_gb_seconds_100k",
    "unchanged_run_lambda_invocations_100k",
)


def goals(figures: dict[str, Any], freshness_interval: float) -> dict[str, dict[str, Any]]:
    """Each goal of the issue: its bound and whether the figure meets it."""
    bounds = {
        "speedup_vs_seed_full": (">=", 1.5),
        "request_ratio_vs_seed_full": (">=", 10),
        "speedup_vs_seed_unchanged": (">=", 8),
        "projected_speedup_vs_seed_full": (">=", 8),
        "unchanged_run_docdb_requests_100k": ("<=", 5),
        "monthly_cost_15min_usd": ("<=", 5),
        "freshness_seconds": ("<=", freshness_interval + 120),
    }
    out = {}
    for key, (op, bound) in bounds.items():
        value = figures[key]
        out[key] = {"goal": f"{op} {bound:g}", "met": value >= bound if op == ">=" else value <= bound}
    return out


def collect(results: Path = RESULTS) -> dict[str, Any]:
    """The goals' figures from the results files, each with its source."""
    figures: dict[str, Any] = {}
    sources: dict[str, dict[str, str]] = {}

    def take(source: tuple[str, str], keys: tuple[str, ...]) -> dict[str, Any]:
        name, command = source
        data = json.loads((results / name).read_text())
        origin = {"file": f"bench/results/{name}", "command": data.get("command", command)}
        for key in keys:
            figures[key] = data[key]
            sources[key] = origin
        return data

    seed = take(SEED_COMPARISON, SEED_KEYS)
    limits = json.loads((results / UNCHANGED_100K[0]).read_text())
    if len(limits["runs"]) != 1:
        raise ValueError(f"{UNCHANGED_100K[0]}: expected the run of one cap, got {len(limits['runs'])}")
    run = limits["runs"][0]
    if limits["corpus_records"] != 100_000:
        raise ValueError(f"{UNCHANGED_100K[0]}: {limits['corpus_records']} records, not 100,000")
    origin = {
        "file": f"bench/results/{UNCHANGED_100K[0]}",
        "command": limits.get("command", UNCHANGED_100K[1]),
    }
    for key in UNCHANGED_KEYS:
        figures[key] = run[key]
        sources[key] = origin
    # Recomputed here from the run's unchanged figures, so the prices in one place apply.
    for key, value in monthly_costs(run).items():
        figures[key] = value
        sources[key] = {**origin, "computed": "bench/nightly.py monthly_costs() of runs[0].unchanged"}
    interval = float(seed["freshness"]["interval_seconds"])
    figures["freshness_interval_seconds"] = interval
    sources["freshness_interval_seconds"] = sources["freshness_seconds"]
    return {
        **figures,
        "goals": goals(figures, interval),
        "sources": sources,
        "written_by": "bench/goals.py",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS, help="the results files' folder")
    parser.add_argument("--out", type=Path, default=RESULTS / "nightly.json")
    args = parser.parse_args(argv)
    collected = collect(args.results)
    args.out.write_text(json.dumps(collected, indent=1) + "\n")
    for key, goal in collected["goals"].items():
        print(f"{key}: {collected[key]} ({goal['goal']}: {'met' if goal['met'] else 'NOT met'})")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
