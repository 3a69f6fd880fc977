"""Record consistency checks: the framework piece that runs them.

A check (one small module under ``bdc_sync/checks/``) declares a key, a description,
the source whose records get a result, the other sources it compares them with, a
function from records to pass (True) or fail (False) per record, and a version.
This module loads each source once, runs every check and publishes two tables:
``record_consistency_results`` (one row per record and check) and its companion
``record_consistency_checks`` (one row per check). It owns what a check must not
have to think about:

- **Reuse.** A ``per_record`` check's result is reused for a record that is the
  same (id, name, location, ``_last_modified``) under the same check version; only
  the other records are evaluated. A check that compares across records is rerun
  whenever the records it reads (any of its sources) or its version changed, and
  reused whole otherwise. When no source changed at all, nothing is fetched and
  nothing is evaluated.
- **Crash isolation.** A check that raises (or answers the wrong number of results)
  keeps its previous results; its checks row says ``crashed`` and why; the other
  checks and both tables are published as usual, and it is run again next time.

Sources: ``docdb_v2`` (ids and ``_last_modified`` from metadata_core, names and
locations fetched only for new or changed records), ``docdb_v1`` (the v1 listing,
then likewise) and ``open_data_prefixes`` (the top-level prefixes of the open-data
bucket, one paginated LIST with delimiter ``/``). Prefixes are untrusted values:
they are only ever row values, never part of a key we read or write.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from bdc_sync.fields import as_text
from bdc_sync.framework import BuildContext, ListedBy, TableResult, fingerprint_of
from biodata_cache import layout
from biodata_cache.catalog import RECORD_CONSISTENCY_CHECKS, TableSpec

logger = logging.getLogger(__name__)

PASS = "pass"
FAIL = "fail"
DOCDB_V2 = "docdb_v2"
DOCDB_V1 = "docdb_v1"
OPEN_DATA_PREFIXES = "open_data_prefixes"
SOURCES = (DOCDB_V2, DOCDB_V1, OPEN_DATA_PREFIXES)
OK = "ok"
CRASHED = "crashed"
NAME_PROJECTION = {"_id": 1, "name": 1, "location": 1}
_STATE_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string()),
        pa.field("record_id", pa.string()),
        pa.field("name", pa.string()),
        pa.field("location", pa.string()),
        pa.field("last_modified", pa.string()),
    ]
)


@dataclass(frozen=True)
class CheckedRecord:
    """What a check sees of one record: a DocDB record, or an S3 prefix (no _last_modified)."""

    record_id: str
    name: str | None
    location: str | None
    last_modified: str | None

    @property
    def key(self) -> tuple[str, str | None, str | None, str | None]:
        return (self.record_id, self.name, self.location, self.last_modified)


Records = Sequence[CheckedRecord]
# records of the check's source, records of each source it compares with -> pass per record
Evaluate = Callable[[Records, Mapping[str, Records]], Sequence[bool]]


@dataclass(frozen=True)
class Check:
    """One consistency check; ``evaluate`` returns True (pass) or False (fail) per record."""

    key: str
    description: str
    source: str
    evaluate: Evaluate
    version: int
    compares_with: tuple[str, ...] = ()
    # True only when a record's result depends on that record alone: its results
    # are then reused record by record. The default reruns on any change.
    per_record: bool = False

    @property
    def reads(self) -> tuple[str, ...]:
        return (self.source, *self.compares_with)

    def __post_init__(self) -> None:
        unknown = [s for s in self.reads if s not in SOURCES]
        if unknown:
            raise ValueError(f"check {self.key} reads unknown sources: {', '.join(unknown)}")


class CheckCrashed(RuntimeError):
    """A check's answer cannot be used (raised, or wrong number or type of results)."""


def evaluate_check(check: Check, records: Records, others: Mapping[str, Records]) -> list[str]:
    """``pass``/``fail`` per record; CheckCrashed wraps anything the check did wrong."""
    try:
        answers = list(check.evaluate(records, others))
    except Exception as exc:  # a check's bug must not sink the other checks
        raise CheckCrashed(f"{type(exc).__name__}: {exc}") from exc
    if len(answers) != len(records):
        raise CheckCrashed(f"answered {len(answers)} results for {len(records)} records")
    if not all(isinstance(answer, bool) for answer in answers):
        raise CheckCrashed("answered something other than True/False")
    return [PASS if answer else FAIL for answer in answers]


def records_sha(records: Records) -> str:
    digest = hashlib.sha256()
    for record in records:
        digest.update(json.dumps(record.key).encode())
    return digest.hexdigest()


# -- sources -------------------------------------------------------------------------


def _listing_sha(listing: Mapping[str, str] | Sequence[str]) -> str:
    items = sorted(listing.items()) if isinstance(listing, Mapping) else sorted(listing)
    return hashlib.sha256(json.dumps(items).encode()).hexdigest()


def v2_listing(ctx: BuildContext) -> dict[str, str]:
    """Every v2 record's id and _last_modified, from metadata_core (no DocDB request)."""
    return ListedBy("metadata_core").list_modified(ctx)


def docdb_records(
    ctx: BuildContext, version: str, listing: Mapping[str, str], previous: list[CheckedRecord]
) -> list[CheckedRecord]:
    """The listed records; names and locations fetched only for new or changed ones."""
    kept = {r.record_id: r for r in previous if listing.get(r.record_id, None) == (r.last_modified or "")}
    changed = [rid for rid in listing if rid not in kept]
    fetched: dict[str, CheckedRecord] = {}
    if changed:
        for record in ctx.docdb(version).fetch_by_ids(changed, NAME_PROJECTION):
            rid = str(record.get("_id"))
            if rid in listing:
                fetched[rid] = CheckedRecord(
                    rid, as_text(record.get("name")), as_text(record.get("location")), listing[rid] or None
                )
    # A listed record DocDB did not return (deleted meanwhile, or unreturnable) is left out.
    return sorted([*kept.values(), *fetched.values()], key=lambda r: r.record_id)


def open_data_prefixes(ctx: BuildContext) -> list[CheckedRecord]:
    """Top-level prefixes of the open-data bucket (a paginated LIST with delimiter "/")."""
    bucket = ctx.settings.source_bucket
    names = sorted(set(ctx.source(bucket).list_prefixes("")))
    return [CheckedRecord(f"{name}/", name, f"s3://{bucket}/{name}", None) for name in names if name]


# -- the build -------------------------------------------------------------------------


@dataclass
class ConsistencyTable:
    """Builds record_consistency_results and record_consistency_checks from ``checks``."""

    spec: TableSpec
    checks: tuple[Check, ...]
    checks_spec: TableSpec = RECORD_CONSISTENCY_CHECKS
    revision: int = 1

    def __post_init__(self) -> None:
        keys = [check.key for check in self.checks]
        if len(set(keys)) != len(keys):
            raise ValueError(f"check keys repeat: {keys}")

    @property
    def sources(self) -> list[str]:
        return [s for s in SOURCES if any(s in check.reads for check in self.checks)]

    def build(self, ctx: BuildContext) -> TableResult:
        now = datetime.now(UTC)
        v1_listing = ctx.docdb("v1").list_modified() if DOCDB_V1 in self.sources else {}
        prefixes = open_data_prefixes(ctx) if OPEN_DATA_PREFIXES in self.sources else []
        inputs = {
            "sources": {
                DOCDB_V2: ctx.upstream_sha("metadata_core") if DOCDB_V2 in self.sources else None,
                DOCDB_V1: _listing_sha(v1_listing),
                OPEN_DATA_PREFIXES: records_sha(prefixes),
            },
            "checks": [
                [check.key, check.version, check.per_record, list(check.reads)] for check in self.checks
            ],
        }
        fingerprint = fingerprint_of(self.spec, self.revision, inputs)
        state_key = layout.state_key(ctx.folder, self.spec.name)
        state_info = ctx.cache.head(state_key)
        published_ok = state_info is not None and all(
            self._published_sha(ctx, spec) == state_info.metadata.get(f"{spec.name}-sha256")
            for spec in (self.spec, self.checks_spec)
        )
        if (
            published_ok
            and state_info is not None
            and state_info.metadata.get("input-fingerprint") == fingerprint
        ):
            return TableResult(
                status="unchanged",
                rows=int(state_info.metadata.get(f"{self.spec.name}-rows", 0)),
                content_sha256=state_info.metadata.get(f"{self.spec.name}-sha256"),
                message="no source changed since the last build",
                companion_rows={
                    self.checks_spec.name: int(state_info.metadata.get(f"{self.checks_spec.name}-rows", 0))
                },
            )

        previous_records, previous_meta = self._previous_state(ctx, state_key, state_info)
        previous_results = self._previous_results(ctx) if published_ok else self.spec.schema.empty_table()
        if not published_ok:
            previous_meta = {}

        records: dict[str, list[CheckedRecord]] = {}
        if DOCDB_V2 in self.sources:
            records[DOCDB_V2] = docdb_records(ctx, "v2", v2_listing(ctx), previous_records.get(DOCDB_V2, []))
        if DOCDB_V1 in self.sources:
            records[DOCDB_V1] = docdb_records(ctx, "v1", v1_listing, previous_records.get(DOCDB_V1, []))
        records[OPEN_DATA_PREFIXES] = prefixes
        shas = {name: records_sha(found) for name, found in records.items()}

        result_rows: list[dict[str, Any]] = []
        check_rows: list[dict[str, Any]] = []
        meta: dict[str, dict[str, Any]] = {}
        evaluated: dict[str, int] = {}
        for check in self.checks:
            rows, row, meta[check.key], evaluated[check.key] = self._run(
                check, records, shas, previous_results, previous_meta, now
            )
            result_rows.extend(rows)
            check_rows.append(row)

        results = pa.Table.from_pylist(result_rows, schema=self.spec.schema).sort_by(
            [("check_key", "ascending"), ("record_id", "ascending")]
        )
        checks_table = pa.Table.from_pylist(check_rows, schema=self.checks_spec.schema)
        written = ctx.write(self.spec, results, fingerprint)
        written_checks = ctx.write(self.checks_spec, checks_table, fingerprint)
        crashed = [check.key for check in self.checks if meta[check.key]["status"] == CRASHED]
        # State after the tables: if this PUT fails the next build only re-fetches names.
        state = pa.Table.from_pylist(
            [
                {
                    "source": source,
                    "record_id": r.record_id,
                    "name": r.name,
                    "location": r.location,
                    "last_modified": r.last_modified,
                }
                for source, found in records.items()
                if source != OPEN_DATA_PREFIXES
                for r in found
            ],
            schema=_STATE_SCHEMA,
        ).replace_schema_metadata({"checks": json.dumps(meta, default=str)})
        ctx.cache.write_table(
            state_key,
            state,
            metadata={
                # A crashed check is run again next time even if no source changes.
                "input-fingerprint": f"{fingerprint}:crashed" if crashed else fingerprint,
                f"{self.spec.name}-sha256": written.sha256,
                f"{self.spec.name}-rows": str(written.rows),
                f"{self.checks_spec.name}-sha256": written_checks.sha256,
                f"{self.checks_spec.name}-rows": str(written_checks.rows),
            },
        )
        per_check = ", ".join(f"{key}: {count}" for key, count in evaluated.items())
        message = f"evaluated {sum(evaluated.values())} results ({per_check})"
        if crashed:
            message += f"; crashed, previous results kept: {', '.join(crashed)}"
        logger.info("record consistency", extra={"evaluated": evaluated, "crashed": crashed})
        return TableResult(
            status="succeeded" if written.changed or written_checks.changed else "unchanged",
            rows=written.rows,
            bytes_written=written.bytes_written + written_checks.bytes_written,
            content_sha256=written.sha256,
            message=message,
            companion_rows={self.checks_spec.name: written_checks.rows},
        )

    def _run(
        self,
        check: Check,
        records: Mapping[str, list[CheckedRecord]],
        shas: Mapping[str, str],
        previous_results: pa.Table,
        previous_meta: Mapping[str, dict[str, Any]],
        now: datetime,
    ) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any], int]:
        """One check's result rows, its checks row, its state entry and the results it computed."""
        before = previous_meta.get(check.key, {})
        previous_rows = previous_results.filter(
            pc.equal(previous_results["check_key"], pa.scalar(check.key))
        ).to_pylist()
        inputs = {source: shas[source] for source in check.reads}
        same_version = before.get("version") == check.version
        own = records[check.source]
        others = {source: records[source] for source in check.compares_with}
        if check.per_record:
            reusable = {
                (r["record_id"], r["name"], r["location"], r["record_last_modified"]): r
                for r in previous_rows
                if same_version
            }
        elif same_version and before.get("status") == OK and before.get("inputs") == inputs:
            reusable = {
                (r["record_id"], r["name"], r["location"], r["record_last_modified"]): r
                for r in previous_rows
            }
        else:
            reusable = {}
        pending = [r for r in own if r.key not in reusable]
        try:
            answers = evaluate_check(check, pending, others) if pending else []
        except CheckCrashed as exc:
            logger.warning(
                "consistency check crashed; previous results kept",
                extra={"check": check.key, "error": str(exc)},
            )
            failed = sum(1 for r in previous_rows if r["result"] == FAIL)
            entry = {**before, "status": CRASHED, "error": str(exc)[:500]}
            return previous_rows, self._check_row(check, entry, len(previous_rows), failed, 0), entry, 0
        computed = {r.key: answer for r, answer in zip(pending, answers, strict=True)}
        rows = []
        for record in own:
            if record.key in computed:
                result, checked_at = computed[record.key], now
            else:
                reused = reusable[record.key]
                result, checked_at = reused["result"], reused["checked_at"]
            rows.append(
                {
                    "check_key": check.key,
                    "record_id": record.record_id,
                    "name": record.name,
                    "location": record.location,
                    "record_last_modified": record.last_modified,
                    "result": result,
                    "checked_at": checked_at,
                }
            )
        ran = bool(pending) or not before
        entry = {
            "version": check.version,
            "inputs": inputs,
            "status": OK,
            "error": None,
            "ran_at": now.isoformat() if ran else before.get("ran_at"),
            "recomputed": len(pending) if ran else before.get("recomputed", 0),
        }
        failed = sum(1 for row in rows if row["result"] == FAIL)
        return (
            rows,
            self._check_row(check, entry, len(rows), failed, entry["recomputed"]),
            entry,
            len(pending),
        )

    @staticmethod
    def _check_row(
        check: Check, entry: Mapping[str, Any], checked: int, failed: int, recomputed: int
    ) -> dict[str, Any]:
        ran_at = entry.get("ran_at")
        return {
            "check_key": check.key,
            "description": check.description,
            "reads": list(check.reads),
            "per_record": check.per_record,
            "version": check.version,
            "status": entry.get("status", OK),
            "error": entry.get("error"),
            "records_checked": checked,
            "failed": failed,
            "recomputed": recomputed,
            "ran_at": datetime.fromisoformat(ran_at) if isinstance(ran_at, str) else None,
        }

    def _published_sha(self, ctx: BuildContext, spec: TableSpec) -> str | None:
        info = ctx.cache.head(ctx.table_key(spec))
        return None if info is None else info.metadata.get("sha256")

    def _previous_results(self, ctx: BuildContext) -> pa.Table:
        table = ctx.cache.read_table(ctx.table_key(self.spec))
        if table is None or not table.schema.equals(self.spec.schema):
            return self.spec.schema.empty_table()
        return table

    @staticmethod
    def _previous_state(
        ctx: BuildContext, key: str, info: Any
    ) -> tuple[dict[str, list[CheckedRecord]], dict[str, dict[str, Any]]]:
        if info is None:
            return {}, {}
        state = ctx.cache.read_table(key)
        if state is None or not state.schema.remove_metadata().equals(_STATE_SCHEMA):
            return {}, {}
        by_source: dict[str, list[CheckedRecord]] = {}
        for row in state.to_pylist():
            by_source.setdefault(row["source"], []).append(
                CheckedRecord(row["record_id"], row["name"], row["location"], row["last_modified"])
            )
        raw = (state.schema.metadata or {}).get(b"checks", b"{}")
        return by_source, json.loads(raw)
