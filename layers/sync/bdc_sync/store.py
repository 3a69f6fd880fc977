"""S3 I/O of the cache: whole-object parquet writes, JSON documents, conditional updates.

A table object is always replaced by one PUT of the complete new file, so readers
see the old table or the new one and a failed build leaves the old one in place.
Each table object carries its content hash and input fingerprint as user metadata,
so a rebuild that would produce the same bytes is skipped without a write.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
from botocore.config import Config
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

# Row groups of ~128k rows keep asset_basics (100k rows) in one or two groups, which
# is what readers pushing filters down want; zstd and dictionaries shrink the many
# repeated strings (projects, modalities, instrument ids).
PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 6,
    "use_dictionary": True,
    "row_group_size": 131_072,
    "write_statistics": True,
}

_BOTO_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 8}, max_pool_connections=32)


def s3_client() -> S3Client:
    """A boto3 S3 client; ``AWS_ENDPOINT_URL`` (set by the local stack) redirects it."""
    return boto3.client("s3", config=_BOTO_CONFIG)


def parquet_bytes(table: pa.Table) -> bytes:
    """Serialise a table to parquet with the cache's writer settings."""
    sink = io.BytesIO()
    pq.write_table(table, sink, **PARQUET_OPTIONS)
    return sink.getvalue()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ObjectInfo:
    """What HEAD tells about an object."""

    key: str
    size: int
    etag: str
    metadata: dict[str, str]


@dataclass(frozen=True)
class WriteResult:
    """Outcome of writing one table object."""

    key: str
    rows: int
    bytes_written: int  # 0 when the same content was already there
    sha256: str

    @property
    def changed(self) -> bool:
        return self.bytes_written > 0


class PreconditionFailed(Exception):
    """A conditional write lost a race; the caller re-reads and tries again."""


class ObjectStore:
    """Objects of one bucket."""

    def __init__(self, bucket: str, client: S3Client | None = None) -> None:
        self.bucket = bucket
        self.client = client or s3_client()

    # -- reading -----------------------------------------------------------------
    def head(self, key: str) -> ObjectInfo | None:
        try:
            response = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _is_missing(exc):
                return None
            raise
        return ObjectInfo(
            key=key,
            size=int(response["ContentLength"]),
            etag=response["ETag"],
            metadata=response.get("Metadata", {}),
        )

    def get_bytes(self, key: str) -> tuple[bytes, str] | None:
        """The object's bytes and ETag, or None if there is no such object."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _is_missing(exc):
                return None
            raise
        return response["Body"].read(), response["ETag"]

    def get_json(self, key: str) -> tuple[Any, str] | None:
        """The parsed JSON document and its ETag, or None if missing."""
        found = self.get_bytes(key)
        if found is None:
            return None
        body, etag = found
        return json.loads(body), etag

    def read_table(self, key: str, columns: list[str] | None = None) -> pa.Table | None:
        """A parquet object as an arrow table, or None if missing."""
        found = self.get_bytes(key)
        if found is None:
            return None
        # ParquetFile, not pq.read_table: one file needs no dataset scanner (whose
        # threads can abort the process at exit, apache/arrow#34314).
        return pq.ParquetFile(pa.BufferReader(found[0])).read(columns=columns)

    def list_keys(self, prefix: str) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"]

    def require_bucket(self) -> None:
        """Raise the S3 error (NoSuchBucket, AccessDenied) if the bucket cannot be listed."""
        self.client.list_objects_v2(Bucket=self.bucket, MaxKeys=1)

    def list_prefixes(self, prefix: str) -> list[str]:
        """Immediate sub-folders of ``prefix`` (names only, without slashes)."""
        paginator = self.client.get_paginator("list_objects_v2")
        names: list[str] = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
            for item in page.get("CommonPrefixes", []):
                names.append(item["Prefix"][len(prefix) :].rstrip("/"))
        return names

    # -- writing -----------------------------------------------------------------
    def put_bytes(
        self,
        key: str,
        body: bytes,
        *,
        content_type: str = "application/octet-stream",
        metadata: dict[str, str] | None = None,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> str:
        """One PUT of the whole object; returns the new ETag.

        ``if_match``/``if_none_match`` make it conditional (S3 answers 412 when the
        object changed, or exists, since it was read): raises PreconditionFailed.
        """
        kwargs: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "Body": body,
            "ContentType": content_type,
            "Metadata": metadata or {},
        }
        if if_match is not None:
            kwargs["IfMatch"] = if_match
        if if_none_match:
            kwargs["IfNoneMatch"] = "*"
        try:
            response = self.client.put_object(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            # 409 ConditionalRequestConflict: a concurrent conditional write is in flight.
            if code in {"PreconditionFailed", "ConditionalRequestConflict"} or status in {412, 409}:
                raise PreconditionFailed(key) from exc
            raise
        return response["ETag"]

    def put_json(self, key: str, document: Any, **kwargs: Any) -> str:
        body = json.dumps(document, indent=1, default=str).encode()
        return self.put_bytes(key, body, content_type="application/json", **kwargs)

    def write_table(
        self,
        key: str,
        table: pa.Table,
        *,
        metadata: dict[str, str] | None = None,
    ) -> WriteResult:
        """Write a table as one parquet object unless the same bytes are already there."""
        body = parquet_bytes(table)
        digest = sha256_hex(body)
        existing = self.head(key)
        if existing is not None and existing.metadata.get("sha256") == digest:
            return WriteResult(key=key, rows=table.num_rows, bytes_written=0, sha256=digest)
        user_metadata = {"sha256": digest, "rows": str(table.num_rows), **(metadata or {})}
        self.put_bytes(key, body, metadata=user_metadata)
        return WriteResult(key=key, rows=table.num_rows, bytes_written=len(body), sha256=digest)

    def delete_keys(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            batch: list[ObjectIdentifierTypeDef] = [{"Key": key} for key in keys[start : start + 1000]]
            if batch:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch})

    def update_json(
        self,
        key: str,
        change: Callable[[Any], Any],
        *,
        attempts: int = 25,
    ) -> Any:
        """Read-modify-write of a JSON document with S3 conditional writes.

        ``change`` gets the current document (None if absent) and returns the new
        one. On a lost race (412) the document is read again and ``change`` applied
        again, so concurrent writers never lose each other's updates.
        """
        for attempt in range(attempts):
            found = self.get_json(key)
            current, etag = found if found is not None else (None, None)
            updated = change(current)
            if found is not None and updated == current:
                return current
            try:
                if etag is None:
                    self.put_json(key, updated, if_none_match=True)
                else:
                    self.put_json(key, updated, if_match=etag)
                return updated
            except PreconditionFailed:
                # Full jitter keeps twenty racing finalizers from retrying in lockstep.
                time.sleep(random.uniform(0, min(2.0, 0.05 * 2**attempt)))
        raise RuntimeError(f"gave up updating s3 object {key} after {attempts} conflicting writes")


def _is_missing(exc: ClientError) -> bool:
    code = exc.response.get("Error", {}).get("Code", "")
    return code in {"NoSuchKey", "404", "NotFound"}
