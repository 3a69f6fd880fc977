"""moto in server mode, with AWS's atomicity for conditional writes.

DynamoDB conditional updates and S3 conditional PUTs are atomic in AWS: of two
concurrent writers whose condition holds for the old value, one fails. moto's
threaded server checks and writes without a lock, so two concurrent requests can
both pass a condition (seen here: a worker's claim and the dispatcher's "queued"
mark interleaved). This launcher serves moto's own application, but runs the
requests that need that atomicity one at a time: every DynamoDB call and every S3
conditional write. Everything else (S3 reads and plain PUTs, SQS) stays concurrent.

    python -m bdc_local.moto_server -p PORT
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))  # as moto's own launcher does
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
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
