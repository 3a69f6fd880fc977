"""The package surface: light imports, old signatures, configuration, registry format,
and the manual rebuild request."""

from __future__ import annotations

import inspect
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cache_fixtures import FOLDER

import biodata_cache as bc
from biodata_cache import catalog, layout
from biodata_cache.config import CacheConfig, default_cache_dir, resolve_config
from biodata_cache.errors import RebuildError
from biodata_cache.rebuild import start_rebuild
from biodata_cache.registry import CacheRegistry

SRC = Path(bc.__file__).resolve().parent.parent


def _modules_after(code: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys; print(' '.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
    )
    return set(result.stdout.split())


@pytest.mark.parametrize(
    "code",
    [
        "import biodata_cache.catalog, biodata_cache.layout",
        "import biodata_cache",
        "from biodata_cache import layout, catalog, errors, config, registry, cli",
    ],
)
def test_light_imports_load_neither_pandas_nor_duckdb(code: str) -> None:
    loaded = _modules_after(code)
    assert "pandas" not in loaded
    assert "duckdb" not in loaded
    assert "boto3" not in loaded


def test_public_names_resolve_lazily() -> None:
    from biodata_cache import api

    assert bc.asset_basics is api.asset_basics
    for name in bc.__all__:
        assert getattr(bc, name) is not None
    assert set(bc.__all__) <= set(dir(bc))
    with pytest.raises(AttributeError, match="module 'biodata_cache' has no attribute 'nope'"):
        bc.nope  # noqa: B018


def test_the_0x_signatures_are_kept() -> None:
    def params(function: Any) -> list[tuple[str, Any]]:
        return [
            (p.name, p.default)
            for p in inspect.signature(function).parameters.values()
            if p.kind is not p.KEYWORD_ONLY
        ]

    assert params(bc.qc) == [("subject_id", inspect._empty), ("asset_names", None), ("lazy", False)]
    assert params(bc.qc_tag_status) == params(bc.qc)
    assert params(bc.platform_qc) == [("platform", inspect._empty)]
    assert params(bc.raw_to_derived) == [
        ("asset_name", inspect._empty),
        ("latest", False),
        ("modality", None),
    ]
    assert params(bc.custom) == [("name", inspect._empty), ("df", None)]
    assert params(bc.asset_basics) == [("columns", None), ("filters", None)]
    for name in ("unique_project_names", "unique_subject_ids", "unique_genotypes", "get_cache_registry"):
        assert params(getattr(bc, name)) == []
    # every read function takes version= and (all but the registry) use_cache=
    for name in bc.__all__:
        function = getattr(bc, name)
        if (
            inspect.isfunction(function)
            and function.__module__ == "biodata_cache.api"
            and name not in {"configure", "get_cache", "list_versions", "clear_cache", "cache_dir"}
        ):
            assert "version" in inspect.signature(function).parameters, name


def test_every_table_has_a_function() -> None:
    functions = {spec.name: getattr(bc, spec.function_name) for spec in catalog.ALL_TABLES}
    assert all(callable(function) for function in functions.values())
    # The partitioned tables' are the hand-written ones that take the partition value.
    assert functions["quality_control"] is bc.qc
    assert functions["qc_tag_status"] is bc.qc_tag_status
    assert functions["platform_qc"] is bc.platform_qc


# -- configuration ---------------------------------------------------------------------
def test_defaults() -> None:
    config = resolve_config(environ={})
    assert config == CacheConfig(cache_dir=default_cache_dir())
    assert config.bucket == "allen-data-views"
    assert config.prefix == "data-asset-cache"
    assert config.folder == "bdc-v1.0"
    assert config.anonymous is None and config.use_cache is True
    assert config.root_url == "s3://allen-data-views/data-asset-cache/"


def test_environment_then_arguments() -> None:
    env = {
        "BIODATA_CACHE_BUCKET": "env-bucket",
        "BIODATA_CACHE_PREFIX": "/env/prefix/",
        "BIODATA_CACHE_VERSION": "bdc-v0.10",
        "BIODATA_CACHE_S3_ENDPOINT": "http://localhost:4566",
        "BIODATA_CACHE_ANONYMOUS": "yes",
        "BIODATA_CACHE_DIR": "/tmp/bdc-cache",
        "BIODATA_CACHE_NO_CACHE": "true",
    }
    config = resolve_config(environ=env)
    assert (config.bucket, config.prefix, config.folder) == ("env-bucket", "env/prefix", "bdc-v0.10")
    assert config.endpoint_url == "http://localhost:4566"
    assert config.anonymous is True and config.use_cache is False
    assert config.cache_dir == Path("/tmp/bdc-cache")
    explicit = resolve_config(
        bucket="arg", version="1.0", anonymous=False, use_cache=True, endpoint_url="http://x", environ=env
    )
    assert (explicit.bucket, explicit.folder, explicit.anonymous, explicit.use_cache) == (
        "arg",
        "bdc-v1.0",
        False,
        True,
    )
    assert explicit.endpoint_url == "http://x"


def test_roots() -> None:
    s3 = resolve_config(root="s3://b/some/prefix/", environ={})
    assert (s3.bucket, s3.prefix, s3.local_root) == ("b", "some/prefix", None)
    local = resolve_config(root="file:///data/cache", environ={})
    assert local.local_root == Path("/data/cache")
    assert local.root_url == "file:///data/cache/"
    assert resolve_config(root="~/x", environ={}).local_root == Path("~/x").expanduser()
    from_env = resolve_config(environ={"BIODATA_CACHE_ROOT": "s3://e/p", "BIODATA_CACHE_BUCKET": "ignored"})
    assert (from_env.bucket, from_env.prefix) == ("e", "p")
    # an explicit bucket beats a root from the environment
    assert resolve_config(bucket="mine", environ={"BIODATA_CACHE_ROOT": "s3://e/p"}).bucket == "mine"
    with pytest.raises(ValueError, match=r"^root 'http://x': use an s3:// or file:// URL or a local path$"):
        resolve_config(root="http://x", environ={})
    with pytest.raises(ValueError, match=r"^root 's3://' names no bucket \(expected s3://bucket/prefix\)$"):
        resolve_config(root="s3://", environ={})


def test_bad_boolean_variable() -> None:
    with pytest.raises(ValueError) as info:
        resolve_config(environ={"BIODATA_CACHE_ANONYMOUS": "maybe"})
    assert str(info.value) == "BIODATA_CACHE_ANONYMOUS='maybe' is not a boolean (use 1/0, true/false, yes/no)"


def test_cache_takes_config_or_options_not_both() -> None:
    with pytest.raises(TypeError, match="pass either config= or keyword options, not both"):
        bc.Cache(CacheConfig(), bucket="x")
    assert repr(bc.Cache(bucket="x", version="1.0")) == (
        "Cache(root='s3://x/data-asset-cache/', version='bdc-v1.0')"
    )


# -- registry written by the finalizer -------------------------------------------------------
def test_registry_from_the_finalizer_reads() -> None:
    finalize = pytest.importorskip("bdc_sync.flow.finalize")
    outcomes = {"asset_basics": {"status": "succeeded", "rows": 5, "finished_at": 1767225600.0}}
    document = finalize.merge_registry(None, outcomes, "run-1", "bucket", FOLDER)
    registry = CacheRegistry.from_json(json.loads(json.dumps(document)), FOLDER)
    assert registry.names == [spec.name for spec in catalog.ALL_TABLES]
    basics = registry["asset_basics"]
    assert (basics.rows, basics.status, basics.last_run_id) == (5, "ok", "run-1")
    assert basics.last_built == "2026-01-01T00:00:00+00:00"
    assert registry["time_to_qc"].status == "never built"
    assert basics.location == layout.s3_url("bucket", layout.table_key(FOLDER, "asset_basics"))


def test_connect_skips_never_built_tables(local_root: Path) -> None:
    finalize = pytest.importorskip("bdc_sync.flow.finalize")
    outcomes = {"platform_fib": {"status": "succeeded", "rows": 1, "finished_at": 1767225600.0}}
    document = finalize.merge_registry(None, outcomes, "run-1", "bdc-test", FOLDER)
    (local_root / FOLDER / "cache_registry.json").write_text(json.dumps(document))
    connection = bc.Cache(root=local_root).connect()
    assert [row[0] for row in connection.sql("SHOW TABLES").fetchall()] == ["platform_fib"]


# -- rebuild -----------------------------------------------------------------------------
class FakeLambda:
    def __init__(self, answer: Any, function_error: bool = False) -> None:
        self.answer = answer
        self.function_error = function_error
        self.calls: list[dict[str, Any]] = []

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        response: dict[str, Any] = {"Payload": io.BytesIO(json.dumps(self.answer).encode())}
        if self.function_error:
            response["FunctionError"] = "Unhandled"
        return response


def test_rebuild_invokes_the_dispatcher(monkeypatch: pytest.MonkeyPatch) -> None:
    answer = {"ok": True, "run_id": "r1", "tables": ["source_data"], "enqueued": ["source_data"]}
    fake = FakeLambda(answer)
    monkeypatch.setenv("BIODATA_CACHE_DISPATCHER", "bdc-dispatcher")
    assert start_rebuild(["source_data", "source_data"], lambda_client=fake) == answer
    (call,) = fake.calls
    assert call["FunctionName"] == "bdc-dispatcher"
    assert json.loads(call["Payload"]) == {"tables": ["source_data"]}


def test_rebuild_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RebuildError) as info:
        start_rebuild(["source_data"], lambda_client=FakeLambda({}))
    assert str(info.value) == (
        "no dispatcher Lambda named: pass --function NAME (function_name=) or set BIODATA_CACHE_DISPATCHER"
    )
    fake = FakeLambda({})
    with pytest.raises(bc.UnknownTableError, match=r"^unknown table 'nope'; known tables: "):
        start_rebuild(["nope"], function_name="f", lambda_client=fake)
    assert fake.calls == []  # nothing is sent for a bad name
    with pytest.raises(RebuildError) as info:
        start_rebuild(
            ["source_data"], function_name="f", lambda_client=FakeLambda({"ok": False, "error": "busy"})
        )
    assert str(info.value) == "the dispatcher 'f' refused the request: busy"
    with pytest.raises(RebuildError) as info:
        start_rebuild(
            ["source_data"], function_name="f", lambda_client=FakeLambda({"errorMessage": "boom"}, True)
        )
    assert str(info.value) == "the dispatcher 'f' failed: boom"
    with pytest.raises(RebuildError, match=r"^name at least one table to rebuild$"):
        start_rebuild([], function_name="f", lambda_client=FakeLambda({}))


def test_the_wheel_carries_its_types(tmp_path: Path) -> None:
    """Users' type checkers see the annotations (py.typed) and the table functions (.pyi)."""
    import shutil
    import zipfile

    source = tmp_path / "client"  # a copy: building writes build/ beside the sources
    shutil.copytree(SRC.parent, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(source), "-w", str(tmp_path / "dist")],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("biodata_cache-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"biodata_cache/py.typed", "biodata_cache/_table_functions.pyi"} <= names
