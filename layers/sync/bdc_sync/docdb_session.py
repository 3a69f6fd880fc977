"""The ``requests.Session`` that the sync code hands to ``MetadataDbClient``.

``MetadataDbClient`` accepts a ``session=`` and uses it for every call, but performs
no retries of its own: one throttled (429) or failed (5xx) response from the API
Gateway would abort a whole table build. This module builds a session that

* retries 429 and 5xx responses, and connection/read errors, a bounded number of
  times with exponential backoff plus jitter from the first retry on (so concurrent
  workers that were throttled together do not retry in lock-step, and a throttle
  without ``Retry-After``, as API Gateway sends it, still gets a pause), honouring
  ``Retry-After`` when there is one;
* retries ``POST`` too: the client's ``aggregate`` endpoint is a read-only POST, but
  not on 502 or 504: behind API Gateway those are also what an answer too large for
  Lambda (502) or too slow for the gateway's 29 s (504) looks like, and repeating the
  same batch six times cannot help. ``bdc_sync.docdb`` sees them at once and splits
  the batch (or, for one id, retries it with its own backoff);
* after the bound, hands the last error response back so the client's
  ``raise_for_status()`` raises :class:`requests.HTTPError` (connection errors raise
  :class:`requests.ConnectionError`);
* applies a default timeout, because the client passes none and a stalled connection
  would otherwise hold a Lambda until it is killed;
* optionally (``plain_http=True``) rewrites the ``https://`` URLs the client always
  builds to ``http://``, for the local DocDB stand-in (``bdc_local.docdb_server``),
  so neither the production code nor the library needs a local-mode branch;
* counts requests, retries and bytes in a thread-safe :class:`RequestCounter`
  available as ``session.request_counter`` for run reports.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from itertools import takewhile
from types import TracebackType
from typing import Any, Self

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import ConnectionPool
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

#: Statuses worth retrying: throttling and transient gateway/server failures (a
#: throttled Lambda behind the gateway shows as 500 or 502, the gateway's own throttle
#: as 429 without ``Retry-After``).
RETRY_STATUSES: frozenset[int] = frozenset({429, 500, 502, 503, 504})
#: Statuses of a POST (aggregate) handed straight back to the caller: an oversized
#: (502) or too slow (504) batch is split by the caller rather than repeated here.
CALLER_SPLITS_POST: frozenset[int] = frozenset({502, 504})
#: Methods that may be retried; POST is included because ``aggregate`` only reads.
RETRY_METHODS: frozenset[str] = frozenset({"GET", "HEAD", "OPTIONS", "POST"})
#: (connect, read) seconds. API Gateway cuts integrations off after 29 s, so a read
#: that takes longer than this is stalled, not slow.
DEFAULT_TIMEOUT: tuple[float, float] = (10.0, 60.0)

Timeout = float | tuple[float, float] | None


class RequestCounter:
    """Thread-safe counts of what a session sent and received.

    ``responses``/``by_status``/``bytes_received`` count the responses the caller got
    (one per logical request, after retries). ``retries``/``retries_by_status`` count
    the attempts that were retried inside urllib3 (a 429/5xx response, or ``"error"``
    for a connection/read failure), which the caller never sees. ``attempts`` is the
    number of HTTP exchanges the server saw.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.responses = 0
        self.by_status: Counter[int] = Counter()
        self.bytes_received = 0
        self.retries = 0
        self.retries_by_status: Counter[int | str] = Counter()

    def record_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """A ``requests`` response hook (``session.hooks["response"]``)."""
        length = response.headers.get("Content-Length")
        if length is not None and length.isdigit():
            size = int(length)
        else:
            # No length header: read the body (fine for the non-streaming DocDB client).
            size = len(response.content or b"")
        with self._lock:
            self.responses += 1
            self.by_status[response.status_code] += 1
            self.bytes_received += size

    def record_retry(self, status: int | None) -> None:
        """Called by :class:`CountingRetry` for each attempt that will be retried."""
        with self._lock:
            self.retries += 1
            self.retries_by_status[status if status is not None else "error"] += 1

    @property
    def attempts(self) -> int:
        """Final responses plus retried attempts."""
        with self._lock:
            return self.responses + self.retries

    def snapshot(self) -> dict[str, Any]:
        """A JSON-friendly copy of the counts."""
        with self._lock:
            return {
                "responses": self.responses,
                "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
                "bytes_received": self.bytes_received,
                "retries": self.retries,
                "retries_by_status": {str(k): v for k, v in self.retries_by_status.items()},
                "attempts": self.responses + self.retries,
            }

    def reset(self) -> None:
        """Zero every count."""
        with self._lock:
            self.responses = 0
            self.by_status.clear()
            self.bytes_received = 0
            self.retries = 0
            self.retries_by_status.clear()


class CountingRetry(Retry):
    """``urllib3`` Retry that reports each retried attempt to a :class:`RequestCounter`
    and never sleeps longer than ``backoff_max`` for a ``Retry-After`` header (a large
    value would otherwise outlast the Lambda's own timeout)."""

    def __init__(self, *args: Any, counter: RequestCounter | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.counter = counter

    def new(self, **kw: Any) -> Self:
        # urllib3 derives a fresh Retry per attempt through new(); carry the counter.
        retry = super().new(**kw)
        retry.counter = self.counter
        return retry

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        # Raises MaxRetryError when exhausted; only attempts that really are retried
        # get counted (the last one reaches the caller and its response hook).
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        if self.counter is not None:
            self.counter.record_retry(response.status if response is not None and error is None else None)
        return retry

    def parse_retry_after(self, retry_after: str) -> float:
        return min(super().parse_retry_after(retry_after), float(self.backoff_max))

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if method.upper() == "POST" and status_code in CALLER_SPLITS_POST:
            return False
        return super().is_retry(method, status_code, has_retry_after)

    def get_backoff_time(self) -> float:
        # urllib3 retries the first failure at once; a throttled service (429 without
        # Retry-After, or a throttled Lambda's 500/502) needs the pause from the start.
        errors = len(list(takewhile(lambda h: h.redirect_location is None, reversed(self.history))))
        if errors == 0:
            return 0.0
        value = self.backoff_factor * (2 ** (errors - 1)) + random.random() * self.backoff_jitter
        return float(max(0.0, min(self.backoff_max, value)))


class TimeoutHTTPAdapter(HTTPAdapter):
    """HTTPAdapter that applies a default timeout when the caller passes none."""

    def __init__(self, *args: Any, default_timeout: Timeout = DEFAULT_TIMEOUT, **kwargs: Any) -> None:
        self.default_timeout = default_timeout
        super().__init__(*args, **kwargs)

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: dict[str, str] | None = None,
    ) -> requests.Response:
        if timeout is None:
            timeout = self.default_timeout
        return super().send(
            request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies
        )


class PlainHTTPAdapter(TimeoutHTTPAdapter):
    """Mounted for ``https://``: sends the request over plain HTTP instead.

    ``MetadataDbClient`` hard-codes ``https://{host}``; the local stand-in serves
    plain HTTP, so the scheme is rewritten here, at the last moment, and the rest of
    the stack stays identical to production.
    """

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: dict[str, str] | None = None,
    ) -> requests.Response:
        url = request.url
        if url and url.startswith("https://"):
            request = request.copy()
            request.url = "http://" + url[len("https://") :]
        return super().send(
            request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies
        )


class DocDBSession(requests.Session):
    """A ``requests.Session`` with a :class:`RequestCounter` attached."""

    request_counter: RequestCounter


def build_session(
    *,
    plain_http: bool = False,
    total_retries: int = 6,
    backoff_factor: float = 0.5,
    backoff_max: float = 20.0,
    jitter: float = 0.5,
    pool_maxsize: int = 16,
    timeout: Timeout = DEFAULT_TIMEOUT,
) -> DocDBSession:
    """A session for ``MetadataDbClient(session=...)`` with retries and counting.

    Parameters
    ----------
    plain_http
        Send the client's ``https://`` requests as ``http://`` (local stand-in only).
    total_retries
        Retries per request across statuses and connection/read errors; after that
        the last response is returned (so ``raise_for_status`` raises) or the
        connection error is raised.
    backoff_factor, backoff_max, jitter
        Sleep ``min(backoff_max, backoff_factor * 2 ** (n - 1) + uniform(0, jitter))``
        seconds before retry ``n >= 1``, unless the response carries a ``Retry-After``
        (capped at ``backoff_max``).
    pool_maxsize
        Connections kept per host, for callers that share a session across threads.
    timeout
        ``(connect, read)`` seconds applied when the caller passes no timeout.
    """
    counter = RequestCounter()
    retry = CountingRetry(
        total=total_retries,
        backoff_factor=backoff_factor,
        backoff_max=backoff_max,
        backoff_jitter=jitter,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=RETRY_METHODS,
        respect_retry_after_header=True,
        # Return the last 429/5xx instead of raising urllib3's MaxRetryError, so the
        # client's raise_for_status() surfaces it as a requests.HTTPError.
        raise_on_status=False,
        counter=counter,
    )
    session = DocDBSession()
    if plain_http:
        # Proxy settings from the environment are meant for the real endpoint, not for
        # a stand-in on this machine.
        session.trust_env = False
    https_adapter: HTTPAdapter = (PlainHTTPAdapter if plain_http else TimeoutHTTPAdapter)(
        max_retries=retry, pool_maxsize=pool_maxsize, default_timeout=timeout
    )
    session.mount("https://", https_adapter)
    session.mount(
        "http://", TimeoutHTTPAdapter(max_retries=retry, pool_maxsize=pool_maxsize, default_timeout=timeout)
    )
    session.hooks["response"].append(counter.record_response)
    session.request_counter = counter
    return session
