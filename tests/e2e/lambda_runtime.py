"""Invoke one function's handler in a fresh process set up as the Lambda Python runtime.

    python tests/e2e/lambda_runtime.py <function> <event.json> <result.json>

What the runtime does before it imports a handler, when the function has no
``LoggingConfig`` (text log format): it gives the root logger one handler with a
plain text formatter (level, timestamp, request id, message) and sets no level, so
the root logger stays at Python's default WARNING. Then the handler module is
imported (a cold start) and called once. The handler's return value goes to
``result.json``; stdout holds exactly what would reach CloudWatch.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

from bdc_local.runner import FakeContext, handler_of, load_function

# The runtime's text format (awslambdaric bootstrap, LogFormat Text).
RUNTIME_TEXT_FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n"


class RequestIdFilter(logging.Filter):
    """The runtime stamps each record with the current request id."""

    def __init__(self, request_id: str) -> None:
        super().__init__()
        self.request_id = request_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


def main(function: str, event_path: str, result_path: str) -> int:
    context = FakeContext(f"bdc-{function}")
    logging.Formatter.converter = time.gmtime
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(RUNTIME_TEXT_FORMAT, "%Y-%m-%dT%H:%M:%S"))
    handler.addFilter(RequestIdFilter(context.aws_request_id))
    logging.getLogger().addHandler(handler)  # no setLevel: root stays at WARNING

    event = json.loads(Path(event_path).read_text())
    result = handler_of(load_function(function))(event, context)
    sys.stdout.flush()
    Path(result_path).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
