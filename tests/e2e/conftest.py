"""A local stack per test module: moto server + local DocDB API, real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import biodata_cache as client
from bdc_local.consistency_plants import with_duplicate_names
from bdc_local.corpus import generate_corpus, write_jsonl
from bdc_local.stack import LocalStack, StackConfig, local_stack


def corpus_with_real_records(real_records: dict[str, dict], n: int, seed: int) -> list[dict]:
    """The four real records plus ``n`` generated ones of real sizes (50-130 KB, a tail near 300 KB)."""
    return [*real_records.values(), *generate_corpus(n, seed=seed, size_profile="realistic")]


# Module scope: `make test` distributes whole files to workers (--dist loadfile), so
# a module's tests run in order on one worker, and the stack's environment variables
# are restored when the module is done.
@pytest.fixture(scope="module")
def corpus(real_records: dict[str, dict]) -> list[dict]:
    # With a few duplicate names planted for the record consistency checks to find.
    return with_duplicate_names(corpus_with_real_records(real_records, 300, seed=7), seed=7)


@pytest.fixture(scope="module")
def stack(corpus: list[dict], tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    path: Path = tmp_path_factory.mktemp("corpus") / "records.jsonl"
    write_jsonl(corpus, path)
    with local_stack(path, config=StackConfig(worker_timeout_seconds=60)) as running:
        running.load_sources(corpus, seed=7)
        client.configure()  # the module functions read this stack
        yield running
