"""The table framework: everything a table module should not have to write.

A table module declares its spec (from ``biodata_cache.catalog``), what it reads and
how one record (or the upstream tables) becomes rows. The framework lists and
fetches records, skips and counts malformed ones, keeps unchanged rows from the last
build (incremental by ``_last_modified``), builds the arrow table with the declared
schema, writes it with one PUT (or not at all when the content is unchanged), and
returns a ``TableResult`` (an ``Outcome``) for the run ledger.

Two shapes cover the tables:
- ``RecordTable``: rows come from DocDB records, one record at a time; incremental.
- ``DerivedTable``: rows come from other tables (and whatever the module reads
  through the context); rebuilt only when an input changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import pyarrow as pa
import pyarrow.compute as pc

from bdc_sync.docdb import DocDB, projection_of
from bdc_sync.fields import MalformedRecord, record_id
from bdc_sync.flow.states import Status
from bdc_sync.outcome import Outcome
from bdc_sync.record_state import EMPTY, RecordState, malformed_mark
from bdc_sync.settings import Settings
from bdc_sync.store import ObjectStore, WriteResult
from biodata_cache import layout
from biodata_cache._version import __version__
from biodata_cache.catalog import TableSpec

logger = logging.getLogger(__name__)

Row = dict[str, Any]

# Bookkeeping columns of a RecordTable's state file (never in the published table).
ID_COL = "_record_id"
MODIFIED_COL = "_record_modified"
MARK_COL = "_record_mark"  # null: a real row; "empty": record gave no rows; else the error
RECORDS = RecordState(ID_COL, MODIFIED_COL, MARK_COL)
_STATE_FIELDS = [
    pa.field(ID_COL, pa.string()),
    pa.field(MODIFIED_COL, pa.string()),
    pa.field(MARK_COL, pa.string()),
]
MALFORMED_SAMPLE = 5
ROWS_PER_PIECE = 10_000


class MissingInput(RuntimeError):
    """A table this build reads does not exist (yet); the previous output is kept."""


class UnusableInput(RuntimeError):
    """A source exists but was refused (unsafe or malformed); retrying cannot help."""


class UndeclaredInput(RuntimeError):
    """A build read a table its spec's ``depends_on`` does not name: a bug in the table module.

    Undeclared, the read would escape the run's ordering (the input may not be built
    yet) and the derived table's fingerprint (its changes would not trigger a rebuild).
    """


class UndeclaredColumn(ValueError):
    """Rows carry a key that is not a column of the table: a misspelt key, not bad data.

    Left alone, arrow would drop the key and the intended column would stay null.
    """


@dataclass
class MalformedLog:
    """Records skipped because they could not give rows."""

    count: int = 0
    sample: list[dict[str, str]] = field(default_factory=list)

    def add(self, rid: str, error: str) -> None:
        self.count += 1
        if len(self.sample) < MALFORMED_SAMPLE:
            self.sample.append({"id": rid, "error": error[:300]})


# What a build returns: an Outcome with what it wrote; the flow adds the context's figures.
TableResult = Outcome


class BuildContext:
    """What one build may use: settings, stores, DocDB, upstream tables, counters."""

    def __init__(
        self,
        settings: Settings,
        run_id: str,
        *,
        cache: ObjectStore | None = None,
        spec: TableSpec | None = None,
    ) -> None:
        self.settings = settings
        self.run_id = run_id
        # The table being built: its ``depends_on`` bounds what ``upstream`` may read.
        # None (benchmarks, ad-hoc scripts) reads any table.
        self.spec = spec
        self.folder = settings.version_folder
        self.cache = cache or ObjectStore(settings.cache_bucket)
        self.malformed = MalformedLog()
        self._docdb: dict[str, DocDB] = {}
        self._sources: dict[str, ObjectStore] = {}

    def docdb(self, version: str = "v2") -> DocDB:
        if version not in self._docdb:
            self._docdb[version] = DocDB(
                self.settings.docdb_host,
                version=version,
                plain_http=self.settings.docdb_plain_http,
                max_concurrency=self.settings.docdb_max_concurrency,
                retries=self.settings.docdb_retries,
                backoff_seconds=self.settings.docdb_backoff_seconds,
            )
        return self._docdb[version]

    @property
    def docdb_requests(self) -> int:
        return sum(client.requests for client in self._docdb.values())

    @property
    def docdb_records(self) -> int:
        return sum(client.records_received for client in self._docdb.values())

    @property
    def docdb_unreturnable(self) -> dict[str, str]:
        """Records DocDB could not return even one at a time (id -> why): skipped."""
        return {rid: why for client in self._docdb.values() for rid, why in client.unreturnable.items()}

    @property
    def docdb_absorbed(self) -> dict[str, int]:
        """Oversize answers (413/502/504) and batch splits absorbed, listing retries."""
        reports = [client.report() for client in self._docdb.values()]
        return {
            "splits": sum(r["splits"] for r in reports),
            "oversize_answers": sum(sum(r["oversize_by_status"].values()) for r in reports),
            "listing_retries": sum(r["listing_retries"] for r in reports),
        }

    def source(self, bucket: str) -> ObjectStore:
        """Read access to a source bucket (aind-open-data, aind-behavior-data)."""
        if bucket not in self._sources:
            self._sources[bucket] = ObjectStore(bucket, client=self.cache.client)
        return self._sources[bucket]

    def table_key(self, spec: TableSpec) -> str:
        return layout.table_key(self.folder, spec.name)

    def _check_declared(self, name: str) -> None:
        if self.spec is not None and name not in self.spec.depends_on:
            declared = ", ".join(self.spec.depends_on) or "nothing"
            raise UndeclaredInput(
                f"{self.spec.name} reads {name!r} but its catalog spec's depends_on declares {declared}"
            )

    def upstream(self, name: str, columns: list[str] | None = None) -> pa.Table:
        """The current file of a table this one reads; MissingInput if there is none.

        UndeclaredInput if the table being built does not declare ``name`` in ``depends_on``.
        """
        self._check_declared(name)
        table = self.cache.read_table(layout.table_key(self.folder, name), columns=columns)
        if table is None:
            raise MissingInput(f"input table {name} has no file yet; build it first")
        return table

    def upstream_sha(self, name: str) -> str | None:
        self._check_declared(name)
        info = self.cache.head(layout.table_key(self.folder, name))
        return None if info is None else info.metadata.get("sha256")

    def write_partitions(self, spec: TableSpec, table: pa.Table, fingerprint: str) -> PartitionsWritten:
        """Publish a partitioned table: one file per partition value, stale ones deleted."""
        column = spec.partition_key or ""
        values = sorted(v for v in pc.unique(table[column]).to_pylist() if v)
        parts: dict[str, pa.Table | None] = {
            value: table.filter(pc.equal(table[column], value)) for value in values
        }
        folder_key = layout.table_folder_key(self.folder, spec)
        for stale in self.cache.list_prefixes(folder_key):
            value = stale.partition("=")[2]
            if value and value not in parts:
                parts[value] = None
        results, deleted = write_partition_files(
            self, spec, parts, {"input-fingerprint": fingerprint, "run-id": self.run_id}
        )
        digest = hashlib.sha256("".join(sorted(r.sha256 for r in results)).encode()).hexdigest()
        return PartitionsWritten(
            rows=table.num_rows,
            bytes_written=sum(r.bytes_written for r in results),
            sha256=digest,
            partitions_written=sum(1 for r in results if r.changed),
            partitions_deleted=len(deleted),
        )

    def write(self, spec: TableSpec, table: pa.Table, fingerprint: str) -> WriteResult:
        """Write a non-partitioned table and its columns file."""
        result = self.cache.write_table(
            self.table_key(spec),
            table,
            metadata={"input-fingerprint": fingerprint, "run-id": self.run_id},
        )
        if result.changed or self.cache.head(layout.columns_key(self.folder, spec.name)) is None:
            self.cache.put_json(layout.columns_key(self.folder, spec.name), {"columns": table.column_names})
        return result


@dataclass(frozen=True)
class PartitionsWritten:
    """Outcome of publishing a partitioned table."""

    rows: int
    bytes_written: int
    sha256: str
    partitions_written: int
    partitions_deleted: int

    @property
    def changed(self) -> bool:
        return self.partitions_written > 0 or self.partitions_deleted > 0


def write_partition_files(
    ctx: BuildContext, spec: TableSpec, parts: dict[str, pa.Table | None], metadata: dict[str, str]
) -> tuple[list[WriteResult], list[str]]:
    """Write (or, for None/empty, delete) the files of some partitions, in parallel.

    Returns the write results and the keys deleted. Partition files keep the
    partition column inside, as old readers expect.
    """
    for value in [v for v in parts if not layout.is_partition_value(v)]:
        # A value from a record never becomes extra path levels: its rows are skipped.
        rows = parts.pop(value)
        skipped = rows.num_rows if rows is not None else 0
        where = f"{spec.partition_key}={value[:80]!r}"
        ctx.malformed.add(where, f"not one safe key segment; {skipped} rows skipped")
    key_of = {value: layout.table_partition_key(ctx.folder, spec, value) for value in parts}
    to_delete = [key_of[v] for v, t in parts.items() if t is None or t.num_rows == 0]
    to_write = [(key_of[v], t) for v, t in parts.items() if t is not None and t.num_rows > 0]
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda kt: ctx.cache.write_table(kt[0], kt[1], metadata=metadata), to_write))
        existing = [
            key for key, info in zip(to_delete, pool.map(ctx.cache.head, to_delete), strict=True) if info
        ]
    ctx.cache.delete_keys(existing)
    return results, existing


class Table(Protocol):
    """What the worker needs from a table module's TABLE."""

    spec: TableSpec

    def build(self, ctx: BuildContext) -> TableResult: ...


def rows_to_arrow(rows: list[Row], schema: pa.Schema, malformed: MalformedLog) -> pa.Table:
    """Rows as an arrow table of exactly ``schema``; rows that do not fit are counted.

    Converting all rows at once is fast; only if that fails do we convert row by row
    to find (and skip) the offenders, so one bad value never sinks the table.
    A key that is not in ``schema`` raises UndeclaredColumn: it is the module's bug.
    """
    check_row_keys(rows, schema)
    try:
        return pa.Table.from_pylist(rows, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        good: list[Row] = []
        for row in rows:
            try:
                pa.Table.from_pylist([row], schema=schema)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as exc:
                malformed.add(str(row.get(ID_COL) or row.get("name") or "?"), f"bad value: {exc}")
                continue
            good.append(row)
        return pa.Table.from_pylist(good, schema=schema)


def check_row_keys(rows: Iterable[Row], schema: pa.Schema) -> None:
    """UndeclaredColumn if a row has a key that ``schema`` lacks (missing keys are nulls, fine)."""
    allowed = frozenset(schema.names)
    for row in rows:
        if not row.keys() <= allowed:
            unknown = sorted(set(row) - allowed)
            columns = ", ".join(schema.names)
            raise UndeclaredColumn(
                f"rows carry keys that are not columns: {', '.join(unknown)}; columns: {columns}"
            )


def fingerprint_of(spec: TableSpec, revision: int, inputs: Any) -> str:
    """Hash of everything a build's output depends on: code, schema and inputs."""
    payload = json.dumps(
        {"package": __version__, "revision": revision, "schema": str(spec.schema), "inputs": inputs},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


# -- listings: which records a RecordTable covers, with their _last_modified --------


class Listing(Protocol):
    def list_modified(self, ctx: BuildContext, expected: int | None = None) -> dict[str, str]:
        """``_id`` → ``_last_modified`` of the records; ``expected``: how many the last
        build listed, a hint that may save a request."""
        ...

    def source_sha(self, ctx: BuildContext) -> str | None:
        """A cheap identity of the listing's source (None: none cheaper than the listing).

        Equal to the one saved at the last build, the listing is the same and need not
        be read.
        """
        ...


@dataclass(frozen=True)
class AllRecords:
    """Every DocDB record matching a filter (one cheap `_id, _last_modified` listing)."""

    filter: dict = field(default_factory=dict)

    def list_modified(self, ctx: BuildContext, expected: int | None = None) -> dict[str, str]:
        return ctx.docdb().list_modified(self.filter, expected=expected)

    def source_sha(self, ctx: BuildContext) -> str | None:
        return None


@dataclass(frozen=True)
class ListedBy:
    """Records listed by a table built earlier in the run: no DocDB request to list them.

    ``table`` has one row per record with ``_id`` and ``_last_modified``; ``where``
    (given the ``_id``, ``_last_modified`` and ``columns`` of that table) selects the
    records, all of them when None. The table must be in the spec's ``depends_on``.
    """

    table: str
    where: Callable[[pa.Table], pa.Array] | None = None
    columns: tuple[str, ...] = ()

    def list_modified(self, ctx: BuildContext, expected: int | None = None) -> dict[str, str]:
        listed = ctx.upstream(self.table, columns=["_id", "_last_modified", *self.columns])
        if self.where is not None:
            listed = listed.filter(self.where(listed))
        return dict(
            zip(
                cast("list[str]", listed["_id"].to_pylist()),  # record ids are never null
                (m or "" for m in listed["_last_modified"].to_pylist()),
                strict=True,
            )
        )

    def source_sha(self, ctx: BuildContext) -> str | None:
        return ctx.upstream_sha(self.table)


def assets_where(where: Callable[[pa.Table], pa.Array], columns: tuple[str, ...] = ()) -> ListedBy:
    """Records selected from asset_basics (``where`` sees ``columns`` of it)."""
    return ListedBy("asset_basics", where, columns)


@dataclass
class RecordTable:
    """A table whose rows each come from one DocDB record.

    ``rows(record)`` returns the record's rows (dicts keyed by column name); it may
    raise (``MalformedRecord`` or anything else) and the record is then skipped and
    counted. ``finish(table, ctx)`` may rewrite columns that depend on all rows or
    on other tables; it sees the record id of each row in ``_record_id``.
    A partitioned spec is published as one file per value of its partition column.
    Only records that are new or whose ``_last_modified`` changed are fetched; rows
    of the others come from the previous build's state file.
    """

    spec: TableSpec
    listing: Listing
    # Dotted paths, or a whole projection with computed fields (metadata_core).
    projection: tuple[str, ...] | Mapping[str, Any]
    rows: Callable[[dict], Iterable[Row]]
    finish: Callable[[pa.Table, BuildContext], pa.Table] | None = None
    sort_by: tuple[str, ...] = ()
    revision: int = 1
    # Per-row columns kept in the state beside the spec's (visible to ``finish``,
    # never published), e.g. time_to_qc's "QC still pending" flag.
    state_fields: tuple[pa.Field, ...] = ()
    # Publish anew every run even when no record changed (the content depends on
    # the clock); unchanged records still come from the state, not from DocDB.
    volatile: bool = False

    @property
    def state_schema(self) -> pa.Schema:
        return pa.schema([*_STATE_FIELDS, *self.spec.schema, *self.state_fields])

    def build(self, ctx: BuildContext) -> TableResult:
        state_key = layout.state_key(ctx.folder, self.spec.name)
        state_info = ctx.cache.head(state_key)
        # The published file must still be the one this state describes: a file that
        # vanished or was replaced (say, truncated by hand) is rebuilt, not trusted.
        output_exists = self.spec.partitioned or _has_sha(
            ctx.cache.head(ctx.table_key(self.spec)),
            state_info.metadata.get("published-sha256") if state_info is not None else None,
        )
        reusable = not self.volatile and state_info is not None and output_exists
        # A listing whose source is unchanged is the listing of the last build: one HEAD
        # instead of reading (and hashing) a listing of every record.
        source_sha = self.listing.source_sha(ctx)
        source_fingerprint = (
            fingerprint_of(self.spec, self.revision, {"listing-source": source_sha}) if source_sha else ""
        )
        if reusable and source_fingerprint and _saved(state_info, "source-fingerprint") == source_fingerprint:
            return self._unchanged(ctx, state_key, state_info)
        listing = self.listing.list_modified(ctx, _saved_count(state_info, "listed-records"))
        fingerprint = fingerprint_of(self.spec, self.revision, sorted(listing.items()))
        if reusable and _saved(state_info, "input-fingerprint") == fingerprint:
            return self._unchanged(ctx, state_key, state_info)

        previous = self._previous_state(ctx, state_key, state_info)
        kept = RECORDS.unchanged(previous, listing)
        kept_ids = set(kept[ID_COL].to_pylist())
        changed = [rid for rid in listing if rid not in kept_ids]
        logger.info(
            "incremental build",
            extra={"table": self.spec.name, "records": len(listing), "changed": len(changed)},
        )
        fresh = self._rows_of_changed(ctx, changed, listing)
        state = pa.concat_tables([kept, fresh]).sort_by([(ID_COL, "ascending")])
        RECORDS.count_malformed(kept, ctx.malformed)

        published = state.filter(pc.is_null(state[MARK_COL])).drop_columns([MODIFIED_COL, MARK_COL])
        if self.finish is not None:
            published = self.finish(published, ctx)
        if self.sort_by:
            published = published.sort_by([(c, "ascending") for c in self.sort_by])
        published = published.select(self.spec.column_names).cast(self.spec.schema)
        written: PartitionsWritten | WriteResult
        if self.spec.partitioned:
            written = ctx.write_partitions(self.spec, published, fingerprint)
        else:
            written = ctx.write(self.spec, published, fingerprint)
        # State after the table: if this PUT fails the next build only re-fetches more.
        ctx.cache.write_table(
            state_key,
            state,
            metadata={
                "input-fingerprint": fingerprint,
                "source-fingerprint": source_fingerprint,
                "listed-records": str(len(listing)),
                "published-rows": str(written.rows),
                "published-sha256": written.sha256,
            },
        )
        return TableResult(
            status=Status.SUCCEEDED if written.changed else Status.UNCHANGED,
            rows=written.rows,
            bytes_written=written.bytes_written,
            content_sha256=written.sha256,
            partitions_written=getattr(written, "partitions_written", 0),
            partitions_deleted=getattr(written, "partitions_deleted", 0),
            message=f"{len(changed)} of {len(listing)} records fetched",
        )

    def _unchanged(self, ctx: BuildContext, state_key: str, state_info: Any) -> TableResult:
        state = ctx.cache.read_table(state_key, columns=[MARK_COL])
        if state is None:
            raise MissingInput(f"the state of {self.spec.name} vanished during the build; run it again")
        RECORDS.count_malformed(state, ctx.malformed)
        return TableResult(
            status=Status.UNCHANGED,
            rows=int(state_info.metadata.get("published-rows", 0)),
            content_sha256=state_info.metadata.get("published-sha256"),
            message="no record changed since the last build",
        )

    def _previous_state(self, ctx: BuildContext, key: str, info: Any) -> pa.Table:
        empty = self.state_schema.empty_table()
        if info is None:
            return empty
        state = ctx.cache.read_table(key)
        if state is None or not state.schema.equals(self.state_schema):
            return empty  # the schema changed: rebuild everything
        return state

    def _rows_of_changed(self, ctx: BuildContext, changed: list[str], listing: dict[str, str]) -> pa.Table:
        # Rows become arrow tables every ROWS_PER_PIECE rows: Python dicts of 100,000
        # records would cost a worker gigabytes; arrow columns cost megabytes.
        pieces: list[pa.Table] = []
        rows: list[Row] = []
        for record in ctx.docdb().fetch_by_ids(changed, projection_of(self.projection)):
            rows.extend(self._rows_of_record(ctx, record, listing))
            if len(rows) >= ROWS_PER_PIECE:
                pieces.append(self._to_state(ctx, rows, listing))
                rows = []
        pieces.append(self._to_state(ctx, rows, listing))
        return pa.concat_tables(pieces)

    def _rows_of_record(self, ctx: BuildContext, record: dict, listing: dict[str, str]) -> list[Row]:
        """A record's state rows; a malformed record gives one marker row."""
        try:
            rid = record_id(record)
        except MalformedRecord as exc:
            ctx.malformed.add("?", str(exc))
            return []
        bookkeeping = {ID_COL: rid, MODIFIED_COL: listing.get(rid, "")}
        try:
            produced = list(self.rows(record))
        except Exception as exc:  # one bad record must not sink the table
            ctx.malformed.add(rid, f"{type(exc).__name__}: {exc}")
            return [{**bookkeeping, MARK_COL: malformed_mark(exc)}]
        if not produced:
            return [{**bookkeeping, MARK_COL: EMPTY}]
        return [{**row, **bookkeeping, MARK_COL: None} for row in produced]

    def _to_state(self, ctx: BuildContext, rows: list[Row], listing: dict[str, str]) -> pa.Table:
        before = ctx.malformed.count
        table = rows_to_arrow(rows, self.state_schema, ctx.malformed)
        if ctx.malformed.count > before:
            # A row that did not fit the schema: remember its record as malformed so
            # an unchanged record is not fetched again on every run.
            bad = set(_ids(rows)) - set(table[ID_COL].to_pylist())
            markers = [
                {ID_COL: rid, MODIFIED_COL: listing.get(rid, ""), MARK_COL: malformed_mark("bad value")}
                for rid in sorted(bad)
            ]
            table = pa.concat_tables([table, pa.Table.from_pylist(markers, schema=self.state_schema)])
        return table


def _saved(info: Any, name: str) -> str | None:
    """A value saved in the state's metadata at the last build."""
    return None if info is None else info.metadata.get(name)


def _saved_count(info: Any, name: str) -> int | None:
    value = _saved(info, name)
    return int(value) if value is not None and value.isdigit() else None


def _has_sha(info: Any, sha256: str | None) -> bool:
    return info is not None and sha256 is not None and info.metadata.get("sha256") == sha256


def _ids(rows: list[Row]) -> list[str]:
    return [row[ID_COL] for row in rows]


@dataclass
class DerivedTable:
    """A table computed from other tables (and sources the module reads itself).

    ``derive(ctx)`` returns rows or an arrow table. Unless ``volatile``, the build is
    skipped when none of the upstream tables' contents changed since the last build.
    ``extra_inputs(ctx)`` may add more to that fingerprint (e.g. source object ETags).
    With ``sources_elsewhere`` (``extra_inputs`` reads other teams' buckets), those
    reads are made again only when an upstream table changed or the last ones are
    ``settings.source_recheck_seconds`` old.
    """

    spec: TableSpec
    derive: Callable[[BuildContext], pa.Table | list[Row]]
    volatile: bool = False
    extra_inputs: Callable[[BuildContext], Any] | None = None
    revision: int = 1
    sources_elsewhere: bool = False

    def build(self, ctx: BuildContext) -> TableResult:
        upstream = upstream_shas(ctx, self.spec)
        recheck = None
        if self.sources_elsewhere and not self.volatile:
            recheck = SourcesRead(ctx, self.spec, fingerprint_of(self.spec, self.revision, upstream))
            skipped = recheck.unchanged_since_last_read()
            if skipped is not None:
                return skipped
        fingerprint = upstream_fingerprint(
            ctx, self.spec, self.revision, self.extra_inputs, volatile=self.volatile, upstream=upstream
        )
        if recheck is not None:
            recheck.record(fingerprint)
        skipped = unchanged_since(ctx, self.spec, fingerprint)
        if skipped is not None:
            return skipped
        produced = self.derive(ctx)
        if isinstance(produced, pa.Table):
            table = produced.select(self.spec.column_names).cast(self.spec.schema)
            if self.spec.open_schema:
                # Undeclared columns (metadata_upgrade's one per upgrader version)
                # follow the declared ones, as the derivation produced them.
                for name in produced.column_names:
                    if name not in self.spec.column_names:
                        table = table.append_column(produced.schema.field(name), produced[name])
        else:
            table = rows_to_arrow(produced, self.spec.schema, ctx.malformed)
        return published(ctx.write(self.spec, table, fingerprint))


class SourcesRead:
    """When a derived table last read its sources in other buckets, from which inputs.

    Kept in ``_state/<table>.sources.json``: the fingerprint of the upstream tables at
    that read, the time, and the fingerprint of everything (the table's own, if
    published from it). While the upstream tables are the same and the read is younger
    than ``settings.source_recheck_seconds``, the table is as it was: unchanged.
    """

    def __init__(self, ctx: BuildContext, spec: TableSpec, upstream: str) -> None:
        """``upstream``: the fingerprint of the input tables as they are now."""
        self.ctx = ctx
        self.spec = spec
        self.key = layout.sources_read_key(ctx.folder, spec.name)
        self.upstream = upstream

    def unchanged_since_last_read(self) -> TableResult | None:
        found = self.ctx.cache.get_json(self.key)
        last = found[0] if found is not None and isinstance(found[0], dict) else {}
        read_at = last.get("read_at")
        if last.get("upstream") != self.upstream or not isinstance(read_at, int | float):
            return None
        age = time.time() - read_at
        if not 0 <= age < self.ctx.settings.source_recheck_seconds:
            return None
        skipped = unchanged_since(self.ctx, self.spec, str(last.get("fingerprint")))
        if skipped is not None:
            # What that read found malformed is still so: counted as if read again.
            sample = [entry for entry in last.get("malformed") or [] if isinstance(entry, dict)]
            for entry in sample:
                self.ctx.malformed.add(str(entry.get("id")), str(entry.get("error")))
            count = last.get("malformed_count")
            if isinstance(count, int) and count > len(sample):
                self.ctx.malformed.count += count - len(sample)
            skipped.message = (
                f"input tables unchanged; sources in other buckets read {age:.0f} s ago, "
                f"again after {self.ctx.settings.source_recheck_seconds} s"
            )
        return skipped

    def record(self, fingerprint: str) -> None:
        """The sources were just read: the table built from ``fingerprint`` is current."""
        malformed = self.ctx.malformed
        self.ctx.cache.put_json(
            self.key,
            {
                "upstream": self.upstream,
                "read_at": time.time(),
                "fingerprint": fingerprint,
                "malformed": malformed.sample,
                "malformed_count": malformed.count,
            },
        )


def upstream_fingerprint(
    ctx: BuildContext,
    spec: TableSpec,
    revision: int,
    extra_inputs: Callable[[BuildContext], Any] | None = None,
    *,
    volatile: bool = False,
    upstream: Mapping[str, str] | None = None,
) -> str:
    """Fingerprint of a derived table's inputs: the content hashes of the tables it reads
    (``upstream``, read here when not given), plus what ``extra_inputs`` adds."""
    inputs: dict[str, Any] = dict(upstream if upstream is not None else upstream_shas(ctx, spec))
    if extra_inputs is not None:
        inputs["extra"] = extra_inputs(ctx)
    if volatile:
        inputs["built_at"] = time.time()
    return fingerprint_of(spec, revision, inputs)


def upstream_shas(ctx: BuildContext, spec: TableSpec) -> dict[str, str]:
    """The content hash of each table ``spec`` reads; MissingInput if one has no file."""
    shas = {name: ctx.upstream_sha(name) for name in spec.depends_on}
    missing = [name for name, sha in shas.items() if sha is None]
    if missing:
        raise MissingInput(f"input tables without a file: {', '.join(missing)}")
    return {name: sha for name, sha in shas.items() if sha is not None}


def published(written: WriteResult) -> TableResult:
    """The result of writing a non-partitioned table ("unchanged" if its bytes were already there)."""
    return TableResult(
        status=Status.SUCCEEDED if written.changed else Status.UNCHANGED,
        rows=written.rows,
        bytes_written=written.bytes_written,
        content_sha256=written.sha256,
    )


def unchanged_since(ctx: BuildContext, spec: TableSpec, fingerprint: str) -> TableResult | None:
    """The "unchanged" result if the current file was built from the same inputs."""
    current = ctx.cache.head(ctx.table_key(spec))
    if current is None or current.metadata.get("input-fingerprint") != fingerprint:
        return None
    return TableResult(
        status=Status.UNCHANGED,
        rows=int(current.metadata.get("rows", 0)),
        content_sha256=current.metadata.get("sha256"),
        message="inputs unchanged since the last build",
    )


def distinct_sorted(table: pa.Table, column: str) -> pa.Table:
    """Distinct non-null, non-empty values of one column, sorted, as a one-column table."""
    values = pc.unique(table[column].combine_chunks().drop_null())
    values = values.filter(pc.not_equal(values, pa.scalar("")))
    return pa.table({column: values.sort()})
