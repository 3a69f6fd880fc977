#!/usr/bin/env python3
"""Build the Lambda layers and function folders, trim them, and measure their size.

    python layers/build.py [--out build/lambda] [--skip-install] [--zip]

Lays out, under ``--out``:

    deps/python/        DependenciesLayer: layers/deps/requirements.txt installed for
                        CPython 3.12 on x86_64 Linux from wheels only, then trimmed
    sync/python/        SyncLayer: the bdc_sync package plus the parts of the
                        biodata_cache client package that need neither pandas nor duckdb
    functions/<name>/   the code of each function (functions/<name>/)
    sizes.json          bytes on disk of each layer and of each function with its layers

and prints a table of each function's unzipped size (function code plus both layers,
the quantity Lambda limits to 250 MB). Exits 1 if any function reaches the limit or a
file the Lambdas need is missing after trimming.

``sam build`` calls this script through the Makefile (``BuildMethod: makefile``):
``--sam-target <LogicalId> --artifacts-dir $(ARTIFACTS_DIR)`` builds only the layer
or function SAM asked for, with the same install, trimming and checks, straight into
its artifacts folder. The untrimmed install is cached under ``--out`` (default
build/lambda/cache, ignored by git) and pip's wheel cache is reused, so only the
first build downloads.

Needs only Python >= 3.10 and pip: wheels are chosen with pip's ``--platform``
options, so no Python 3.12 and no docker are needed to build.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import fnmatch
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "layers" / "deps" / "requirements.txt"
SYNC_PACKAGE = ROOT / "layers" / "sync" / "bdc_sync"
CLIENT_PACKAGE = ROOT / "client" / "src" / "biodata_cache"
FUNCTIONS_DIR = ROOT / "functions"

# Lambda's limit on a function's code plus all its layers, unzipped.
LIMIT_BYTES = 262_144_000  # 250 MB of 2**20 bytes
MB = 2**20

PYTHON_VERSION = "3.12"
# The python3.12 runtime runs on Amazon Linux 2023 (glibc 2.34): manylinux2014
# (glibc 2.17) and manylinux_2_28 wheels both run there; recent pyarrow releases
# publish only manylinux_2_28 wheels.
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64")
EXTENSION_SUFFIX = ".cpython-312-x86_64-linux-gnu.so"

# Bump when the trimming rules change, so a cached build is not reused.
TRIM_VERSION = 3

# Files that must still be there after trimming: what the sync code imports
# (pyarrow, pyarrow.parquet, pyarrow.compute, pydantic) and the libraries they link.
REQUIRED_FILES = (
    f"pyarrow/lib{EXTENSION_SUFFIX}",
    f"pyarrow/_parquet{EXTENSION_SUFFIX}",
    f"pyarrow/_compute{EXTENSION_SUFFIX}",
    f"pyarrow/_fs{EXTENSION_SUFFIX}",
    f"pyarrow/_dataset{EXTENSION_SUFFIX}",
    "pyarrow/libarrow.so.*",
    "pyarrow/libarrow_compute.so.*",
    "pyarrow/libarrow_acero.so.*",
    "pyarrow/libarrow_dataset.so.*",
    "pyarrow/libarrow_substrait.so.*",
    "pyarrow/libarrow_python.so.*",
    "pyarrow/libparquet.so.*",
    "pyarrow/parquet/__init__.py",
    "pyarrow/compute.py",
    f"pydantic_core/_pydantic_core{EXTENSION_SUFFIX}",
    "aws_lambda_powertools/__init__.py",
    "aind_data_access_api/document_db.py",
    "boto3/__init__.py",
    "botocore/data/s3",
    "semver/__init__.py",
    "requests/__init__.py",
)

# Shared libraries the Lambda runtime (Amazon Linux 2023) provides.
SYSTEM_LIBRARIES = {
    "libc.so.6",
    "libm.so.6",
    "libdl.so.2",
    "librt.so.1",
    "libpthread.so.0",
    "libutil.so.1",
    "libstdc++.so.6",
    "libgcc_s.so.1",
    "ld-linux-x86-64.so.2",
    # The runtime's own Python links zlib dynamically (its zlib module), so the
    # image carries it; numpy's bundled libgfortran needs it.
    "libz.so.1",
}


@dataclass(frozen=True)
class TrimRule:
    """Files (paths relative to the layer's python/ folder) that Lambda never needs."""

    name: str
    patterns: tuple[str, ...]  # fnmatch patterns on the relative path, "/" separated
    directories: bool = False  # patterns name directories, removed whole


TRIM_RULES = (
    TrimRule("console scripts (bin/)", ("bin",), directories=True),
    TrimRule("bytecode caches", ("*__pycache__",), directories=True),
    TrimRule("test suites", ("*/tests",), directories=True),
    TrimRule("type stubs", ("*-stubs",), directories=True),
    TrimRule("type stubs", ("*.pyi",)),
    TrimRule(
        "pyarrow C/C++ headers and Cython sources",
        ("pyarrow/include", "pyarrow/includes", "pyarrow/src"),
        directories=True,
    ),
    TrimRule(
        "pyarrow C/C++ headers and Cython sources",
        (
            "*.pyx",
            "*.pxd",
            "*.pxi",
            "*.h",
            "*.hpp",
            "*.cc",
            "*.cpp",
            "*.c",
            "*.cmake",
            "*.a",
        ),
    ),
    # Arrow Flight RPC: a gRPC client/server, never used.
    TrimRule(
        "pyarrow Flight (RPC)",
        ("pyarrow/libarrow_flight.so*", "pyarrow/libarrow_python_flight.so*", "pyarrow/_flight.*.so"),
    ),
    # Arrow's own S3/GCS/Azure/HDFS filesystems: the code moves bytes with boto3.
    TrimRule(
        "pyarrow S3/GCS/Azure/HDFS filesystems",
        (
            "pyarrow/libarrow_s3.so*",
            "pyarrow/_s3fs.*.so",
            "pyarrow/_gcsfs.*.so",
            "pyarrow/_azurefs.*.so",
            "pyarrow/_hdfs.*.so",
        ),
    ),
    TrimRule(
        "pyarrow ORC and CUDA", ("pyarrow/_orc.*.so", "pyarrow/_dataset_orc.*.so", "pyarrow/_cuda.*.so")
    ),
    TrimRule("pyarrow C++ test module", ("pyarrow/_pyarrow_cpp_tests.*.so",)),
    TrimRule("pyarrow Gandiva", ("pyarrow/libgandiva.so*", "pyarrow/gandiva.*.so")),
)


# -- small helpers --------------------------------------------------------------------


def log(message: str) -> None:
    print(message, flush=True)


def tree_bytes(path: Path) -> tuple[int, int]:
    """Bytes on disk (st_size of regular files, symlinks not followed) and file count."""
    total = files = 0
    if path.is_file():
        return path.stat().st_size, 1
    for dirpath, _dirnames, filenames in os.walk(path):
        for name in filenames:
            st = os.lstat(os.path.join(dirpath, name))
            if not os.path.islink(os.path.join(dirpath, name)):
                total += st.st_size
                files += 1
    return total, files


def relative_paths(base: Path) -> Iterator[tuple[str, Path, bool]]:
    """Every path under ``base`` as (relative posix path, path, is_dir), top-down."""
    for dirpath, dirnames, filenames in os.walk(base):
        here = Path(dirpath)
        for name in sorted(dirnames):
            path = here / name
            yield path.relative_to(base).as_posix(), path, True
        for name in sorted(filenames):
            path = here / name
            yield path.relative_to(base).as_posix(), path, False


def fingerprint() -> str:
    """What decides the content of the raw dependency install."""
    digest = hashlib.sha256()
    digest.update(REQUIREMENTS.read_bytes())
    digest.update(json.dumps([PYTHON_VERSION, PLATFORMS]).encode())
    return digest.hexdigest()


@contextlib.contextmanager
def build_lock(out: Path) -> Iterator[None]:
    """One build at a time per output folder (``sam build --parallel`` runs targets at once)."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".build.lock", "w") as handle:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- ELF: which shared libraries a binary needs ---------------------------------------


@dataclass
class ElfInfo:
    soname: str | None = None
    needed: list[str] = field(default_factory=list)
    runpath: list[str] = field(default_factory=list)


def read_elf(path: Path) -> ElfInfo | None:
    """DT_SONAME, DT_NEEDED and DT_RUNPATH/DT_RPATH of a 64-bit little-endian ELF file."""
    with open(path, "rb") as handle:
        data = handle.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return None
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + index * shentsize) for index in range(shnum)]
    info = ElfInfo()
    for section in sections:
        if section[1] != 6:  # SHT_DYNAMIC
            continue
        strtab_offset = sections[section[6]][4]

        def string(offset: int, base: int = strtab_offset) -> str:
            end = data.index(b"\x00", base + offset)
            return data[base + offset : end].decode()

        offset, size = section[4], section[5]
        for position in range(offset, offset + size, 16):
            tag, value = struct.unpack_from("<qQ", data, position)
            if tag == 0:
                break
            if tag == 1:
                info.needed.append(string(value))
            elif tag == 14:
                info.soname = string(value)
            elif tag in (15, 29):
                info.runpath.extend(string(value).split(":"))
    return info


def is_shared_object(path: Path) -> bool:
    name = path.name
    return name.endswith(".so") or ".so." in name


# -- the dependencies layer -----------------------------------------------------------


def pip_install(target: Path, cache_dir: str | None) -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",  # bytecode of the build machine's Python is useless on 3.12
        "--requirement",
        str(REQUIREMENTS),
        "--target",
        str(target),
        "--python-version",
        PYTHON_VERSION,
        "--implementation",
        "cp",
        "--only-binary=:all:",
    ]
    for platform in PLATFORMS:
        command += ["--platform", platform]
    if cache_dir:
        command += ["--cache-dir", cache_dir]
    log(f"pip install -r {REQUIREMENTS.relative_to(ROOT)} for CPython {PYTHON_VERSION} {'/'.join(PLATFORMS)}")
    subprocess.run(command, check=True)


def raw_dependencies(out: Path, *, skip_install: bool, cache_dir: str | None) -> Path:
    """The untrimmed install of the requirements, reused while its fingerprint holds."""
    stamp = fingerprint()[:16]
    cache = out / "cache"
    raw = cache / f"deps-raw-{stamp}"
    if raw.is_dir() and (raw / ".complete").exists():
        log(f"reusing the dependency install {raw.relative_to(out)}")
        return raw
    if skip_install:
        found = sorted(cache.glob("deps-raw-*/.complete")) if cache.is_dir() else []
        if not found:
            raise SystemExit("--skip-install: no earlier dependency install under " + str(cache))
        log(f"--skip-install: reusing {found[-1].parent.relative_to(out)} (requirements may have changed)")
        return found[-1].parent
    if cache.is_dir():
        for old in cache.glob("deps-raw-*"):
            shutil.rmtree(old)
    partial = cache / f"deps-raw-{stamp}.partial"
    if partial.exists():
        shutil.rmtree(partial)
    pip_install(partial / "python", cache_dir)
    (partial / ".complete").write_text(stamp + "\n")
    partial.rename(raw)
    return raw


def trim(python_dir: Path) -> dict[str, int]:
    """Remove what Lambda never loads; returns bytes removed per rule."""
    removed: dict[str, int] = {}

    def drop(path: Path, rule: str) -> None:
        size, _ = tree_bytes(path)
        removed[rule] = removed.get(rule, 0) + size
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()

    for rule in TRIM_RULES:
        for relative, path, is_dir in list(relative_paths(python_dir)):
            if is_dir != rule.directories or (not path.exists() and not path.is_symlink()):
                continue
            if any(fnmatch.fnmatchcase(relative, pattern) for pattern in rule.patterns):
                drop(path, rule.name)

    # Wheels cannot hold symlinks, so libfoo.so, libfoo.so.N and libfoo.so.N.M.P
    # arrive as three copies. The dynamic loader only ever opens the SONAME.
    for path in sorted(python_dir.rglob("*.so*")):
        if not path.is_file() or path.is_symlink() or not is_shared_object(path):
            continue
        info = read_elf(path)
        if info is None or not info.soname or info.soname == path.name:
            continue
        if (path.parent / info.soname).is_file() and path.name.startswith(info.soname.split(".so")[0]):
            drop(path, "duplicate copies of shared libraries (kept the SONAME)")
    return removed


def check_dependencies(python_dir: Path) -> list[str]:
    """Problems with the trimmed layer: missing files, unresolved libraries, wrong ABI."""
    problems: list[str] = []
    for pattern in REQUIRED_FILES:
        if not list(python_dir.glob(pattern)):
            problems.append(f"missing after trimming: {pattern}")
    for path in sorted(python_dir.rglob("*.so*")):
        if not path.is_file() or not is_shared_object(path):
            continue
        relative = path.relative_to(python_dir).as_posix()
        if ".cpython-" in path.name and not path.name.endswith(EXTENSION_SUFFIX):
            problems.append(f"extension module for another Python or platform: {relative}")
        info = read_elf(path)
        if info is None:
            problems.append(f"not an x86_64 ELF shared object: {relative}")
            continue
        search = [path.parent] + [
            Path(entry.replace("$ORIGIN", str(path.parent)).replace("${ORIGIN}", str(path.parent)))
            for entry in info.runpath
            if entry
        ]
        for needed in info.needed:
            if needed in SYSTEM_LIBRARIES:
                continue
            if not any((folder / needed).is_file() for folder in search):
                problems.append(f"{relative} needs {needed}, which is not in the layer")
    return problems


# -- which Python modules a file imports at module level ------------------------------

_GUARDS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}
# Removed from the standard library by Python 3.12 (present in older builders' lists).
_REMOVED_IN_312 = {"asynchat", "asyncore", "distutils", "imp", "smtpd"}
STDLIB = set(sys.stdlib_module_names) - _REMOVED_IN_312


@dataclass(frozen=True)
class ImportRef:
    module: str  # absolute dotted module name
    names: tuple[str, ...]  # for ``from module import a, b``
    line: int


def _guarded(node: ast.Try) -> bool:
    for handler in node.handlers:
        if handler.type is None:
            return True
        types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        if any(isinstance(t, ast.Name) and t.id in _GUARDS for t in types):
            return True
    return False


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def module_level_imports(source: Path, package: str) -> list[ImportRef]:
    """Imports executed when the file is imported (not those inside functions,
    ``if TYPE_CHECKING:`` blocks, or ``try: ... except ImportError:`` guards)."""
    tree = ast.parse(source.read_text(), filename=str(source))
    refs: list[ImportRef] = []

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.Import):
                refs.extend(ImportRef(alias.name, (), node.lineno) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = package.split(".")
                    base = parts[: len(parts) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                refs.append(ImportRef(module, tuple(alias.name for alias in node.names), node.lineno))
            elif isinstance(node, ast.If):
                if not _is_type_checking(node.test):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                if not _guarded(node):
                    visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)
            elif isinstance(node, (ast.With, ast.ClassDef)):
                visit(node.body)

    visit(tree.body)
    return refs


def top_level_names(python_dir: Path) -> set[str]:
    """Importable top-level names in a layer's python/ folder."""
    names: set[str] = set()
    if not python_dir.is_dir():
        return names
    for entry in python_dir.iterdir():
        if entry.is_dir():
            if not entry.name.endswith((".dist-info", ".egg-info", ".data")) and entry.name.isidentifier():
                names.add(entry.name)
        elif entry.suffix == ".py":
            names.add(entry.stem)
        elif is_shared_object(entry):
            names.add(entry.name.split(".")[0])
    return names


def defined_names(init_file: Path) -> set[str]:
    """Names a module binds at its top level (assignments, imports, defs)."""
    names: set[str] = set()
    for node in ast.parse(init_file.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


class Resolver:
    """Decides whether an import works in Lambda, given the folders on its sys.path.

    Third-party packages are checked by their top-level name; the project's own
    packages (found in ``own_roots``) module by module.
    """

    def __init__(self, own_roots: list[Path], third_party: set[str]) -> None:
        self.own_roots = own_roots
        self.third_party = third_party

    def _module_path(self, dotted: str) -> Path | None:
        parts = dotted.split(".")
        for root in self.own_roots:
            candidate = root.joinpath(*parts)
            if (candidate / "__init__.py").is_file():
                return candidate / "__init__.py"
            if candidate.with_suffix(".py").is_file():
                return candidate.with_suffix(".py")
            if candidate.is_dir():
                return candidate  # namespace package
        return None

    def own(self, top: str) -> bool:
        return any((root / top).is_dir() or (root / f"{top}.py").is_file() for root in self.own_roots)

    def problem(self, ref: ImportRef) -> str | None:
        top = ref.module.split(".")[0]
        if not top:
            return "relative import beyond the top-level package"
        if self.own(top):
            path = self._module_path(ref.module)
            if path is None:
                return f"no module {ref.module}"
            for name in ref.names:
                if name == "*" or self._module_path(f"{ref.module}.{name}") is not None:
                    continue
                if path.is_file() and name in defined_names(path):
                    continue
                return f"{ref.module} has no {name}"
            return None
        if top in STDLIB or top in self.third_party:
            return None
        return f"{top} is not in the layers (nor the standard library)"


def python_modules(package_dir: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of a package."""
    modules: dict[str, Path] = {}
    for path in sorted(package_dir.rglob("*.py")):
        if "__pycache__" in path.parts or "tests" in path.relative_to(package_dir).parts:
            continue
        relative = path.relative_to(package_dir.parent).with_suffix("")
        parts = list(relative.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


# -- the sync layer -------------------------------------------------------------------

CLIENT_STUB_INIT = '''"""biodata_cache: the part of the client package that the Lambdas carry.

Written by layers/build.py: the Lambda layer holds only the modules of
client/src/biodata_cache that need neither pandas nor duckdb.
"""

from biodata_cache._version import __version__

__all__ = ["__version__"]
'''


def copy_tree(source: Path, target: Path) -> None:
    shutil.copytree(
        source,
        target,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "tests", ".pytest_cache"),
        dirs_exist_ok=True,
    )


def build_sync_layer(python_dir: Path, deps_names: set[str]) -> dict[str, object]:
    """bdc_sync whole, plus the client modules whose imports resolve without pandas/duckdb."""
    if python_dir.exists():
        shutil.rmtree(python_dir)
    python_dir.mkdir(parents=True)
    if SYNC_PACKAGE.is_dir():
        copy_tree(SYNC_PACKAGE, python_dir / "bdc_sync")

    client_modules = (
        {
            name: path
            for name, path in python_modules(CLIENT_PACKAGE).items()
            if name != CLIENT_PACKAGE.name  # its __init__ is replaced by the stub
        }
        if CLIENT_PACKAGE.is_dir()
        else {}
    )

    # Drop client modules with an import that cannot work in Lambda, until none is left.
    staging = python_dir.parent / "client-staging"
    excluded: dict[str, str] = {}
    while True:
        if staging.exists():
            shutil.rmtree(staging)
        package = staging / CLIENT_PACKAGE.name
        package.mkdir(parents=True)
        (package / "__init__.py").write_text(CLIENT_STUB_INIT)
        for name, path in client_modules.items():
            if name in excluded:
                continue
            target = staging / Path(*name.split(".")).with_suffix(".py")
            if path.name == "__init__.py":
                target = staging / Path(*name.split(".")) / "__init__.py"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        resolver = Resolver([staging, python_dir], deps_names)
        newly = {}
        for name, path in client_modules.items():
            if name in excluded:
                continue
            for ref in module_level_imports(path, package_of(name, path)):
                problem = resolver.problem(ref)
                if problem:
                    newly[name] = f"line {ref.line}: {problem}"
                    break
        if not newly:
            break
        excluded.update(newly)
    shutil.copytree(package, python_dir / CLIENT_PACKAGE.name)
    shutil.rmtree(staging)
    included = sorted(name for name in client_modules if name not in excluded)
    return {"client_modules": included, "client_modules_left_out": excluded}


def import_problems(sync_python: Path, deps_python: Path, function_dirs: dict[str, Path]) -> list[str]:
    """Module-level imports of the Lambda code that would fail in Lambda."""
    third_party = top_level_names(deps_python)
    problems: list[str] = []
    checks: list[tuple[Path, str, Resolver]] = []
    layer_resolver = Resolver([sync_python], third_party)
    for package_dir in sorted(p for p in sync_python.iterdir() if p.is_dir()):
        for name, path in python_modules(package_dir).items():
            checks.append((path, name, layer_resolver))
    for code in function_dirs.values():
        resolver = Resolver([code, sync_python], third_party)
        for path in sorted(code.rglob("*.py")):
            relative = path.relative_to(code).with_suffix("")
            name = ".".join(relative.parts)
            checks.append((path, name, resolver))
    for path, name, resolver in checks:
        for ref in module_level_imports(path, package_of(name, path)):
            problem = resolver.problem(ref)
            if problem:
                shown = path.relative_to(path.parents[2]) if len(path.parents) > 2 else path
                problems.append(f"{shown}:{ref.line}: import {ref.module}: {problem}")
    return problems


# -- functions and measuring ----------------------------------------------------------


def function_names() -> list[str]:
    if not FUNCTIONS_DIR.is_dir():
        return []
    return sorted(p.name for p in FUNCTIONS_DIR.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def build_functions(out: Path) -> dict[str, Path]:
    target_root = out / "functions"
    if target_root.exists():
        shutil.rmtree(target_root)
    built: dict[str, Path] = {}
    for name in function_names():
        target = target_root / name
        target.mkdir(parents=True)
        copy_tree(FUNCTIONS_DIR / name, target)
        built[name] = target
    return built


def zip_folder(folder: Path, archive: Path) -> int:
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as handle:
        for relative, path, is_dir in relative_paths(folder):
            if not is_dir:
                handle.write(path, relative)
    return archive.stat().st_size


def build(out: Path, *, skip_install: bool, cache_dir: str | None, make_zips: bool) -> dict[str, object]:
    raw = raw_dependencies(out, skip_install=skip_install, cache_dir=cache_dir)
    raw_bytes, raw_files = tree_bytes(raw / "python")

    deps_dir = out / "deps"
    if deps_dir.exists():
        shutil.rmtree(deps_dir)
    shutil.copytree(raw / "python", deps_dir / "python", symlinks=True)
    removed = trim(deps_dir / "python")
    problems = check_dependencies(deps_dir / "python")

    deps_names = top_level_names(deps_dir / "python")
    sync_info = build_sync_layer(out / "sync" / "python", deps_names)
    functions = build_functions(out)
    unresolved = import_problems(out / "sync" / "python", deps_dir / "python", functions)

    deps_bytes, deps_files = tree_bytes(deps_dir)
    sync_bytes, sync_files = tree_bytes(out / "sync")
    layers_bytes = deps_bytes + sync_bytes
    report_functions: dict[str, dict[str, object]] = {}
    for name, code in functions.items():
        code_bytes, code_files = tree_bytes(code)
        total = code_bytes + layers_bytes
        report_functions[name] = {
            "code_bytes": code_bytes,
            "code_files": code_files,
            "layers": ["deps", "sync"],
            "layers_bytes": layers_bytes,
            "total_bytes": total,
            "total_mb": round(total / MB, 1),
            "headroom_mb": round((LIMIT_BYTES - total) / MB, 1),
            "within_limit": total < LIMIT_BYTES,
        }

    zips: dict[str, int] = {}
    if make_zips:
        zips["deps"] = zip_folder(deps_dir, out / "deps.zip")
        zips["sync"] = zip_folder(out / "sync", out / "sync.zip")
        for name, code in functions.items():
            zips[name] = zip_folder(code, out / f"{name}.zip")

    return {
        "limit_bytes": LIMIT_BYTES,
        "mb": "MB here is 2**20 bytes; Lambda's limit of 250 MB is 262,144,000 bytes",
        "python_version": PYTHON_VERSION,
        "platforms": list(PLATFORMS),
        "requirements_sha256": fingerprint(),
        "trim_version": TRIM_VERSION,
        "layers": {
            "deps": {"bytes": deps_bytes, "files": deps_files, "mb": round(deps_bytes / MB, 1)},
            "sync": {"bytes": sync_bytes, "files": sync_files, "mb": round(sync_bytes / MB, 1)},
        },
        "functions": report_functions,
        "trimmed": {
            "deps_bytes_before": raw_bytes,
            "deps_files_before": raw_files,
            "deps_bytes_after": deps_bytes,
            "removed_bytes": raw_bytes - deps_bytes,
            "removed_by_rule": dict(sorted(removed.items(), key=lambda item: -item[1])),
        },
        "sync_layer": sync_info,
        "dependency_problems": problems,
        "unresolved_imports": unresolved,
        "zip_bytes": zips,
    }


def print_report(report: dict[str, object]) -> None:
    trimmed = report["trimmed"]
    log("")
    log(
        f"deps layer: {trimmed['deps_bytes_before'] / MB:.1f} MB installed, "
        f"{trimmed['deps_bytes_after'] / MB:.1f} MB after trimming "
        f"({trimmed['removed_bytes'] / MB:.1f} MB removed)"
    )
    for rule, size in trimmed["removed_by_rule"].items():
        log(f"  - {rule}: {size / MB:.1f} MB")
    layers = report["layers"]
    log(f"sync layer: {layers['sync']['bytes'] / MB:.2f} MB")
    left_out = report["sync_layer"]["client_modules_left_out"]
    log(f"  client modules carried: {', '.join(report['sync_layer']['client_modules']) or '-'}")
    for module, reason in left_out.items():
        log(f"  client module left out: {module} ({reason})")
    log("")
    log(f"{'function':<12} {'code MB':>9} {'layers MB':>10} {'total MB':>9} {'limit MB':>9}  ok")
    for name, row in report["functions"].items():
        ok = "yes" if row["within_limit"] else "NO"
        log(
            f"{name:<12} {row['code_bytes'] / MB:>9.2f} {row['layers_bytes'] / MB:>10.1f} "
            f"{row['total_bytes'] / MB:>9.1f} {LIMIT_BYTES / MB:>9.0f}  {ok}"
        )
    if report["zip_bytes"]:
        log("zipped: " + ", ".join(f"{k} {v / MB:.1f} MB" for k, v in report["zip_bytes"].items()))
    for problem in report["dependency_problems"]:
        log(f"PROBLEM: {problem}")
    for problem in report["unresolved_imports"]:
        log(f"import problem: {problem}")


# -- sam build ------------------------------------------------------------------------

SAM_LAYERS = {"DependenciesLayer": "deps", "SyncLayer": "sync"}


def function_folder_of(logical_id: str) -> Path:
    """functions/<name>/ of a SAM function resource: ``WorkerFunction`` -> functions/worker."""
    name = logical_id.removesuffix("Function").lower()
    folder = FUNCTIONS_DIR / name
    if not logical_id.endswith("Function") or not folder.is_dir():
        raise SystemExit(f"unknown SAM resource {logical_id!r} (no folder {folder.relative_to(ROOT)})")
    return folder


def build_for_sam(out: Path, logical_id: str, artifacts_dir: Path, cache_dir: str | None) -> int:
    """Build the one layer or function ``sam build`` asked for, straight into ARTIFACTS_DIR.

    Same steps as the full build (one dependency install, cached under ``out``; the
    same trimming and checks), but only for that resource, so a ``sam build`` of N
    resources copies and trims the dependencies once. Sizes are measured from what
    ``sam build`` wrote (tests/deploy/test_sam_build.py), not here.
    """
    if artifacts_dir.exists():
        shutil.rmtree(artifacts_dir)
    artifacts_dir.mkdir(parents=True)
    if logical_id == "DependenciesLayer":
        raw = raw_dependencies(out, skip_install=False, cache_dir=cache_dir)
        python_dir = artifacts_dir / "python"
        shutil.copytree(raw / "python", python_dir, symlinks=True)
        removed = trim(python_dir)
        log(f"trimmed {sum(removed.values()) / MB:.1f} MB from the dependencies layer")
        problems = check_dependencies(python_dir)
        for problem in problems:
            log(f"PROBLEM: {problem}")
        if problems:
            log("FAILED: the trimmed dependencies layer is incomplete")
            return 1
    elif logical_id == "SyncLayer":
        raw = raw_dependencies(out, skip_install=False, cache_dir=cache_dir)
        info = build_sync_layer(artifacts_dir / "python", top_level_names(raw / "python"))
        log(f"client modules carried: {', '.join(info['client_modules']) or '-'}")
    else:
        copy_tree(function_folder_of(logical_id), artifacts_dir)
    size, files = tree_bytes(artifacts_dir)
    log(f"{logical_id}: {size / MB:.2f} MB in {files} files -> {artifacts_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "lambda", help="output folder")
    parser.add_argument(
        "--skip-install", action="store_true", help="reuse the last dependency install even if stale"
    )
    parser.add_argument("--cache-dir", help="pip's download cache (default: pip's own)")
    parser.add_argument("--zip", action="store_true", help="also zip each layer and function")
    parser.add_argument(
        "--strict-imports",
        action="store_true",
        help="fail when Lambda code imports a module that the layers do not carry",
    )
    parser.add_argument("--sam-target", help="SAM logical id to copy into --artifacts-dir (sam build)")
    parser.add_argument("--artifacts-dir", type=Path, help="ARTIFACTS_DIR given by sam build")
    args = parser.parse_args(argv)
    out = args.out.resolve()

    if args.sam_target:
        if args.artifacts_dir is None:
            parser.error("--sam-target needs --artifacts-dir")
        with build_lock(out):
            return build_for_sam(out, args.sam_target, args.artifacts_dir.resolve(), args.cache_dir)

    with build_lock(out):
        report = build(out, skip_install=args.skip_install, cache_dir=args.cache_dir, make_zips=args.zip)
        (out / "sizes.json").write_text(json.dumps(report, indent=2) + "\n")
        print_report(report)
        failed = False
        if report["dependency_problems"]:
            log("FAILED: the trimmed dependencies layer is incomplete")
            failed = True
        if not all(row["within_limit"] for row in report["functions"].values()):
            log(f"FAILED: a function reaches Lambda's limit of {LIMIT_BYTES:,} bytes unzipped")
            failed = True
        if report["unresolved_imports"] and args.strict_imports:
            log("FAILED: Lambda code imports modules the layers do not carry")
            failed = True
        log(f"wrote {out / 'sizes.json'}")
        if failed:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
