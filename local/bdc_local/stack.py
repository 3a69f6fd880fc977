"""The embedded local stack: moto in server mode plus the local DocDB REST API.

Both run as subprocesses speaking real HTTP, so the production code (boto3 and
``MetadataDbClient``) runs unchanged; only environment variables point it here.
The stack creates what ``template.yaml`` creates in AWS: the cache bucket, the work
and finalize queues with their dead-letter queues, and the run ledger table.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import requests

REPO = Path(__file__).resolve().parents[2]
PYTHONPATH = os.pathsep.join(str(REPO / part) for part in ("layers/sync", "client/src", "local"))
REGION = "us-west-2"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until(check: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (requests.RequestException, OSError, ValueError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start within {timeout:.0f} s")


@dataclass
class StackConfig:
    """Names and limits of the local deployment (defaults mirror template.yaml)."""

    bucket: str = "allen-data-views"
    work_queue: str = "bdc-work"
    finalize_queue: str = "bdc-finalize"
    ledger_table: str = "bdc-run-ledger"
    max_receives: int = 3
    worker_timeout_seconds: int = 900
    # The DocDB stand-in behaves like the API Gateway + Lambda in front of the real
    # service (bdc_local.docdb_server.GATEWAY: envelope limit answered 502, 29 s
    # integration timeout, latency by request and by MB, throttling beyond 32 requests
    # in flight, 10,240-character URLs, 403 for unknown routes); "permissive" is the
    # old kind stand-in. `docdb_settings` overrides single options of the profile.
    docdb_profile: str = "gateway"
    docdb_settings: dict[str, Any] = field(default_factory=dict)
    docdb_latency_ms: float | None = None
    docdb_per_record_ms: float | None = None
    docdb_fault_rate: float | None = None
    docdb_payload_limit_bytes: int | None = None
    # Grow the corpus to real record sizes in the stand-in itself (bdc_local.record_sizes),
    # so a 100,000-record corpus is written and loaded at generated size.
    docdb_size_profile: str | None = None
    log_level: str = "WARNING"
    extra_env: dict[str, str] = field(default_factory=dict)
    # Tests change source objects between runs and expect the next run to see them:
    # every run re-reads them here; the benchmarks use the template's default.
    source_recheck_seconds: int = 0
    # Create the queues and the ledger through CloudFormation from template.yaml
    # (translated by aws-sam-translator) instead of directly; names come from its outputs.
    from_template: bool = False


@dataclass
class LocalStack:
    """A running local stack: endpoints, resource names and the env that wires them."""

    config: StackConfig
    moto_url: str
    docdb_url: str
    env: dict[str, str]
    work_queue_url: str
    finalize_queue_url: str
    work_dlq_url: str
    finalize_dlq_url: str
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def docdb_host(self) -> str:
        return self.docdb_url.removeprefix("http://")

    def s3(self) -> Any:
        return boto3.client("s3", endpoint_url=self.moto_url, region_name=REGION)

    def sqs(self) -> Any:
        return boto3.client("sqs", endpoint_url=self.moto_url, region_name=REGION)

    def load_sources(self, records: list[dict[str, Any]], *, seed: int = 0) -> None:
        """Everything besides DocDB v2 that the tables read, derived from the corpus.

        SPIM folders and neuroglancer configs and trainer states in aind-open-data,
        the foraging sessions pickle in aind-behavior-data, v1 records in the DocDB
        API, and the upgrader's custom table metadata_upgrade_status_prod.
        """
        from bdc_local import consistency_plants, corpus, sources
        from biodata_cache import layout

        s3 = self.s3()
        sources.write_sources(s3, records, seed=seed)
        v1 = corpus.v1_records(records, max(5, len(records) // 50), seed=seed)
        self.docdb_admin("upsert?version=v1", v1)
        frame = sources.metadata_upgrade_status(records, v1, seed=seed)
        sources.write_upgrade_status(s3, frame, bucket=self.config.bucket, folder=layout.package_folder())
        # What the record consistency checks must find (duplicate v2 names are planted
        # into the corpus itself: consistency_plants.with_duplicate_names).
        consistency_plants.plant_sources(s3, self.upsert_v1, records, seed=seed)

    def upsert_v1(self, records: list[dict[str, Any]]) -> Any:
        return self.docdb_admin("upsert?version=v1", records)

    def docdb_admin(self, path: str, payload: Any | None = None) -> Any:
        """Call the local DocDB API's admin endpoints (stats, config, upsert, delete)."""
        url = f"{self.docdb_url}/_admin/{path}"
        if payload is None:
            response = requests.get(url, timeout=60)
        else:
            response = requests.post(url, data=json.dumps(payload), timeout=600)
        response.raise_for_status()
        return response.json() if response.content else None


def _env_for(config: StackConfig, moto_url: str, docdb_host: str, queues: dict[str, str]) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "CACHE_BUCKET": config.bucket,
        "WORK_QUEUE_URL": queues["work"],
        "FINALIZE_QUEUE_URL": queues["finalize"],
        "RUN_LEDGER_TABLE": config.ledger_table,
        "DOCDB_HOST": docdb_host,
        "DOCDB_PLAIN_HTTP": "true",
        "SOURCE_BUCKET": "aind-open-data",
        "BEHAVIOR_BUCKET": "aind-behavior-data",
        "MAX_RECEIVES": str(config.max_receives),
        "WORKER_TIMEOUT_SECONDS": str(config.worker_timeout_seconds),
        "SOURCE_RECHECK_SECONDS": str(config.source_recheck_seconds),
        "POWERTOOLS_SERVICE_NAME": "biodata-cache",
        "POWERTOOLS_METRICS_NAMESPACE": "BiodataCache",
        # Metrics are CloudWatch EMF lines on stdout: noise on one machine.
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": config.log_level,
        # The client reads the same bucket through the same endpoint.
        "BIODATA_CACHE_BUCKET": config.bucket,
        "BIODATA_CACHE_S3_ENDPOINT": moto_url,
        **config.extra_env,
    }


def _session() -> boto3.session.Session:
    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )


def _create_from_template(config: StackConfig, moto_url: str) -> dict[str, str]:
    """Deploy template.yaml into the moto server; the stack's names replace the config's."""
    from bdc_local.cfn import create_stack

    session = _session()
    sqs = session.client("sqs", endpoint_url=moto_url)
    outputs = create_stack(
        session.client("s3", endpoint_url=moto_url),
        session.client("cloudformation", endpoint_url=moto_url),
        stack_name="bdc-local",
        parameters={"CacheBucket": config.bucket, "MaxReceives": str(config.max_receives)},
    )
    # moto would run the stack's SQS event source mappings itself (invoking the
    # placeholder functions and eating messages); the local runner plays that part.
    lambda_client = session.client("lambda", endpoint_url=moto_url)
    for mapping in lambda_client.list_event_source_mappings()["EventSourceMappings"]:
        # Disabled rather than deleted: moto's queues keep deleted mappings alive.
        lambda_client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
    urls = {"work": outputs["WorkQueueUrl"], "finalize": outputs["FinalizeQueueUrl"]}
    for role in ("work", "finalize"):
        policy = sqs.get_queue_attributes(QueueUrl=urls[role], AttributeNames=["RedrivePolicy"])
        dlq_name = json.loads(policy["Attributes"]["RedrivePolicy"])["deadLetterTargetArn"].split(":")[-1]
        urls[f"{role}_dlq"] = sqs.get_queue_url(QueueName=dlq_name)["QueueUrl"]
    config.ledger_table = outputs["RunLedgerTableName"]
    config.worker_timeout_seconds = 900  # the template's worker timeout
    return urls


def _create_resources(config: StackConfig, moto_url: str) -> dict[str, str]:
    session = _session()
    s3 = session.client("s3", endpoint_url=moto_url)
    s3.create_bucket(Bucket=config.bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    if config.from_template:
        return _create_from_template(config, moto_url)
    sqs = session.client("sqs", endpoint_url=moto_url)
    urls: dict[str, str] = {}
    for role, name, timeout in (
        ("work", config.work_queue, config.worker_timeout_seconds),
        ("finalize", config.finalize_queue, 300),
    ):
        dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        urls[role] = sqs.create_queue(
            QueueName=name,
            Attributes={
                # As in template.yaml: six times the consumer's timeout.
                "VisibilityTimeout": str(6 * timeout),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(config.max_receives)}
                ),
            },
        )["QueueUrl"]
        urls[f"{role}_dlq"] = dlq_url
    create_ledger_table(session.client("dynamodb", endpoint_url=moto_url), config.ledger_table)
    return urls


def create_ledger_table(dynamodb: Any, name: str) -> None:
    """The run ledger as template.yaml declares it (pk/sk strings, on demand, TTL)."""
    dynamodb.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"}
    )


DECODER_FUNCTION = "bdc-local-decoder"


def _start_lambda_server(
    env: dict[str, str], workdir: Path, processes: list[subprocess.Popen]
) -> dict[str, str]:
    """The Lambda Invoke API for the decoder (each call in its own process); its env."""
    port_file = workdir / "lambda.port"
    args = [sys.executable, "-m", "bdc_local.lambda_server", "--port", "0", "--port-file", str(port_file),
            "--function", f"{DECODER_FUNCTION}=decoder"]
    processes.append(_start(args, workdir / "lambda.log", env))
    _wait_until(lambda: port_file.exists() and port_file.read_text().strip(), "Lambda API")
    return {
        "DECODER_FUNCTION": DECODER_FUNCTION,
        "AWS_ENDPOINT_URL_LAMBDA": f"http://127.0.0.1:{int(port_file.read_text().strip())}",
    }


def _start(args: list[str], log: Path, env_extra: dict[str, str] | None = None) -> subprocess.Popen:
    env = {**os.environ, **(env_extra or {}), "PYTHONPATH": PYTHONPATH}
    with open(log, "ab") as sink:
        return subprocess.Popen(args, stdout=sink, stderr=subprocess.STDOUT, env=env)


@contextmanager
def local_stack(
    corpus: Path,
    *,
    corpus_v1: Path | None = None,
    config: StackConfig | None = None,
    set_environ: bool = True,
) -> Iterator[LocalStack]:
    """Start moto and the DocDB API on free ports, create the resources, set the env.

    The environment variables of the stack are set in ``os.environ`` for the
    duration (the handlers read their settings from there, as in Lambda).
    """
    config = config or StackConfig()
    workdir = Path(tempfile.mkdtemp(prefix="bdc-stack-"))
    processes: list[subprocess.Popen] = []
    saved = dict(os.environ)
    try:
        moto_port = free_port()
        moto_url = f"http://127.0.0.1:{moto_port}"
        processes.append(
            _start(
                [sys.executable, "-m", "bdc_local.moto_server", "-H", "127.0.0.1", "-p", str(moto_port)],
                workdir / "moto.log",
            )
        )
        port_file = workdir / "docdb.port"
        docdb_args = [
            sys.executable, "-m", "bdc_local.docdb_server",
            "--corpus", str(corpus),
            "--port", "0",
            "--port-file", str(port_file),
            "--profile", config.docdb_profile,
            "--settings", json.dumps(config.docdb_settings),
        ]  # fmt: skip
        for flag, value in (
            ("--latency-ms", config.docdb_latency_ms),
            ("--per-record-ms", config.docdb_per_record_ms),
            ("--fault-rate", config.docdb_fault_rate),
            ("--payload-limit-bytes", config.docdb_payload_limit_bytes),
            ("--size-profile", config.docdb_size_profile),
        ):
            if value is not None:
                docdb_args += [flag, str(value)]
        if corpus_v1 is not None:
            docdb_args += ["--corpus-v1", str(corpus_v1)]
        processes.append(_start(docdb_args, workdir / "docdb.log"))
        _wait_until(lambda: requests.get(f"{moto_url}/moto-api/", timeout=1).ok, "moto server")
        _wait_until(lambda: port_file.exists() and port_file.read_text().strip(), "DocDB API", 300)
        docdb_url = f"http://127.0.0.1:{int(port_file.read_text().strip())}"
        _wait_until(lambda: requests.get(f"{docdb_url}/_admin/stats", timeout=1).ok, "DocDB API")
        urls = _create_resources(config, moto_url)
        env = _env_for(config, moto_url, docdb_url.removeprefix("http://"), urls)
        env.update(_start_lambda_server(env, workdir, processes))
        if set_environ:
            os.environ.update(env)
        yield LocalStack(
            config=config,
            moto_url=moto_url,
            docdb_url=docdb_url,
            env=env,
            work_queue_url=urls["work"],
            finalize_queue_url=urls["finalize"],
            work_dlq_url=urls["work_dlq"],
            finalize_dlq_url=urls["finalize_dlq"],
            processes=processes,
        )
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        if set_environ:
            os.environ.clear()
            os.environ.update(saved)
