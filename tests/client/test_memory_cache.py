"""The in-process LRU of decoded tables (``_memory.RecentTables``): bounded by bytes."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from biodata_cache._memory import RecentTables


def _table(rows: int) -> pa.Table:
    return pa.table({"x": pa.array(range(rows), pa.int64())})


def test_least_recently_read_table_goes_first() -> None:
    one, two, three = _table(100), _table(100), _table(100)  # 800 bytes each
    recent = RecentTables(limit_bytes=2000)
    recent.put(Path("a"), "ea", one)
    recent.put(Path("b"), "eb", two)
    assert recent.get(Path("a")) == ("ea", one)  # "a" is now the most recent
    recent.put(Path("c"), "ec", three)
    assert recent.get(Path("b")) is None
    assert recent.get(Path("a")) == ("ea", one)
    assert recent.get(Path("c")) == ("ec", three)


def test_a_table_larger_than_the_limit_is_not_kept_and_drops_its_old_copy() -> None:
    recent = RecentTables(limit_bytes=1000)
    recent.put(Path("a"), "old", _table(10))
    recent.put(Path("a"), "new", _table(1000))
    assert recent.get(Path("a")) is None


def test_replacing_a_table_frees_its_old_bytes() -> None:
    recent = RecentTables(limit_bytes=1700)
    recent.put(Path("a"), "e1", _table(100))
    recent.put(Path("a"), "e2", _table(100))
    recent.put(Path("b"), "eb", _table(100))
    assert recent.get(Path("a")) is not None  # both fit: the first copy of "a" was freed
    assert recent.get(Path("b")) is not None
    recent.clear()
    assert recent.get(Path("a")) is None
