"""The catalog tables' functions that ``api`` makes from their specs (``api.table_function``).

This module re-exports them; ``_table_functions.pyi`` beside it declares their
signatures and docstrings for type checkers and IDEs, which cannot see functions made
at import time. The stub is generated from these very functions:
``python -m biodata_cache._table_functions`` rewrites it, ``--check`` says whether it is
current, and ``tests/client/test_table_functions.py`` fails while it is stale.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from biodata_cache import api

GENERATED: dict[str, Callable[..., Any]] = {
    name: function for name, function in api.TABLE_FUNCTIONS.items() if name not in api.HAND_WRITTEN
}
globals().update(GENERATED)
__all__ = list(GENERATED)

STUB = Path(__file__).with_suffix(".pyi")
_LINE_LENGTH = 110  # ruff's, in pyproject.toml

def _parameters(signature: inspect.Signature) -> list[str]:
    lines: list[str] = []
    starred = False
    for parameter in signature.parameters.values():
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and not starred:
            lines.append("*")
            starred = True
        if parameter.kind not in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
            raise TypeError(f"cannot render parameter {parameter} in a stub")
        text = parameter.name
        if parameter.annotation is not inspect.Parameter.empty:
            text += f": {parameter.annotation}"
        if parameter.default is not inspect.Parameter.empty:
            text += f" = {parameter.default!r}"
        lines.append(text)
    return lines


def _function_stub(name: str, function: Callable[..., Any]) -> str:
    signature = inspect.signature(function)  # annotations are text (``from __future__ import annotations``)
    parameters = "".join(f"    {line},\n" for line in _parameters(signature))
    lines = inspect.cleandoc(function.__doc__ or "").splitlines() or [""]
    if len(lines) == 1:
        doc = f'    """{lines[0]}"""'
    else:
        rest = [f"    {line}" if line else "" for line in lines[1:]]
        doc = "\n".join([f'    """{lines[0]}', *rest, '    """'])
    if any(len(line) > _LINE_LENGTH for line in doc.splitlines()):
        doc += "  # noqa: E501"  # the docstring as it is, not rewrapped
    return f"def {name}(\n{parameters}) -> {signature.return_annotation}:\n{doc}\n"


def render_stub(functions: dict[str, Callable[..., Any]] | None = None) -> str:
    """The text of ``_table_functions.pyi`` for these functions (default: ``GENERATED``)."""
    functions = GENERATED if functions is None else functions
    defs = "\n\n".join(_function_stub(name, function) for name, function in functions.items())
    # The imports the annotations need, in isort's order (stdlib, third party, own).
    abc = [name for name in ("Callable", "Iterable", "Sequence") if f"{name}[" in defs]
    imports = [f"from collections.abc import {', '.join(abc)}"] if abc else []
    imports += ["import pandas as pd"] if "pd." in defs else []
    imports += ["from biodata_cache.reader import Filters"] if "Filters" in defs else []
    blocks = "\n\n".join(imports)
    names = "".join(f'    "{name}",\n' for name in sorted(functions))
    return (
        '"""The catalog tables\' functions, for type checkers and IDEs.\n\n'
        "Generated from the catalog by ``python -m biodata_cache._table_functions``; do not edit.\n"
        '"""\n\n'
        f"{blocks}\n\n"
        f"__all__ = [\n{names}]\n\n\n"
        f"{defs}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Write the stub, or with ``--check`` only report whether it is current (exit 1 if not)."""
    args = list(sys.argv[1:] if argv is None else argv)
    text = render_stub()
    current = STUB.is_file() and STUB.read_text() == text
    if "--check" in args:
        state = "current" if current else "stale: run python -m biodata_cache._table_functions"
        print(f"{STUB.name} is {state}")
        return 0 if current else 1
    if not current:
        STUB.write_text(text)
        print(f"wrote {STUB}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
