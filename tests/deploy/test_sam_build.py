"""`sam build` and `sam validate --lint`, run with the SAM CLI a deployer installs.

`sam build` runs into a temporary build directory (no Docker: the Makefile's build-*
targets install Python 3.12 / x86_64 wheels with pip's --platform options), and the
test checks what it wrote: a folder per layer and function, the handler module and
the layers' python/ trees where Lambda looks for them, a built template that points
at those folders, and each function's unzipped size (its code plus its layers,
measured from the built folders) under Lambda's 250 MB.

The SAM CLI lives in .venv-tools/sam (``make tools``; ``make test`` installs it): it
cannot share .venv with aind-data-access-api (see requirements-tools/sam.txt).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bdc_local.cfn import load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
SAM = ROOT / ".venv-tools" / "sam" / "bin" / "sam"
LIMIT_BYTES = 262_144_000  # Lambda: code + layers, unzipped, 250 MB of 2**20 bytes
MB = 2**20
# The environment of a deployer's shell, without telemetry (no network but PyPI).
SAM_ENV = {**os.environ, "SAM_CLI_TELEMETRY": "0"}

# What Lambda must find in each layer's python/ folder (on sys.path as /opt/python).
LAYER_CONTENT = {
    "DependenciesLayer": (
        "pyarrow/__init__.py",
        "pyarrow/lib.cpython-312-x86_64-linux-gnu.so",
        "pydantic_core/_pydantic_core.cpython-312-x86_64-linux-gnu.so",
        "aws_lambda_powertools/__init__.py",
        "aind_data_access_api/document_db.py",
        "boto3/__init__.py",
    ),
    "SyncLayer": ("bdc_sync/__init__.py", "bdc_sync/flow/work.py", "biodata_cache/catalog.py"),
}


def sam_tool() -> Path:
    if not SAM.is_file():
        pytest.fail(f"no SAM CLI at {SAM.relative_to(ROOT)}: run `make tools` (make test does)")
    return SAM


def tree_bytes(path: Path) -> int:
    """Bytes of the regular files under ``path`` (what Lambda unzips), symlinks not followed."""
    total = 0
    for dirpath, _dirnames, filenames in os.walk(path):
        for name in filenames:
            file = Path(dirpath, name)
            if not file.is_symlink():
                total += file.stat().st_size
    return total


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """``sam build`` into a temporary folder; the folder and its built template."""
    build_dir = tmp_path_factory.mktemp("sam-build")
    result = subprocess.run(
        [str(sam_tool()), "build", "--template", str(TEMPLATE), "--build-dir", str(build_dir)],
        cwd=ROOT,
        env=SAM_ENV,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    output = f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    print(output)
    assert result.returncode == 0, f"sam build failed:\n{output}"
    assert "Build Succeeded" in result.stdout + result.stderr
    return build_dir, load_template(build_dir / "template.yaml")


def makefile_resources(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource.get("Metadata", {}).get("BuildMethod") == "makefile"
    }


def built_folder(build_dir: Path, resource: dict[str, Any]) -> Path:
    properties = resource["Properties"]
    uri = properties.get("CodeUri", properties.get("ContentUri"))
    assert isinstance(uri, str), f"built template has no local folder: {uri!r}"
    return (build_dir / uri).resolve()


def layers_of(template: dict[str, Any], function: dict[str, Any]) -> list[str]:
    layers = function["Properties"].get("Layers", template["Globals"]["Function"]["Layers"])
    return [layer["Ref"] for layer in layers]


def test_sam_build_writes_every_layer_and_function(built: tuple[Path, dict[str, Any]]) -> None:
    build_dir, template = built
    source = load_template(TEMPLATE)
    expected = makefile_resources(source)
    assert {"DependenciesLayer", "SyncLayer", "DispatcherFunction", "WorkerFunction"} <= set(expected)
    for logical_id in expected:
        folder = built_folder(build_dir, template["Resources"][logical_id])
        assert folder.parent == build_dir.resolve(), f"{logical_id}: built template points at {folder}"
        assert folder.is_dir(), f"{logical_id}: sam build wrote no {folder}"


def test_functions_hold_their_handler(built: tuple[Path, dict[str, Any]]) -> None:
    build_dir, template = built
    handler_default = template["Globals"]["Function"]["Handler"]
    functions = {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}
    assert functions
    for logical_id, function in functions.items():
        folder = built_folder(build_dir, function)
        module, _, name = function["Properties"].get("Handler", handler_default).rpartition(".")
        handler_file = folder / Path(*module.split(".")).with_suffix(".py")
        assert handler_file.is_file(), f"{logical_id}: no {handler_file.name} in {folder}"
        tree = ast.parse(handler_file.read_text())
        defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert name in defined, f"{logical_id}: {handler_file.name} defines no {name}()"
        # Every first-party module the handler imports is in the function or its layers.
        layer_roots = [
            built_folder(build_dir, template["Resources"][x]) / "python"
            for x in layers_of(template, function)
        ]
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                top = node.module.split(".")[0]
                if top in sys.stdlib_module_names or top == "__future__":
                    continue
                path = Path(*node.module.split("."))
                found = [
                    root
                    for root in [folder, *layer_roots]
                    if (root / path).with_suffix(".py").is_file() or (root / path / "__init__.py").is_file()
                ]
                assert found, f"{logical_id}: `from {node.module} import ...` resolves in no built folder"


def test_layers_hold_a_python_tree(built: tuple[Path, dict[str, Any]]) -> None:
    build_dir, template = built
    for logical_id, required in LAYER_CONTENT.items():
        python = built_folder(build_dir, template["Resources"][logical_id]) / "python"
        assert python.is_dir(), f"{logical_id}: no python/ folder (Lambda adds /opt/python to sys.path)"
        for relative in required:
            assert (python / relative).is_file(), f"{logical_id}: no python/{relative}"
        # Built for the Lambda runtime, not the build machine.
        foreign = [
            p.name
            for p in python.rglob("*.cpython-*.so")
            if not p.name.endswith(".cpython-312-x86_64-linux-gnu.so")
        ]
        assert foreign == [], f"{logical_id}: extension modules for another Python: {foreign[:5]}"


def test_each_function_with_its_layers_is_under_the_lambda_limit(
    built: tuple[Path, dict[str, Any]],
) -> None:
    build_dir, template = built
    sizes: dict[str, dict[str, int]] = {}
    layer_bytes: dict[str, int] = {}
    for logical_id, function in template["Resources"].items():
        if function["Type"] != "AWS::Serverless::Function":
            continue
        code = tree_bytes(built_folder(build_dir, function))
        layers = layers_of(template, function)
        for layer in layers:
            if layer not in layer_bytes:
                layer_bytes[layer] = tree_bytes(built_folder(build_dir, template["Resources"][layer]))
        sizes[logical_id] = {"code": code, "layers": sum(layer_bytes[x] for x in layers)}
    print("sam build sizes (MB of 2**20 bytes, unzipped):")
    for layer, size in layer_bytes.items():
        print(f"  {layer:<22} {size / MB:8.1f}")
    for logical_id, row in sizes.items():
        total = row["code"] + row["layers"]
        print(
            f"  {logical_id:<22} code {row['code'] / MB:6.2f} + layers {row['layers'] / MB:6.1f}"
            f" = {total / MB:6.1f} (limit {LIMIT_BYTES / MB:.0f})"
        )
    print(json.dumps({"layers": layer_bytes, "functions": sizes}))
    for logical_id, row in sizes.items():
        total = row["code"] + row["layers"]
        assert total < LIMIT_BYTES, f"{logical_id}: {total / MB:.1f} MB unzipped (code + layers)"
    # Not an empty build that passes by measuring nothing.
    assert layer_bytes["DependenciesLayer"] > 50 * MB


def test_sam_validate_lint() -> None:
    result = subprocess.run(
        [str(sam_tool()), "validate", "--lint", "--template", str(TEMPLATE)],
        cwd=ROOT,
        env=SAM_ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = f"{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, f"sam validate --lint failed:\n{output}"
    assert "is a valid SAM Template" in output
