"""Reading the metadata DocDB through its REST API, the way every table needs it.

All access goes through ``aind_data_access_api.document_db.MetadataDbClient`` so the
production code path is the library's. The requests session under it retries 429
and 5xx with exponential backoff and jitter (see ``docdb_session``); this module adds
batching, a cap on concurrent requests and request counting for the run report.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aind_data_access_api.document_db import MetadataDbClient

from bdc_sync.docdb_session import build_session

# An `_id $in` batch of this many full projections stays far below the gateway's
# 6 MB page limit for typical records; larger pages are split by the server and
# followed by skip-pagination anyway.
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
    ) -> None:
        self.host = host
        self.version = version
        self.plain_http = plain_http
        self.max_concurrency = max(1, max_concurrency)
        self._local = threading.local()
        self._lock = threading.Lock()
        self.requests = 0
        self.records_received = 0

    def _client(self) -> MetadataDbClient:
        # One client (and so one requests.Session) per thread: sessions are not
        # documented as thread-safe.
        client = getattr(self._local, "client", None)
        if client is None:
            session = build_session(plain_http=self.plain_http)
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

    def fetch_by_ids(self, ids: Sequence[str], projection: dict | None = None) -> Iterator[dict]:
        """Records with the given ids, fetched in batches, several at a time."""
        batches = [list(ids[i : i + ID_BATCH_SIZE]) for i in range(0, len(ids), ID_BATCH_SIZE)]
        yield from self._fan_out(batches, lambda batch: self._fetch_batch("_id", batch, projection))

    def fetch_where_in(
        self, field: str, values: Sequence[str], projection: dict | None = None, batch_size: int = 50
    ) -> Iterator[dict]:
        """Records whose ``field`` is one of ``values`` (e.g. subject ids), batched."""
        batches = [list(values[i : i + batch_size]) for i in range(0, len(values), batch_size)]
        yield from self._fan_out(
            batches,
            lambda batch: self._received(
                self._client().retrieve_docdb_records(
                    filter_query={field: {"$in": batch}}, projection=projection
                )
            ),
        )

    def _fetch_batch(self, field: str, batch: list[str], projection: dict | None) -> list[dict]:
        # limit = batch size: ids are unique, so one request answers the batch unless
        # the gateway splits the page; no trailing empty-page request is needed.
        records = self._client().retrieve_docdb_records(
            filter_query={field: {"$in": batch}}, projection=projection, limit=len(batch)
        )
        return self._received(records)

    def _fan_out(self, batches: list[list[str]], fetch: Any) -> Iterator[dict]:
        if not batches:
            return
        if self.max_concurrency == 1 or len(batches) == 1:
            for batch in batches:
                yield from fetch(batch)
            return
        with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
            for records in pool.map(fetch, batches):
                yield from records


def projection_of(paths: Iterable[str]) -> dict[str, int]:
    """A Mongo inclusion projection from dotted paths."""
    return {path: 1 for path in paths}
