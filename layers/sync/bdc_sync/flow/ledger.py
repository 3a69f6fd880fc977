"""The run ledger in DynamoDB: one item per run and one per table of the run.

Every state change is a conditional write, so duplicate or out-of-order deliveries
cannot build a table twice in a run, lose an outcome, or finalize a run twice.

Item keys: ``pk = run#<run_id>``; ``sk = run``, ``table#<name>`` or, for the chunks of
a chunked table, ``chunk#<table>#<n>``. The states they go through and the legal moves
are named in ``bdc_sync.flow.states``; each method here is one of those moves, and
its condition is the move's legal source states.

One more item, ``pk = slot#<folder>``, ``sk = scheduled``, names the scheduled run
that holds the schedule's slot: taken by the dispatcher with a conditional write,
given back by the finalizer, and free again after its deadline if the run never
finalizes.
"""

from __future__ import annotations

import random
import re
import time
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

import boto3
from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from bdc_sync.flow.states import (
    OUTCOMES,
    RUN,
    TABLE,
    IllegalTransition,
    Machine,
    RunState,
    Status,
    machine_of,
)
from bdc_sync.outcome import Outcome


def _pk(run_id: str) -> str:
    return f"run#{run_id}"


def _sk(table: str, chunk: int | None) -> str:
    return f"table#{table}" if chunk is None else f"chunk#{table}#{chunk:05d}"


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; the rest of the code wants int/float."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _dynamo(value: Any) -> Any:
    if isinstance(value, StrEnum):
        return str(value)  # stored as its value, as the plain strings always were
    if isinstance(value, float):
        return Decimal(str(round(value, 6)))
    if isinstance(value, dict):
        return {k: _dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_dynamo(v) for v in value]
    return value


@dataclass(frozen=True)
class Claim:
    """Result of trying to take a table for building."""

    won: bool
    token: str = ""
    status: str = ""  # the item's status when the claim was lost ("missing": no such item)


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class Ledger:
    """Runs and their tables' outcomes."""

    def __init__(self, table_name: str, ttl_days: int = 30, resource: Any | None = None) -> None:
        self.table = (resource or boto3.resource("dynamodb")).Table(table_name)
        self.ttl_days = ttl_days

    def _expiration(self) -> int:
        return int(time.time()) + self.ttl_days * 86400

    # -- runs ---------------------------------------------------------------------
    def create_run(self, run_id: str, folder: str, trigger: str, depends_on: dict[str, list[str]]) -> None:
        """Write the run and its tables (tables first, so a run item is never partial)."""
        expiration = self._expiration()
        now = time.time()
        with self.table.batch_writer() as batch:
            for name, deps in depends_on.items():
                batch.put_item(
                    Item={
                        "pk": _pk(run_id),
                        "sk": f"table#{name}",
                        "table": name,
                        "status": Status.WAITING,
                        "depends_on": deps,
                        "attempts": 0,
                        "expiration": expiration,
                    }
                )
        run = self._run_item(run_id, folder, trigger, now, tables=sorted(depends_on), state=RunState.RUNNING)
        self.table.put_item(Item=_dynamo(run))

    def take_schedule_slot(self, folder: str, run_id: str, hold_seconds: int) -> str | None:
        """Let ``run_id`` hold the schedule's slot; None if it now holds it, else the holder's id."""
        now = time.time()
        key = {"pk": f"slot#{folder}", "sk": "scheduled"}
        try:
            self.table.put_item(
                Item=_dynamo(
                    {
                        **key,
                        "run_id": run_id,
                        "taken_at": now,
                        "hold_until": now + hold_seconds,
                        "expiration": self._expiration(),
                    }
                ),
                ConditionExpression="attribute_not_exists(pk) OR hold_until < :now",
                ExpressionAttributeValues=_dynamo({":now": now}),
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            item = self.table.get_item(Key=key, ConsistentRead=True).get("Item") or {}
            return str(item.get("run_id", "")) or "unknown"
        return None

    def give_back_schedule_slot(self, folder: str, run_id: str) -> bool:
        """Free the slot if ``run_id`` holds it (a later run may hold it after a deadline)."""
        # An update, not a delete: the hold simply ends now (the finalizer's role
        # already has UpdateItem on the ledger).
        return self._transition(
            {"pk": f"slot#{folder}", "sk": "scheduled"},
            "run_id = :me",
            "SET hold_until = :zero",
            {":me": run_id, ":zero": 0},
        )

    def record_coalesced_run(self, run_id: str, folder: str, trigger: str, into: str, reason: str) -> None:
        """A run that enqueued nothing because ``into`` is still building its tables."""
        now = time.time()
        item = self._run_item(run_id, folder, trigger, now, tables=[], state=RunState.COALESCED)
        item.update(coalesced_into=into, reason=reason, finalized_at=now)
        self.table.put_item(Item=_dynamo(item))

    def _run_item(
        self, run_id: str, folder: str, trigger: str, now: float, *, tables: list[str], state: RunState
    ) -> dict[str, Any]:
        return {
            "pk": _pk(run_id),
            "sk": "run",
            "run_id": run_id,
            "folder": folder,
            "trigger": trigger,
            "tables": tables,
            "state": state,
            "created_at": now,
            "expiration": self._expiration(),
        }

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        item = self.table.get_item(Key={"pk": _pk(run_id), "sk": "run"}, ConsistentRead=True)
        return _plain(item["Item"]) if "Item" in item else None

    def table_items(self, run_id: str) -> dict[str, dict[str, Any]]:
        items: dict[str, dict[str, Any]] = {}
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": Key("pk").eq(_pk(run_id)) & Key("sk").begins_with("table#"),
            "ConsistentRead": True,
        }
        while True:
            page = self.table.query(**kwargs)
            for item in page["Items"]:
                items[str(item["table"])] = _plain(item)
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def table_outcomes(self, run_id: str) -> dict[str, Outcome]:
        """The run's tables as outcomes (what the run report and the registry read)."""
        return {name: Outcome.of(item) for name, item in self.table_items(run_id).items()}

    def _transition(self, key: dict[str, str], condition: str, update: str, values: dict[str, Any]) -> bool:
        """A conditional update; False when the condition did not hold."""
        expression = condition + update
        names = {
            alias: attr
            for alias, attr in (("#s", "status"), ("#st", "state"))
            if re.search(rf"{alias}\b", expression)
        }
        kwargs: dict[str, Any] = {"ExpressionAttributeNames": names} if names else {}
        try:
            self.table.update_item(
                Key=key,
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=_dynamo(values),
                **kwargs,
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def start_finalizing(self, run_id: str) -> bool:
        """running → finalizing; True for the one caller that made the change."""
        return self._move(
            {"pk": _pk(run_id), "sk": "run"},
            RUN,
            {RunState.RUNNING},
            RunState.FINALIZING,
            sets="all_done_at = :now",
            values={":now": time.time()},
        )

    def mark_finalized(self, run_id: str, report_key: str) -> bool:
        """finalizing → finalized, with the report's key."""
        return self._move(
            {"pk": _pk(run_id), "sk": "run"},
            RUN,
            {RunState.FINALIZING},
            RunState.FINALIZED,
            sets="finalized_at = :now, report_key = :report",
            values={":now": time.time(), ":report": report_key},
        )

    # -- tables -------------------------------------------------------------------
    def _move(
        self,
        key: dict[str, str],
        machine: Machine,
        sources: Collection[str],
        target: str,
        *,
        guard: str = "",
        sets: str = "",
        values: dict[str, Any] | None = None,
    ) -> bool:
        """One move of ``machine``: from any of ``sources`` (and ``guard``) to ``target``.

        IllegalTransition if the machine does not allow it; False if the item was not
        in a source state (another delivery moved it first).
        """
        machine.check(sources, target)
        attribute = "#st" if machine is RUN else "#s"
        names = {f":from{i}": source for i, source in enumerate(sorted(sources))}
        condition = f"{attribute} IN ({', '.join(names)})"
        if guard:
            condition = f"{condition} AND {guard}"
        update = f"SET {attribute} = :to" + (f", {sets}" if sets else "")
        return self._transition(key, condition, update, {**names, ":to": target, **(values or {})})

    def mark_queued(self, run_id: str, table: str) -> bool:
        """waiting → queued (its work message was sent)."""
        return self._move(
            {"pk": _pk(run_id), "sk": _sk(table, None)},
            TABLE,
            {Status.WAITING},
            Status.QUEUED,
            sets="queued_at = :now",
            values={":now": time.time()},
        )

    def mark_skipped(self, run_id: str, table: str, reason: str) -> bool:
        """waiting → skipped (an input was not built)."""
        return self._move(
            {"pk": _pk(run_id), "sk": _sk(table, None)},
            TABLE,
            {Status.WAITING},
            Status.SKIPPED,
            sets="message = :reason, finished_at = :now",
            values={":reason": reason, ":now": time.time()},
        )

    def claim(self, run_id: str, table: str, lease_seconds: int, chunk: int | None = None) -> Claim:
        """Take a table (or chunk) for building unless it is done or another worker holds it."""
        token = uuid.uuid4().hex
        now = time.time()
        key = {"pk": _pk(run_id), "sk": _sk(table, chunk)}
        machine = machine_of(chunk)
        # From a state before running, or from running once the holder's lease expired.
        fresh = sorted(machine.sources_of(Status.RUNNING) - {Status.RUNNING})
        machine.check([*fresh, Status.RUNNING], Status.RUNNING)
        names = {f":from{i}": source for i, source in enumerate(fresh)}
        won = self._transition(
            key,
            f"#s IN ({', '.join(names)}) OR (#s = :running AND lease_until < :now)",
            "SET #s = :running, lease_until = :until, lease_token = :token, "
            "attempts = if_not_exists(attempts, :zero) + :one, "
            "started_at = if_not_exists(started_at, :now)",
            {
                **names,
                ":running": Status.RUNNING,
                ":now": now,
                ":until": now + lease_seconds,
                ":token": token,
                ":one": 1,
                ":zero": 0,
            },
        )
        if won:
            return Claim(won=True, token=token)
        item = self.table.get_item(Key=key, ConsistentRead=True).get("Item")
        return Claim(won=False, status=str(item["status"]) if item else "missing")

    def release(self, run_id: str, table: str, token: str, error: str, chunk: int | None = None) -> bool:
        """Give a table (or chunk) back after a failed attempt so the next delivery may retry
        (running → running, its lease ended)."""
        return self._move(
            {"pk": _pk(run_id), "sk": _sk(table, chunk)},
            machine_of(chunk),
            {Status.RUNNING},
            Status.RUNNING,
            guard="lease_token = :token",
            sets="lease_until = :zero, last_error = :error",
            values={":token": token, ":zero": 0, ":error": error[:1000]},
        )

    def record_outcome(
        self,
        run_id: str,
        table: str,
        token: str | None,
        outcome: Outcome | Mapping[str, Any],
        chunk: int | None = None,
    ) -> bool:
        """running → the outcome's status, with its figures, for the lease holder only.

        With ``token=None`` it finishes a chunked table instead (chunked → the outcome's
        status). IllegalTransition if the status is not an outcome (OUTCOMES).
        """
        status = outcome.status if isinstance(outcome, Outcome) else Status(outcome["status"])
        if status not in OUTCOMES:
            raise IllegalTransition(f"not an outcome status: {status}")
        source = Status.CHUNKED if token is None else Status.RUNNING
        machine_of(chunk).check([source], status)
        fields = Outcome.of(outcome).recorded()
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        sets = ", ".join(f"#f{i} = :v{i}" for i in range(len(fields)))
        values: dict[str, Any] = {f":v{i}": value for i, value in enumerate(fields.values())}
        if token is None:
            condition = "#status = :chunked"
            values[":chunked"] = Status.CHUNKED
        else:
            condition = "#status = :running AND lease_token = :token"
            values.update({":running": Status.RUNNING, ":token": token})
        try:
            self.table.update_item(
                Key={"pk": _pk(run_id), "sk": _sk(table, chunk)},
                UpdateExpression=f"SET {sets}, finished_at = :now",
                ConditionExpression=condition,
                ExpressionAttributeNames={**names, "#status": "status"},
                ExpressionAttributeValues=_dynamo({**values, ":now": time.time()}),
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    # -- chunks of a big table ------------------------------------------------------
    def start_chunks(self, run_id: str, table: str, token: str, chunks: int) -> bool:
        """running → chunked: create the chunk items, then hand the table to them."""
        expiration = self._expiration()
        with self.table.batch_writer() as batch:
            for index in range(chunks):
                batch.put_item(
                    Item={
                        "pk": _pk(run_id),
                        "sk": _sk(table, index),
                        "table": table,
                        "chunk": index,
                        "status": Status.QUEUED,
                        "attempts": 0,
                        "expiration": expiration,
                    }
                )
        return self._move(
            {"pk": _pk(run_id), "sk": _sk(table, None)},
            TABLE,
            {Status.RUNNING},
            Status.CHUNKED,
            guard="lease_token = :token",
            sets="chunks_total = :n, chunks_done = :zero",
            values={":token": token, ":n": chunks, ":zero": 0},
        )

    def count_chunk_done(self, run_id: str, table: str, chunk: int) -> tuple[int, int]:
        """Count a finished chunk once, however often it is delivered; returns (done, total).

        Marking the chunk counted and adding to the table's count is one DynamoDB
        transaction, so a duplicate delivery cannot count a chunk twice and a crash
        cannot leave it marked but uncounted.
        """
        items: list[Any] = [
            {
                "Update": {
                    "TableName": self.table.name,
                    "Key": {"pk": _pk(run_id), "sk": _sk(table, chunk)},
                    "UpdateExpression": "SET counted = :yes",
                    "ConditionExpression": "attribute_not_exists(counted)",
                    "ExpressionAttributeValues": {":yes": True},
                }
            },
            {
                "Update": {
                    "TableName": self.table.name,
                    "Key": {"pk": _pk(run_id), "sk": _sk(table, None)},
                    "UpdateExpression": "ADD chunks_done :one",
                    "ExpressionAttributeValues": {":one": 1},
                }
            },
        ]
        for attempt in range(8):
            try:
                # The resource's client takes plain Python values, as the Table does.
                self.table.meta.client.transact_write_items(TransactItems=items)
                break
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
                if "ConditionalCheckFailed" in reasons:
                    break  # counted before: a duplicate delivery
                if attempt == 7:
                    raise  # the message is delivered again and counts then
                # Another chunk's transaction touched the table item at the same moment.
                time.sleep(random.uniform(0, 0.05 * 2**attempt))
        item = self.get_item(run_id, table) or {}
        return int(item.get("chunks_done", 0)), int(item.get("chunks_total", 0))

    def claim_finish(self, run_id: str, table: str, lease_seconds: int) -> bool:
        """Take the finish step of a chunked table; True for one caller per lease.

        Two deliveries that both see the last chunk counted would otherwise both merge
        the chunks. The lease lets a redelivery finish the table if the winner died.
        """
        now = time.time()
        return self._transition(
            {"pk": _pk(run_id), "sk": _sk(table, None)},
            "#s = :chunked AND (attribute_not_exists(finish_lease_until) OR finish_lease_until < :now)",
            "SET finish_lease_until = :until",
            {":chunked": Status.CHUNKED, ":now": now, ":until": now + lease_seconds},
        )

    def get_item(self, run_id: str, table: str, chunk: int | None = None) -> dict[str, Any] | None:
        item = self.table.get_item(Key={"pk": _pk(run_id), "sk": _sk(table, chunk)}, ConsistentRead=True).get(
            "Item"
        )
        return _plain(item) if item else None

    def chunk_items(self, run_id: str, table: str) -> dict[int, dict[str, Any]]:
        page = self.table.query(
            KeyConditionExpression=Key("pk").eq(_pk(run_id)) & Key("sk").begins_with(f"chunk#{table}#"),
            ConsistentRead=True,
        )
        items = list(page["Items"])
        while "LastEvaluatedKey" in page:
            page = self.table.query(
                KeyConditionExpression=Key("pk").eq(_pk(run_id)) & Key("sk").begins_with(f"chunk#{table}#"),
                ConsistentRead=True,
                ExclusiveStartKey=page["LastEvaluatedKey"],
            )
            items.extend(page["Items"])
        return {int(item["chunk"]): _plain(item) for item in items}

    def chunk_outcomes(self, run_id: str, table: str) -> dict[int, Outcome]:
        """The chunks of a chunked table, by index, as outcomes."""
        return {index: Outcome.of(item) for index, item in self.chunk_items(run_id, table).items()}
