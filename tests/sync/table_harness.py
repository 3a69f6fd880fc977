"""Builds tables in-process: moto's S3 (``mock_aws``), an in-memory DocDB, a BuildContext.

The fake DocDB answers like the REST API would (it projects with the local Mongo
stand-in's rules, so a wrong projection path loses data here as it would there)
and counts requests, so tests can check what an unchanged run costs.
"""

from __future__ import annotations

import copy
import io
import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from unittest import mock

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
from moto import mock_aws

from bdc_local.mongo import matches, project
from bdc_sync.framework import BuildContext, Table, TableResult
from bdc_sync.settings import Settings
from bdc_sync.store import ObjectStore
from bdc_sync.tables import asset_basics, metadata_core, source_data
from biodata_cache import layout
from biodata_cache.catalog import TableSpec

CACHE_BUCKET = "test-cache-bucket"
SOURCE_BUCKET = "aind-open-data"
BEHAVIOR_BUCKET = "aind-behavior-data"


class FakeDocDB:
    """The part of ``bdc_sync.docdb.DocDB`` the tables use, over a list of records."""

    def __init__(self, records: Sequence[dict], batch_size: int = 500) -> None:
        self.records = {str(r["_id"]): r for r in records}
        self.batch_size = batch_size
        self.requests = 0
        self.fetched_ids: list[str] = []

    def upsert(self, record: dict) -> None:
        self.records[str(record["_id"])] = record

    def list_modified(
        self, filter_query: dict | None = None, *, expected: int | None = None
    ) -> dict[str, str]:
        self.requests += 1
        return {
            rid: str(r.get("_last_modified") or "")
            for rid, r in self.records.items()
            if matches(r, filter_query)
        }

    def fetch_by_ids(
        self, ids: Sequence[str], projection: dict | None = None, batch_size: int | None = None
    ) -> Iterator[dict]:
        ids = list(ids)
        self.requests += math.ceil(len(ids) / (batch_size or self.batch_size))
        self.fetched_ids.extend(ids)
        for rid in ids:
            if rid in self.records:
                yield project(copy.deepcopy(self.records[rid]), projection)


class Harness:
    """Buckets, fake DocDBs and fresh build contexts for one test."""

    def __init__(self, v2_records: Sequence[dict], v1_records: Sequence[dict] = ()) -> None:
        self.s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in (CACHE_BUCKET, SOURCE_BUCKET, BEHAVIOR_BUCKET):
            self.s3.create_bucket(Bucket=bucket)
        # Tests change source objects between builds: every build reads them again.
        self.settings = Settings(cache_bucket=CACHE_BUCKET, source_recheck_seconds=0)
        self.v2 = FakeDocDB(v2_records)
        self.v1 = FakeDocDB(v1_records)
        self.runs = 0

    @property
    def folder(self) -> str:
        return self.settings.version_folder

    def context(self, spec: TableSpec | None = None) -> BuildContext:
        self.runs += 1
        # Requests are counted per build, as a real context's fresh clients would.
        self.v2.requests = self.v1.requests = 0
        ctx = BuildContext(
            self.settings, f"run-{self.runs}", cache=ObjectStore(CACHE_BUCKET, client=self.s3), spec=spec
        )
        # The context makes its DocDB clients on first use; hand it the fakes instead.
        ctx._docdb = {"v2": self.v2, "v1": self.v1}  # type: ignore[assignment]
        return ctx

    def build(self, table: Table) -> tuple[TableResult, BuildContext]:
        ctx = self.context(table.spec)
        return table.build(ctx), ctx

    def build_asset_basics(self) -> tuple[TableResult, BuildContext]:
        """asset_basics after metadata_core, which lists its records, as a run builds them."""
        self.build(metadata_core.TABLE)
        return self.build(asset_basics.TABLE)

    def build_upstream(self) -> None:
        """asset_basics and source_data from the fake DocDB, as a run builds them first."""
        self.build_asset_basics()
        self.build(source_data.TABLE)

    def read(self, name: str) -> pa.Table:
        body = self.s3.get_object(Bucket=CACHE_BUCKET, Key=layout.table_key(self.folder, name))["Body"].read()
        return pq.read_table(pa.BufferReader(body))

    def etag(self, name: str) -> str | None:
        info = ObjectStore(CACHE_BUCKET, client=self.s3).head(layout.table_key(self.folder, name))
        return None if info is None else info.etag

    def put(self, bucket: str, key: str, body: bytes | str) -> None:
        self.s3.put_object(Bucket=bucket, Key=key, Body=body.encode() if isinstance(body, str) else body)

    def delete(self, bucket: str, key: str) -> None:
        self.s3.delete_object(Bucket=bucket, Key=key)

    def remove_bucket(self, bucket: str) -> None:
        for item in self.s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            self.s3.delete_object(Bucket=bucket, Key=item["Key"])
        self.s3.delete_bucket(Bucket=bucket)

    def put_parquet(self, key: str, table: pa.Table) -> None:
        sink = io.BytesIO()
        pq.write_table(table, sink)
        self.put(CACHE_BUCKET, key, sink.getvalue())


@contextmanager
def mocked_aws(region: str = "us-east-1") -> Iterator[None]:
    """moto's in-process AWS with fake credentials, whatever the environment says."""
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": region,
    }
    with mock.patch.dict(os.environ, env):
        # A local stack started earlier in this process points boto3 elsewhere.
        os.environ.pop("AWS_ENDPOINT_URL", None)
        os.environ.pop("AWS_ENDPOINT_URL_S3", None)
        with mock_aws():
            yield


def basic_record(
    rid: str,
    name: str,
    *,
    modalities: Sequence[str] = (),
    level: str = "raw",
    location: str | None = None,
    modified: str = "2026-01-01T00:00:00Z",
    **sections: Any,
) -> dict:
    """A lean v2 record with the fields asset_basics and source_data read."""
    record: dict[str, Any] = {
        "_id": rid,
        "_last_modified": modified,
        "name": name,
        "location": location if location is not None else f"s3://{SOURCE_BUCKET}/{name}",
        "data_description": {
            "modalities": [{"abbreviation": m, "name": m} for m in modalities],
            "data_level": level,
            "project_name": "Test project",
        },
        "subject": {"subject_id": "123456"},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(record.get(key), dict):
            record[key] = {**record[key], **value}
        else:
            record[key] = value
    return record
