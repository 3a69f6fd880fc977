"""Validate DocDB records' core files against aind-data-schema 2.x (a dev/test dependency only).

The generator and the fixture sets are meant to look like what AIND's DocDB holds; the
schema's own pydantic models are the judge of that. ``python -m bdc_local.schema_check``
prints, per core file, how many records carry it and how many fail validation.
"""

from __future__ import annotations

import argparse
import importlib
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pydantic import BaseModel, ValidationError

# core file (record key) → (module, model class) in aind_data_schema.core
CORE_MODELS: dict[str, tuple[str, str]] = {
    "data_description": ("data_description", "DataDescription"),
    "subject": ("subject", "Subject"),
    "procedures": ("procedures", "Procedures"),
    "instrument": ("instrument", "Instrument"),
    "acquisition": ("acquisition", "Acquisition"),
    "processing": ("processing", "Processing"),
    "quality_control": ("quality_control", "QualityControl"),
    "model": ("model", "Model"),
}


@cache
def core_model(core_file: str) -> type[BaseModel]:
    module_name, class_name = CORE_MODELS[core_file]
    module = importlib.import_module(f"aind_data_schema.core.{module_name}")
    return getattr(module, class_name)


def core_errors(core_file: str, value: Any) -> list[str]:
    """The schema's complaints about one core file (empty when it validates)."""
    try:
        with warnings.catch_warnings():
            # The models warn about advice (no Code version, '.' in keys), not validity.
            warnings.simplefilter("ignore")
            core_model(core_file).model_validate(value)
    except ValidationError as error:
        return [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()]
    return []


def record_errors(record: dict) -> dict[str, list[str]]:
    """Core file → complaints, for each present (non-null) core file that fails."""
    failures: dict[str, list[str]] = {}
    for core_file in CORE_MODELS:
        value = record.get(core_file)
        if value is None:
            continue
        errors = core_errors(core_file, value)
        if errors:
            failures[core_file] = errors
    return failures


@dataclass
class Counts:
    """Per core file: records carrying it, records failing, and the commonest complaints."""

    present: Counter[str] = field(default_factory=Counter)
    failing: Counter[str] = field(default_factory=Counter)
    complaints: Counter[str] = field(default_factory=Counter)
    records: int = 0
    failing_records: int = 0

    def table(self) -> str:
        lines = ["| core file | present | fail validation |", "|---|---|---|"]
        for core_file in CORE_MODELS:
            if self.present[core_file]:
                lines.append(f"| {core_file} | {self.present[core_file]} | {self.failing[core_file]} |")
        lines.append(f"records: {self.records}, records with a failing core file: {self.failing_records}")
        return "\n".join(lines)


def count(records: Iterable[dict]) -> Counts:
    counts = Counts()
    for record in records:
        counts.records += 1
        for core_file in CORE_MODELS:
            if record.get(core_file) is not None:
                counts.present[core_file] += 1
        failures = record_errors(record)
        counts.failing_records += bool(failures)
        for core_file, errors in failures.items():
            counts.failing[core_file] += 1
            for error in errors[:3]:
                counts.complaints[f"{core_file}: {error}"] += 1
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    from bdc_local.corpus import generate_corpus, malformed_records

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="well-formed records to generate")
    parser.add_argument("--malformed", type=int, default=0, help="deliberately malformed records to add")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--top", type=int, default=15, help="commonest complaints to print")
    args = parser.parse_args(argv)
    print("well-formed corpus")
    counts = count(generate_corpus(args.n, seed=args.seed))
    print(counts.table())
    for complaint, times in counts.complaints.most_common(args.top):
        print(f"  {times:6d}  {complaint[:160]}")
    if args.malformed:
        print("malformed set")
        print(count(malformed_records(args.malformed, seed=args.seed)).table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
