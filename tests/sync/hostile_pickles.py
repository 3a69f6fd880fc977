"""Crafted pickles that must never run, by family, each writing MARKER if it ever did.

Built opcode by opcode (``pickle`` would refuse to write most of them). ``MARKER`` is a
placeholder replaced by a real path with :func:`corpus`; ``LIVE`` names the entries
that a plain ``pickle.loads`` really executes (the tests check that, in a subprocess,
so that the corpus cannot rot into pickles that would fail anyway).
"""

from __future__ import annotations

import pickle
import struct

PROTO4 = b"\x80\x04"


def text(value: str) -> bytes:
    data = value.encode()
    if len(data) < 256:
        return b"\x8c" + bytes([len(data)]) + data  # SHORT_BINUNICODE
    return b"X" + struct.pack("<I", len(data)) + data  # BINUNICODE


def stack_global(module: str, name: str) -> bytes:
    return text(module) + text(name) + b"\x93"


def call(callable_: bytes, *args: bytes) -> bytes:
    return callable_ + b"(" + b"".join(args) + b"tR"  # MARK args TUPLE REDUCE


def program(body: bytes) -> bytes:
    return PROTO4 + body + b"."


def _touch(marker: str) -> str:
    return f"open({marker!r}, 'w').close()"


def corpus(marker: str) -> dict[str, dict[str, bytes]]:
    """family → name → pickle."""
    code = _touch(marker)
    shell = f"touch {marker}"
    eval_via = lambda module, name: program(call(call(stack_global(module, name), text("eval")), text(code)))  # noqa: E731
    return {
        "dotted names": {
            "__builtins__.get (the issue's report)": eval_via("pandas.core.common", "__builtins__.get"),
            "numpy._core __builtins__.get": eval_via("numpy._core.multiarray", "__builtins__.get"),
            "function __globals__": program(
                call(stack_global("pandas.core.common", "flatten.__globals__.get"), text("__builtins__"))
            ),
            "class __class__": program(
                call(
                    stack_global("pandas", "DataFrame.__class__.__subclasses__"),
                    stack_global("pandas", "DataFrame"),
                )
            ),
            "module attribute that is a module (importlib)": program(
                call(stack_global("pandas.compat._optional", "importlib.import_module"), text("os"))
            ),
            "module attribute that is a module (os.system)": program(
                call(stack_global("pandas.io.common", "os.system"), text(shell))
            ),
            "dotted name through protocol 0 GLOBAL": PROTO4
            + b"cpandas.core.common\n__builtins__.get\n("
            + text("eval")
            + b"tR("
            + text(code)
            + b"tR.",
        },
        "_-prefixed helpers": {
            "numpy.testing runstring": program(
                call(stack_global("numpy.testing._private.utils", "runstring"), text(code), b"}")
            ),
            "pandas.io.pickle _pickle helper": program(
                call(stack_global("pandas.compat._optional", "import_optional_dependency"), text("os"))
            ),
            "pandas._testing": program(
                call(stack_global("pandas._testing", "_make_skipna_wrapper"), text("x"))
            ),
            "numpy private loader": program(
                call(stack_global("numpy.lib._npyio_impl", "_savez"), text(marker))
            ),
        },
        "copyreg and reduce gadgets": {
            "copyreg._reconstructor": program(
                call(
                    stack_global("copyreg", "_reconstructor"),
                    stack_global("subprocess", "Popen"),
                    stack_global("builtins", "object"),
                    b"N",
                )
            ),
            "copy_reg (protocol 2 name)": b"\x80\x02ccopy_reg\n_reconstructor\n"
            + b"(cos\nsystem\nc__builtin__\nobject\nNtR.",
            "allowed _new_Index with a hostile class": program(
                call(
                    stack_global("pandas.core.indexes.base", "_new_Index"),
                    stack_global("subprocess", "Popen"),
                    b"}" + text("args") + text(shell) + b"s",
                )
            ),
            "allowed _unpickle_block with eval values": program(
                call(
                    stack_global("pandas._libs.internals", "_unpickle_block"),
                    call(stack_global("builtins", "eval"), text(code)),
                    b"N",
                    b"K\x02",
                )
            ),
            "BUILD state naming __setstate__": program(
                call(stack_global("pandas", "DataFrame"))
                + b"}"
                + text("__setstate__")
                + stack_global("builtins", "exec")
                + b"sb"
            ),
            "NEWOBJ of an unlisted class": program(
                stack_global("subprocess", "Popen") + b"(" + text(shell) + b"t\x81"
            ),
        },
        "numpy and pandas readers, importers, evaluators": {
            "pandas.read_pickle": program(call(stack_global("pandas", "read_pickle"), text(marker))),
            "pandas.io.pickle.read_pickle": program(
                call(stack_global("pandas.io.pickle", "read_pickle"), text(marker))
            ),
            "pandas.eval": program(call(stack_global("pandas", "eval"), text("1+1"))),
            "pandas.core.computation.eval.eval": program(
                call(stack_global("pandas.core.computation.eval", "eval"), text("1+1"))
            ),
            "pandas.read_csv": program(call(stack_global("pandas", "read_csv"), text(marker))),
            "numpy.load": program(call(stack_global("numpy", "load"), text(marker))),
            "numpy.fromfile": program(call(stack_global("numpy", "fromfile"), text(marker))),
            "numpy.loadtxt": program(call(stack_global("numpy", "loadtxt"), text(marker))),
            "numpy.memmap": program(
                call(
                    stack_global("numpy", "memmap"),
                    text(marker),
                    text("uint8"),
                    text("w+"),
                    b"K\x00",
                    b"K\x01",
                )
            ),
        },
        "builtins, os, subprocess, importlib": {
            "builtins.eval": program(call(stack_global("builtins", "eval"), text(code))),
            "builtins.exec": program(call(stack_global("builtins", "exec"), text(code))),
            "builtins.__import__": program(call(stack_global("builtins", "__import__"), text("os"))),
            "builtins.getattr": program(
                call(
                    stack_global("builtins", "getattr"), stack_global("pandas", "DataFrame"), text("__init__")
                )
            ),
            "os.system": program(call(stack_global("os", "system"), text(shell))),
            "posix.system": program(call(stack_global("posix", "system"), text(shell))),
            "subprocess.Popen": program(
                call(stack_global("subprocess", "Popen"), b"(" + text("touch") + text(marker) + b"l")
            ),
            "subprocess.check_output": program(
                call(stack_global("subprocess", "check_output"), b"(" + text("touch") + text(marker) + b"l")
            ),
            "importlib.import_module": program(call(stack_global("importlib", "import_module"), text("os"))),
            "pickle in a pickle": program(call(stack_global("pickle", "loads"), b"C\x04abcd")),
        },
        "protocol 0 text opcodes": {
            "GLOBAL os.system": f"cos\nsystem\n(S'{shell}'\ntR.".encode(),
            "INST os.system": f"(S'{shell}'\nios\nsystem\n.".encode(),
            "OBJ os.system": f"(cos\nsystem\nS'{shell}'\no.".encode(),
            "GLOBAL __builtin__.eval": f'c__builtin__\neval\n(S"{code}"\ntR.'.encode(),
            "INST subprocess.Popen": f"((S'touch'\nS'{marker}'\nlisubprocess\nPopen\n.".encode(),
        },
        "malformed": {
            "empty": b"",
            "garbage": bytes(range(256)) * 4,
            "truncated frame": pickle.dumps({"a": list(range(100))}, protocol=4)[:40],
            "no STOP": PROTO4 + text("x"),
            "not a DataFrame": pickle.dumps([1, 2, 3], protocol=4),
            "extension registry opcode": PROTO4 + b"\x82\x01.",
            "persistent id": PROTO4 + text("x") + b"Q.",
        },
        "allocation bombs": {
            "one huge text referenced a million times": PROTO4
            + text("x" * 1000)
            + b"\x94("
            + b"h\x00" * 100_000
            + b"l.",
            "numpy _reconstruct of a huge shape": program(
                call(
                    stack_global("numpy._core.multiarray", "_reconstruct"),
                    stack_global("numpy", "ndarray"),
                    b"\x8a\x05\x00\x00\x00\x00\x01\x85",
                    text("b"),
                )
            ),
            "bytearray of a huge length": program(
                call(stack_global("builtins", "bytearray"), b"\x8a\x06\x00\x00\x00\x00\x00\x01")
            ),
        },
    }


# Entries that plain pickle.loads really runs (marker appears); checked by the tests.
LIVE = {
    "__builtins__.get (the issue's report)",
    "numpy._core __builtins__.get",
    "module attribute that is a module (os.system)",
    "dotted name through protocol 0 GLOBAL",
    "numpy.testing runstring",
    "builtins.eval",
    "builtins.exec",
    "os.system",
    "posix.system",
    "subprocess.check_output",
    "allowed _unpickle_block with eval values",
    "numpy.memmap",
    "GLOBAL os.system",
    "INST os.system",
    "OBJ os.system",
    "GLOBAL __builtin__.eval",
}  # subprocess.Popen entries run too, but the marker appears only once the child has run
