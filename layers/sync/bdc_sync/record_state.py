"""Per-record incremental state: which records a build may take from its last build.

A build that makes rows from DocDB records keeps a state file: one or more rows per
record, each with the record's id, the ``_last_modified`` it was built from, and a
mark (null: a real row; ``"empty"``: the record gave no rows; ``"malformed: ..."``:
it could not give rows). A record still listed with the same ``_last_modified`` is
not fetched again: its state rows, marks included, are kept, and its malformed mark
is counted again on every run (the run report's figure does not drop to zero just
because nothing changed).

``RecordTable`` (``bdc_sync.framework``) and ``SubjectPartitionedTable``
(``bdc_sync.chunked``) keep such states with columns of their own names (their
state files stay as they are); ``RecordState`` names the columns and implements
the rules once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:  # the framework imports this module
    from bdc_sync.framework import MalformedLog

EMPTY = "empty"
MALFORMED = "malformed"


def malformed_mark(error: object) -> str:
    """The mark of a record that could not give rows (kept short: it is stored per record)."""
    return f"{MALFORMED}: {error}"[:300]


@dataclass(frozen=True)
class RecordState:
    """The bookkeeping columns of one kind of state file."""

    id_column: str
    modified_column: str
    mark_column: str

    def unchanged(self, previous: pa.Table, versions: Mapping[str, str]) -> pa.Table:
        """Rows of ``previous`` whose record is in ``versions`` (id → _last_modified)
        with the same ``_last_modified``."""
        if previous.num_rows == 0:
            return previous
        ids = cast("list[str]", previous[self.id_column].to_pylist())  # record ids are never null
        current = pa.array([versions.get(rid) for rid in ids], type=pa.string())
        same = pc.equal(current, previous[self.modified_column]).fill_null(False)
        # pyarrow-stubs 20 lose the boolean element type through fill_null.
        return previous.filter(same)  # type: ignore[arg-type]

    def count_malformed(self, state: pa.Table, malformed: MalformedLog) -> None:
        """Count the records of ``state`` marked malformed (carried from an earlier build)."""
        marks = [m for m in state[self.mark_column].to_pylist() if m and m.startswith(MALFORMED)]
        malformed.count += len(marks)
