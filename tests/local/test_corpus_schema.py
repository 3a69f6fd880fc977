"""The generated corpus speaks aind-data-schema 2.x: every well-formed record validates.

The deliberately malformed set (``malformed_records``) is counted apart: it is where the
shapes outside the schema live, and most of it must fail validation (a damage kind that
always validates would teach the tables nothing a well-formed record does not).
"""

from __future__ import annotations

import pytest

from bdc_local.corpus import generate_corpus, load_fixture, malformed_records
from bdc_local.schema_check import CORE_MODELS, count, record_errors


@pytest.mark.parametrize("seed", [0, 7])
def test_every_well_formed_record_validates(seed: int) -> None:
    records = generate_corpus(2000, seed=seed)
    counts = count(records)
    failing = {name: record_errors(r) for r in records if (name := r["name"]) and record_errors(r)}
    assert counts.failing_records == 0, (counts.table(), list(failing.items())[:3])
    # Every core file the tables read is there (and so was checked) in most records.
    for core_file in ("data_description", "subject", "procedures", "acquisition", "processing"):
        assert counts.present[core_file] > 0.9 * counts.records, counts.table()
    assert counts.present["quality_control"] > 0.3 * counts.records


def test_full_size_records_validate_too() -> None:
    # The 0.15 % full-size records carry the fixtures' whole instruments, calibrations
    # and QC: a larger corpus has enough of them to check.
    records = [r for r in generate_corpus(6000, seed=3) if len(str(r.get("instrument"))) > 10_000]
    assert records
    assert [r["name"] for r in records if record_errors(r)] == []


def test_malformed_set_is_counted_apart() -> None:
    damaged = malformed_records(200, seed=0)
    counts = count(damaged)
    print(counts.table())
    assert counts.failing_records > 0.5 * counts.records, counts.table()


def test_the_real_fixtures_validate_except_known_procedures() -> None:
    # Real records: every core file validates but three procedures files (the two VR ones
    # share a Water restriction without ethics_review_id; fib's viral materials have a null name).
    failing = {}
    for name in ("vr_foraging_raw", "vr_foraging_derived", "pophys_derived", "fib_derived"):
        failing[name] = sorted(record_errors(load_fixture(name)))
    assert failing == {
        "vr_foraging_raw": ["procedures"],
        "vr_foraging_derived": ["procedures"],
        "pophys_derived": [],
        "fib_derived": ["procedures"],
    }
    assert set(CORE_MODELS) >= {"acquisition", "procedures", "quality_control"}
