"""What the record consistency checks must find, planted into the local stack.

The generated corpus has no duplicate v2 names and no open-data prefix without a
record, and a share of its v1 records exist only in v1 (see ``corpus.v1_records``).
This module adds a few of each kind, deterministically from the seed, and says which
records and prefixes it planted:

* :func:`with_duplicate_names`: copies of a few generated v2 records with a fresh
  ``_id`` and a later ``_last_modified`` but the same ``name`` (planted into the
  corpus before the stack serves it, so every table sees the same records);
* :func:`plant_sources` (called by ``LocalStack.load_sources``): v1 records whose
  names no v2 record has, and top-level prefixes in ``aind-open-data`` (one small
  object each) that no v2 record's ``location`` points to.

:func:`planted` gives the manifest again from the same inputs.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bdc_local.corpus import OPEN_DATA_BUCKET, Record

DUPLICATES = 3
V1_ONLY = 3
ORPHAN_PREFIXES = 3
_COPY_MODIFIED = "2026-06-01T00:00:00.000Z"


@dataclass(frozen=True)
class Planted:
    """The planted cases: what each check must fail, besides what the corpus itself holds."""

    duplicate_ids: frozenset[str]  # every v2 record of a planted duplicate name, originals too
    v1_records: tuple[Record, ...]  # v1 records whose names no v2 record has
    orphan_prefixes: tuple[str, ...]  # top-level prefix names (no slash) without a record

    @property
    def v1_only_ids(self) -> frozenset[str]:
        return frozenset(r["_id"] for r in self.v1_records)


def _rng(seed: int, what: str) -> random.Random:
    return random.Random(f"consistency:{what}:{seed}")


def _fresh_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _originals(records: Sequence[Record], seed: int, n: int) -> list[Record]:
    named = sorted(
        (r for r in records if isinstance(r.get("name"), str) and isinstance(r.get("_id"), str)),
        key=lambda r: r["_id"],
    )
    return _rng(seed, "duplicates").sample(named, min(n, len(named)))


def duplicate_copies(records: Sequence[Record], *, seed: int, n: int = DUPLICATES) -> list[Record]:
    """Copies of ``n`` records with a fresh ``_id`` and a later ``_last_modified``."""
    rng = _rng(seed, "copy-ids")
    taken = {r.get("_id") for r in records}
    copies = []
    for original in _originals(records, seed, n):
        copy = dict(original)
        while (rid := _fresh_id(rng)) in taken:
            pass
        copy["_id"] = rid
        copy["_last_modified"] = _COPY_MODIFIED
        copies.append(copy)
    return copies


def with_duplicate_names(records: Sequence[Record], *, seed: int, n: int = DUPLICATES) -> list[Record]:
    """The corpus plus :func:`duplicate_copies` (the originals stay as they are)."""
    return [*records, *duplicate_copies(records, seed=seed, n=n)]


def _free_names(records: Sequence[Record], rng: random.Random, n: int, prefix: str) -> list[str]:
    """Asset-like names that no record has (subjects 990000+, dates in 2019)."""
    names = {r.get("name") for r in records}
    found: list[str] = []
    while len(found) < n:
        name = (
            f"{prefix}_{rng.randint(990_000, 999_999)}_2019-0{rng.randint(1, 9)}-"
            f"{rng.randint(10, 28)}_{rng.randint(10, 23)}-00-00"
        )
        if name not in names and name not in found:
            found.append(name)
    return found


def planted(records: Sequence[Record], *, seed: int) -> Planted:
    """The manifest of what :func:`with_duplicate_names` and :func:`plant_sources` plant."""
    corpus = [r for r in records if r.get("_last_modified") != _COPY_MODIFIED]
    originals = {r["name"]: r for r in _originals(corpus, seed, DUPLICATES)}
    copies = [r for r in records if r.get("_last_modified") == _COPY_MODIFIED and r.get("name") in originals]
    duplicate_ids = frozenset(str(r["_id"]) for r in [*copies, *(originals[c["name"]] for c in copies)])
    rng = _rng(seed, "v1-only")
    v1 = tuple(
        {
            "_id": _fresh_id(rng),
            "name": name,
            "location": f"s3://{OPEN_DATA_BUCKET}/{name}",
            "schema_version": "1.1.1",
            "data_description": {"name": name, "data_level": "raw"},
        }
        for name in _free_names(records, rng, V1_ONLY, "ecephys")
    )
    orphans = tuple(_free_names(records, _rng(seed, "orphans"), ORPHAN_PREFIXES, "behavior"))
    return Planted(duplicate_ids=duplicate_ids, v1_records=v1, orphan_prefixes=orphans)


def plant_sources(
    s3_client: Any, upsert_v1: Callable[[list[Record]], Any], records: Sequence[Record], *, seed: int
) -> Planted:
    """Upsert the v1-only records and put one object under each orphan prefix."""
    plants = planted(records, seed=seed)
    upsert_v1(list(plants.v1_records))
    for name in plants.orphan_prefixes:
        s3_client.put_object(Bucket=OPEN_DATA_BUCKET, Key=f"{name}/behavior/notes.txt", Body=b"no record\n")
    return plants
