"""A local stack per test module: moto server + local DocDB API, real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bdc_local.corpus import generate_corpus, write_jsonl
from bdc_local.stack import LocalStack, StackConfig, local_stack


def corpus_with_real_records(real_records: dict[str, dict], n: int, seed: int) -> list[dict]:
    """The four real records plus ``n`` generated ones."""
    return [*real_records.values(), *generate_corpus(n, seed=seed)]


# Session scope: with xdist's grouping, a worker may run another module's tests in
# between, and a module-scoped stack would then be torn down mid-sequence.
@pytest.fixture(scope="session")
def corpus(real_records: dict[str, dict]) -> list[dict]:
    return corpus_with_real_records(real_records, 300, seed=7)


@pytest.fixture(scope="session")
def stack(corpus: list[dict], tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    path: Path = tmp_path_factory.mktemp("corpus") / "records.jsonl"
    write_jsonl(corpus, path)
    with local_stack(path, config=StackConfig(worker_timeout_seconds=60)) as running:
        running.load_sources(corpus, seed=7)
        yield running
