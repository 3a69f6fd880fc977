"""A canary for the live DocDB REST API: what its gateway does at the limits.

The DocDB stand-in (``bdc_local.docdb_server``, profile ``gateway``) models the API
Gateway + Lambda in front of the metadata DocDB from the client library, AWS's
documented limits and other callers; the server code is not public. This script
settles the rest with a handful of read-only requests, run once by someone with
network access (nothing in the tests or the bench reaches the live service):

1. an unknown route: status and body shape;
2. ``count_documents``: the body shape, and the collection's size;
3. an aggregate whose answer is over Lambda's 6,291,556-byte response limit: status;
4. one record over the limit (``--large-id``, or a ``$range`` projection that makes
   one): status;
5. a slow query (``--slow-pipeline``, default a full-collection ``$group``): does it
   end in 504 near 29 s, and with which body;
6. ``find`` URLs just under and over 10,240 characters: the limit and its status;
7. ``find`` without a sort, the same two pages twice: is the order stable.

It prints a small report and the stand-in settings that would match it, e.g.::

    python bench/docdb_canary.py api.allenneuraldynamics.org
    python bench/docdb_canary.py api.allenneuraldynamics.org --json > canary.json

``tests/local/test_docdb_canary.py`` runs it against the local stand-in as a self-test.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import requests
from requests.utils import quote

PREFIX = "metadata_index/data_assets"
LAMBDA_RESPONSE_LIMIT = 6_291_556
URL_LIMIT = 10_240
# A full-collection group: no index helps, every document is read.
DEFAULT_SLOW_PIPELINE: list[dict[str, Any]] = [
    {"$group": {"_id": "$subject.subject_id", "n": {"$sum": 1}}},
    {"$count": "subjects"},
]


@dataclass
class Probe:
    """One request and what came back."""

    name: str
    status: int | None
    seconds: float
    body: str = ""  # the first characters of the body
    bytes: int = 0
    headers: dict[str, str] = field(default_factory=dict)  # the interesting ones, names only
    note: str = ""


class Canary:
    def __init__(self, host: str, *, version: str = "v2", plain_http: bool = False, timeout: float = 90.0):
        scheme = "http" if plain_http else "https"
        self.base = f"{scheme}://{host}/{version}/{PREFIX}"
        # URL lengths are counted as the https:// URL production sends.
        self.scheme_offset = 1 if plain_http else 0
        self.timeout = timeout
        self.session = requests.Session()
        if plain_http:
            self.session.trust_env = False
        self.probes: list[Probe] = []

    def _send(
        self, name: str, method: str, url: str, **kwargs: Any
    ) -> tuple[Probe, requests.Response | None]:
        started = time.monotonic()
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            probe = Probe(name, None, time.monotonic() - started, note=f"{type(exc).__name__}: {exc}"[:300])
            self.probes.append(probe)
            return probe, None
        seen = {
            k: v[:60]
            for k, v in response.headers.items()
            if k.lower() in {"retry-after", "x-amzn-errortype", "content-type"}
        }
        probe = Probe(
            name,
            response.status_code,
            round(time.monotonic() - started, 2),
            body=response.text[:200] if response.status_code != 200 else "",
            bytes=len(response.content),
            headers=seen,
        )
        self.probes.append(probe)
        return probe, response

    def find_params(self, filter_query: Any, **extra: Any) -> dict[str, str]:
        return {"filter": json.dumps(filter_query), "limit": "1", "skip": "0", **extra}

    # -- the probes ----------------------------------------------------------------
    def unknown_route(self) -> Probe:
        return self._send("unknown route", "GET", f"{self.base}/no_such_endpoint")[0]

    def count(self) -> int | None:
        probe, response = self._send("count_documents", "GET", f"{self.base}/count_documents")
        if response is None or response.status_code != 200:
            return None
        answer = response.json()
        probe.note = f"keys {sorted(answer)}"
        return int(answer.get("total_record_count", 0))

    def oversized_aggregate(self, records: int) -> Probe:
        # Whole records, enough of them to pass the limit at real sizes (50-130 KB).
        pipeline = [{"$sort": {"_id": 1}}, {"$limit": records}]
        probe, response = self._send(
            "aggregate over the limit", "POST", f"{self.base}/aggregate", json=pipeline
        )
        if response is not None and response.status_code == 200:
            probe.note = f"answered {len(response.content):,} bytes: the limit is not where we think"
        return probe

    def single_large(self, large_id: str | None) -> Probe:
        if large_id:
            pipeline: list[dict[str, Any]] = [{"$match": {"_id": large_id}}]
        else:
            # One document made larger than the limit by a projection (read-only).
            pipeline = [{"$limit": 1}, {"$project": {"big": {"$range": [0, 1_500_000]}}}]
        return self._send("one record over the limit", "POST", f"{self.base}/aggregate", json=pipeline)[0]

    def slow(self, pipeline: list[dict[str, Any]]) -> Probe:
        probe = self._send("slow query", "POST", f"{self.base}/aggregate", json=pipeline)[0]
        if probe.status == 504:
            probe.note = f"timed out after {probe.seconds:.1f} s"
        return probe

    def url_limit(self) -> tuple[int | None, int | None, list[Probe]]:
        """Full-URL lengths around 10,240: (longest that passed, shortest refused)."""
        passed: int | None = None
        refused: int | None = None
        probes = []
        for target in (URL_LIMIT - 200, URL_LIMIT - 20, URL_LIMIT + 20, URL_LIMIT + 200):
            url = self.url_of_length(target)
            length = len(url) + self.scheme_offset
            probe = self._send(f"find, URL of {length:,} characters", "GET", url)[0]
            probes.append(probe)
            if probe.status == 200:
                passed = max(passed or 0, length)
            elif probe.status is not None and (refused is None or length < refused):
                refused = length
        return passed, refused, probes

    def url_of_length(self, length: int) -> str:
        """A find URL of ``length`` characters as https (padding a name that matches nothing)."""
        start = f"{self.base}/find?limit=1&skip=0&filter="
        empty = start + quote('{"name":""}', safe="")
        pad = max(0, length - len(empty) - self.scheme_offset)
        return start + quote('{"name":"%s"}' % ("z" * pad), safe="")

    def unsorted_pages(self, size: int = 500) -> tuple[bool | None, Probe]:
        """The same two unsorted pages twice: identical both times, and no overlap?"""
        orders = []
        for attempt in (1, 2):
            ids: list[str] = []
            for page in (0, 1):
                params = {"projection": json.dumps({"_id": 1}), "limit": str(size), "skip": str(page * size)}
                probe, response = self._send(
                    f"find unsorted, page {page + 1} (pass {attempt})",
                    "GET",
                    f"{self.base}/find",
                    params=params,
                )
                if response is None or response.status_code != 200:
                    return None, probe
                ids.extend(str(r["_id"]) for r in response.json())
            orders.append(ids)
        stable = orders[0] == orders[1] and len(set(orders[0])) == len(orders[0])
        probe = self.probes[-1]
        probe.note = "same order both passes, no record on two pages" if stable else "order changed"
        return stable, probe


def run(args: argparse.Namespace) -> dict[str, Any]:
    canary = Canary(args.host, version=args.version, plain_http=args.plain_http, timeout=args.timeout)
    route = canary.unknown_route()
    total = canary.count()
    oversized = canary.oversized_aggregate(args.oversize_records)
    single = canary.single_large(args.large_id)
    slow_pipeline = json.loads(args.slow_pipeline) if args.slow_pipeline else DEFAULT_SLOW_PIPELINE
    slow = canary.slow(slow_pipeline)
    url_passed, url_refused, url_probes = canary.url_limit()
    stable, _ = canary.unsorted_pages()

    matching: dict[str, Any] = {}
    if route.status is not None:
        matching["unknown_route_status"] = route.status
    if oversized.status not in (None, 200):
        matching["oversize_status"] = oversized.status
    if single.status is not None:
        matching["return_oversized_single"] = single.status == 200
    if slow.status == 504:
        matching["integration_timeout_seconds"] = round(slow.seconds, 1)
    if url_refused is not None:
        matching["max_url_bytes"] = url_passed if url_passed is not None else url_refused - 1
    return {
        "host": args.host,
        "records": total,
        "find_without_sort_stable": stable,
        "url_limit": {
            "longest_passed": url_passed,
            "shortest_refused": url_refused,
            "refused_status": next((p.status for p in url_probes if p.status != 200), None),
        },
        "probes": [asdict(p) for p in canary.probes],
        "stand_in_settings": matching,
    }


def print_report(result: dict[str, Any]) -> None:
    print(f"DocDB canary against {result['host']} ({result['records']} records)")
    print(f"{'probe':44} {'status':>6} {'seconds':>8} {'bytes':>11}  body / note")
    for probe in result["probes"]:
        detail = probe["note"] or probe["body"]
        print(
            f"{probe['name'][:44]:44} {probe['status']!s:>6} {probe['seconds']:>8.2f} {probe['bytes']:>11,}  "
            f"{detail[:90]}"
        )
    url = result["url_limit"]
    print(
        f"URL limit: longest passed {url['longest_passed']}, shortest refused {url['shortest_refused']} "
        f"(status {url['refused_status']})"
    )
    print(f"find without sort stable: {result['find_without_sort_stable']}")
    print("stand-in settings that would match (bdc_local.docdb_server --profile gateway --settings ...):")
    print(json.dumps(result["stand_in_settings"], sort_keys=True))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("host", help="the API host, e.g. api.allenneuraldynamics.org (no scheme)")
    parser.add_argument("--version", default="v2")
    parser.add_argument("--plain-http", action="store_true", help="http:// (the local stand-in)")
    parser.add_argument("--timeout", type=float, default=90.0, help="client timeout per request, s")
    parser.add_argument("--large-id", help="_id of a record known to be over the limit")
    parser.add_argument(
        "--oversize-records",
        type=int,
        default=200,
        help="whole records in the oversized aggregate (200 x 50-130 KB > 6.3 MB)",
    )
    parser.add_argument("--slow-pipeline", help="JSON pipeline for the slow query (default: a full $group)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead")
    args = parser.parse_args(argv)
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print_report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
