"""Reading a pickled DataFrame that someone else wrote, without running their code.

A pickle is a program: it names globals, and the loader calls them. So this loader
resolves only an explicit list of exact ``(module, qualified name)`` globals, the ones
that pickles of the behavior team's frame actually name, and refuses every other global
*before* importing or resolving it. There are no prefix rules, no "any class" rule and
no dotted names (protocol 4 would resolve ``a.b`` by attribute access, which reaches
``__builtins__``, ``__globals__`` and modules through any allowed module).

The list was derived from real pickles (``tests/sync/foraging_pickles``: frames of the
source's shape written by pandas 1.5.3, 2.2.3 with numpy 1 and 2, and 3.1.1, protocols
2 to 5, plus the local stack's pickle); a new pandas that names a new global is refused
until its pickle joins those fixtures and its names join the list.

Before anything runs, :func:`check_pickle` walks the opcodes (``pickletools``) and
refuses: a body over the size limit, any global not in the list (``GLOBAL``, ``INST``
and ``STACK_GLOBAL``, whose operands must be plain strings), extension-registry and
persistent-id opcodes, and pickles whose strings, counted once per reference, would
exceed the limit (the "one huge string referenced a million times" allocation bomb).
The unpickler then applies the same list again at each ``find_class``.

This is one layer of defence: the decoding runs in its own Lambda function whose role
can only read the pickle and write a staging parquet (see ``functions/decoder``).
"""

from __future__ import annotations

import io
import pickle
import pickletools
from typing import Any

# Every global that pickles of the source's frame name (see module doc).
ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {
        # Python: slices (block placements), bytes of numpy arrays (protocol 2), buffers.
        ("builtins", "slice"),
        ("__builtin__", "slice"),
        ("builtins", "bytearray"),
        ("__builtin__", "bytearray"),
        ("_codecs", "encode"),
        # numpy 1.x and 2.x spell their array reconstructors differently.
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        # pandas 1.5 / 2.2 name classes by their defining module, pandas 3 by the public one.
        ("pandas", "DataFrame"),
        ("pandas.core.frame", "DataFrame"),
        ("pandas", "Index"),
        ("pandas.core.indexes.base", "Index"),
        ("pandas", "MultiIndex"),
        ("pandas.core.indexes.multi", "MultiIndex"),
        ("pandas", "DatetimeIndex"),
        ("pandas.core.indexes.datetimes", "DatetimeIndex"),
        ("pandas.arrays", "DatetimeArray"),
        ("pandas.core.arrays.datetimes", "DatetimeArray"),
        ("pandas", "StringDtype"),
        ("pandas.core.arrays.string_", "StringDtype"),
        ("pandas.core.arrays.string_", "StringArray"),
        ("pandas.arrays", "ArrowStringArray"),
        ("pandas", "NA"),
        ("pandas.core.indexes.base", "_new_Index"),
        ("pandas.core.indexes.datetimes", "_new_DatetimeIndex"),
        ("pandas.core.internals.managers", "BlockManager"),
        ("pandas._libs.internals", "_unpickle_block"),
        ("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked"),
        # pandas 1.5 (removed in 2.0; loaded as the plain Index pandas 2+ uses instead).
        ("pandas.core.indexes.numeric", "Int64Index"),
        # pandas >= 3 pickles text columns as arrow arrays.
        ("pyarrow.lib", "_restore_array"),
        ("pyarrow.lib", "py_buffer"),
        ("pyarrow.lib", "type_for_alias"),
    }
)

# Globals of old pandas and numpy that the shipped ones renamed: resolved as their successor
# (numpy 2 still has numpy.core, but only as a deprecated alias of numpy._core).
_RENAMED: dict[tuple[str, str], tuple[str, str]] = {
    ("pandas.core.indexes.numeric", "Int64Index"): ("pandas", "Index"),
    ("numpy.core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"): ("numpy._core.numeric", "_frombuffer"),
}

_STRING_OPS = frozenset(
    {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING", "SHORT_BINSTRING"}
)
_BYTES_OPS = frozenset({"SHORT_BINBYTES", "BINBYTES", "BINBYTES8", "BYTEARRAY8"})
_PUT_OPS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_GET_OPS = frozenset({"GET", "BINGET", "LONG_BINGET"})
# Opcodes a DataFrame pickle never needs: they reach copyreg's extension registry or
# the caller's persistent_load, or hand out-of-band buffers.
_REFUSED_OPS = frozenset({"EXT1", "EXT2", "EXT4", "PERSID", "BINPERSID", "NEXT_BUFFER", "READONLY_BUFFER"})
# Opcodes that leave the stack as it was (for tracking STACK_GLOBAL's operands).
_NO_PUSH_OPS = frozenset({"PROTO", "FRAME", "MEMOIZE", *_PUT_OPS})

DEFAULT_MAX_BYTES = 1 << 30  # 1 GiB; today's real df_sessions.pkl is a few tens of MB


class UnsafePickle(pickle.UnpicklingError):
    """The pickle names something that is not part of the expected DataFrame, or is too big."""


def _refuse_global(module: Any, name: Any) -> None:
    if (module, name) not in ALLOWED_GLOBALS:
        raise UnsafePickle(
            f"refusing global {module}.{name}: not one a pickled DataFrame of this source names"
        )


def check_pickle(body: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
    """Refuse ``body`` without running it if it names an unlisted global or is too big."""
    if len(body) > max_bytes:
        raise UnsafePickle(f"pickle of {len(body)} bytes exceeds the limit of {max_bytes} bytes")
    memo: dict[int, Any] = {}
    pushed: list[Any] = []  # what each stack-pushing opcode pushed: str/bytes length or None
    referenced = 0  # bytes of strings and bytes, counted once per reference
    try:
        for opcode, arg, _position in pickletools.genops(body):
            name = opcode.name
            if name in _REFUSED_OPS:
                raise UnsafePickle(f"refusing opcode {name}: a pickled DataFrame does not use it")
            if name in ("GLOBAL", "INST"):
                module, _, qualname = str(arg).partition(" ")
                _refuse_global(module, qualname)
                pushed.append(None)
            elif name == "STACK_GLOBAL":
                operands = pushed[-2:]
                if len(operands) < 2 or not all(isinstance(part, str) for part in operands):
                    raise UnsafePickle("refusing STACK_GLOBAL whose module and name are not plain strings")
                _refuse_global(*operands)
                pushed.append(None)
            elif name in _STRING_OPS or name in _BYTES_OPS:
                assert isinstance(arg, str | bytes | bytearray)  # genops decodes these operands so
                referenced += len(arg)
                pushed.append(arg if isinstance(arg, str) else len(arg))
            elif name in _GET_OPS:
                assert isinstance(arg, int)  # a memo index, as genops decodes it
                value = memo.get(arg)
                referenced += len(value) if isinstance(value, str) else value if isinstance(value, int) else 0
                pushed.append(value)
            elif name == "MEMOIZE":
                memo[len(memo)] = pushed[-1] if pushed else None
            elif name in _PUT_OPS:
                assert isinstance(arg, int)
                memo[arg] = pushed[-1] if pushed else None
            elif name not in _NO_PUSH_OPS:
                pushed.append(None)
            if referenced > max_bytes:
                raise UnsafePickle(f"pickle references more than {max_bytes} bytes of strings")
            if len(pushed) > 64:
                del pushed[:-2]
    except UnsafePickle:
        raise
    except Exception as exc:  # truncated or garbage: pickletools raises ValueError and others
        raise UnsafePickle(f"not a well-formed pickle: {type(exc).__name__}: {exc}") from None


def _guard_reconstruct(reconstruct: Any) -> Any:
    """numpy pickles an array as ``_reconstruct(ndarray, (0,), b"b")`` and then its state:
    any other shape would allocate from a number in the pickle."""

    def reconstruct_empty(cls: Any, shape: Any, dtype: Any) -> Any:
        import numpy as np

        if cls is not np.ndarray or shape != (0,):
            raise UnsafePickle(
                f"refusing numpy _reconstruct({getattr(cls, '__name__', cls)!s:.40}, {shape!r:.40})"
            )
        return reconstruct(cls, shape, dtype)

    return reconstruct_empty


def _bytearray_of_buffer(*args: Any) -> bytearray:
    """``bytearray(n)`` would allocate n bytes; pickles only ever pass it bytes."""
    if len(args) > 1 or (args and not isinstance(args[0], (bytes, bytearray))):
        raise UnsafePickle("refusing bytearray() of anything but bytes")
    return bytearray(*args)


class DataFrameUnpickler(pickle.Unpickler):
    """Resolves only :data:`ALLOWED_GLOBALS`, each refused before it is imported."""

    def find_class(self, module: str, name: str) -> Any:
        _refuse_global(module, name)
        if name == "bytearray":
            return _bytearray_of_buffer
        if name == "_reconstruct":
            return _guard_reconstruct(self._resolve(module, name))
        return self._resolve(module, name)

    def _resolve(self, module: str, name: str) -> Any:
        successor = _RENAMED.get((module, name))
        if successor is not None:
            try:
                return super().find_class(*successor)
            except (ImportError, AttributeError):  # an older numpy or pandas: the original name
                pass
        return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickle("refusing a persistent id: a pickled DataFrame has none")


def load_dataframe(body: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """The DataFrame in ``body``; :class:`UnsafePickle` for anything else."""
    import pandas as pd

    check_pickle(body, max_bytes=max_bytes)
    try:
        frame = DataFrameUnpickler(io.BytesIO(body)).load()
    except UnsafePickle:
        raise
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        MemoryError,
        OverflowError,
    ) as exc:
        raise UnsafePickle(f"not a loadable DataFrame pickle: {type(exc).__name__}: {exc}") from None
    if type(frame) is not pd.DataFrame:
        raise UnsafePickle(f"the pickle holds a {type(frame).__name__}, expected a DataFrame")
    return frame
