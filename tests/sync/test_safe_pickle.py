"""The allowlist unpickler: real pickles of several pandas load, crafted ones never run."""

from __future__ import annotations

import io
import json
import math
import pathlib
import subprocess
import sys
from typing import Any

import pandas as pd
import pytest
from hostile_pickles import LIVE, corpus

from bdc_local.corpus import generate_corpus
from bdc_local.sources import foraging_sessions_pickle
from bdc_sync import safe_pickle
from bdc_sync.safe_pickle import UnsafePickle, load_dataframe
from bdc_sync.sessions_decoder import decode_sessions

FIXTURES = pathlib.Path(__file__).parent / "foraging_pickles"
sys.path.insert(0, str(FIXTURES))
from make_pickles import sessions_frame  # noqa: E402

PICKLES = sorted(FIXTURES.glob("*.pkl"))
HOSTILE = [(family, name) for family, items in corpus("MARKER").items() for name in items]


def plain(value: Any) -> Any:
    """A value with missing as None and numpy/pandas scalars as Python ones."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def canonical(frame: pd.DataFrame) -> dict[str, Any]:
    return {
        "index_names": list(frame.index.names),
        "columns": [list(column) for column in frame.columns],
        "index": [[plain(v) for v in key] for key in frame.index],
        "values": [[plain(v) for v in row] for row in frame.itertuples(index=False)],
        "kinds": [frame[column].dtype.kind for column in frame.columns],
    }


def test_the_fixtures_cover_the_pandas_versions_and_protocols() -> None:
    names = {path.name for path in PICKLES}
    for version in ("1.5.3-numpy-1", "2.2.3-numpy-1", "2.2.3-numpy-2", f"{pd.__version__}-numpy-2"):
        for protocol in (2, 3, 4, 5):
            assert f"pandas-{version}-p{protocol}.pkl" in names


@pytest.mark.parametrize("path", PICKLES, ids=lambda path: path.stem)
def test_each_fixture_loads_to_the_same_frame(path: pathlib.Path) -> None:
    expected = canonical(sessions_frame())
    loaded = canonical(load_dataframe(path.read_bytes()))
    # pandas 3 infers str for text columns that older pandas kept as object.
    kinds = zip(loaded.pop("kinds"), expected.pop("kinds"), strict=True)
    assert all(a == b or {a, b} <= {"O", "T"} for a, b in kinds)
    assert loaded == expected
    assert decode_sessions(path.read_bytes()).equals(decode_sessions(PICKLES[-1].read_bytes()))


class RecordingUnpickler(safe_pickle.DataFrameUnpickler):
    def __init__(self, body: bytes) -> None:
        super().__init__(io.BytesIO(body))
        self.named: set[tuple[str, str]] = set()

    def find_class(self, module: str, name: str) -> Any:
        self.named.add((module, name))
        return super().find_class(module, name)


def test_the_allowlist_is_exactly_what_the_real_pickles_name() -> None:
    named: set[tuple[str, str]] = set()
    bodies = [path.read_bytes() for path in PICKLES]
    bodies.append(foraging_sessions_pickle(generate_corpus(300, seed=3), seed=3))
    for body in bodies:
        unpickler = RecordingUnpickler(body)
        unpickler.load()
        named |= unpickler.named
    assert named == safe_pickle.ALLOWED_GLOBALS
    assert not any("." in name for _module, name in safe_pickle.ALLOWED_GLOBALS)


@pytest.mark.parametrize(("family", "name"), HOSTILE, ids=[f"{f}: {n}" for f, n in HOSTILE])
def test_hostile_pickles_are_refused_and_never_run(family: str, name: str, tmp_path: pathlib.Path) -> None:
    marker = tmp_path / "ran"
    body = corpus(str(marker))[family][name]
    with pytest.raises(UnsafePickle):
        load_dataframe(body, max_bytes=1 << 20)
    assert not marker.exists()
    try:  # the unpickler alone, without the opcode check before it, runs nothing either
        safe_pickle.DataFrameUnpickler(io.BytesIO(body)).load()
    except Exception:  # any refusal will do; the marker is the check
        pass
    assert not marker.exists()


def test_the_live_payloads_do_run_under_a_plain_unpickler(tmp_path: pathlib.Path) -> None:
    """The corpus is real: the payloads marked live create their marker under pickle.loads."""
    script = f"""
import json, pickle, sys
sys.path.insert(0, {str(pathlib.Path(__file__).parent)!r})
from hostile_pickles import corpus
ran = []
for family, items in corpus('MARKER').items():
    for name in items:
        marker = {str(tmp_path)!r} + '/' + str(len(ran)) + '-' + str(abs(hash(name)))
        try:
            pickle.loads(corpus(marker)[family][name])
        except BaseException:
            pass
        import os
        if os.path.exists(marker):
            ran.append(name)
print(json.dumps(ran))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120, check=True
    )
    ran = set(json.loads(done.stdout.splitlines()[-1]))
    popen = {"subprocess.Popen", "INST subprocess.Popen"}  # their child may not have run yet
    assert LIVE <= ran <= LIVE | popen


def test_size_limits() -> None:
    body = PICKLES[-1].read_bytes()
    with pytest.raises(UnsafePickle, match="exceeds the limit"):
        load_dataframe(body, max_bytes=len(body) - 1)
    load_dataframe(body, max_bytes=len(body))
    repeated = corpus("MARKER")["allocation bombs"]["one huge text referenced a million times"]
    assert len(repeated) < 300_000
    with pytest.raises(UnsafePickle, match="references more than"):
        load_dataframe(repeated, max_bytes=10_000_000)


# picklescan's denylist misses these payloads, which a plain pickle.loads does run: dotted
# names (its list matches the module and the full dotted name, not the object reached) and
# numpy/pandas callables that open files. Our allowlist refuses all of them.
PICKLESCAN_MISSES_LIVE = {
    "__builtins__.get (the issue's report)",
    "numpy._core __builtins__.get",
    "module attribute that is a module (os.system)",
    "dotted name through protocol 0 GLOBAL",
    "numpy.memmap",
}


def test_picklescan_second_opinion() -> None:
    """picklescan (a denylist scanner) flags a subset of what the allowlist refuses."""
    from picklescan.scanner import scan_pickle_bytes

    flagged = set()
    for family, name in HOSTILE:
        result = scan_pickle_bytes(io.BytesIO(corpus("MARKER")[family][name]), name)
        if result.issues_count:
            flagged.add(name)
    assert LIVE - flagged == PICKLESCAN_MISSES_LIVE
    for path in PICKLES:  # it agrees that the real pickles are clean
        assert scan_pickle_bytes(io.BytesIO(path.read_bytes()), path.name).issues_count == 0
