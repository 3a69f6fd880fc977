"""Reading the metadata DocDB through its REST API, the way every table needs it.

All access goes through ``aind_data_access_api.document_db.MetadataDbClient`` so the
production code path is the library's. The requests session under it retries 429
and 5xx with exponential backoff and jitter (see ``docdb_session``); this module adds
batching, a cap on concurrent requests and request counting for the run report.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import requests
from aind_data_access_api.document_db import MetadataDbClient

from bdc_sync.docdb_session import build_session

# Ids per request: a 500-id body is ~20 KB, and 500 lean projections stay far below
# the 6 MB payload limit; tables reading large sections pass smaller batches.
ID_BATCH_SIZE = 500


class DocDB:
    """A thread-safe reader of one DocDB collection version with request counting."""

    def __init__(
        self,
        host: str,
        *,
        version: str = "v2",
        plain_http: bool = False,
        max_concurrency: int = 4,
        retries: int = 6,
        backoff_seconds: float = 0.5,
    ) -> None:
        self.host = host
        self.version = version
        self.plain_http = plain_http
        self.max_concurrency = max(1, max_concurrency)
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self._local = threading.local()
        self._lock = threading.Lock()
        self.requests = 0
        self.records_received = 0

    def _client(self) -> MetadataDbClient:
        # One client (and so one requests.Session) per thread: sessions are not
        # documented as thread-safe.
        client = getattr(self._local, "client", None)
        if client is None:
            session = build_session(
                plain_http=self.plain_http,
                total_retries=self.retries,
                backoff_factor=self.backoff_seconds,
                pool_maxsize=self.max_concurrency,
            )
            session.hooks["response"].append(self._count_response)
            client = MetadataDbClient(host=self.host, version=self.version, session=session)
            self._local.client = client
        return client

    def _count_response(self, response: Any, *args: Any, **kwargs: Any) -> None:
        with self._lock:
            self.requests += 1

    def _received(self, records: list[dict]) -> list[dict]:
        with self._lock:
            self.records_received += len(records)
        return records

    # -- queries -------------------------------------------------------------------
    def find(self, filter_query: dict | None = None, projection: dict | None = None) -> list[dict]:
        """Every record matching the filter (paged by the client under the hood)."""
        records = self._client().retrieve_docdb_records(
            filter_query=filter_query or {}, projection=projection
        )
        return self._received(records)

    def aggregate(self, pipeline: list[dict]) -> list[dict]:
        return self._received(self._client().aggregate_docdb_records(pipeline=pipeline))

    def list_modified(self, filter_query: dict | None = None) -> dict[str, str]:
        """``_id`` → ``_last_modified`` of every matching record: the cheap listing."""
        records = self.find(filter_query, {"_id": 1, "_last_modified": 1})
        return {str(r["_id"]): str(r.get("_last_modified") or "") for r in records}

    def fetch_by_ids(
        self, ids: Sequence[str], projection: dict | None = None, batch_size: int = ID_BATCH_SIZE
    ) -> Iterator[dict]:
        """Records with the given ids, fetched in batches, several batches at a time."""
        yield from self.fetch_where_in("_id", ids, projection, batch_size)

    def fetch_where_in(
        self,
        field: str,
        values: Sequence[str],
        projection: dict | None = None,
        batch_size: int = ID_BATCH_SIZE,
    ) -> Iterator[dict]:
        """Records whose ``field`` is one of ``values`` (ids, subject ids), batched.

        The values travel in an aggregate's POST body: as a ``find`` filter they
        would pass the gateway's 10 KB URL limit at a few hundred ids.
        """
        batches = [list(values[i : i + batch_size]) for i in range(0, len(values), batch_size)]
        yield from self._fan_out(batches, lambda batch: self._match_in(field, batch, projection))

    def _match_in(self, field: str, batch: list[str], projection: dict | None) -> list[dict]:
        pipeline: list[dict] = [{"$match": {field: {"$in": batch}}}]
        if projection:
            pipeline.append({"$project": projection})
        try:
            return self.aggregate(pipeline)
        except requests.HTTPError as exc:
            # An aggregate answer cannot be paged: over the gateway's payload limit
            # it is refused (413), so split the batch until the halves fit.
            status = exc.response.status_code if exc.response is not None else None
            if status != 413 or len(batch) == 1:
                raise
            middle = len(batch) // 2
            return self._match_in(field, batch[:middle], projection) + self._match_in(
                field, batch[middle:], projection
            )

    def _fan_out(self, batches: list[list[str]], fetch: Any) -> Iterator[dict]:
        """Batches fetched ``max_concurrency`` at a time, yielded in order.

        At most ``max_concurrency`` batches are in flight or waiting to be consumed,
        so memory holds a few batches, never the whole result (``pool.map`` would
        fetch everything ahead of the consumer).
        """
        if not batches:
            return
        if self.max_concurrency == 1 or len(batches) == 1:
            for batch in batches:
                yield from fetch(batch)
            return
        with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
            pending: deque[Future[list[dict]]] = deque()
            for batch in batches:
                pending.append(pool.submit(fetch, batch))
                if len(pending) >= self.max_concurrency:
                    yield from pending.popleft().result()
            while pending:
                yield from pending.popleft().result()


def projection_of(paths: Iterable[str]) -> dict[str, int]:
    """A Mongo inclusion projection from dotted paths."""
    return {path: 1 for path in paths}
