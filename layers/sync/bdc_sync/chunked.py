"""Tables too big for one invocation: planned once, built in chunks, finished once.

``ChunkedBuild`` is the contract the flow (``bdc_sync.flow.work``) drives: ``plan``
returns a result (nothing to split) or a number of chunks; each chunk gets its own
SQS message and invocation; the chunk counted last calls ``finish``, and
``clean_up`` runs once the table's outcome is recorded. Two shapes exist:

``SubjectPartitionedTable`` is the shape of ``quality_control`` (with its companion
``qc_tag_status``): rows come from DocDB records and are published as one file per
subject. The plan step compares asset_basics with the records of the last build and
groups the subjects whose records changed into chunks (one SQS message each); a
chunk fetches only its changed records, keeps the rows of unchanged records from
the subject's current file, and rewrites that subject's files; the finish step,
run by whichever chunk is counted last, deletes the files of vanished subjects and
saves the new state.

``AssetReadsTable`` is the shape of ``behavior_curriculum``: one row per asset, each
needing S3 reads of its own, kept from the last build while still good. The plan
lists the assets that need reading and splits them into chunks; each chunk reads its
assets and leaves its rows in S3; the finish step joins the kept rows and the chunks'
rows and publishes the table as a DerivedTable would.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from bdc_sync.docdb import projection_of
from bdc_sync.fields import MalformedRecord, record_id
from bdc_sync.framework import (
    BuildContext,
    MalformedLog,
    Row,
    TableResult,
    fingerprint_of,
    published,
    rows_to_arrow,
    unchanged_since,
    upstream_fingerprint,
    write_partition_files,
)
from biodata_cache import layout
from biodata_cache.catalog import TableSpec

logger = logging.getLogger(__name__)

RowsByTable = dict[str, list[dict[str, Any]]]

# Annotated: the fields' types differ (Field[StringType], Field[Int64Type]), and mypy
# would join them to object.
_STATE_FIELDS: list[pa.Field[Any]] = [
    pa.field("_id", pa.string()),
    pa.field("_last_modified", pa.string()),
    pa.field("subject_id", pa.string()),
    pa.field("name", pa.string()),
    pa.field("rows", pa.int64()),
    pa.field("companion_rows", pa.int64()),
    pa.field("mark", pa.string()),  # null: fine; "malformed: ..." otherwise
]
STATE_SCHEMA = pa.schema(_STATE_FIELDS)


class ChunkedBuild(ABC):
    """A build split into chunks; the plan and the chunks' results live in S3 until finished."""

    spec: TableSpec

    @abstractmethod
    def plan(self, ctx: BuildContext) -> TableResult | int:
        """Save the chunk plan and return the number of chunks, or a result if none."""

    @abstractmethod
    def build_chunk(self, ctx: BuildContext, index: int) -> TableResult:
        """Build one chunk of the saved plan."""

    @abstractmethod
    def finish(self, ctx: BuildContext, chunk_statuses: dict[int, str]) -> TableResult:
        """Publish the table from the chunks' results; called once, after the last chunk."""

    def build(self, ctx: BuildContext) -> TableResult:
        """Plan, every chunk and finish one after another in this process.

        What the flow does across invocations, for tests and the sequential baseline.
        """
        planned = self.plan(ctx)
        if isinstance(planned, TableResult):
            return planned
        statuses = {}
        for index in range(planned):
            statuses[index] = self.build_chunk(ctx, index).status
        result = self.finish(ctx, statuses)
        self.clean_up(ctx, planned)
        return result

    def clean_up(self, ctx: BuildContext, chunks: int) -> None:
        """Delete the run's plan and chunk results, once the table's outcome is recorded
        (before that, a redelivered finish still needs them)."""
        ctx.cache.delete_keys([self._plan_key(ctx), *(self._chunk_key(ctx, i) for i in range(chunks))])

    def _run_prefix(self, ctx: BuildContext) -> str:
        """Where one run keeps the plan and the chunks' results until the table is finished."""
        return f"{layout.folder_prefix(ctx.folder)}{layout.STATE_FOLDER}/{self.spec.name}/{ctx.run_id}/"

    def _plan_key(self, ctx: BuildContext) -> str:
        return f"{self._run_prefix(ctx)}plan.json"

    def _chunk_key(self, ctx: BuildContext, index: int) -> str:
        return f"{self._run_prefix(ctx)}chunk-{index:05d}.pqt"

    def _saved_plan(self, ctx: BuildContext) -> dict[str, Any]:
        found = ctx.cache.get_json(self._plan_key(ctx))
        if found is None:
            raise RuntimeError(f"no plan for {self.spec.name} in run {ctx.run_id}")
        plan: dict[str, Any] = found[0]  # written by this class as a JSON object
        return plan


@dataclass
class SubjectPartitionedTable(ChunkedBuild):
    """Rows per DocDB record, published per subject, built in chunks of subjects.

    ``rows(record)`` returns ``{table_name: [row, ...]}`` for the spec and each
    companion; it may raise, and the record is then skipped and counted.
    """

    spec: TableSpec
    companions: tuple[TableSpec, ...]
    projection: tuple[str, ...]
    rows: Callable[[dict], RowsByTable]
    subjects_per_chunk: int = 250
    # QC sections run to tens of KB per record: smaller requests keep answers < 6 MB.
    records_per_request: int = 100
    revision: int = 1

    @property
    def outputs(self) -> tuple[TableSpec, ...]:
        return (self.spec, *self.companions)

    def _state_key(self, ctx: BuildContext) -> str:
        return layout.state_key(ctx.folder, self.spec.name)

    def _previous_state(self, ctx: BuildContext) -> pa.Table:
        state = ctx.cache.read_table(self._state_key(ctx))
        if state is None or not state.schema.equals(STATE_SCHEMA):
            return STATE_SCHEMA.empty_table()
        return state

    # -- plan ---------------------------------------------------------------------
    def plan(self, ctx: BuildContext) -> TableResult | int:
        """Save the chunk plan and return the number of chunks, or a result if none."""
        basics = ctx.upstream("asset_basics", columns=["_id", "_last_modified", "subject_id", "name"])
        basics = basics.filter(pc.invert(pc.is_null(basics["subject_id"])))
        current = {
            rid: (modified or "", subject, name)
            for rid, modified, subject, name in zip(
                *(basics[c].to_pylist() for c in ("_id", "_last_modified", "subject_id", "name")),
                strict=True,
            )
        }
        previous = self._previous_state(ctx)
        before = {
            rid: (modified, subject)
            for rid, modified, subject in zip(
                *(previous[c].to_pylist() for c in ("_id", "_last_modified", "subject_id")), strict=True
            )
        }
        changed: dict[str, list[str]] = defaultdict(list)
        for rid, (modified, subject, _) in current.items():
            if before.get(rid) != (modified, subject):
                changed[subject].append(rid)
        removed: dict[str, list[str]] = defaultdict(list)
        for rid, (_, subject) in before.items():
            if rid not in current or current[rid][1] != subject:
                removed[subject].append(rid)
        # Subject ids that cannot name a folder go to a chunk too: their records are
        # counted there as malformed (see _take_record), and no partition is written.
        subjects = sorted(s for s in set(changed) | set(removed) if s)
        _count_marked(previous, ctx.malformed)
        if not subjects and ctx.cache.head(self._state_key(ctx)) is not None:
            return TableResult(
                status="unchanged",
                rows=int(pc.sum(previous["rows"]).as_py() or 0),
                message="no record changed since the last build",
                content_sha256=_digest(
                    self.spec,
                    self.revision,
                    previous["_id"].to_pylist(),
                    previous["_last_modified"].to_pylist(),
                ),
            )
        chunks = [
            subjects[i : i + self.subjects_per_chunk]
            for i in range(0, len(subjects), self.subjects_per_chunk)
        ] or [[]]
        kept_names: dict[str, list[str]] = defaultdict(list)
        changed_ids = {rid for ids in changed.values() for rid in ids}
        for rid, (_, subject, name) in current.items():
            if rid not in changed_ids and subject in set(subjects) and name:
                kept_names[subject].append(name)
        plan = {
            "chunks": chunks,
            "changed": changed,
            "removed": removed,
            "kept_names": kept_names,
            "modified": {rid: current[rid][0] for rid in changed_ids},
        }
        ctx.cache.put_json(self._plan_key(ctx), plan)
        logger.info(
            "planned chunks",
            extra={
                "table": self.spec.name,
                "subjects": len(subjects),
                "chunks": len(chunks),
                "changed_records": len(changed_ids),
            },
        )
        return len(chunks)

    # -- one chunk ------------------------------------------------------------------
    def build_chunk(self, ctx: BuildContext, index: int) -> TableResult:
        plan = self._saved_plan(ctx)
        subjects: list[str] = plan["chunks"][index]
        ids = [rid for s in subjects for rid in plan["changed"].get(s, [])]
        fresh: dict[str, dict[str, list[dict[str, Any]]]] = {o.name: defaultdict(list) for o in self.outputs}
        records: list[dict[str, Any]] = []
        for record in ctx.docdb().fetch_by_ids(ids, projection_of(self.projection), self.records_per_request):
            records.append(self._take_record(record, plan["modified"], fresh, ctx.malformed))
        publishable = [s for s in subjects if layout.is_partition_value(s)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            parts = list(pool.map(lambda s: self._subject_files(ctx, s, plan, fresh), publishable))
        written_total, deleted_total, bytes_total = 0, 0, 0
        for output in self.outputs:
            by_subject = {s: p[output.name] for s, p in zip(publishable, parts, strict=True)}
            results, deleted = write_partition_files(ctx, output, by_subject, {"run-id": ctx.run_id})
            written_total += sum(1 for r in results if r.changed)
            deleted_total += len(deleted)
            bytes_total += sum(r.bytes_written for r in results)
        state = pa.Table.from_pylist(records, schema=STATE_SCHEMA)
        ctx.cache.write_table(self._chunk_key(ctx, index), state)
        return TableResult(
            status="succeeded",
            rows=int(pc.sum(state["rows"]).as_py() or 0),
            bytes_written=bytes_total,
            partitions_written=written_total,
            partitions_deleted=deleted_total,
            message=f"{len(subjects)} subjects, {len(ids)} records fetched",
        )

    def _take_record(
        self,
        record: dict,
        modified: dict[str, str],
        fresh: dict[str, dict[str, list[dict[str, Any]]]],
        malformed: MalformedLog,
    ) -> dict[str, Any]:
        try:
            rid = record_id(record)
        except MalformedRecord as exc:
            malformed.add("?", str(exc))
            return {"_id": "?", "mark": f"malformed: {exc}"}
        subject = (
            str((record.get("subject") or {}).get("subject_id") or "")
            if isinstance(record.get("subject"), dict)
            else ""
        )
        entry = {
            "_id": rid,
            "_last_modified": modified.get(rid, ""),
            "subject_id": subject,
            "name": record.get("name") if isinstance(record.get("name"), str) else None,
            "rows": 0,
            "companion_rows": 0,
            "mark": None,
        }
        if subject and not layout.is_partition_value(subject):
            error = f"subject_id {subject[:80]!r} is not one safe key segment (letters, digits, _.+-)"
            malformed.add(rid, error)
            return {**entry, "mark": f"malformed: {error}"}
        try:
            produced = self.rows(record)
        except Exception as exc:  # one bad record must not sink the chunk
            malformed.add(rid, f"{type(exc).__name__}: {exc}")
            return {**entry, "mark": f"malformed: {exc}"[:300]}
        for output in self.outputs:
            rows = produced.get(output.name, [])
            fresh[output.name][subject].extend(rows)
        entry["rows"] = len(produced.get(self.spec.name, []))
        entry["companion_rows"] = sum(len(produced.get(c.name, [])) for c in self.companions)
        return entry

    def _subject_files(
        self,
        ctx: BuildContext,
        subject: str,
        plan: dict[str, Any],
        fresh: dict[str, dict[str, list[dict[str, Any]]]],
    ) -> dict[str, pa.Table | None]:
        """The new file of each output for one subject (None: the subject has no rows)."""
        kept_names = set(plan["kept_names"].get(subject, []))
        files: dict[str, pa.Table | None] = {}
        for output in self.outputs:
            pieces = []
            if kept_names:
                key = layout.partition_key(ctx.folder, output.folder or output.name, "subject_id", subject)
                old = ctx.cache.read_table(key)
                if old is not None and old.schema.equals(output.schema):
                    pieces.append(old.filter(pc.is_in(old["asset_name"], pa.array(sorted(kept_names)))))
            new_rows = fresh[output.name].get(subject, [])
            if new_rows:
                pieces.append(rows_to_arrow(new_rows, output.schema, ctx.malformed))
            table = pa.concat_tables(pieces) if pieces else None
            if table is not None:
                table = table.sort_by([("asset_name", "ascending")])
            files[output.name] = table if table is not None and table.num_rows else None
        return files

    # -- finish ---------------------------------------------------------------------
    def finish(self, ctx: BuildContext, chunk_statuses: dict[int, str]) -> TableResult:
        """Merge the chunks' records into the state; called once, after the last chunk."""
        plan = self._saved_plan(ctx)
        previous = self._previous_state(ctx)
        done_subjects: set[str] = set()
        fetched: list[pa.Table] = []
        for index, status in chunk_statuses.items():
            if status != "succeeded":
                continue
            chunk = ctx.cache.read_table(self._chunk_key(ctx, index))
            if chunk is not None:
                fetched.append(chunk)
                done_subjects.update(plan["chunks"][index])
        replaced = {
            rid for s in done_subjects for rid in plan["changed"].get(s, []) + plan["removed"].get(s, [])
        }
        kept = previous.filter(pc.invert(pc.is_in(previous["_id"], pa.array(sorted(replaced), pa.string()))))
        state = pa.concat_tables([kept, *fetched]).sort_by([("_id", "ascending")])
        rows = int(pc.sum(state["rows"]).as_py() or 0)
        companion_rows = int(pc.sum(state["companion_rows"]).as_py() or 0)
        digest = _digest(
            self.spec, self.revision, state["_id"].to_pylist(), state["_last_modified"].to_pylist()
        )
        ctx.cache.write_table(self._state_key(ctx), state)
        failed = sorted(i for i, s in chunk_statuses.items() if s != "succeeded")
        _count_marked(kept, ctx.malformed)
        message = f"{len(done_subjects)} subjects rebuilt in {len(chunk_statuses)} chunks"
        if failed:
            return TableResult(status="failed", rows=rows, message=f"{message}; chunks failed: {failed}")
        return TableResult(
            status="succeeded",
            rows=rows,
            content_sha256=digest,
            message=message,
            companion_rows={c.name: companion_rows for c in self.companions},
        )


# What one asset's reads gave: its row, and why its source could not be read (or None).
AssetRead = tuple[Row, str | None]


@dataclass
class AssetReadsTable(ChunkedBuild):
    """One row per asset, each read from sources of its own (S3 objects), in chunks of assets.

    ``assets(ctx)`` names the assets the table covers, each with what reading it
    needs (JSON, kept in the plan); ``read(ctx, name, needs)`` reads one asset.
    A row of the last build is kept, not read again, while ``reusable(row)`` says so.
    Like a DerivedTable, the build is skipped while the upstream tables are unchanged.
    """

    spec: TableSpec
    assets: Callable[[BuildContext], dict[str, Any]]
    read: Callable[[BuildContext, str, Any], AssetRead]
    reusable: Callable[[Row], bool] = lambda row: True
    key: str = "asset_name"  # the column naming the asset
    # Two S3 requests an asset, 16 at a time: a chunk of 1,000 takes seconds on AWS, and
    # 70,000 new behavior assets (a first build at AIND's scale) make 70 messages.
    assets_per_chunk: int = 1000
    readers: int = 16
    revision: int = 1

    def plan(self, ctx: BuildContext) -> TableResult | int:
        fingerprint = upstream_fingerprint(ctx, self.spec, self.revision)
        skipped = unchanged_since(ctx, self.spec, fingerprint)
        if skipped is not None:
            return skipped
        assets = self.assets(ctx)
        kept = self._kept_rows(ctx, assets)
        to_read = [name for name in assets if name not in kept]
        logger.info(
            "assets to read",
            extra={"table": self.spec.name, "assets": len(assets), "to_read": len(to_read)},
        )
        if not to_read:
            return self._publish(ctx, fingerprint, list(kept.values()))
        chunks = [
            {name: assets[name] for name in to_read[i : i + self.assets_per_chunk]}
            for i in range(0, len(to_read), self.assets_per_chunk)
        ]
        ctx.cache.put_json(
            self._plan_key(ctx), {"fingerprint": fingerprint, "assets": sorted(assets), "chunks": chunks}
        )
        return len(chunks)

    def build_chunk(self, ctx: BuildContext, index: int) -> TableResult:
        needs: dict[str, Any] = self._saved_plan(ctx)["chunks"][index]
        with ThreadPoolExecutor(max_workers=self.readers) as pool:
            found = list(pool.map(lambda name: self.read(ctx, name, needs[name]), needs))
        for name, (_, error) in zip(needs, found, strict=True):
            if error:
                ctx.malformed.add(name, error)
        rows = rows_to_arrow([row for row, _ in found], self.spec.schema, ctx.malformed)
        written = ctx.cache.write_table(self._chunk_key(ctx, index), rows)
        return TableResult(
            status="succeeded",
            rows=rows.num_rows,
            bytes_written=written.bytes_written,
            message=f"{len(needs)} assets read",
        )

    def finish(self, ctx: BuildContext, chunk_statuses: dict[int, str]) -> TableResult:
        failed = sorted(i for i, status in chunk_statuses.items() if status != "succeeded")
        if failed:  # publishing without them would drop their assets' rows
            return TableResult(status="failed", rows=0, message=f"chunks failed: {failed}")
        plan = self._saved_plan(ctx)
        kept = self._kept_rows(ctx, dict.fromkeys(plan["assets"]))
        rows = list(kept.values())
        for index in sorted(chunk_statuses):
            chunk = ctx.cache.read_table(self._chunk_key(ctx, index))
            if chunk is None:
                raise RuntimeError(f"chunk {index} of {self.spec.name} left no rows")
            rows.extend(chunk.to_pylist())
        return self._publish(ctx, plan["fingerprint"], rows)

    def _kept_rows(self, ctx: BuildContext, assets: dict[str, Any]) -> dict[str, Row]:
        """Rows of the last build, by asset, for assets still covered and still good."""
        try:
            table = ctx.cache.read_table(ctx.table_key(self.spec), columns=self.spec.column_names)
        except (pa.ArrowInvalid, KeyError):  # an older layout: read everything again
            return {}
        if table is None:
            return {}
        return {
            row[self.key]: row for row in table.to_pylist() if row[self.key] in assets and self.reusable(row)
        }

    def _publish(self, ctx: BuildContext, fingerprint: str, rows: list[Row]) -> TableResult:
        table = rows_to_arrow(sorted(rows, key=lambda row: row[self.key]), self.spec.schema, ctx.malformed)
        return published(ctx.write(self.spec, table, fingerprint))


def _count_marked(state: pa.Table, malformed: MalformedLog) -> None:
    marks = [m for m in state["mark"].to_pylist() if m and m.startswith("malformed")]
    malformed.count += len(marks)


def _digest(spec: TableSpec, revision: int, ids: list[str | None], modified: list[str | None]) -> str:
    """Content identity of the whole partitioned table: its records and their versions."""
    return fingerprint_of(spec, revision, sorted(zip(ids, modified, strict=True)))
