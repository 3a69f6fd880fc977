"""The Lambda Invoke API of the local stack, for the functions other functions invoke.

moto cannot run a function without Docker, so this server answers
``POST /2015-03-31/functions/<name>/invocations`` itself: each invocation runs
``functions/<function>/app.py`` in a new Python process (as Lambda runs it in its own
sandbox), so whatever the decoder unpickles never shares memory with the worker. The
worker reaches it through boto3, unchanged: the stack sets ``AWS_ENDPOINT_URL_LAMBDA``.

    python -m bdc_local.lambda_server --port 0 --port-file F --function NAME=decoder
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

INVOKE_PREFIX = "/2015-03-31/functions/"


def run_function(function: str, event_file: Path, result_file: Path) -> None:
    """In the child process: call the handler, write its answer (or its error) as JSON."""
    from bdc_local.runner import FakeContext, handler_of, load_function

    event = json.loads(event_file.read_text())
    try:
        answer: Any = handler_of(load_function(function))(event, FakeContext(function_name=function))
        result_file.write_text(json.dumps({"ok": answer}))
    except Exception as exc:
        result_file.write_text(json.dumps({"error": {"errorMessage": str(exc)[:2000],
                                                     "errorType": type(exc).__name__}}))


def _handler(functions: dict[str, str], timeout: float) -> type[BaseHTTPRequestHandler]:
    invocations: dict[str, list[int]] = {name: [] for name in functions}  # child pids, per function

    class Invoke(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            sys.stderr.write("lambda_server: " + format % args + "\n")

        def _answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            """``/_admin/invocations``: the pid of each invocation's process, per function."""
            if self.path == "/_admin/invocations":
                self._answer(200, invocations)
            else:
                self._answer(404, {"message": "not found"})

        def do_POST(self) -> None:
            path = self.path.split("?")[0]
            name = path.removeprefix(INVOKE_PREFIX).removesuffix("/invocations")
            name = name.rsplit(":function:", 1)[-1]
            event = self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}"
            if not path.startswith(INVOKE_PREFIX) or name not in functions:
                self._answer(404, {"Type": "User", "message": f"Function not found: {name}"},
                             {"x-amzn-ErrorType": "ResourceNotFoundException"})
                return
            with tempfile.TemporaryDirectory(prefix="bdc-invoke-") as scratch:
                event_file, result_file = Path(scratch) / "event.json", Path(scratch) / "result.json"
                event_file.write_bytes(event)
                child = subprocess.Popen(
                    [sys.executable, "-m", "bdc_local.lambda_server", "--run", functions[name],
                     "--event-file", str(event_file), "--result-file", str(result_file)],
                    cwd=scratch,
                )
                invocations[name].append(child.pid)
                try:
                    child.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
                result = json.loads(result_file.read_text()) if result_file.exists() else None
            if result is None or "error" in result:
                error = result["error"] if result else {"errorMessage": f"exited with {child.returncode}",
                                                        "errorType": "Runtime.ExitError"}
                self._answer(200, error, {"X-Amz-Function-Error": "Unhandled"})
                return
            self._answer(200, result["ok"])

    return Invoke


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", type=Path)
    parser.add_argument("--function", action="append", default=[], help="NAME=functions/ folder")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--event-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run_function(args.run, args.event_file, args.result_file)
        return
    functions = dict(spec.split("=", 1) for spec in args.function)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), _handler(functions, args.timeout))
    if args.port_file:
        args.port_file.write_text(str(server.server_address[1]))
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    server.serve_forever()


if __name__ == "__main__":
    main()
