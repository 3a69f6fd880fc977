"""Real record sizes from a bounded pool: the bytes of every record, the memory of few.

The DocDB stand-in grows a corpus itself (``size_profile``); what it serves must be,
byte for byte, what the same profile gives in the generator, while the bulk is held
once in shared series.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import requests

from bdc_local import record_sizes
from bdc_local.corpus import generate_corpus
from bdc_local.docdb_server import DocDBServer


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def with_metrics(records: list[dict[str, Any]]) -> int:
    """Index of the first record with QC metrics (where the profile puts most bytes)."""
    return next(
        i
        for i, r in enumerate(records)
        if isinstance(r.get("quality_control"), dict) and r["quality_control"]["metrics"]
    )


@pytest.fixture(scope="module")
def generated() -> list[dict[str, Any]]:
    return generate_corpus(300, seed=4)


@pytest.fixture(scope="module")
def grown(generated: list[dict[str, Any]]) -> list[dict[str, Any]]:
    records = copy.deepcopy(generated)
    record_sizes.apply_profile(records, "realistic", seed=0)
    return records


def test_pieces_join_to_the_compact_json(grown: list[dict[str, Any]]) -> None:
    with_series = 0
    for record in grown[:50]:
        pieces = record_sizes.json_pieces(record)
        with_series += len(pieces) > 1
        assert "".join(pieces) == compact(record)
        assert record_sizes.compact_size(record) == len(compact(record))
    assert with_series >= 40  # records with an acquisition or QC metrics hold shared series
    # A projected copy (new dicts around the same series) encodes the same way.
    record = grown[with_metrics(grown)]
    part = {"_id": record["_id"], "quality_control": dict(record["quality_control"])}
    assert len(record_sizes.json_pieces(part)) > 1
    assert "".join(record_sizes.json_pieces(part)) == compact(part)


def test_sizes_follow_the_profile(grown: list[dict[str, Any]]) -> None:
    sizes = sorted(record_sizes.compact_size(r) for r in grown)
    median = sizes[len(sizes) // 2]
    assert 50_000 <= median <= 130_000
    assert 250_000 <= sizes[-1] <= 320_000


def test_the_bulk_is_shared_so_memory_stays_bounded(generated: list[dict[str, Any]]) -> None:
    first = copy.deepcopy(generated)
    record_sizes.apply_profile(first, "realistic", seed=21)
    pool_after_first = record_sizes.pooled_series_bytes()
    more = copy.deepcopy(generated) + generate_corpus(300, seed=5)
    record_sizes.apply_profile(more, "realistic", seed=22)
    served = sum(record_sizes.compact_size(r) for r in more)
    # 600 more records at real size add a fraction of their bytes to the pool...
    assert record_sizes.pooled_series_bytes() - pool_after_first < served / 10
    # ...and the pool as a whole is far smaller than what the records serve.
    assert record_sizes.pooled_series_bytes() < served


def test_a_record_gets_the_same_size_wherever_the_profile_is_applied(
    generated: list[dict[str, Any]], grown: list[dict[str, Any]]
) -> None:
    reordered = copy.deepcopy(generated[::-1])
    record_sizes.apply_profile(reordered, "realistic", seed=0)
    assert [compact(r) for r in reordered[::-1]] == [compact(r) for r in grown]


def test_the_stand_in_serves_the_grown_records_byte_for_byte(
    generated: list[dict[str, Any]], grown: list[dict[str, Any]]
) -> None:
    with DocDBServer(copy.deepcopy(generated), size_profile="realistic", seed=0) as server:
        url = f"{server.url}/v2/metadata_index/data_assets"
        served = requests.get(f"{url}/find", params={"limit": "40"}, timeout=30)
        assert served.status_code == 200
        assert served.content.decode() == "[" + ",".join(compact(r) for r in grown[:40]) + "]"
        record = grown[with_metrics(grown)]
        pipeline = [{"$match": {"_id": record["_id"]}}, {"$project": {"quality_control": 1}}]
        projected = requests.post(f"{url}/aggregate", data=compact(pipeline), timeout=30).json()
        assert projected == [{"_id": record["_id"], "quality_control": record["quality_control"]}]
        # A record upserted again (as changed) is grown again, to the same size.
        changed = copy.deepcopy(generated[3])
        changed["name"] = changed["name"] + "_changed"
        server.upsert([changed])
        again = requests.get(
            f"{url}/find", params={"filter": compact({"_id": changed["_id"]})}, timeout=30
        ).json()[0]
        assert again["name"].endswith("_changed")
        assert abs(record_sizes.compact_size(again) - record_sizes.compact_size(grown[3])) <= 8
        assert server.stats()["response_bytes"] > 40 * 50_000


def test_unknown_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown size profile"):
        DocDBServer([{"_id": "a"}], size_profile="huge")
