"""Run the old job, biodata-cache 0.33.2's ``update_all_tables()``, against the local stack.

Runs inside bench/seed_baseline.py's venv (0.33.2 has the same import name as our client, so
nothing of this repository is importable here). Its boto3 calls reach moto through
AWS_ENDPOINT_URL; this script only points the two things 0.33.2 hard-codes at the
local stand-ins, without changing its code:

* its DocDB host (``registry.API_GATEWAY_HOST``, read at every call) → the local DocDB
  stand-in, whose plain HTTP the library's ``https://`` URLs are rewritten to;
* DuckDB's default connection (0.33.2 reads tables back with ``duckdb.query``) → the
  httpfs extension from the ``duckdb-ext-httpfs`` wheel and an S3 secret for moto.

Prints one JSON line: ``{"wall_seconds": ...}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import duckdb_ext
import requests


def route_docdb(host: str) -> None:
    """Send the library's https://<host>/ requests to the stand-in over plain HTTP."""
    send = requests.Session.request

    def request(self: requests.Session, method: str, url: str, *args: object, **kwargs: object) -> object:
        prefix = f"https://{host}/"
        if isinstance(url, str) and url.startswith(prefix):
            url = f"http://{host}/" + url[len(prefix) :]
        return send(self, method, url, *args, **kwargs)

    requests.Session.request = request  # type: ignore[method-assign]


def configure_duckdb(moto_url: str) -> None:
    """httpfs from the duckdb-ext-httpfs wheel (offline), S3 through moto."""
    # The wheel lays out <package>/extensions/v<duckdb>/<platform>/httpfs.duckdb_extension,
    # the layout DuckDB's extension_directory expects.
    extensions = Path(next(iter(duckdb_ext.__path__))) / "extensions"
    endpoint = urlsplit(moto_url)
    duckdb.sql(f"SET extension_directory = '{extensions}'")
    duckdb.sql("LOAD httpfs")
    duckdb.sql(
        "CREATE OR REPLACE SECRET moto (TYPE s3, "
        f"KEY_ID '{os.environ['AWS_ACCESS_KEY_ID']}', SECRET '{os.environ['AWS_SECRET_ACCESS_KEY']}', "
        f"REGION '{os.environ.get('AWS_DEFAULT_REGION', 'us-west-2')}', ENDPOINT '{endpoint.netloc}', "
        "URL_STYLE 'path', USE_SSL false)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docdb-host", required=True, help="host:port of the DocDB stand-in")
    parser.add_argument("--moto-url", required=True)
    args = parser.parse_args()
    os.environ["BIODATA_CACHE_BACKEND"] = "S3"  # 0.33.2 reads it at import
    route_docdb(args.docdb_host)
    configure_duckdb(args.moto_url)

    from biodata_cache import registry
    from biodata_cache.sync import update_all_tables

    registry.API_GATEWAY_HOST = args.docdb_host
    started = time.monotonic()
    update_all_tables()
    print(json.dumps({"wall_seconds": round(time.monotonic() - started, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
