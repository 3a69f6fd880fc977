"""foraging_sessions from a pickled DataFrame in a mocked aind-behavior-data."""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Iterator

import pandas as pd
import pytest
from table_harness import BEHAVIOR_BUCKET, Harness, mocked_aws

from bdc_local.corpus import generate_corpus
from bdc_local.sources import foraging_sessions_pickle
from bdc_sync.framework import MalformedLog, MissingInput, UnusableInput
from bdc_sync.sessions_decoder import decode_sessions
from bdc_sync.tables import foraging_sessions

KEY = foraging_sessions.SESSIONS_KEY
NAN = float("nan")


def sessions_frame() -> pd.DataFrame:
    index = pd.MultiIndex.from_tuples(
        [
            ("684039", pd.Timestamp("2024-01-02"), 1, 103000),
            ("684039", pd.Timestamp("2024-01-03"), 2, 0),
            ("700001", pd.Timestamp("2024-02-01"), 7, 91500),
            ("700001", pd.Timestamp("2024-02-02"), 8, 91500),
        ],
        names=["subject_id", "session_date", "session", "nwb_suffix"],
    )
    columns = pd.MultiIndex.from_tuples(
        [
            ("metadata", "rig"), ("metadata", "user_name"), ("metadata", "task"), ("metadata", "box"),
            ("auto_train", "curriculum_name"), ("auto_train", "current_stage_actual"),
            ("session_stats", "foraging_eff"), ("session_stats", "foraging_eff_random_seed"),
            ("session_stats", "finished_trials"), ("session_stats", "finished_rate"),
            ("session_stats", "total_trials"), ("session_stats", "bias_naive"),
        ]
    )  # no ("auto_train", "curriculum_version"): that column comes out null
    values = [
        ["447-1-A", "huy.nguyen", "Coupled Baiting", "A", "Uncoupled Baiting", "STAGE_1", 0.8, NAN, 300, 0.75,
         400, 0.1],
        ["447-1-A", "Huy", "Coupled Baiting", "A", None, None, NAN, 0.5, 10, 0.5, 20, -0.2],
        ["1-4-D", None, "Uncoupled Without Baiting", "B", None, None, 0.6, 0.61, 100, 1.0, 100, 0.0],
        ["1-4-D", "Kai", "Uncoupled Without Baiting", "B", None, None, 0.6, 0.61, 100.5, 1.0, 100, 0.0],
    ]
    return pd.DataFrame(values, index=index, columns=columns)


EXPECTED = [
    {
        "subject_id": "684039", "session_date": "2024-01-02", "session": 1, "nwb_suffix": 103000,
        "rig": "447-1-A", "trainer": "huy.nguyen", "task": "Coupled Baiting",
        "curriculum_name": "Uncoupled Baiting", "curriculum_version": None, "current_stage_actual": "STAGE_1",
        "foraging_eff": 0.8, "foraging_eff_random_seed": None, "finished_trials": 300, "finished_rate": 0.75,
        "total_trials": 400, "bias_naive": 0.1, "trainer_normalized": "Huy Nguyen",
    },
    {
        "subject_id": "684039", "session_date": "2024-01-03", "session": 2, "nwb_suffix": 0,
        "rig": "447-1-A", "trainer": "Huy", "task": "Coupled Baiting",
        "curriculum_name": None, "curriculum_version": None, "current_stage_actual": None,
        "foraging_eff": None, "foraging_eff_random_seed": 0.5, "finished_trials": 10, "finished_rate": 0.5,
        "total_trials": 20, "bias_naive": -0.2,
        "trainer_normalized": "Huy Nguyen",  # the only multi-word Huy in the table
    },
    {
        "subject_id": "700001", "session_date": "2024-02-01", "session": 7, "nwb_suffix": 91500,
        "rig": "1-4-D", "trainer": None, "task": "Uncoupled Without Baiting",
        "curriculum_name": None, "curriculum_version": None, "current_stage_actual": None,
        "foraging_eff": 0.6, "foraging_eff_random_seed": 0.61, "finished_trials": 100, "finished_rate": 1.0,
        "total_trials": 100, "bias_naive": 0.0, "trainer_normalized": "",
    },
    # The fourth session has 100.5 finished trials: skipped and counted.
]


def test_rows_of_a_frame() -> None:
    malformed = MalformedLog()
    rows = foraging_sessions.session_rows(decode_sessions(pickle.dumps(sessions_frame())), malformed)
    foraging_sessions.normalize_trainers(rows)
    assert rows == EXPECTED
    assert malformed.count == 1
    assert malformed.sample[0]["id"] == "700001/2024-02-02/8/91500"


def test_containers_in_text_columns_are_malformed_not_printed() -> None:
    frame = sessions_frame()
    nested: list = ["x" * 1000]
    for _ in range(3):
        nested = [nested] * 60  # str() of it would be ~200 MB
    frame[("metadata", "rig")] = pd.Series([nested, {"a": 1}, None, "x"], index=frame.index, dtype=object)
    malformed = MalformedLog()
    rows = foraging_sessions.session_rows(decode_sessions(pickle.dumps(frame)), malformed)
    assert [row["session"] for row in rows] == [7]  # None is a null; the 4th has 100.5 trials
    assert malformed.count == 3
    assert "rig: TypeError: a list" in malformed.sample[0]["error"]


@pytest.fixture
def harness() -> Iterator[Harness]:
    with mocked_aws():
        yield Harness([])


def test_build_from_the_pickle_and_skip_when_unchanged(harness: Harness) -> None:
    harness.put(BEHAVIOR_BUCKET, KEY, pickle.dumps(sessions_frame()))
    result, ctx = harness.build(foraging_sessions.TABLE)
    assert result.status == "succeeded"
    table = harness.read("foraging_sessions")
    assert table.column_names == [c.name for c in foraging_sessions.FORAGING_SESSIONS.columns]
    assert sorted(table.to_pylist(), key=lambda r: r["session"]) == [
        {column: row[column] for column in table.column_names} for row in EXPECTED
    ]
    assert ctx.malformed.count == 1
    assert ctx.docdb_requests == 0

    again, _ = harness.build(foraging_sessions.TABLE)
    assert again.status == "unchanged"  # same ETag: the pickle is not even downloaded


def test_missing_pickle_keeps_the_previous_table(harness: Harness) -> None:
    harness.put(BEHAVIOR_BUCKET, KEY, pickle.dumps(sessions_frame()))
    harness.build(foraging_sessions.TABLE)
    before = harness.etag("foraging_sessions")
    harness.delete(BEHAVIOR_BUCKET, KEY)
    with pytest.raises(MissingInput, match=r"df_sessions\.pkl"):
        harness.build(foraging_sessions.TABLE)
    assert harness.etag("foraging_sessions") == before


def test_a_pickle_that_runs_code_fails_the_build(harness: Harness) -> None:
    class RunsCode:
        def __reduce__(self) -> tuple:
            return (os.system, ("echo this must not run",))

    harness.put(BEHAVIOR_BUCKET, KEY, pickle.dumps(RunsCode()))
    with pytest.raises(UnusableInput, match=r"refused: refusing global (os|posix)\.system"):
        harness.build(foraging_sessions.TABLE)
    assert harness.etag("foraging_sessions") is None


def test_the_local_corpus_pickle_loads() -> None:
    records = generate_corpus(400, seed=1)
    body = foraging_sessions_pickle(records, seed=1)
    malformed = MalformedLog()
    rows = foraging_sessions.session_rows(decode_sessions(body), malformed)
    assert len(rows) == len(pd.read_pickle(io.BytesIO(body))) > 0
    assert malformed.count == 0
    assert all(len(r["session_date"]) == 10 for r in rows)
