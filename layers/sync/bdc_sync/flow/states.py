"""The states of a run, of a table in a run and of a chunk of a table, and the moves
between them: the one place that says which transitions are legal.

The ledger (``bdc_sync.flow.ledger``) stores the states and makes every move a
conditional write whose condition is the move's legal source states, as named here;
asking for a move this module does not allow raises ``IllegalTransition`` before
anything is written. A move whose condition fails at write time (another delivery
moved the item first) is not an error: the ledger answers False.

A table::

    waiting ──queue──▶ queued ──claim──▶ running ──record──▶ succeeded | unchanged | failed
       │ └───────────────claim──────────▶  │  ▲ claim (lease expired) / release
       └──skip──▶ skipped                  └──split──▶ chunked ──finish──▶ succeeded | unchanged | failed

A chunk of a chunked table (created queued by the table's split)::

    queued ──claim──▶ running ──record──▶ succeeded | unchanged | failed

A run::

    running ──all tables terminal──▶ finalizing ──report, registry──▶ finalized
    coalesced (a scheduled run that started while an earlier one held the schedule)

The values are the strings stored in DynamoDB and written to the run reports
(``StrEnum``: a member is equal to, hashes as and serializes as its value).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    """Where a table (or a chunk) of a run is."""

    WAITING = "waiting"  # its inputs in the run are not all terminal yet
    QUEUED = "queued"  # a work message was sent
    RUNNING = "running"  # a worker holds its lease
    CHUNKED = "chunked"  # planned: its chunks are being built
    SUCCEEDED = "succeeded"  # written (its content changed)
    UNCHANGED = "unchanged"  # built; the content already published was the same
    FAILED = "failed"  # not built; the previous file is kept
    SKIPPED = "skipped"  # not built because an input was not built


class RunState(StrEnum):
    """Where a run is."""

    RUNNING = "running"
    FINALIZING = "finalizing"
    FINALIZED = "finalized"
    COALESCED = "coalesced"


TERMINAL: frozenset[Status] = frozenset({Status.SUCCEEDED, Status.UNCHANGED, Status.FAILED, Status.SKIPPED})
BUILT: frozenset[Status] = frozenset({Status.SUCCEEDED, Status.UNCHANGED})
NOT_BUILT: frozenset[Status] = TERMINAL - BUILT
# What a build (or a chunked table's finish) may end in.
OUTCOMES: frozenset[Status] = frozenset({Status.SUCCEEDED, Status.UNCHANGED, Status.FAILED})
# The run states after which nothing more happens to a run.
RUN_DONE: frozenset[RunState] = frozenset({RunState.FINALIZED, RunState.COALESCED})


class IllegalTransition(ValueError):
    """A move the state machine does not allow was asked for: a bug in the caller."""


@dataclass(frozen=True)
class Machine:
    """The legal moves of one kind of ledger item."""

    kind: str
    moves: Mapping[str, frozenset[str]]

    def allows(self, source: str, target: str) -> bool:
        return target in self.moves.get(source, frozenset())

    def check(self, sources: Iterable[str], target: str) -> None:
        """IllegalTransition unless every one of ``sources`` may move to ``target``."""
        for source in sources:
            if not self.allows(source, target):
                raise IllegalTransition(f"a {self.kind} cannot go from {source} to {target}")

    def sources_of(self, target: str) -> frozenset[str]:
        """The states from which ``target`` may be reached."""
        return frozenset(source for source, targets in self.moves.items() if target in targets)


TABLE = Machine(
    "table",
    {
        Status.WAITING: frozenset({Status.QUEUED, Status.SKIPPED, Status.RUNNING}),
        Status.QUEUED: frozenset({Status.RUNNING}),
        # running → running: a claim after the lease expired, or a release after a failed try.
        Status.RUNNING: frozenset({Status.RUNNING, Status.CHUNKED, *OUTCOMES}),
        Status.CHUNKED: OUTCOMES,
    },
)

CHUNK = Machine(
    "chunk",
    {
        Status.QUEUED: frozenset({Status.RUNNING}),
        Status.RUNNING: frozenset({Status.RUNNING, *OUTCOMES}),
    },
)

RUN = Machine(
    "run",
    {
        RunState.RUNNING: frozenset({RunState.FINALIZING}),
        RunState.FINALIZING: frozenset({RunState.FINALIZED}),
    },
)


def machine_of(chunk: int | None) -> Machine:
    """The machine of a table item (``chunk=None``) or of one of its chunks."""
    return TABLE if chunk is None else CHUNK
