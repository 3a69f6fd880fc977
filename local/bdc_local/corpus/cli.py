"""Command line: ``python -m bdc_local.corpus --n 100000 --seed 0 --out records.jsonl``."""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Sequence
from typing import IO

from bdc_local.corpus.builder import generate_corpus, iter_corpus
from bdc_local.corpus.families import Record
from bdc_local.corpus.jsonl import write_jsonl
from bdc_local.corpus.malformed import malformed_records
from bdc_local.corpus.v1 import v1_records

DESCRIPTION = "Deterministic synthetic corpus of AIND metadata records (DocDB schema v2)."


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bdc_local.corpus", description=DESCRIPTION)
    parser.add_argument("--n", type=int, default=2000, help="number of valid v2 records")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--subjects", type=int, default=None, help="number of subjects (default n/12)")
    parser.add_argument("--malformed", type=int, default=0, help="also append this many damaged records")
    parser.add_argument("--out", default="-", help="output JSON-lines file ('-' for stdout)")
    parser.add_argument("--v1", type=int, default=0, help="number of v1 records to write to --v1-out")
    parser.add_argument("--v1-out", default=None, help="JSON-lines file for the v1 records")
    args = parser.parse_args(argv)

    if args.v1 and not args.v1_out:
        parser.error("--v1 needs --v1-out")
    extra = malformed_records(args.malformed, seed=args.seed) if args.malformed else []
    # Stream unless the v1 records need the whole corpus: 100,000 records in memory take ~1.6 GB.
    records: list[Record] | None = None
    if args.v1:
        records = generate_corpus(args.n, seed=args.seed, subjects=args.subjects)
    stream = records if records is not None else iter_corpus(args.n, seed=args.seed, subjects=args.subjects)
    target: str | IO[str] = sys.stdout if args.out == "-" else args.out
    written = write_jsonl(itertools.chain(stream, extra), target)
    if records is not None:
        write_jsonl(v1_records(records, args.v1, seed=args.seed), args.v1_out)
    print(f"wrote {written} records ({len(extra)} malformed)", file=sys.stderr)
    return 0

