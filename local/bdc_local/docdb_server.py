"""A local HTTP stand-in for the AIND metadata DocDB REST API.

The production sync code reads the metadata database only through
``aind_data_access_api.document_db.MetadataDbClient``, which talks to an AWS API
Gateway in front of DocumentDB. This module serves the same read protocol from an
in-memory corpus so the code can be exercised end to end on a laptop or in CI:

``GET  /{v1|v2}/metadata_index/data_assets/find``
    query parameters ``filter``, ``projection``, ``sort`` (JSON text, optional),
    ``limit`` and ``skip`` (integers; ``limit=0`` means no limit). Answers a JSON array
    and, like the real gateway, returns *fewer* records than asked for when the page
    would exceed the payload limit (at least one record whenever any match), so the
    client's skip-pagination is exercised.
``POST /{v1|v2}/metadata_index/data_assets/aggregate``
    a JSON array (the pipeline) in the body; answers a JSON array. A result larger than
    the payload limit is answered with 413, as the real gateway cannot return it either.
``GET  /{v1|v2}/metadata_index/data_assets/count_documents``
    optional ``filter``; answers ``{"total_record_count": N, "filtered_record_count": M}``.

With ``--profile gateway`` (:data:`GATEWAY`, what the local stack uses) it behaves
like the API Gateway + Lambda in front of the real service: the answer limit counts
the body escaped into Lambda's response envelope and is answered 502 (also for one
record over it), a 29 s integration timeout answers 504 while the work goes on
(decided on the modelled time, so the same request times out on every run),
latency grows by request and by MB, more than ``max_in_flight`` requests are refused
with 429 without ``Retry-After``, URLs over 10,240 characters get 414 and unknown
routes 403. The default (``permissive``) profile is the kinder stand-in below.

Beyond the protocol it models what matters for performance and robustness tests:
indexes on ``_id``, ``name`` and ``subject.subject_id`` (equality and ``$in`` are
answered without a scan), injected latency per request and per returned record,
injected 429/503 faults with a seeded RNG, a "down" switch, and request statistics.
Test-only endpoints live under ``/_admin/`` (stats, requests, config, upsert, delete,
health).

Run it in the foreground (the local stack starts it as a subprocess)::

    python -m bdc_local.docdb_server --corpus corpus.jsonl --port 0 --port-file port.txt

Records handed to the server are stored as given (not copied) and must not be
mutated afterwards: their JSON is cached and they are indexed on insertion.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import logging
import os
import random
import signal
import socket
import socketserver
import sys
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule

from bdc_local import mongo, record_sizes

log = logging.getLogger(__name__)

DATABASE = "metadata_index"
COLLECTION = "data_assets"
VERSIONS = ("v1", "v2")
ENDPOINTS = ("find", "aggregate", "count_documents")
ENDPOINT_METHODS = {"find": "GET", "aggregate": "POST", "count_documents": "GET"}
# Fields with an index; equality and $in on them are answered without a scan, like
# the indexes the real collection has on these fields.
INDEXED_FIELDS = ("_id", "name", "subject.subject_id")
# Most recent find selections kept for skip-pagination (one query paged by `skip` would
# otherwise rescan and resort the corpus for every page).
SELECTION_CACHE_SIZE = 16

JSON = Any


def dumps(value: JSON) -> str:
    """Compact JSON; ASCII-only so that len(text) equals the payload size in bytes.

    Records grown with ``bdc_local.record_sizes`` hold shared series whose JSON is
    encoded once; their text is joined from those pieces (the same bytes).
    """
    return "".join(record_sizes.json_pieces(value))


def load_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Records from a JSON Lines file (one object per line; ``.gz`` is decompressed).

    A file whose first non-blank character is ``[`` is read as one JSON array instead,
    which makes single fixture files usable too.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        head = handle.read(4096)
        if head.lstrip().startswith("["):
            records = json.loads(head + handle.read())
        else:
            # Line by line: a 100,000-record corpus is about 1 GB of text, not held at once.
            handle.seek(0)
            records = []
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number}: invalid JSON: {exc}") from exc
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ValueError(f"{path}: expected JSON objects, one per line")
    return records


class PayloadTooLargeError(Exception):
    """An aggregate result that the gateway could not return in one response."""


def escaped_extra(text: str) -> int:
    """Characters ``text`` gains when escaped into a JSON string (quotes, backslashes)."""
    return text.count('"') + text.count("\\")


def answer_size(texts: Sequence[str], mode: str) -> int:
    """Size of a JSON array of ``texts`` as the limit counts it (see ``limit_mode``)."""
    size = sum(len(t) for t in texts) + max(len(texts) - 1, 0) + 2
    if mode == "envelope":
        size += sum(escaped_extra(t) for t in texts) + 2 + ENVELOPE_OVERHEAD
    return size


# --------------------------------------------------------------------------------------
# The in-memory collection
# --------------------------------------------------------------------------------------
def _record_key(record_id: Any) -> Hashable:
    """Dictionary key for an ``_id`` value, consistent with Mongo equality."""
    if mongo.is_scalar(record_id):
        return mongo.hash_key(record_id)
    return ("json", json.dumps(record_id, sort_keys=True, default=str))


def _index_keys(record: Mapping[str, Any], parts: Sequence[str]) -> list[Hashable] | None:
    """Keys of ``record`` in the index on ``parts``, or None if it must always be rechecked.

    Arrays and documents cannot be looked up by hash (Mongo equality also matches array
    elements and whole arrays), so records holding them are kept on a small side list
    that every indexed lookup includes and the full filter then rechecks.
    """
    keys: list[Hashable] = []
    for value in mongo.resolve(record, parts):
        if not mongo.is_scalar(value):
            return None
        keys.append(mongo.hash_key(value))
    return keys


def _index_values(condition: Any) -> tuple[list[Any], bool] | None:
    """Query values an index can look up for ``{field: condition}``, else None (scan).

    The flag tells whether the lookup is the whole condition (plain equality, or a
    lone ``$eq``/``$in``), in which case the index answer is exact.
    """
    if isinstance(condition, dict):
        if not condition or not next(iter(condition)).startswith("$"):
            return None  # equality with a whole document
        if "$in" in condition:
            values = condition["$in"]
        elif "$eq" in condition:
            values = [condition["$eq"]]
        else:
            return None
        if isinstance(values, list) and all(mongo.is_scalar(v) for v in values):
            return values, len(condition) == 1
        return None
    if mongo.is_scalar(condition):
        return [condition], True
    return None


class Collection:
    """Records of one API version in insertion order, with indexes and a JSON cache.

    Not thread-safe on its own; :class:`DocDBServer` serialises access with a lock.
    """

    def __init__(self, records: Iterable[dict[str, Any]] = ()) -> None:
        # Python dicts keep insertion order, which gives the stable natural order that
        # skip-pagination relies on; replacing a record keeps its position. This dict,
        # keyed by _id, is also the _id index.
        self._records: dict[Hashable, dict[str, Any]] = {}
        self._seq: dict[Hashable, int] = {}
        self._next_seq = 0
        fields = [name for name in INDEXED_FIELDS if name != "_id"]
        self._index_parts = {name: mongo.split_path(name) for name in fields}
        self._index: dict[str, dict[Hashable, list[Hashable]]] = {f: {} for f in fields}
        self._unindexed: dict[str, dict[Hashable, None]] = {f: {} for f in fields}
        # JSON text by id() of the stored record object: one cheap lookup per returned
        # record. Entries are dropped when their record is replaced or deleted, so an
        # id() is never reused while its entry exists.
        # Kept as the pieces of record_sizes.json_pieces: a record at real size holds
        # shared series, and its cached JSON shares their texts (joined per answer).
        self._json: dict[int, tuple[str, ...]] = {}
        self._selections: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self.upsert(records)

    def __len__(self) -> int:
        return len(self._records)

    def records(self) -> list[dict[str, Any]]:
        """All records in natural (insertion) order."""
        return list(self._records.values())

    # -- mutation ------------------------------------------------------------------
    def upsert(self, records: Iterable[dict[str, Any]]) -> tuple[int, int]:
        """Replace records by ``_id`` (in place) or append them; returns (inserted, replaced)."""
        inserted = replaced = 0
        for record in records:
            if not isinstance(record, dict):
                raise mongo.QueryError("records must be JSON objects")
            if record.get("_id") is None:
                # DocumentDB would assign an ObjectId; a uuid keeps _id a plain string.
                record = {"_id": str(uuid.uuid4()), **record}
            key = _record_key(record["_id"])
            old = self._records.get(key)
            if old is not None:
                self._unindex(key, old)
                self._json.pop(id(old), None)
                replaced += 1
            else:
                self._seq[key] = self._next_seq
                self._next_seq += 1
                inserted += 1
            self._records[key] = record
            self._json.pop(id(record), None)
            self._index_record(key, record)
        self._selections.clear()
        return inserted, replaced

    def delete(self, ids: Iterable[Any]) -> int:
        """Remove records by ``_id``; returns how many existed."""
        deleted = 0
        for record_id in ids:
            key = _record_key(record_id)
            record = self._records.pop(key, None)
            if record is None:
                continue
            self._unindex(key, record)
            self._seq.pop(key, None)
            self._json.pop(id(record), None)
            deleted += 1
        self._selections.clear()
        return deleted

    def _index_record(self, key: Hashable, record: dict[str, Any]) -> None:
        for name, parts in self._index_parts.items():
            keys = _index_keys(record, parts)
            if keys is None:
                self._unindexed[name][key] = None
                continue
            index = self._index[name]
            for index_key in dict.fromkeys(keys):
                index.setdefault(index_key, []).append(key)

    def _unindex(self, key: Hashable, record: dict[str, Any]) -> None:
        for name, parts in self._index_parts.items():
            self._unindexed[name].pop(key, None)
            keys = _index_keys(record, parts) or []
            index = self._index[name]
            for index_key in dict.fromkeys(keys):
                bucket = index.get(index_key)
                if bucket is None:
                    continue
                if key in bucket:
                    bucket.remove(key)
                if not bucket:
                    del index[index_key]

    # -- queries -------------------------------------------------------------------
    def candidates(self, filter_query: Any) -> tuple[list[dict[str, Any]], bool] | None:
        """Records found through an index, in natural order, and whether they are exact.

        Looks at equality/``$in`` on indexed fields at the top level of the filter and
        inside a top-level ``$and``; returns None when the filter needs a full scan.
        Unless the flag says the index answered the whole filter, the candidates are a
        superset and the caller applies the filter to them.
        """
        if not isinstance(filter_query, dict) or not filter_query:
            return None
        clauses = [filter_query]
        conjunction = filter_query.get("$and")
        if isinstance(conjunction, list):
            clauses.extend(c for c in conjunction if isinstance(c, dict))
        best: set[Hashable] | None = None
        best_exact = False
        for clause in clauses:
            for name in INDEXED_FIELDS:
                if name not in clause:
                    continue
                lookup = _index_values(clause[name])
                if lookup is None:
                    continue
                values, whole_condition = lookup
                if name == "_id":
                    records = self._records
                    found = {k for v in values if (k := mongo.hash_key(v)) in records}
                    complete = True
                else:
                    found = set(self._unindexed[name])
                    complete = not found  # arrays/documents need the full filter
                    index = self._index[name]
                    for value in values:
                        found.update(index.get(mongo.hash_key(value), ()))
                if best is None or len(found) < len(best):
                    best = found
                    best_exact = whole_condition and complete and clause is filter_query and len(clause) == 1
        if best is None:
            return None
        seq = self._seq
        keys = sorted((k for k in best if k in seq), key=seq.__getitem__)
        records = self._records
        return [records[k] for k in keys], best_exact

    def _matching(self, filter_query: Any) -> list[dict[str, Any]] | Iterable[dict[str, Any]]:
        """Records matching a non-empty filter, in natural order."""
        plan = self.candidates(filter_query)
        if plan is not None and plan[1]:
            return plan[0]
        predicate = mongo.compile_filter(filter_query)
        source: Iterable[dict[str, Any]] = self._records.values() if plan is None else plan[0]
        return [r for r in source if predicate(r)]

    def select(self, filter_query: Any, sort: Any) -> list[dict[str, Any]]:
        """Records matching ``filter_query`` in ``sort`` order (or natural order)."""
        cache_key = dumps([filter_query, sort])
        cached = self._selections.get(cache_key)
        if cached is not None:
            self._selections.move_to_end(cache_key)
            return cached
        if sort:
            mongo.sort_records([], sort)  # validate before scanning
        if not filter_query:
            selected = list(self._records.values())
        else:
            selected = list(self._matching(filter_query))
        if sort:
            selected = mongo.sort_records(selected, sort)
        self._selections[cache_key] = selected
        if len(self._selections) > SELECTION_CACHE_SIZE:
            self._selections.popitem(last=False)
        return selected

    def count(self, filter_query: Any) -> int:
        """Number of records matching ``filter_query``."""
        if not filter_query:
            return len(self._records)
        return sum(1 for _ in self._matching(filter_query))

    def aggregate(self, pipeline: Any) -> list[dict[str, Any]]:
        """Run a pipeline; a leading ``$match`` uses the indexes when it can."""
        if not isinstance(pipeline, list):
            raise mongo.QueryError("an aggregation pipeline must be an array of stage objects")
        first = pipeline[0] if pipeline else None
        if isinstance(first, dict) and len(first) == 1 and isinstance(first.get("$match"), dict):
            rest = mongo.compile_pipeline(pipeline[1:])
            docs = list(self._matching(first["$match"])) if first["$match"] else self.records()
        else:
            rest = mongo.compile_pipeline(pipeline)
            docs = self.records()
        for stage in rest:
            docs = stage(docs)
        return docs

    def to_json(self, doc: Any) -> str:
        """JSON of ``doc``, cached when it is one of the stored records (unprojected)."""
        pieces = self._json.get(id(doc))
        if pieces is None:
            pieces = record_sizes.json_pieces(doc)
            if isinstance(doc, dict):
                record_id = doc.get("_id")
                if record_id is not None and self._records.get(_record_key(record_id)) is doc:
                    self._json[id(doc)] = pieces
        return pieces[0] if len(pieces) == 1 else "".join(pieces)


# --------------------------------------------------------------------------------------
# Configuration and statistics
# --------------------------------------------------------------------------------------
#: Lambda's limit on a synchronous response, over the whole envelope.
LAMBDA_RESPONSE_LIMIT = 6_291_556
#: The proxy envelope around the escaped body: statusCode, headers, isBase64Encoded.
ENVELOPE_OVERHEAD = 160


@dataclass
class ServerConfig:
    """Run-time behaviour of the stand-in; change it with :meth:`DocDBServer.configure`.

    The defaults are the permissive stand-in the unit tests were written against;
    :data:`GATEWAY` holds the settings that behave like API Gateway + Lambda (what
    the local stack, the e2e tests and the bench use).
    """

    payload_limit_bytes: int = 6_000_000
    # "body": the limit counts the compact JSON body; "envelope": the body escaped into
    # the JSON string of a Lambda proxy response plus the envelope, as Lambda counts it.
    limit_mode: str = "body"
    # Status of an answer over the limit: the library documents 413 for its base-URL
    # GET; a Lambda-proxy answer over Lambda's limit reaches the client as 502.
    oversize_status: int = 413
    # A find page whose first record alone is over the limit: answered with it (the
    # permissive default) or refused with `oversize_status` (what Lambda does).
    return_oversized_single: bool = True
    latency_ms: float = 0.0
    per_record_ms: float = 0.0
    # Latency by bytes: ms per MB of answer body (a Lambda reads, converts and sends it).
    per_mb_ms: float = 0.0
    # API Gateway's integration timeout: the client gets 504 while the work goes on
    # (and keeps counting towards `max_in_flight`) until it is done. Decided on the
    # modelled time (latency_ms + per_record_ms + per_mb_ms), so the same request
    # times out on every run however loaded the machine is. None: no timeout.
    integration_timeout_seconds: float | None = None
    # Load-driven throttling: more API requests than this in flight (work after a 504
    # included) are answered `throttle_status` at once. None: no cap.
    max_in_flight: int | None = None
    throttle_status: int = 429
    # Injected and load-driven 429s carry `Retry-After: 0` (True) or, like API
    # Gateway's throttle, no Retry-After at all (False).
    retry_after_on_429: bool = True
    fault_rate: float = 0.0
    fault_statuses: tuple[int, ...] = (429, 503)
    down: bool = False
    # The real gateway cannot return an aggregate result over the payload limit.
    enforce_aggregate_limit: bool = True
    # API Gateway refuses URLs longer than 10,240 characters (regional REST API; 8,192
    # edge-optimized) with 414, counted over the full URL (scheme, host, path, query).
    max_url_bytes: int | None = 10_240
    # Status of a request to a route that does not exist (or a wrong method): API
    # Gateway answers 403 {"message": "Missing Authentication Token"}.
    unknown_route_status: int = 404
    # Keep the last N API requests (endpoint, status, an aggregate's `_id` `$in`
    # values, records, bytes, modelled seconds) for GET /_admin/requests: what tests
    # read to see how a client split its batches. 0: none kept.
    request_log_size: int = 0


#: What the gateway in front of the real service does, as far as the client library,
#: AWS's documented limits and other callers tell (bench/docdb_canary.py settles the
#: rest against the live API). Latency: 40 ms a request, 50 ms a MB. The cap of 32
#: requests in flight is an assumption (the service's Lambda concurrency is not
#: public): what the default deployment makes at most (32 workers x 1), so the old
#: 4 a worker (128) meets throttling here, as it might there.
GATEWAY: dict[str, Any] = {
    "payload_limit_bytes": LAMBDA_RESPONSE_LIMIT,
    "limit_mode": "envelope",
    "oversize_status": 502,
    "return_oversized_single": False,
    "latency_ms": 40.0,
    "per_mb_ms": 50.0,
    "integration_timeout_seconds": 29.0,
    "max_in_flight": 32,
    "throttle_status": 429,
    "retry_after_on_429": False,
    "max_url_bytes": 10_240,
    "unknown_route_status": 403,
}
PROFILES: dict[str, dict[str, Any]] = {"permissive": {}, "gateway": GATEWAY}


def _validated(config: ServerConfig, changes: Mapping[str, Any]) -> ServerConfig:
    """A copy of ``config`` with ``changes`` applied, rejecting bad keys and values."""
    values = asdict(config)
    for name, value in changes.items():
        if name not in values:
            raise ValueError(f"unknown config option: {name!r}")
        values[name] = value

    def number(name: str, low: float, high: float = float("inf")) -> float:
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise ValueError(f"{name} must be a number in [{low}, {high}]")
        return float(value)

    limit = values["payload_limit_bytes"]
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError("payload_limit_bytes must be a positive integer")
    statuses = values["fault_statuses"]
    if (
        not isinstance(statuses, (list, tuple))
        or not statuses
        or not all(isinstance(s, int) and not isinstance(s, bool) and 400 <= s <= 599 for s in statuses)
    ):
        raise ValueError("fault_statuses must be a non-empty list of HTTP error statuses")
    max_url = values["max_url_bytes"]
    if max_url is not None and (isinstance(max_url, bool) or not isinstance(max_url, int) or max_url < 1):
        raise ValueError("max_url_bytes must be a positive integer or null")
    for flag in ("down", "enforce_aggregate_limit", "return_oversized_single", "retry_after_on_429"):
        if not isinstance(values[flag], bool):
            raise ValueError(f"{flag} must be a boolean")
    if values["limit_mode"] not in ("body", "envelope"):
        raise ValueError("limit_mode must be 'body' or 'envelope'")
    for name in ("oversize_status", "throttle_status", "unknown_route_status"):
        status = values[name]
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError(f"{name} must be an HTTP error status")
    timeout = values["integration_timeout_seconds"]
    if timeout is not None:
        timeout = number("integration_timeout_seconds", 0.001)
    in_flight = values["max_in_flight"]
    if in_flight is not None and (
        isinstance(in_flight, bool) or not isinstance(in_flight, int) or in_flight < 1
    ):
        raise ValueError("max_in_flight must be a positive integer or null")
    log_size = values["request_log_size"]
    if isinstance(log_size, bool) or not isinstance(log_size, int) or not 0 <= log_size <= 100_000:
        raise ValueError("request_log_size must be an integer in [0, 100000]")
    return ServerConfig(
        payload_limit_bytes=limit,
        limit_mode=values["limit_mode"],
        oversize_status=values["oversize_status"],
        return_oversized_single=values["return_oversized_single"],
        latency_ms=number("latency_ms", 0.0),
        per_record_ms=number("per_record_ms", 0.0),
        per_mb_ms=number("per_mb_ms", 0.0),
        integration_timeout_seconds=timeout,
        max_in_flight=in_flight,
        throttle_status=values["throttle_status"],
        retry_after_on_429=values["retry_after_on_429"],
        fault_rate=number("fault_rate", 0.0, 1.0),
        fault_statuses=tuple(statuses),
        down=values["down"],
        enforce_aggregate_limit=values["enforce_aggregate_limit"],
        max_url_bytes=max_url,
        unknown_route_status=values["unknown_route_status"],
        request_log_size=log_size,
    )


@dataclass
class _Stats:
    requests_total: int = 0
    requests_by_endpoint: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys((*ENDPOINTS, "other"), 0)
    )
    responses_by_status: dict[str, int] = field(default_factory=dict)
    records_returned: int = 0
    response_bytes: int = 0
    faults_injected: int = 0
    processing_seconds: float = 0.0
    injected_latency_seconds: float = 0.0
    timeouts: int = 0  # answered 504 at the integration timeout
    throttled: int = 0  # refused for load (max_in_flight)
    oversized: int = 0  # refused for the payload limit
    peak_in_flight: int = 0


@dataclass
class _Response:
    status: int
    payload: bytes
    records: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    endpoint: str | None = None  # None: an admin request, left out of the statistics
    processing_seconds: float = 0.0
    modelled_seconds: float = 0.0  # the latency model's time for this answer
    values: list[Any] | None = None  # an aggregate's `$match` `_id` `$in` values


def _json_response(status: int, value: JSON, endpoint: str | None = None) -> _Response:
    return _Response(status, dumps(value).encode(), endpoint=endpoint)


def _error(status: int, message: str, endpoint: str | None = None) -> _Response:
    return _json_response(status, {"message": message}, endpoint)


# Bodies as the API Gateway words them.
_FAULT_MESSAGES = {
    403: "Missing Authentication Token",
    429: "Too Many Requests",
    502: "Internal server error",
    503: "Service Unavailable",
    504: "Endpoint request timed out",
}

# The routes, matched on the raw (still percent-encoded) path. Werkzeug lets GET rules
# take HEAD too, but the HTTP handler below has no HEAD method (answered 501, as before).
_API_ROUTES = Map(
    [
        # Methods are checked after the version (ENDPOINT_METHODS), as before: an unknown
        # version answers 404 whatever the method.
        Rule(f"/<version>/{DATABASE}/{COLLECTION}/{endpoint}", endpoint=endpoint)
        for endpoint in ENDPOINTS
    ],
    merge_slashes=False,
).bind("")
# Test-only endpoints, exempt from the gateway model (throttling, faults, statistics).
_ADMIN_ROUTES = Map(
    [
        Rule("/_admin/health", methods=["GET"], endpoint="health"),
        Rule("/_admin/stats", methods=["GET"], endpoint="stats"),
        Rule("/_admin/requests", methods=["GET"], endpoint="requests"),
        Rule("/_admin/reset_stats", methods=["POST"], endpoint="reset_stats"),
        Rule("/_admin/config", methods=["GET", "POST"], endpoint="config"),
        Rule("/_admin/upsert", methods=["POST"], endpoint="upsert"),
        Rule("/_admin/delete", methods=["POST"], endpoint="delete"),
    ],
    merge_slashes=False,
).bind("")


# --------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------
class _HTTPServer(ThreadingHTTPServer):
    """Threading HTTP server that remembers open connections so stop() can close them.

    The standard library's rather than ``werkzeug.serving``'s (whose routing the
    stand-in uses): werkzeug's development server closes the connection after every
    response, and the real gateway, like this server, keeps it alive for the session.
    """

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], docdb: DocDBServer) -> None:
        self.docdb = docdb
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (socket.getfqdn), which can
        # stall for seconds without DNS; the name is not needed here.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-response (e.g. a test tearing down) is routine,
        # not worth a traceback on stderr.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            log.debug("client %s went away", client_address)
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keep-alive so a requests.Session reuses its connection, as it would
    # with the real gateway; Nagle off so small responses are not delayed by 40 ms.
    protocol_version = "HTTP/1.1"
    server_version = "LocalDocDB/1.0"
    disable_nagle_algorithm = True
    timeout = 600

    def setup(self) -> None:
        super().setup()
        server = cast(_HTTPServer, self.server)
        with server.connections_lock:
            server.connections.add(self.connection)

    def finish(self) -> None:
        server = cast(_HTTPServer, self.server)
        with server.connections_lock:
            server.connections.discard(self.connection)
        super().finish()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self, method: str) -> None:
        body = self._read_body()
        url = urlsplit(self.path)
        docdb = cast(_HTTPServer, self.server).docdb
        response = docdb.handle(method, url.path, url.query, body, self.headers.get("Host", ""))
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(response.payload)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.payload)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)


# --------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------
class DocDBServer:
    """The DocDB REST API stand-in, served from a background thread.

    Use as a context manager or call :meth:`start` / :meth:`stop`. ``host`` (the
    ``"127.0.0.1:PORT"`` form ``MetadataDbClient(host=...)`` takes) and ``url`` are
    available once started; pair the client with
    ``bdc_sync.docdb_session.build_session(plain_http=True)`` since this server speaks
    plain HTTP while the client always builds ``https://`` URLs.

    ``profile`` (``"permissive"``, the :class:`ServerConfig` defaults, or ``"gateway"``,
    :data:`GATEWAY`) sets the initial configuration; ``payload_limit_bytes``,
    ``latency_ms``, ``per_record_ms``, ``fault_rate``, ``fault_statuses`` and
    ``max_url_bytes`` override it when given, and ``settings`` overrides any option
    (see :meth:`configure`); ``seed`` seeds the fault RNG; ``warm_cache`` serialises every record in the
    background after :meth:`start` so first lookups do not pay for the JSON encoding.
    ``size_profile`` (a ``bdc_local.record_sizes.PROFILES`` name) grows every v2 record,
    loaded or upserted, to real sizes in place, seeded by ``seed`` and each record's id.
    """

    def __init__(
        self,
        records_v2: Iterable[dict[str, Any]] | None = None,
        records_v1: Iterable[dict[str, Any]] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        payload_limit_bytes: int | None = None,
        latency_ms: float | None = None,
        per_record_ms: float | None = None,
        fault_rate: float | None = None,
        fault_statuses: Sequence[int] | None = None,
        seed: int = 0,
        warm_cache: bool = True,
        max_url_bytes: int | object | None = ...,
        profile: str = "permissive",
        settings: Mapping[str, Any] | None = None,
        size_profile: str | None = None,
    ) -> None:
        self._warm_cache = warm_cache
        self._size_profile = size_profile
        self._size_seed = seed
        self._collections = {
            "v1": Collection(records_v1 or ()),
            "v2": Collection(self._sized(list(records_v2 or ()), "v2")),
        }
        # One lock for data access: query evaluation is CPU-bound under the GIL anyway,
        # and it keeps upserts atomic with respect to in-flight queries.
        self._data_lock = threading.RLock()
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}; expected one of {sorted(PROFILES)}")
        given = {
            "payload_limit_bytes": payload_limit_bytes,
            "latency_ms": latency_ms,
            "per_record_ms": per_record_ms,
            "fault_rate": fault_rate,
            "fault_statuses": tuple(fault_statuses) if fault_statuses is not None else None,
        }
        changes = {**PROFILES[profile], **{k: v for k, v in given.items() if v is not None}}
        if max_url_bytes is not ...:  # None (no limit) is a value here
            changes["max_url_bytes"] = max_url_bytes
        # The profile, then the explicit arguments, then `settings` (any ServerConfig option).
        self._config = _validated(ServerConfig(), {**changes, **(settings or {})})
        self._config_lock = threading.Lock()
        self._rng = random.Random(seed)
        self._stats = _Stats()
        self._stats_lock = threading.Lock()
        self._in_flight = 0
        self._requests: deque[dict[str, Any]] = deque(maxlen=1)
        self._bind = (host, port)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._warmer: threading.Thread | None = None
        self._stopping = threading.Event()

    @classmethod
    def from_files(
        cls,
        corpus: str | os.PathLike[str] | None,
        corpus_v1: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> DocDBServer:
        """A server over corpora read with :func:`load_jsonl` (not started yet)."""
        return cls(
            load_jsonl(corpus) if corpus else None,
            load_jsonl(corpus_v1) if corpus_v1 else None,
            **kwargs,
        )

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> DocDBServer:
        """Bind and serve in a daemon thread; returns self."""
        if self._httpd is not None:
            return self
        self._httpd = _HTTPServer(self._bind, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="docdb-server",
            daemon=True,
        )
        self._thread.start()
        self._stopping.clear()
        if self._warm_cache:
            self._warmer = threading.Thread(target=self._warm, name="docdb-json-warmer", daemon=True)
            self._warmer.start()
        log.info("local DocDB listening on %s", self.url)
        return self

    def _warm(self) -> None:
        """Serialise every record once in the background, in small locked chunks.

        The first request touching a record would otherwise pay for its JSON (about
        10 us per small record, so 10 ms for a 1,000-id lookup); requests keep being
        served in between the chunks.
        """
        for collection in self._collections.values():
            with self._data_lock:
                snapshot = collection.records()
            for start in range(0, len(snapshot), 500):
                if self._stopping.is_set():
                    return
                with self._data_lock:
                    for record in snapshot[start : start + 500]:
                        collection.to_json(record)  # caches only still-stored records
                time.sleep(0)  # let request threads take the GIL

    def wait_warm(self, timeout: float | None = None) -> bool:
        """Block until the background JSON cache warm-up is done (for benchmarks)."""
        if self._warmer is None:
            return True
        self._warmer.join(timeout)
        return not self._warmer.is_alive()

    def stop(self) -> None:
        """Stop serving and close the listening socket and open connections."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._warmer is not None:
            self._warmer.join(timeout=5)
            self._warmer = None

    def __enter__(self) -> DocDBServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound TCP port (after :meth:`start`)."""
        if self._httpd is None:
            raise RuntimeError("server not started")
        return int(self._httpd.server_address[1])

    @property
    def host(self) -> str:
        """``"127.0.0.1:PORT"``: the form ``MetadataDbClient(host=...)`` expects."""
        return f"{self._bind[0]}:{self.port}"

    @property
    def url(self) -> str:
        """``"http://127.0.0.1:PORT"``."""
        return f"http://{self.host}"

    # -- Python-side admin operations ----------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Counters since the last reset (API requests only, not /_admin/ ones)."""
        with self._stats_lock:
            return json.loads(json.dumps(asdict(self._stats)))

    def reset_stats(self) -> None:
        """Zero every counter and forget the logged requests."""
        with self._stats_lock:
            self._stats = _Stats()
            self._requests.clear()

    def requests(self) -> list[dict[str, Any]]:
        """The last ``request_log_size`` API requests, oldest first (see ServerConfig)."""
        with self._stats_lock:
            return list(self._requests)

    def config(self) -> dict[str, Any]:
        """The current run-time configuration."""
        with self._config_lock:
            values = asdict(self._config)
        values["fault_statuses"] = list(values["fault_statuses"])
        return values

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change the run-time behaviour; returns the new configuration.

        Options: every :class:`ServerConfig` field (``latency_ms``, ``per_record_ms``,
        ``per_mb_ms``, ``integration_timeout_seconds``, ``max_in_flight``, ``fault_rate``,
        ``fault_statuses``, ``down``, ``payload_limit_bytes``, ``limit_mode``,
        ``oversize_status``, ``enforce_aggregate_limit``, ``max_url_bytes``,
        ``request_log_size``, and ``seed`` (reseeds the fault RNG). Unknown options and
        out-of-range values raise :class:`ValueError` and change nothing.
        """
        seed = changes.pop("seed", None)
        with self._config_lock:
            self._config = _validated(self._config, changes)
            if seed is not None:
                self._rng.seed(seed)
        return self.config()

    def _sized(self, records: list[dict[str, Any]], version: str) -> list[dict[str, Any]]:
        """``records`` grown (in place) to real sizes when a size profile is set (v2 only).

        The stand-in applies the profile itself so that a large corpus travels and is
        held at generated size; the grown records share their bulk (see
        ``bdc_local.record_sizes``) yet every answer carries all of its bytes.
        """
        if self._size_profile is not None and version == "v2":
            record_sizes.apply_profile(
                (r for r in records if isinstance(r, dict)), self._size_profile, seed=self._size_seed
            )
        return records

    def upsert(self, records: Iterable[dict[str, Any]], version: str = "v2") -> dict[str, int]:
        """Replace records by ``_id`` or append them; indexes and caches stay consistent."""
        collection = self._collection(version)
        records = self._sized(list(records), version)
        with self._data_lock:
            inserted, replaced = collection.upsert(records)
            return {"inserted": inserted, "replaced": replaced, "total": len(collection)}

    def delete(self, ids: Iterable[Any], version: str = "v2") -> dict[str, int]:
        """Delete records by ``_id``."""
        collection = self._collection(version)
        with self._data_lock:
            deleted = collection.delete(ids)
            return {"deleted": deleted, "total": len(collection)}

    def records(self, version: str = "v2") -> list[dict[str, Any]]:
        """A snapshot of the stored records in natural order (do not mutate them)."""
        collection = self._collection(version)
        with self._data_lock:
            return collection.records()

    def _collection(self, version: str) -> Collection:
        if version not in self._collections:
            raise ValueError(f"unknown version {version!r}; expected one of {VERSIONS}")
        return self._collections[version]

    # -- request handling -----------------------------------------------------------
    def handle(self, method: str, path: str, query: str, body: bytes, host: str = "") -> _Response:
        """Answer one HTTP request (called from the handler threads)."""
        if path.startswith("/_admin/"):
            try:
                return self._admin(method, path, query, body)
            except (ValueError, TypeError) as exc:
                return _error(400, str(exc))
        with self._config_lock:
            config = self._config
        with self._stats_lock:
            busy = config.max_in_flight is not None and self._in_flight >= config.max_in_flight
            if not busy:
                self._in_flight += 1
                self._stats.peak_in_flight = max(self._stats.peak_in_flight, self._in_flight)
        if busy:
            # Load-driven throttling: refused at once, like a gateway or Lambda at its cap.
            message = _FAULT_MESSAGES.get(config.throttle_status, "Throttled")
            response = _error(config.throttle_status, message, path.rsplit("/", 1)[-1])
            if config.throttle_status == 429 and config.retry_after_on_429:
                response.headers["Retry-After"] = "0"
            with self._stats_lock:
                self._stats.throttled += 1
            self._record(response, 0.0)
            return response

        try:
            response = self._api(method, path, query, body, host)
        except BaseException:
            self._leave_flight()
            raise
        # The service's time for this answer, from the latency model alone: the
        # stand-in's own CPU time (its lock, the GIL, a loaded test machine) is not
        # part of what it models, and counting it would make a 504 depend on the
        # machine rather than on the request.
        modelled = (
            config.latency_ms
            + config.per_record_ms * response.records
            + config.per_mb_ms * len(response.payload) / 1e6
        ) / 1000.0
        response.modelled_seconds = modelled
        timeout = config.integration_timeout_seconds
        if timeout is None or modelled <= timeout:
            try:
                if modelled > 0:
                    time.sleep(modelled)
            finally:
                self._leave_flight()
            self._record(response, modelled)
            return response
        # The gateway gives up at the timeout; the work runs on for the rest of its
        # modelled time, holding its place in flight (so it still counts towards
        # max_in_flight), and its answer is dropped.
        time.sleep(timeout)
        rest = threading.Timer(modelled - timeout, self._leave_flight)
        rest.daemon = True
        rest.start()
        timed_out = _error(504, _FAULT_MESSAGES[504], response.endpoint or path.rsplit("/", 1)[-1])
        timed_out.modelled_seconds = modelled
        timed_out.values = response.values
        with self._stats_lock:
            self._stats.timeouts += 1
        self._record(timed_out, timeout)
        return timed_out

    def _leave_flight(self) -> None:
        with self._stats_lock:
            self._in_flight -= 1

    def _record(self, response: _Response, delay: float) -> None:
        with self._stats_lock:
            stats = self._stats
            stats.requests_total += 1
            endpoint = response.endpoint if response.endpoint in ENDPOINTS else "other"
            stats.requests_by_endpoint[endpoint] = stats.requests_by_endpoint.get(endpoint, 0) + 1
            status = str(response.status)
            stats.responses_by_status[status] = stats.responses_by_status.get(status, 0) + 1
            stats.records_returned += response.records
            stats.response_bytes += len(response.payload)
            stats.processing_seconds += response.processing_seconds
            stats.injected_latency_seconds += delay
            if response.headers.get("X-Local-Fault"):
                stats.faults_injected += 1
            size = self._config.request_log_size
            if size:
                if self._requests.maxlen != size:
                    self._requests = deque(self._requests, maxlen=size)
                self._requests.append(
                    {
                        "endpoint": endpoint,
                        "status": response.status,
                        "values": response.values,
                        "records": response.records,
                        "bytes": len(response.payload),
                        "modelled_seconds": round(response.modelled_seconds, 6),
                    }
                )

    def _draw_fault(self, config: ServerConfig) -> int | None:
        if config.down:
            return 503
        if config.fault_rate <= 0:
            return None
        with self._config_lock:
            # Draws happen only while faults are enabled, so a seed reproduces the
            # same fault sequence for the same sequence of requests.
            if self._rng.random() >= config.fault_rate:
                return None
            return self._rng.choice(config.fault_statuses)

    def _api(self, method: str, path: str, query: str, body: bytes, host: str = "") -> _Response:
        started = time.perf_counter()
        with self._config_lock:
            config = self._config
        gateway_routes = config.unknown_route_status == 403
        # Matched on the path without its outer slashes, as the gateway's resource paths.
        routed = "/" + path.strip("/")
        try:
            endpoint, arguments = _API_ROUTES.match(routed, method)
        except NotFound:
            if gateway_routes:
                return _error(403, _FAULT_MESSAGES[403])
            return _error(config.unknown_route_status, f"Not Found: {path}")
        version = arguments["version"]
        if version not in self._collections:
            if gateway_routes:
                return _error(403, _FAULT_MESSAGES[403], endpoint)
            return _error(config.unknown_route_status, f"unknown API version: {version}", endpoint)
        if method != ENDPOINT_METHODS[endpoint]:
            if gateway_routes:
                return _error(403, _FAULT_MESSAGES[403], endpoint)
            response = _error(405, f"{method} not allowed on {endpoint}", endpoint)
            response.headers["Allow"] = ENDPOINT_METHODS[endpoint]
            return response
        # The full URL the client sent: https://host/path?query.
        url_length = len("https://") + len(host) + len(path) + (len(query) + 1 if query else 0)
        if config.max_url_bytes is not None and url_length > config.max_url_bytes:
            return _error(
                414,
                f"Request-URI Too Long: {url_length} characters, limit {config.max_url_bytes}",
                endpoint,
            )
        fault = self._draw_fault(config)
        if fault is not None:
            response = _error(fault, _FAULT_MESSAGES.get(fault, "Injected fault"), endpoint)
            response.headers["X-Local-Fault"] = "down" if config.down else "random"
            if fault == 429 and config.retry_after_on_429:
                response.headers["Retry-After"] = "0"
            return response
        try:
            response = self._answer(endpoint, version, query, body, config)
        except ValueError as exc:  # includes mongo.QueryError
            response = _error(400, str(exc), endpoint)
        except PayloadTooLargeError as exc:
            with self._stats_lock:
                self._stats.oversized += 1
            if config.oversize_status == 502:
                # API Gateway's answer when the Lambda's response is over the limit.
                response = _error(502, _FAULT_MESSAGES[502], endpoint)
            else:
                response = _error(config.oversize_status, str(exc), endpoint)
        except Exception as exc:  # a bug here must not kill the handler thread
            log.exception("local DocDB failed on %s %s", method, path)
            response = _error(500, f"Internal server error: {exc}", endpoint)
        response.endpoint = endpoint
        if endpoint == "aggregate" and config.request_log_size:
            response.values = _matched_ids(body)
        response.processing_seconds = time.perf_counter() - started
        response.headers["X-Processing-Ms"] = f"{response.processing_seconds * 1000:.3f}"
        return response

    def _answer(
        self, endpoint: str, version: str, query: str, body: bytes, config: ServerConfig
    ) -> _Response:
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        collection = self._collections[version]
        if endpoint == "find":
            filter_query = _json_param(params, "filter", dict)
            projection = _json_param(params, "projection", dict)
            sort = _json_param(params, "sort", (dict, list))
            limit = abs(_int_param(params, "limit"))
            skip = _int_param(params, "skip")
            if skip < 0:
                raise ValueError("skip must be non-negative")
            project = mongo.compile_projection(projection) if projection else None
            with self._data_lock:
                selected = collection.select(filter_query, sort)
                texts = _page(selected, skip, limit, config, collection, project)
            return _Response(200, ("[" + ",".join(texts) + "]").encode(), records=len(texts))
        if endpoint == "aggregate":
            try:
                pipeline = json.loads(body or b"null")
            except json.JSONDecodeError as exc:
                raise ValueError(f"Invalid JSON in request body: {exc}") from exc
            if not isinstance(pipeline, list):
                raise ValueError("the request body must be a JSON array (the pipeline)")
            with self._data_lock:
                docs = collection.aggregate(pipeline)
                texts = [collection.to_json(d) for d in docs]
            size = answer_size(texts, config.limit_mode)
            if config.enforce_aggregate_limit and size > config.payload_limit_bytes:
                raise PayloadTooLargeError(
                    f"Response payload size ({size} bytes) exceeded maximum allowed payload "
                    f"size ({config.payload_limit_bytes} bytes)"
                )
            return _Response(200, ("[" + ",".join(texts) + "]").encode(), records=len(texts))
        # count_documents
        filter_query = _json_param(params, "filter", dict)
        with self._data_lock:
            total = len(collection)
            filtered = collection.count(filter_query) if filter_query is not None else total
        return _json_response(200, {"total_record_count": total, "filtered_record_count": filtered})

    def _admin(self, method: str, path: str, query: str, body: bytes) -> _Response:
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        name = path[len("/_admin/") :]
        try:
            name, _ = _ADMIN_ROUTES.match(path, method)
        except NotFound:
            return _error(404, f"unknown admin endpoint: {name}")
        except MethodNotAllowed:
            return _error(405, f"{method} not allowed on /_admin/{name}")

        def payload(kind: type) -> Any:
            try:
                value = json.loads(body or b"null")
            except json.JSONDecodeError as exc:
                raise ValueError(f"Invalid JSON in request body: {exc}") from exc
            if not isinstance(value, kind):
                raise ValueError(f"the request body must be a JSON {kind.__name__}")
            return value

        version = params.get("version", "v2")
        if name == "health":
            with self._data_lock:
                counts = {v: len(c) for v, c in self._collections.items()}
            return _json_response(200, {"ok": True, "records": counts})
        if name == "stats":
            return _json_response(200, self.stats())
        if name == "requests":
            return _json_response(200, self.requests())
        if name == "reset_stats":
            self.reset_stats()
            return _json_response(200, {"ok": True})
        if name == "config":
            if method == "GET":
                return _json_response(200, self.config())
            return _json_response(200, self.configure(**payload(dict)))
        if name == "upsert":
            return _json_response(200, self.upsert(payload(list), version))
        return _json_response(200, self.delete(payload(list), version))


def _matched_ids(body: bytes) -> list[Any] | None:
    """The ``_id`` ``$in`` values of a pipeline starting with such a ``$match``, else None."""
    try:
        pipeline = json.loads(body or b"null")
        values = pipeline[0]["$match"]["_id"]["$in"]
    except (ValueError, LookupError, TypeError):
        return None
    return values if isinstance(values, list) else None


def _json_param(params: Mapping[str, str], name: str, kind: type | tuple[type, ...]) -> Any:
    text = params.get(name)
    if text is None or text == "":
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"Invalid JSON in query parameter {name!r}: {exc}") from exc
    if value is not None and not isinstance(value, kind):
        raise ValueError(f"query parameter {name!r} must be a JSON object")
    return value


def _int_param(params: Mapping[str, str], name: str) -> int:
    text = params.get(name, "0") or "0"
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"query parameter {name!r} must be an integer, got {text!r}") from None


def _page(
    selected: list[dict[str, Any]],
    skip: int,
    limit: int,
    config: ServerConfig,
    collection: Collection,
    project: Any,
) -> list[str]:
    """JSON texts of one find page, cut short where the payload limit would be exceeded.

    A first record that alone is over the limit is returned anyway, unless
    ``return_oversized_single`` is off (then the page is refused, as Lambda would).
    """
    end = len(selected) if limit == 0 else min(len(selected), skip + limit)
    envelope = config.limit_mode == "envelope"
    texts: list[str] = []
    size = 2 + (2 + ENVELOPE_OVERHEAD if envelope else 0)  # brackets (quotes, envelope)
    for i in range(skip, end):
        record = selected[i]
        text = collection.to_json(record) if project is None else dumps(project(record))
        extra = len(text) + (1 if texts else 0) + (escaped_extra(text) if envelope else 0)
        if size + extra > config.payload_limit_bytes:
            if texts:
                break  # the gateway answers a short page; the client pages on with skip
            if not config.return_oversized_single:
                raise PayloadTooLargeError(
                    f"Response payload size ({size + extra} bytes) exceeded maximum allowed payload "
                    f"size ({config.payload_limit_bytes} bytes)"
                )
        texts.append(text)
        size += extra
    return texts


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------
def _write_port_file(path: Path, port: int) -> None:
    # Written atomically so a watcher never reads a half-written number.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{port}\n", encoding="utf-8")
    tmp.replace(path)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server in the foreground until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m bdc_local.docdb_server",
        description="Local stand-in for the AIND metadata DocDB REST API.",
    )
    parser.add_argument("--corpus", type=Path, help="JSON Lines file of v2 records")
    parser.add_argument("--corpus-v1", type=Path, help="JSON Lines file of v1 records")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--port-file", type=Path, help="write the bound port here once listening")
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default="permissive",
        help="gateway: behave like API Gateway + Lambda (limits, timeouts, throttling, 403s)",
    )
    parser.add_argument(
        "--settings", default="", help="JSON object of ServerConfig options applied over the profile"
    )
    parser.add_argument("--latency-ms", type=float, default=None)
    parser.add_argument("--per-record-ms", type=float, default=None)
    parser.add_argument("--fault-rate", type=float, default=None)
    parser.add_argument(
        "--fault-statuses",
        default=None,
        help="comma-separated statuses injected at --fault-rate",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--payload-limit-bytes", type=int, default=None)
    parser.add_argument(
        "--max-url-bytes",
        type=int,
        default=None,
        help="answer 414 for longer URLs (default 10240, API Gateway's regional REST API limit)",
    )
    parser.add_argument(
        "--size-profile",
        choices=sorted(record_sizes.PROFILES),
        default=None,
        help="grow the v2 records (loaded and upserted) to real sizes (bdc_local.record_sizes), "
        "seeded by --seed",
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")

    server = DocDBServer.from_files(
        args.corpus,
        args.corpus_v1,
        host=args.host,
        port=args.port,
        payload_limit_bytes=args.payload_limit_bytes,
        latency_ms=args.latency_ms,
        per_record_ms=args.per_record_ms,
        fault_rate=args.fault_rate,
        fault_statuses=(
            [int(s) for s in args.fault_statuses.split(",") if s.strip()] if args.fault_statuses else None
        ),
        seed=args.seed,
        profile=args.profile,
        settings=json.loads(args.settings) if args.settings else None,
        size_profile=args.size_profile,
        **({"max_url_bytes": args.max_url_bytes} if args.max_url_bytes is not None else {}),
    )
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    # The corpus lives as long as the process: keep the cyclic GC from rescanning its
    # millions of objects, which stalls requests for hundreds of milliseconds.
    gc.collect()
    gc.freeze()
    server.start()
    if args.port_file:
        _write_port_file(args.port_file, server.port)
    counts = {v: len(server.records(v)) for v in VERSIONS}
    print(f"local DocDB listening on {server.url} (records: {counts})", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
