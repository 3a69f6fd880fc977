"""The local moto launcher's indexed ListObjectsV2 gives exactly moto's own pages."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.s3 import models as s3_models
from moto.s3.models import s3_backends

from bdc_local import moto_server

BUCKET = "listing"
ACCOUNT = "123456789012"


@pytest.fixture
def indexed_bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    """A versioned bucket built with the indexed key store, and moto's S3 backend."""
    monkeypatch.setattr(s3_models, "_VersionedKeyStore", moto_server.IndexedKeyStore)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        rng = random.Random(5)
        names = {
            "/".join(rng.choice("ab") + str(rng.randrange(3)) for _ in range(rng.randrange(1, 5)))
            + rng.choice(["", ".json", "/x"])
            for _ in range(400)
        }
        for name in sorted(names):
            s3.put_object(Bucket=BUCKET, Key=name, Body=b".")
        for name in rng.sample(sorted(names), 60):  # delete markers: listed by neither
            s3.delete_object(Bucket=BUCKET, Key=name)
        backend = s3_backends[ACCOUNT]["global"]
        yield backend, backend.get_bucket(BUCKET)


def pages(listing: Any, backend: Any, bucket: Any, **kwargs: Any) -> list[tuple[list[str], bool]]:
    """Every page of a listing, followed through its continuation tokens."""
    found, token = [], None
    while True:
        page, truncated, token = listing(
            backend,
            bucket,
            kwargs.get("prefix"),
            kwargs.get("delimiter"),
            token,
            None if token else kwargs.get("start_after"),
            kwargs.get("max_keys", 1000),
        )
        found.append(([e if isinstance(e, str) else e.name for e in page], truncated))
        if not truncated:
            return found


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"prefix": "a"},
        {"prefix": "a1/"},
        {"prefix": "b0/a2", "max_keys": 3},
        {"prefix": "a", "delimiter": "/"},
        {"delimiter": "/", "max_keys": 2},
        {"prefix": "a0/", "delimiter": "/", "max_keys": 1},
        {"prefix": "a", "max_keys": 7, "start_after": "a1/b"},
        {"prefix": "a", "delimiter": "/", "max_keys": 2, "start_after": "a1/"},
        {"prefix": "zz"},
        {"max_keys": 0},
    ],
)
def test_indexed_listing_matches_moto(indexed_bucket: tuple[Any, Any], query: dict[str, Any]) -> None:
    backend, bucket = indexed_bucket
    assert isinstance(bucket.keys, moto_server.IndexedKeyStore)
    ours = pages(moto_server.list_objects_v2, backend, bucket, **query)
    theirs = pages(moto_server.ORIGINAL_LIST_OBJECTS_V2, backend, bucket, **query)
    assert ours == theirs
    expect_empty = query.get("prefix") == "zz" or query.get("max_keys") == 0
    assert (sum(len(names) for names, _ in ours) == 0) == expect_empty


def test_index_follows_deletes_and_rewrites(indexed_bucket: tuple[Any, Any]) -> None:
    backend, bucket = indexed_bucket
    s3 = boto3.client("s3", region_name="us-east-1")
    before = pages(moto_server.list_objects_v2, backend, bucket, prefix="a")
    gone = before[0][0][0]
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix=gone)["Versions"]
    for version in versions:  # removing every version removes the name itself
        if version["Key"] == gone:
            s3.delete_object(Bucket=BUCKET, Key=gone, VersionId=version["VersionId"])
    s3.put_object(Bucket=BUCKET, Key="a-new", Body=b".")
    after = pages(moto_server.list_objects_v2, backend, bucket, prefix="a")
    assert gone not in after[0][0]
    assert "a-new" in after[0][0]
    assert after == pages(moto_server.ORIGINAL_LIST_OBJECTS_V2, backend, bucket, prefix="a")
    # A name removed behind the index's back is noticed by the length check.
    dict.pop(bucket.keys, "a-new")
    assert "a-new" not in pages(moto_server.list_objects_v2, backend, bucket, prefix="a")[0][0]
