"""moto in server mode, with AWS's atomicity for conditional writes.

DynamoDB conditional updates and S3 conditional PUTs are atomic in AWS: of two
concurrent writers whose condition holds for the old value, one fails. moto's
threaded server checks and writes without a lock, so two concurrent requests can
both pass a condition (seen here: a worker's claim and the dispatcher's "queued"
mark interleaved). This launcher serves moto's own application, but runs the
requests that need that atomicity one at a time: every DynamoDB call and every S3
conditional write. Everything else (S3 reads and plain PUTs, SQS) stays concurrent.

It also lists S3 prefixes the way S3 does, in time that grows with the page and not
with the bucket: moto 5 answers every ListObjectsV2 page by copying and scanning every
key of the bucket and sorting the matches, so the per-asset listings of a 100,000-asset
source bucket cost minutes. Here each bucket keeps its key names sorted and a page is
a binary search plus the keys it returns; what a page contains is unchanged (the tests
in tests/local/test_moto_listing.py compare it with moto's own listing).

    python -m bdc_local.moto_server -p PORT
"""

from __future__ import annotations

import argparse
import bisect
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.s3 import models as s3_models
from werkzeug.serving import run_simple


def needs_atomicity(environ: dict[str, Any]) -> bool:
    """DynamoDB calls (conditional updates) and S3 conditional writes."""
    if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
        return True
    conditional = "HTTP_IF_MATCH" in environ or "HTTP_IF_NONE_MATCH" in environ
    return conditional and environ.get("REQUEST_METHOD") == "PUT"


def serialized(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """WSGI middleware: requests that need atomicity run one at a time."""
    lock = threading.Lock()

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not needs_atomicity(environ):
            return app(environ, start_response)
        with lock:
            # Drain the body inside the lock: moto may build it lazily.
            return list(app(environ, start_response))

    return application


class IndexedKeyStore(s3_models._VersionedKeyStore):
    """moto's key store, plus its key names in sorted order for prefix listings.

    Names are added and removed where moto adds and removes keys; if any other path
    changes the set of names, the length check in :meth:`sorted_names_locked` notices and
    the index is rebuilt, so a listing is never missing a key.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._index_lock = threading.Lock()
        self._names: list[str] = sorted(dict.keys(self))

    def _add_name(self, name: str) -> None:
        with self._index_lock:
            at = bisect.bisect_left(self._names, name)
            if at == len(self._names) or self._names[at] != name:
                self._names.insert(at, name)

    def _remove_name(self, name: str) -> None:
        with self._index_lock:
            at = bisect.bisect_left(self._names, name)
            if at < len(self._names) and self._names[at] == name:
                del self._names[at]

    def __setitem__(self, key: str, value: Any) -> Any:
        super().__setitem__(key, value)
        self._add_name(key)

    def setlist(self, key: Any, list_: Any) -> Any:
        super().setlist(key, list_)
        self._add_name(key)

    def pop(self, key: str) -> None:  # type: ignore[override]
        super().pop(key)
        self._remove_name(key)

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self._remove_name(key)

    def sorted_names_locked(self) -> list[str]:
        if len(self._names) != dict.__len__(self):
            self._names = sorted(dict.keys(self))
        return self._names

    def names_after(self, prefix: str, after: str | None, batch: int = 1000) -> Iterator[str]:
        """Names starting with ``prefix`` and greater than ``after``, in order.

        Read a batch at a time under the lock, each batch found again by value, so a
        PUT or DELETE running beside a listing never makes it repeat or skip a name
        that was there all along.
        """
        last = after if after is not None and after >= prefix else None
        while True:
            with self._index_lock:
                names = self.sorted_names_locked()
                at = (
                    bisect.bisect_right(names, last)
                    if last is not None
                    else bisect.bisect_left(names, prefix)
                )
                window = names[at : at + batch]
            for name in window:
                if not name.startswith(prefix):
                    return
                yield name
            if len(window) < batch:
                return
            last = window[-1]


def list_objects_v2(
    self: s3_models.S3Backend,
    bucket: s3_models.FakeBucket,
    prefix: str | None,
    delimiter: str | None,
    continuation_token: str | None,
    start_after: str | None,
    max_keys: int,
) -> Any:
    """moto's ListObjectsV2 page, found through the sorted names of the bucket."""
    keys = bucket.keys
    if not isinstance(keys, IndexedKeyStore) or isinstance(bucket, s3_models.FakeTableStorageBucket):
        return ORIGINAL_LIST_OBJECTS_V2(
            self, bucket, prefix, delimiter, continuation_token, start_after, max_keys
        )
    prefix = prefix or ""
    after = self._pagination_tokens.get(continuation_token) if continuation_token else start_after
    entries: list[Any] = []  # keys and common prefixes, in name order as S3 gives them
    for name in keys.names_after(prefix, after or None):
        rest = name[len(prefix) :]
        if delimiter and delimiter in rest:
            folder = prefix + rest.split(delimiter)[0] + delimiter
            if (entries and entries[-1] == folder) or (after and folder <= after):
                continue
            entries.append(folder)
        else:
            key = keys.get(name)
            if key is None or isinstance(key, s3_models.FakeDeleteMarker):
                continue
            entries.append(key)
        if len(entries) > max_keys:
            break  # one past the page tells the page is truncated
    return self._truncate_result(entries, max_keys)


ORIGINAL_LIST_OBJECTS_V2 = s3_models.S3Backend.list_objects_v2


def index_s3_listings() -> None:
    """New buckets keep sorted key names; ListObjectsV2 pages use them."""
    s3_models._VersionedKeyStore = IndexedKeyStore  # FakeBucket builds its store by this name
    s3_models.S3Backend.list_objects_v2 = list_objects_v2  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))  # as moto's own launcher does
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    index_s3_listings()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        serialized(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
