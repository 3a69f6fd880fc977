"""layers/build.py: the layers it builds for Python 3.12 x86_64 keep every function
under Lambda's 250 MB unzipped limit, carry what the code imports, and its trimming
leaves pyarrow working.

The build downloads the wheels once (pip's cache) and keeps the untrimmed install
under build/lambda/cache/ keyed by the requirements, so later runs take seconds.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "layers" / "build.py"
OUT = ROOT / "build" / "lambda"
FUNCTIONS = {"dispatcher", "worker", "finalizer", "decoder"}
LIMIT_BYTES = 262_144_000

pytestmark = pytest.mark.xdist_group("lambda-build")


def load_build_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bdc_layers_build", BUILD_SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def build() -> ModuleType:
    return load_build_module()


@pytest.fixture(scope="module")
def sizes() -> dict[str, Any]:
    """Run the build script as a deployer would, and read what it measured."""
    (OUT / "sizes.json").unlink(missing_ok=True)
    result = subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), "--out", str(OUT)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    print(result.stdout[-5000:])
    print(result.stderr[-5000:], file=sys.stderr)
    output = f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert (OUT / "sizes.json").is_file(), f"layers/build.py wrote no sizes.json:\n{output}"
    assert result.returncode == 0, f"layers/build.py failed:\n{output}"
    return json.loads((OUT / "sizes.json").read_text())


def test_every_function_is_under_the_lambda_limit(sizes: dict[str, Any]) -> None:
    assert sizes["limit_bytes"] == LIMIT_BYTES
    assert set(sizes["functions"]) == FUNCTIONS
    for name, row in sizes["functions"].items():
        assert row["layers"] == ["deps", "sync"]
        total = row["code_bytes"] + sizes["layers"]["deps"]["bytes"] + sizes["layers"]["sync"]["bytes"]
        assert row["total_bytes"] == total
        assert total < LIMIT_BYTES, f"{name}: {total / 2**20:.1f} MB unzipped"
        assert row["within_limit"]


def test_trimmed_layer_keeps_what_the_code_needs(sizes: dict[str, Any]) -> None:
    assert sizes["dependency_problems"] == []
    python = OUT / "deps" / "python"
    for required in (
        "pyarrow/_parquet.cpython-312-x86_64-linux-gnu.so",
        "pyarrow/_compute.cpython-312-x86_64-linux-gnu.so",
        "pyarrow/lib.cpython-312-x86_64-linux-gnu.so",
        "pydantic_core/_pydantic_core.cpython-312-x86_64-linux-gnu.so",
    ):
        assert (python / required).is_file(), required
    assert list(python.glob("pyarrow/libparquet.so.*"))
    # What trimming removed.
    assert not (python / "pyarrow" / "tests").exists()
    assert not (python / "pyarrow" / "include").exists()
    assert not list(python.glob("pyarrow/libarrow_flight.so*"))
    assert not list(python.rglob("__pycache__"))
    assert not list(python.rglob("*.cpython-311*"))
    assert sizes["trimmed"]["removed_bytes"] > 40 * 2**20
    # duckdb never rides along; pandas does, for the foraging sessions pickle only.
    assert not (python / "duckdb").exists()
    assert (python / "pandas").is_dir()


def test_sync_layer_carries_the_shared_code_without_pandas(sizes: dict[str, Any]) -> None:
    python = OUT / "sync" / "python"
    assert (python / "bdc_sync" / "settings.py").is_file()
    assert (python / "biodata_cache" / "layout.py").is_file()
    assert (python / "biodata_cache" / "__init__.py").is_file()
    carried = set(sizes["sync_layer"]["client_modules"])
    assert {"biodata_cache.layout", "biodata_cache._version", "biodata_cache.catalog"} <= carried
    # Each function folder holds its handler.
    for name in FUNCTIONS:
        assert (OUT / "functions" / name / "app.py").is_file()


def test_lambda_code_imports_only_what_the_layers_carry(sizes: dict[str, Any]) -> None:
    assert sizes["unresolved_imports"] == []


# -- the build script's parts, without the download -----------------------------------


def test_trimming_leaves_pyarrow_working(build: ModuleType, tmp_path: Path) -> None:
    """Apply the trim rules to this machine's pyarrow (same release family, Python
    3.11) and use it: the 3.12 x86_64 layer cannot be imported here."""
    pyarrow = pytest.importorskip("pyarrow")
    site = tmp_path / "python"
    shutil.copytree(Path(pyarrow.__file__).parent, site / "pyarrow")
    removed = build.trim(site)
    assert removed.get("pyarrow Flight (RPC)", 0) > 0
    assert build.check_dependencies(site) is not None
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(site)!r})
        import io
        import pyarrow as pa, pyarrow.compute as pc, pyarrow.dataset, pyarrow.parquet as pq
        assert pa.__file__.startswith({str(site)!r}), pa.__file__
        table = pa.table({{"a": [1, 2, 3], "b": ["x", None, "z"]}})
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd", use_dictionary=True)
        back = pq.read_table(pa.BufferReader(sink.getvalue()), columns=["a", "b"])
        assert back.equals(table)
        assert pc.sum(back["a"]).as_py() == 6
        try:
            import pyarrow.flight
        except ImportError:
            pass
        else:
            raise AssertionError("flight should be gone")
        print("ok", flush=True)
        # Leave without the interpreter's teardown: pyarrow's scanner threads can abort
        # it ("terminate called without an active exception", apache/arrow#34314), with
        # stock pyarrow as with the trimmed copy (2 and 6 of 40 runs here).
        import os
        os._exit(0)
        """
    )
    result = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_elf_reader_finds_what_a_library_needs(build: ModuleType) -> None:
    pyarrow = pytest.importorskip("pyarrow")
    (lib,) = Path(pyarrow.__file__).parent.glob("lib.cpython-*.so")
    info = build.read_elf(lib)
    assert info is not None
    assert any(name.startswith("libarrow.so") for name in info.needed)
    assert any(name.startswith("libparquet.so") for name in info.needed)
    (libarrow,) = Path(pyarrow.__file__).parent.glob("libarrow.so.*")
    assert build.read_elf(libarrow).soname == libarrow.name


def test_import_check_flags_modules_the_layers_do_not_carry(build: ModuleType, tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("VALUE = 1\n")
    (package / "light.py").write_text("import json\nfrom pkg import VALUE\nimport pyarrow\n")
    (package / "heavy.py").write_text(
        textwrap.dedent(
            """
            from typing import TYPE_CHECKING
            import pandas
            from pkg import missing_thing
            from . import light
            try:
                import duckdb
            except ImportError:
                duckdb = None
            if TYPE_CHECKING:
                import polars
            def later():
                import numpy
            """
        )
    )
    resolver = build.Resolver([tmp_path], {"pyarrow"})

    def problems(name: str) -> list[str]:
        path = package / f"{name}.py"
        refs = build.module_level_imports(path, "pkg")
        return [p for ref in refs if (p := resolver.problem(ref))]

    assert problems("light") == []
    found = problems("heavy")
    assert len(found) == 2, found
    assert "pandas" in found[0]
    assert "missing_thing" in found[1]
