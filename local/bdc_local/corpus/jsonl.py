"""JSON-lines files of records (UTF-8, one object per line)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from bdc_local.corpus.families import Record


def _dump_line(record: Record) -> str:
    try:
        line = json.dumps(record, ensure_ascii=False)
        line.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates cannot be UTF-8 encoded; \u escapes keep them and stay valid UTF-8.
        line = json.dumps(record, ensure_ascii=True)
    return line


def write_jsonl(records: Iterable[Record], path: str | Path | IO[str]) -> int:
    """Write one JSON object per line (UTF-8); returns the number of records written."""
    if not isinstance(path, (str, Path)):
        return _write_lines(records, path)
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        return _write_lines(records, handle)


def _write_lines(records: Iterable[Record], handle: IO[str]) -> int:
    count = 0
    for record in records:
        handle.write(_dump_line(record))
        handle.write("\n")
        count += 1
    return count


def iter_jsonl(path: str | Path) -> Iterator[Record]:
    """Stream the records of a JSON-lines file, one line at a time (blank lines skipped)."""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def read_jsonl(path: str | Path) -> list[Record]:
    """All records of a JSON-lines file written by :func:`write_jsonl` (read line by line)."""
    return list(iter_jsonl(path))
