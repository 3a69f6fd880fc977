"""Reading and writing objects of the cache root: S3 (boto3) or a local directory.

Keys passed in here are relative to the cache root (``bdc-v1.0/asset_basics.pqt``);
the store adds the bucket's prefix. S3 errors become the client's own errors with
messages that say what to do; a missing object becomes ``ObjectMissing``, which the
reader turns into a message about the table, version or subject that was asked for.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from biodata_cache import layout
from biodata_cache.config import ENV_ANONYMOUS, CacheConfig
from biodata_cache.errors import (
    AccessDeniedError,
    BiodataCacheError,
    CorruptObjectError,
    EndpointUnreachableError,
    MissingObjectError,
)

if TYPE_CHECKING:
    import pyarrow.fs as pafs
    from botocore.response import StreamingBody

logger = logging.getLogger("biodata_cache")

# Bodies above this size stream in chunks so a progress bar can follow them.
_STREAM_BYTES = 4 << 20
# Above this size the bar shows at once; below it only once a download has taken 1 s.
_BAR_NOW_BYTES = 32 << 20
_CHUNK = 1 << 20

# Codes S3 uses for credentials it does not accept (expired SSO sessions are common).
_REJECTED_CREDENTIALS = {
    "InvalidAccessKeyId",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "SignatureDoesNotMatch",
}
_DENIED = {"AccessDenied", "AllAccessDisabled", "403", *_REJECTED_CREDENTIALS}
_MISSING = {"NoSuchKey", "404", "NotFound"}
_PROVIDE_CREDENTIALS = (
    "Provide credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
    "or `aws sso login`) and try again."
)


# One boto3 session per process: a new session reloads botocore's data files (~0.3 s).
# Sessions are not thread-safe, so clients are created under this lock.
_SESSION_LOCK = threading.Lock()
_SESSION: Any = None


def _shared_session() -> Any:
    global _SESSION
    if _SESSION is None:
        import boto3

        _SESSION = boto3.session.Session()
    return _SESSION


def reset_session() -> None:
    """Forget the shared boto3 session, so credentials and region are looked up again."""
    global _SESSION
    with _SESSION_LOCK:
        _SESSION = None


class ObjectMissing(Exception):
    """The object does not exist (internal: the reader explains what that means)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


@dataclass(frozen=True)
class Fetched:
    """A downloaded object: its bytes and ETag."""

    body: bytes
    etag: str


class FileStore:
    """A cache root in a local directory (``file://``): read in place, never copied."""

    cache_id: str | None = None

    def __init__(self, root: Path) -> None:
        self.root = root

    def url(self, rel: str) -> str:
        return (self.root / rel).as_uri()

    def local_path(self, rel: str) -> Path:
        return self.root / rel

    def get(self, rel: str, *, if_none_match: str | None = None) -> Fetched | None:
        path = self.root / rel
        try:
            stat = path.stat()
            etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
            if if_none_match == etag:
                return None
            return Fetched(path.read_bytes(), etag)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectMissing(self.url(rel)) from None

    def put(self, rel: str, body: bytes, *, content_type: str = "") -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_bytes(body)
        os.replace(tmp, path)

    def list_names(self, rel_prefix: str) -> list[str]:
        base = self.root / rel_prefix
        if not base.is_dir():
            return []
        return sorted(p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())

    def list_folders(self, rel_prefix: str) -> list[str]:
        """Names of the folders directly under ``rel_prefix``."""
        base = self.root / rel_prefix
        return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []

    def arrow_filesystem(self) -> tuple[pafs.FileSystem, str]:
        import pyarrow.fs as pafs

        return pafs.LocalFileSystem(), self.root.as_posix()


class S3Store:
    """A cache root in S3, read with boto3.

    Without an explicit choice, requests are signed when boto3 finds credentials and
    unsigned otherwise (the public bucket needs none). Credentials that S3 rejects
    (an expired SSO session, say) fall back to unsigned requests once.
    """

    def __init__(self, config: CacheConfig) -> None:
        self.config = config
        self.bucket = config.bucket
        self.prefix = f"{config.prefix}/" if config.prefix else ""
        self._lock = threading.Lock()
        self._session: Any = None
        self._client_obj: Any = None
        self._unsigned: bool | None = None
        self._why_unsigned = ""
        self._rejected_code = ""
        self._versions_readable: bool | None = None

    # -- identity ----------------------------------------------------------------
    @property
    def cache_id(self) -> str:
        """Folder of this endpoint and bucket inside the local cache."""
        endpoint = (
            self.config.endpoint_url
            or os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL")
        )
        host = "aws"
        if endpoint:
            parsed = urlparse(endpoint)
            host = (parsed.netloc or parsed.path).replace(":", "_") or "endpoint"
        return f"s3/{host}/{self.bucket}"

    def key(self, rel: str) -> str:
        return f"{self.prefix}{rel}"

    def url(self, rel: str) -> str:
        return layout.s3_url(self.bucket, self.key(rel))

    def local_path(self, rel: str) -> None:
        return None

    @property
    def endpoint(self) -> str:
        return str(self._client().meta.endpoint_url)

    # -- client ------------------------------------------------------------------
    def _client(self) -> Any:
        with self._lock:
            if self._client_obj is None:
                self._client_obj = self._make_client()
            return self._client_obj

    def _make_client(self) -> Any:
        from botocore import UNSIGNED
        from botocore.config import Config

        with _SESSION_LOCK:
            return self._make_client_locked(UNSIGNED, Config)

    def _make_client_locked(self, unsigned: Any, config_class: Any) -> Any:
        if self._session is None:
            self._session = _shared_session()
        if self._unsigned is None:
            if self.config.anonymous is not None:
                self._unsigned = self.config.anonymous
                self._why_unsigned = "forced" if self._unsigned else ""
            else:
                # One credential lookup per process; boto3 may ask the instance metadata service.
                self._unsigned = self._session.get_credentials() is None
                self._why_unsigned = "no-credentials" if self._unsigned else ""
        options: dict[str, Any] = {
            "retries": {"mode": "standard", "max_attempts": self.config.max_attempts},
            "connect_timeout": 10,
            "read_timeout": 60,
            "max_pool_connections": 16,
        }
        if self._unsigned:
            options["signature_version"] = unsigned
        return self._session.client(
            "s3", endpoint_url=self.config.endpoint_url, config=config_class(**options)
        )

    def _go_unsigned(self, reason: str) -> None:
        with self._lock:
            self._unsigned = True
            self._why_unsigned = "rejected"
            self._rejected_code = reason
            self._client_obj = None
        logger.info("AWS credentials not usable (%s); retrying without them", reason)

    @property
    def _auto(self) -> bool:
        return self.config.anonymous is None

    # -- errors ------------------------------------------------------------------
    def _call(self, operation: str, rel: str, *, write: bool = False, **kwargs: Any) -> Any:
        """Run one S3 operation on ``rel``, turning failures into the client's errors."""
        from botocore.exceptions import (
            ClientError,
            ConnectionClosedError,
            ConnectTimeoutError,
            CredentialRetrievalError,
            EndpointConnectionError,
            NoCredentialsError,
            ReadTimeoutError,
        )

        url = self.url(rel)
        for attempt in range(2):
            client = self._client()
            try:
                return getattr(client, operation)(Bucket=self.bucket, **kwargs)
            except ClientError as exc:
                error = exc.response.get("Error", {})
                code = str(error.get("Code", ""))
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if status == 304 or code in {"304", "NotModified"}:
                    raise _NotModified from None
                if code in _MISSING:
                    raise ObjectMissing(url) from None
                if code == "NoSuchBucket":
                    raise MissingObjectError(
                        f"bucket {self.bucket!r} does not exist at {client.meta.endpoint_url}; "
                        "check BIODATA_CACHE_BUCKET / BIODATA_CACHE_ROOT"
                    ) from None
                if code in _REJECTED_CREDENTIALS and self._auto and not self._unsigned and attempt == 0:
                    self._go_unsigned(code)
                    continue
                if code in _DENIED or status == 403:
                    if not write and self._missing_not_denied(rel):
                        raise ObjectMissing(url) from None
                    raise AccessDeniedError(self._denied_message(url, write)) from None
                raise BiodataCacheError(f"S3 request for {url} failed: {exc}") from None
            except (EndpointConnectionError, ConnectTimeoutError, ConnectionClosedError) as exc:
                raise EndpointUnreachableError(
                    f"cannot reach the S3 endpoint {client.meta.endpoint_url}: {exc}"
                ) from None
            except ReadTimeoutError as exc:
                raise EndpointUnreachableError(
                    f"the S3 endpoint {client.meta.endpoint_url} did not answer in time: {exc}"
                ) from None
            except (NoCredentialsError, CredentialRetrievalError) as exc:
                if self._auto and attempt == 0:
                    self._go_unsigned(type(exc).__name__)
                    continue
                raise AccessDeniedError(
                    f"AWS credentials could not be loaded for {url} ({exc}). {_PROVIDE_CREDENTIALS}"
                ) from None
            except Exception as exc:
                # SSO token errors and the like have no common base class in botocore.
                if type(exc).__module__.startswith("botocore") and "Token" in type(exc).__name__:
                    if self._auto and attempt == 0:
                        self._go_unsigned(type(exc).__name__)
                        continue
                    raise AccessDeniedError(
                        f"AWS credentials could not be loaded for {url} ({exc}). {_PROVIDE_CREDENTIALS}"
                    ) from None
                raise
        raise AssertionError("unreachable")

    def _missing_not_denied(self, rel: str) -> bool:
        """True if a 403 most likely means "no such key".

        S3 answers 403 instead of 404 for a missing key when the caller may not list
        the bucket (public buckets often grant only GetObject). If the versions file
        of the same root is readable, access as such is fine.
        """
        versions_rel = relative_key(layout.versions_key())
        if rel == versions_rel:
            return False
        if self._versions_readable is None:
            try:
                self._client().head_object(Bucket=self.bucket, Key=self.key(versions_rel))
                self._versions_readable = True
            except Exception:
                self._versions_readable = False
        return self._versions_readable

    def _denied_message(self, url: str, write: bool) -> str:
        action = "s3:PutObject" if write else "s3:GetObject"
        if self._unsigned:
            if self._why_unsigned == "forced":
                return (
                    f"access denied to {url}: anonymous access is switched on "
                    f"({ENV_ANONYMOUS} or anonymous=True) and this bucket is not public; "
                    "switch it off and provide AWS credentials."
                )
            if self._why_unsigned == "rejected":
                return (
                    f"access denied to {url}: your AWS credentials were rejected "
                    f"({self._rejected_code}) and this bucket is not public. "
                    "Refresh them (for example `aws sso login`) and try again."
                )
            if write:
                return (
                    f"writing {url} needs AWS credentials with {action} on bucket "
                    f"{self.bucket!r}, and no AWS credentials were found. {_PROVIDE_CREDENTIALS}"
                )
            return (
                f"access denied to {url}: this bucket is not public and no AWS credentials "
                f"were found. {_PROVIDE_CREDENTIALS}"
            )
        method = ""
        credentials = self._session.get_credentials() if self._session is not None else None
        if credentials is not None and getattr(credentials, "method", None):
            method = f" ({credentials.method})"
        return (
            f"access denied to {url} with the AWS credentials found{method}: "
            f"they need {action} on bucket {self.bucket!r}."
        )

    # -- operations --------------------------------------------------------------
    def get(self, rel: str, *, if_none_match: str | None = None) -> Fetched | None:
        """The object's bytes and ETag; None if its ETag still equals ``if_none_match``."""
        kwargs: dict[str, Any] = {"Key": self.key(rel)}
        if if_none_match:
            kwargs["IfNoneMatch"] = if_none_match
        try:
            response = self._call("get_object", rel, **kwargs)
        except _NotModified:
            return None
        size = int(response.get("ContentLength", -1))
        body = _read_body(response["Body"], size, self.url(rel))
        return Fetched(body, str(response["ETag"]))

    def put(self, rel: str, body: bytes, *, content_type: str = "application/octet-stream") -> None:
        self._call("put_object", rel, write=True, Key=self.key(rel), Body=body, ContentType=content_type)

    def list_names(self, rel_prefix: str) -> list[str]:
        """Keys under ``rel_prefix``, relative to it."""
        names: list[str] = []
        token: str | None = None
        full = self.key(rel_prefix)
        while True:
            kwargs: dict[str, Any] = {"Prefix": full}
            if token:
                kwargs["ContinuationToken"] = token
            page = self._call("list_objects_v2", rel_prefix, **kwargs)
            names.extend(item["Key"][len(full) :] for item in page.get("Contents", []))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return names

    def list_folders(self, rel_prefix: str) -> list[str]:
        """Names of the folders directly under ``rel_prefix`` (one delimited listing)."""
        folders: list[str] = []
        token: str | None = None
        full = self.key(rel_prefix)
        while True:
            kwargs: dict[str, Any] = {"Prefix": full, "Delimiter": "/"}
            if token:
                kwargs["ContinuationToken"] = token
            page = self._call("list_objects_v2", rel_prefix, **kwargs)
            folders.extend(item["Prefix"][len(full) :].rstrip("/") for item in page.get("CommonPrefixes", []))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return folders

    def arrow_filesystem(self) -> tuple[pafs.FileSystem, str]:
        """A pyarrow S3 filesystem with the same endpoint and credentials as boto3."""
        import pyarrow.fs as pafs

        client = self._client()
        endpoint = urlparse(str(client.meta.endpoint_url))
        options: dict[str, Any] = {
            "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=self.config.max_attempts),
            "connect_timeout": 10,
            "request_timeout": 60,
        }
        region = client.meta.region_name or "us-east-1"
        if (endpoint.hostname or "").endswith("amazonaws.com"):
            try:
                region = pafs.resolve_s3_region(self.bucket)
            except OSError:
                pass
        else:
            options["endpoint_override"] = endpoint.netloc
            options["scheme"] = endpoint.scheme or "https"
        options["region"] = region
        if self._unsigned:
            options["anonymous"] = True
        else:
            credentials = self._session.get_credentials()
            if credentials is None:
                raise AccessDeniedError(
                    f"no AWS credentials were found to read {self.url('')} "
                    f"(anonymous access is switched off). {_PROVIDE_CREDENTIALS}"
                )
            frozen = credentials.get_frozen_credentials()
            options.update(
                access_key=frozen.access_key,
                secret_key=frozen.secret_key,
                session_token=frozen.token,
            )
        return pafs.S3FileSystem(**options), f"{self.bucket}/{self.prefix}".rstrip("/")


class _NotModified(Exception):
    """S3 answered 304: the cached copy is current."""


def relative_key(key: str) -> str:
    """A layout key relative to the cache root.

    ``layout`` spells keys under the default prefix (``data-asset-cache/...``); the
    configured prefix (``BIODATA_CACHE_PREFIX``) or local root replaces it.
    """
    start = f"{layout.ROOT_PREFIX}/"
    if not key.startswith(start):
        raise ValueError(f"layout key {key!r} is not under {start}")
    return key[len(start) :]


def _read_body(body: StreamingBody, size: int, url: str) -> bytes:
    """Read a streaming body, with a progress bar on a terminal when it takes a while."""
    from botocore.exceptions import BotoCoreError

    try:
        if size < _STREAM_BYTES or not _stderr_is_tty():
            data = body.read()
        else:
            data = _read_with_bar(body, size, url)
    except BotoCoreError as exc:
        raise BiodataCacheError(f"download of {url} was interrupted ({exc}); try again") from None
    if size >= 0 and len(data) != size:
        raise CorruptObjectError(f"download of {url} was cut short ({len(data)} of {size} bytes)")
    return data


def _read_with_bar(body: StreamingBody, size: int, url: str) -> bytes:
    from tqdm.auto import tqdm

    chunks: list[bytes] = []
    name = url.rsplit("/", 2)[-2:]
    with tqdm(
        total=size,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc="/".join(name),
        delay=0 if size >= _BAR_NOW_BYTES else 1.0,
        leave=False,
        file=sys.stderr,
    ) as bar:
        for chunk in body.iter_chunks(_CHUNK):
            chunks.append(chunk)
            bar.update(len(chunk))
    return b"".join(chunks)


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def make_store(config: CacheConfig) -> FileStore | S3Store:
    """The store of a configuration: a local directory or an S3 bucket."""
    if config.local_root is not None:
        return FileStore(config.local_root)
    return S3Store(config)
