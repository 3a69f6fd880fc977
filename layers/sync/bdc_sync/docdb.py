"""Reading the metadata DocDB through its REST API, the way every table needs it.

All access goes through ``aind_data_access_api.document_db.MetadataDbClient`` so the
production code path is the library's. The requests session under it retries 429
and 5xx with exponential backoff and jitter (see ``docdb_session``); this module adds
batching sized by bytes, splitting on every oversize signal, a complete listing, a
cap on concurrent requests and request counting for the run report.

The service is an API Gateway in front of a Lambda function. Its limits shape this
module:

* a Lambda response is at most 6,291,556 bytes of *envelope*, in which the JSON body
  travels escaped as a string (1.16-1.19x the compact body on real records); a larger
  answer reaches us as 502 (the library promises 413 only for its base-URL GET);
* the gateway gives up after 29 s with 504 while the Lambda works on;
* ``find`` may answer fewer records than asked for when they would not fit.
"""
from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import requests
from aind_data_access_api.document_db import MetadataDbClient

from bdc_sync.docdb_session import build_session

logger = logging.getLogger(__name__)

#: Lambda's limit on a synchronous response: the whole envelope, body escaped inside.
LAMBDA_RESPONSE_LIMIT = 6_291_556
#: Share of that limit a batch of records aims for. Records of one batch differ in size
#: (50-130 KB, a few near 300 KB), so batches are planned from the mean with room for
#: a few large ones; a batch that does not fit anyway is split.
BATCH_BYTES = int(LAMBDA_RESPONSE_LIMIT * 0.5)
#: Most ids per request (a 500-id body is ~20 KB); tables may pass fewer.
ID_BATCH_SIZE = 500
#: Ids of the first request, before any size is known: what the old job asked for.
FIRST_BATCH = 50
#: Statuses that mean "this answer is too large or too slow for the gateway".
OVERSIZE_STATUSES = frozenset({413, 502, 504})
#: Records per listing page: ``{"_id", "_last_modified"}`` is ~90 bytes compact, ~100
#: escaped, so a page is ~5 MB of envelope and 100,000 records list in two pages.
LISTING_PAGE = 50_000
LISTING_ATTEMPTS = 3
#: A listing page shorter than asked may have been cut by the gateway (``find`` answers
#: fewer records when they would not fit) only if it is near the payload limit.
LISTING_PAGE_MAX_BYTES = int(LAMBDA_RESPONSE_LIMIT * 0.9)
#: A fetch that cannot return more than this many of its ids (and more than 1 %) fails:
#: one huge record is skipped and named, a service that answers nothing is an outage.
MAX_UNRETURNABLE = 10


class ListingIncomplete(RuntimeError):
    """The listing never agreed with ``count_documents``: records were written meanwhile."""


class UnreturnableRecords(RuntimeError):
    """Too many records could not be fetched one by one to call it a few oversized ones."""


def escaped_size(body: bytes) -> int:
    """Bytes of ``body`` once escaped into the JSON string of a Lambda proxy response."""
    return len(body) + body.count(b'"') + body.count(b"\\") + 2


class _BatchSizer:
    """Values per request for one projection, from the bytes earlier answers took.

    Counted per value asked (an id, or a subject id with all its records), so the
    estimate holds whatever number of records a value brings back.
    """

    def __init__(self, most: int) -> None:
        self.most = max(1, most)
        self.ceiling = self.most
        self.values = 0
        self.bytes = 0
        self._lock = threading.Lock()

    def next_size(self) -> int:
        with self._lock:
            if self.values == 0:
                return min(FIRST_BATCH, self.ceiling)
            per_value = self.bytes / self.values
            return max(1, min(self.ceiling, int(BATCH_BYTES / max(per_value, 1.0))))

    def observe(self, values: int, size: int) -> None:
        with self._lock:
            self.values += values
            self.bytes += size
            if values >= self.ceiling and self.ceiling < self.most:
                # A batch at the ceiling fitted: let the ceiling grow back by a quarter.
                self.ceiling = min(self.most, self.ceiling + max(1, self.ceiling // 4))

    def too_large(self, batch: int) -> None:
        with self._lock:
            self.ceiling = max(1, min(self.ceiling, batch // 2))


class DocDB:
    """A thread-safe reader of one DocDB collection version with request counting."""

    def __init__(
        self,
        host: str,
        *,
        version: str = "v2",
        plain_http: bool = False,
        max_concurrency: int = 1,
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
        self._sizers: dict[str, _BatchSizer] = {}
        self.requests = 0
        self.records_received = 0
        # What the oversize handling absorbed, for the run report.
        self.splits = 0
        self.oversize_by_status: Counter[int] = Counter()
        self.listing_retries = 0
        # Values (ids) no request could return, with why: skipped, counted, named.
        self.unreturnable: dict[str, str] = {}

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
        # Hooks run on the requesting thread: the size of its last answer.
        self._local.last_size = escaped_size(response.content or b"")
        with self._lock:
            self.requests += 1

    def _received(self, records: list[dict]) -> list[dict]:
        with self._lock:
            self.records_received += len(records)
        return records

    def _pause(self, attempt: int) -> None:
        """Exponential backoff with jitter, as the session's retries use."""
        delay = min(20.0, self.backoff_seconds * 2**attempt) + random.uniform(0, self.backoff_seconds)
        time.sleep(delay)

    def _sizer(self, field: str, projection: dict | None, most: int) -> _BatchSizer:
        key = json.dumps([field, projection, most], sort_keys=True)
        with self._lock:
            sizer = self._sizers.get(key)
            if sizer is None:
                sizer = self._sizers[key] = _BatchSizer(most)
            return sizer

    # -- queries -------------------------------------------------------------------
    def find(self, filter_query: dict | None = None, projection: dict | None = None) -> list[dict]:
        """Every record matching the filter (paged by the client under the hood)."""
        records = self._client().retrieve_docdb_records(
            filter_query=filter_query or {}, projection=projection
        )
        return self._received(records)

    def aggregate(self, pipeline: list[dict]) -> list[dict]:
        return self._received(self._client().aggregate_docdb_records(pipeline=pipeline))

    def count(self, filter_query: dict | None = None) -> int:
        """Records matching the filter (``count_documents``)."""
        answer = self._client()._count_records(filter_query or None)
        key = "filtered_record_count" if filter_query else "total_record_count"
        return int(answer[key])

    def list_modified(
        self, filter_query: dict | None = None, *, expected: int | None = None
    ) -> dict[str, str]:
        """``_id`` → ``_last_modified`` of every matching record: the cheap listing.

        Paged in ``_id`` order by range (``_id > last``), so a record written or
        deleted between pages cannot shift another out of the listing. The pages end
        at an empty page, at a page shorter than asked that the gateway did not cut
        (well under its payload limit), or when ``expected`` records are listed (the
        size of the last build's listing: it spares the empty page that would
        otherwise tell that a full page was the last). Then ``count_documents`` must
        equal the records listed: more, and the pages go on; fewer, or more after the
        last page, and the listing is taken again; after ``LISTING_ATTEMPTS`` the
        build fails rather than publish a table with records missing. Requests: the
        pages plus one count; 100,000 records unchanged list in three.
        """
        for attempt in range(1, LISTING_ATTEMPTS + 1):
            listing: dict[str, str] = {}
            pages = self._listing_pages(filter_query or {})
            target = expected
            while True:
                exhausted = _page_until(pages, listing, target)
                after = self.count(filter_query)
                if len(listing) == after:
                    return listing
                # A record written behind the pages (already listed, or inserted
                # before them) changes the count without changing the listing.
                if exhausted or after < len(listing):
                    break  # records went, or came behind the pages: list again
                target = after  # more records than expected: page on
            with self._lock:
                self.listing_retries += 1
            logger.warning(
                "listing disagrees with count_documents",
                extra={"listed": len(listing), "count_after": after, "attempt": attempt},
            )
            expected = after
            if attempt < LISTING_ATTEMPTS:
                self._pause(attempt)
        raise ListingIncomplete(
            f"the DocDB listing disagreed with count_documents {LISTING_ATTEMPTS} times "
            f"(last: {len(listing)} listed, {after} counted after the pages): records "
            "are being written; the previous table is kept"
        )

    def _listing_pages(self, filter_query: dict) -> Iterator[tuple[list[dict], int]]:
        """Pages of ``_id, _last_modified`` in ``_id`` order until an empty page, each
        with the records it could have held: the limit asked, or more than it holds
        when its size says the gateway may have cut it short."""
        last: Any = None
        limit = LISTING_PAGE
        projection = {"_id": 1, "_last_modified": 1}
        while True:
            query = filter_query
            if last is not None:
                after_last = {"_id": {"$gt": last}}
                query = {"$and": [filter_query, after_last]} if filter_query else after_last
            try:
                page = self._client()._find_records(
                    filter_query=query, projection=projection, sort={"_id": 1}, limit=limit
                )
            except requests.HTTPError as exc:
                status = exc.response.status_code if exc.response is not None else None
                if status not in OVERSIZE_STATUSES or limit <= 1_000:
                    raise
                limit //= 2  # the page did not fit (or took too long): ask for less
                continue
            self._received(page)
            # A size not known (no answer hook ran) counts as near the limit.
            size = getattr(self._local, "last_size", LAMBDA_RESPONSE_LIMIT)
            yield page, (len(page) if size >= LISTING_PAGE_MAX_BYTES else limit)
            if not page:
                return
            last = page[-1]["_id"]

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
        would pass the gateway's 10 KB URL limit at a few hundred ids. Batches hold
        at most ``batch_size`` values and are sized from the bytes earlier answers of
        the same projection took, to about half the Lambda response limit; one that
        comes back 413, 502 or 504 anyway is split, down to single values. A value
        whose records still cannot be returned is skipped and named in
        :attr:`unreturnable`; more than a few of them fail the fetch.
        """
        sizer = self._sizer(field, projection, batch_size)
        skipped_before = len(self.unreturnable)

        def batches() -> Iterator[list[str]]:
            start = 0
            while start < len(values):
                size = sizer.next_size()
                yield list(values[start : start + size])
                start += size

        yield from self._fan_out(batches(), lambda batch: self._match_in(field, batch, projection, sizer))
        skipped = len(self.unreturnable) - skipped_before
        if skipped > MAX_UNRETURNABLE and skipped * 100 > len(values):
            raise UnreturnableRecords(
                f"DocDB could not return {skipped} of {len(values)} requested records even one at a "
                f"time (e.g. {', '.join(list(self.unreturnable)[-3:])}); treating it as an outage"
            )

    def _match_in(
        self, field: str, batch: list[str], projection: dict | None, sizer: _BatchSizer
    ) -> list[dict]:
        pipeline: list[dict] = [{"$match": {field: {"$in": batch}}}]
        if projection:
            pipeline.append({"$project": projection})
        try:
            records = self.aggregate(pipeline)
        except requests.HTTPError as exc:
            status = self._count_oversize(exc)
            if len(batch) == 1:
                return self._match_one(field, batch[0], pipeline, exc)
            # An aggregate answer cannot be paged: split until the halves fit. A 502 or
            # 504 may also be a throttled or busy backend, so pause before the halves.
            sizer.too_large(len(batch))
            with self._lock:
                self.splits += 1
            if status != 413:
                self._pause(0)
            middle = len(batch) // 2
            return self._match_in(field, batch[:middle], projection, sizer) + self._match_in(
                field, batch[middle:], projection, sizer
            )
        sizer.observe(len(batch), getattr(self._local, "last_size", 0))
        return records

    def _count_oversize(self, exc: requests.HTTPError) -> int:
        """The status of an oversize answer (413/502/504), counted; any other error re-raised."""
        status = exc.response.status_code if exc.response is not None else None
        if status not in OVERSIZE_STATUSES:
            raise exc
        with self._lock:
            self.oversize_by_status[status] += 1
        return status

    def _match_one(
        self, field: str, value: str, pipeline: list[dict], error: requests.HTTPError
    ) -> list[dict]:
        """One value's records; retried with backoff on 502/504, skipped when it never fits."""
        last = error
        for attempt in range(self.retries):
            status = last.response.status_code if last.response is not None else None
            if status == 413:
                break  # a definite "too large": asking again cannot help
            self._pause(attempt)
            try:
                return self.aggregate(pipeline)
            except requests.HTTPError as exc:
                self._count_oversize(exc)
                last = exc
        response = last.response
        reason = f"HTTP {response.status_code if response is not None else '?'}: " + (
            (response.text or "")[:200] if response is not None else str(last)
        )
        logger.warning("record cannot be returned by DocDB; skipped", extra={field: value, "reason": reason})
        with self._lock:
            self.unreturnable[value] = reason
        return []

    def _fan_out(self, batches: Iterable[list[str]], fetch: Any) -> Iterator[dict]:
        """Batches fetched ``max_concurrency`` at a time, yielded in order.

        At most ``max_concurrency`` batches are in flight or waiting to be consumed,
        so memory holds a few batches, never the whole result (``pool.map`` would
        fetch everything ahead of the consumer). Batches are drawn lazily, so each
        is sized from the answers before it.
        """
        if self.max_concurrency == 1:
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

    def report(self) -> dict[str, Any]:
        """What this reader absorbed: splits, oversize answers, listing retries."""
        with self._lock:
            return {
                "splits": self.splits,
                "oversize_by_status": {str(k): v for k, v in sorted(self.oversize_by_status.items())},
                "listing_retries": self.listing_retries,
            }


def projection_of(paths: Iterable[str] | Mapping[str, Any]) -> dict[str, Any]:
    """A Mongo inclusion projection from dotted paths; a mapping is taken as the projection
    itself (computed fields, e.g. metadata_core's presence flags)."""
    if isinstance(paths, Mapping):
        return dict(paths)
    return {path: 1 for path in paths}


def _page_until(pages: Iterator[tuple[list[dict], int]], listing: dict[str, str], target: int | None) -> bool:
    """Add pages to ``listing`` (``_id`` → ``_last_modified``) until one is the last or
    ``target`` records are listed; True when the pages ran out (an empty page)."""
    for page, could_hold in pages:
        if not page:
            return True
        for record in page:
            listing[str(record["_id"])] = str(record.get("_last_modified") or "")
        if len(page) < could_hold or (target is not None and len(listing) >= target):
            return False
    return True
