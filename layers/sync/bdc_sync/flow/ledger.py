"""The run ledger in DynamoDB: one item per run and one per table of the run.

Every state change is a conditional write, so duplicate or out-of-order deliveries
cannot build a table twice in a run, lose an outcome, or finalize a run twice.

Item keys: ``pk = run#<run_id>``; ``sk = run`` or ``table#<name>``.
Table states: waiting → (queued) → running → succeeded | unchanged | failed | skipped;
a big table goes running → chunked (its chunks, ``sk = chunk#<table>#<n>``, each go
queued → running → terminal) → terminal when its last chunk is counted.
Run states: running → finalizing → finalized; or ``coalesced`` (a scheduled run that
started while an earlier scheduled run was still building: it enqueued nothing).

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
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

TERMINAL = frozenset({"succeeded", "unchanged", "failed", "skipped"})
NOT_BUILT = frozenset({"failed", "skipped"})


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
    status: str = ""  # the table's status when the claim was lost


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
                        "status": "waiting",
                        "depends_on": deps,
                        "attempts": 0,
                        "expiration": expiration,
                    }
                )
        self.table.put_item(
            Item=_dynamo(
                self._run_item(run_id, folder, trigger, now, tables=sorted(depends_on), state="running")
            )
        )

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
        item = self._run_item(run_id, folder, trigger, now, tables=[], state="coalesced")
        item.update(coalesced_into=into, reason=reason, finalized_at=now)
        self.table.put_item(Item=_dynamo(item))

    def _run_item(
        self, run_id: str, folder: str, trigger: str, now: float, *, tables: list[str], state: str
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

    def _transition(self, key: dict[str, str], condition: str, update: str, values: dict) -> bool:
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
        return self._transition(
            {"pk": _pk(run_id), "sk": "run"},
            "#st = :running",
            "SET #st = :finalizing, all_done_at = :now",
            {":running": "running", ":finalizing": "finalizing", ":now": time.time()},
        )

    def mark_finalized(self, run_id: str, report_key: str) -> bool:
        return self._transition(
            {"pk": _pk(run_id), "sk": "run"},
            "#st = :finalizing",
            "SET #st = :finalized, finalized_at = :now, report_key = :report",
            {
                ":finalizing": "finalizing",
                ":finalized": "finalized",
                ":now": time.time(),
                ":report": report_key,
            },
        )

    # -- tables -------------------------------------------------------------------
    def mark_queued(self, run_id: str, table: str) -> bool:
        return self._transition(
            {"pk": _pk(run_id), "sk": f"table#{table}"},
            "#s = :waiting",
            "SET #s = :queued, queued_at = :now",
            {":waiting": "waiting", ":queued": "queued", ":now": time.time()},
        )

    def mark_skipped(self, run_id: str, table: str, reason: str) -> bool:
        return self._transition(
            {"pk": _pk(run_id), "sk": f"table#{table}"},
            "#s = :waiting",
            "SET #s = :skipped, message = :reason, finished_at = :now",
            {":waiting": "waiting", ":skipped": "skipped", ":reason": reason, ":now": time.time()},
        )

    def claim(self, run_id: str, table: str, lease_seconds: int, chunk: int | None = None) -> Claim:
        """Take a table (or chunk) for building unless it is done or another worker holds it."""
        token = uuid.uuid4().hex
        now = time.time()
        key = {"pk": _pk(run_id), "sk": _sk(table, chunk)}
        won = self._transition(
            key,
            "#s IN (:waiting, :queued) OR (#s = :running AND lease_until < :now)",
            "SET #s = :running, lease_until = :until, lease_token = :token, "
            "attempts = if_not_exists(attempts, :zero) + :one, "
            "started_at = if_not_exists(started_at, :now)",
            {
                ":waiting": "waiting",
                ":queued": "queued",
                ":running": "running",
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
        """Give a table (or chunk) back after a failed attempt so the next delivery may retry."""
        return self._transition(
            {"pk": _pk(run_id), "sk": _sk(table, chunk)},
            "#s = :running AND lease_token = :token",
            "SET lease_until = :zero, last_error = :error",
            {":running": "running", ":token": token, ":zero": 0, ":error": error[:1000]},
        )

    def record_outcome(
        self,
        run_id: str,
        table: str,
        token: str | None,
        outcome: dict[str, Any],
        chunk: int | None = None,
    ) -> bool:
        """running → a terminal status with the outcome's figures, for the lease holder only.

        With ``token=None`` it completes a chunked table instead (chunked → terminal).
        """
        status = outcome["status"]
        if status not in TERMINAL:
            raise ValueError(f"not a terminal status: {status}")
        names = {f"#f{i}": name for i, name in enumerate(outcome)}
        sets = ", ".join(f"#f{i} = :v{i}" for i in range(len(outcome)))
        values: dict[str, Any] = {f":v{i}": value for i, value in enumerate(outcome.values())}
        if token is None:
            condition = "#status = :chunked"
            values[":chunked"] = "chunked"
        else:
            condition = "#status = :running AND lease_token = :token"
            values.update({":running": "running", ":token": token})
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
                        "status": "queued",
                        "attempts": 0,
                        "expiration": expiration,
                    }
                )
        return self._transition(
            {"pk": _pk(run_id), "sk": _sk(table, None)},
            "#s = :running AND lease_token = :token",
            "SET #s = :chunked, chunks_total = :n, chunks_done = :zero",
            {":running": "running", ":token": token, ":chunked": "chunked", ":n": chunks, ":zero": 0},
        )

    def count_chunk_done(self, run_id: str, table: str, chunk: int) -> tuple[int, int]:
        """Count a finished chunk once, however often it is delivered; returns (done, total).

        Marking the chunk counted and adding to the table's count is one DynamoDB
        transaction, so a duplicate delivery cannot count a chunk twice and a crash
        cannot leave it marked but uncounted.
        """
        items = [
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
                # The stubs type this client as the low-level one (values as {"S": ...}); the
                # resource's client serializes plain values.
                self.table.meta.client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
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
            {":chunked": "chunked", ":now": now, ":until": now + lease_seconds},
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
