"""What one build ended in: the one model of an outcome.

A table module's build returns an ``Outcome`` with what it wrote (``TableResult`` in
``bdc_sync.framework`` is this model); the flow adds what the build's context counted
(DocDB requests, malformed records, duration) and the ledger records it on the
table's (or chunk's) item; the finalizer reads the items back as outcomes for the run
report and the registry, and the worker's metrics count from it.

The ledger records exactly the fields an outcome was given (``recorded``): an item
keeps the shape it always had (a failure has no ``partitions_written``, say), and a
field an item lacks reads as its default here. ``finished_at``, ``attempts`` and
``last_error`` are kept by the ledger itself and never written from an outcome.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bdc_sync.flow.states import Status

# Fields the ledger writes itself, around an outcome.
LEDGER_FIELDS = frozenset({"finished_at", "attempts", "last_error"})


class Outcome(BaseModel):
    """A build's result and figures; also a ledger item read back (its other fields ignored)."""

    model_config = ConfigDict(extra="ignore")

    status: Status
    # What the build wrote.
    rows: int | None = None
    bytes_written: int = 0
    content_sha256: str | None = None
    partitions_written: int = 0
    partitions_deleted: int = 0
    message: str = ""
    # Rows of companion tables written by the same build (qc_tag_status).
    companion_rows: dict[str, int] = Field(default_factory=dict)
    # A chunked table's: how many chunks it was built in.
    chunks: int | None = None
    # What the build's context counted (bdc_sync.flow.work adds them).
    duration_seconds: float | int | None = None
    docdb_requests: int = 0
    docdb_records: int = 0
    docdb_splits: int = 0
    docdb_oversize_answers: int = 0
    docdb_listing_retries: int = 0
    docdb_unreturnable: int = 0
    docdb_unreturnable_sample: list[dict[str, Any]] = Field(default_factory=list)
    malformed: int = 0
    malformed_sample: list[dict[str, Any]] = Field(default_factory=list)
    # Kept by the ledger (LEDGER_FIELDS).
    finished_at: float | int | None = None
    attempts: int = 0
    last_error: str = ""

    def recorded(self) -> dict[str, Any]:
        """The fields the ledger writes on the item: those this outcome was given."""
        return self.model_dump(exclude_unset=True, exclude=set(LEDGER_FIELDS))

    @classmethod
    def of(cls, value: Outcome | Mapping[str, Any]) -> Outcome:
        """An outcome, or a mapping of its fields (a ledger item, a test's dict), as an Outcome."""
        return value if isinstance(value, Outcome) else cls.model_validate(dict(value))


# The figures of a chunked table's chunks that add up to the table's.
SUMMED_FIGURES: tuple[str, ...] = (
    "docdb_requests",
    "docdb_records",
    "bytes_written",
    "partitions_written",
    "partitions_deleted",
    "malformed",
    "docdb_splits",
    "docdb_oversize_answers",
    "docdb_listing_retries",
    "docdb_unreturnable",
)
