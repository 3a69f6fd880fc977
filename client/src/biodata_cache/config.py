"""Where the client reads from: explicit arguments, then environment variables, then defaults.

Standard library only, so that the CLI and the lazy package ``__init__`` stay light.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import unquote, urlparse

from biodata_cache import layout

ENV_BUCKET = "BIODATA_CACHE_BUCKET"
ENV_PREFIX = "BIODATA_CACHE_PREFIX"
ENV_VERSION = "BIODATA_CACHE_VERSION"
ENV_ENDPOINT = "BIODATA_CACHE_S3_ENDPOINT"
ENV_ANONYMOUS = "BIODATA_CACHE_ANONYMOUS"
ENV_ROOT = "BIODATA_CACHE_ROOT"
ENV_CACHE_DIR = "BIODATA_CACHE_DIR"
ENV_NO_CACHE = "BIODATA_CACHE_NO_CACHE"
ENV_DISPATCHER = "BIODATA_CACHE_DISPATCHER"

ENVIRONMENT_VARIABLES: tuple[str, ...] = (
    ENV_BUCKET,
    ENV_PREFIX,
    ENV_VERSION,
    ENV_ENDPOINT,
    ENV_ANONYMOUS,
    ENV_ROOT,
    ENV_CACHE_DIR,
    ENV_NO_CACHE,
    ENV_DISPATCHER,
)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse_bool(value: str, name: str) -> bool:
    """Read a boolean environment variable; anything unrecognised is an error, not False."""
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{name}={value!r} is not a boolean (use 1/0, true/false, yes/no)")


def default_cache_dir() -> Path:
    """The platform's per-user cache folder for biodata-cache."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "biodata-cache" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "biodata-cache"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "biodata-cache"


@dataclass(frozen=True)
class CacheConfig:
    """Resolved settings of one reader.

    Attributes:
        bucket: S3 bucket holding the cache (ignored for a ``file://`` root).
        prefix: Key prefix of the cache inside the bucket (``data-asset-cache``).
        folder: Version folder read, such as ``bdc-v1.0``.
        local_root: A local directory used instead of S3 (it holds ``cache_versions.json``).
        endpoint_url: S3 endpoint (local stack, MinIO); None lets boto3 decide.
        anonymous: True for unsigned requests, False to require credentials, None to
            use credentials when boto3 finds some and unsigned requests otherwise.
        cache_dir: Where downloaded files are kept.
        use_cache: False to bypass the local cache (always download, never store).
        registry_ttl: Seconds a fetched registry is reused within one process.
        max_attempts: Attempts per S3 request (botocore "standard" retries).
    """

    bucket: str = layout.DEFAULT_BUCKET
    prefix: str = layout.ROOT_PREFIX
    folder: str = field(default_factory=layout.package_folder)
    local_root: Path | None = None
    endpoint_url: str | None = None
    anonymous: bool | None = None
    cache_dir: Path = field(default_factory=default_cache_dir)
    use_cache: bool = True
    registry_ttl: float = 300.0
    max_attempts: int = 3

    @property
    def root_url(self) -> str:
        """Where the cache root is, for messages: ``s3://bucket/prefix/`` or ``file:///dir/``."""
        if self.local_root is not None:
            return self.local_root.as_uri().rstrip("/") + "/"
        prefix = f"{self.prefix}/" if self.prefix else ""
        return f"s3://{self.bucket}/{prefix}"

    def with_version(self, version: str) -> CacheConfig:
        """The same settings reading another version folder."""
        return replace(self, folder=layout.version_folder(version))


def _split_root(root: str) -> tuple[str | None, str | None, Path | None]:
    """(bucket, prefix, local_root) of a root given as s3://, file:// or a plain path."""
    parsed = urlparse(root)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError(f"root {root!r} names no bucket (expected s3://bucket/prefix)")
        return parsed.netloc, parsed.path.strip("/"), None
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ValueError(f"root {root!r}: only local file:// URLs are supported")
        return None, None, Path(unquote(parsed.path))
    if parsed.scheme and len(parsed.scheme) > 1:  # one letter is a Windows drive
        raise ValueError(f"root {root!r}: use an s3:// or file:// URL or a local path")
    return None, None, Path(root).expanduser()


def resolve_config(
    *,
    bucket: str | None = None,
    prefix: str | None = None,
    version: str | None = None,
    root: str | os.PathLike[str] | None = None,
    endpoint_url: str | None = None,
    anonymous: bool | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool | None = None,
    registry_ttl: float | None = None,
    max_attempts: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> CacheConfig:
    """Settings from explicit arguments, then ``BIODATA_CACHE_*`` variables, then defaults.

    An explicit ``bucket``/``prefix`` beats a ``BIODATA_CACHE_ROOT`` from the
    environment; an explicit ``root`` beats everything else about location.
    """
    env = os.environ if environ is None else environ

    def pick(explicit: object, name: str) -> str | None:
        if explicit is not None:
            return str(explicit)
        value = env.get(name)
        return value if value not in (None, "") else None

    local_root: Path | None = None
    root_text = str(root) if root is not None else None
    if root_text is None and bucket is None and prefix is None:
        root_text = pick(None, ENV_ROOT)
    if root_text is not None:
        root_bucket, root_prefix, local_root = _split_root(root_text)
        chosen_bucket = root_bucket or layout.DEFAULT_BUCKET
        chosen_prefix = root_prefix if root_prefix is not None else layout.ROOT_PREFIX
    else:
        chosen_bucket = pick(bucket, ENV_BUCKET) or layout.DEFAULT_BUCKET
        given_prefix = pick(prefix, ENV_PREFIX)
        chosen_prefix = layout.ROOT_PREFIX if given_prefix is None else given_prefix.strip("/")

    version_text = pick(version, ENV_VERSION)
    folder = layout.version_folder(version_text) if version_text else layout.package_folder()

    if anonymous is None and env.get(ENV_ANONYMOUS, "").strip():
        anonymous = parse_bool(env[ENV_ANONYMOUS], ENV_ANONYMOUS)
    if use_cache is None:
        no_cache = env.get(ENV_NO_CACHE, "")
        use_cache = not (no_cache.strip() and parse_bool(no_cache, ENV_NO_CACHE))
    directory = pick(cache_dir, ENV_CACHE_DIR)

    return CacheConfig(
        bucket=chosen_bucket,
        prefix=chosen_prefix,
        folder=folder,
        local_root=local_root,
        endpoint_url=pick(endpoint_url, ENV_ENDPOINT),
        anonymous=anonymous,
        cache_dir=Path(directory).expanduser() if directory else default_cache_dir(),
        use_cache=use_cache,
        registry_ttl=300.0 if registry_ttl is None else float(registry_ttl),
        max_attempts=3 if max_attempts is None else int(max_attempts),
    )
