"""Write the foraging_sessions pickle fixtures with the pandas of the running interpreter.

The behavior team's pipeline writes ``df_sessions.pkl`` with whatever pandas it runs, so
the unpickler's allowlist is derived from real pickles written by several pandas
versions, each in its own virtual environment::

    python3.10 -m venv /tmp/pd15 && /tmp/pd15/bin/pip install "pandas==1.5.3" "numpy<1.24"
    /tmp/pd15/bin/python tests/sync/foraging_pickles/make_pickles.py
    python3.11 -m venv /tmp/pd22 && /tmp/pd22/bin/pip install "pandas==2.2.3" "numpy<2"
    /tmp/pd22/bin/python tests/sync/foraging_pickles/make_pickles.py
    (and the same with numpy 2 under pandas 2.2, and the repository's .venv for pandas 3)

Each run writes ``pandas-<version>-numpy-<major>-p<protocol>.pkl`` for protocols 2 to 5
next to this file. ``sessions_frame`` is the frame of the source's shape (two-level
columns; a four-level index of text, datetime and ints; object, text, float, int and
bool columns with NaN and None); the tests rebuild it and compare every fixture to it.
Runs on Python >= 3.8 and pandas >= 1.5 on purpose.
"""

import pathlib
import pickle

import numpy as np
import pandas as pd

HERE = pathlib.Path(__file__).parent
NAN = float("nan")

INDEX = [
    ("684039", "2024-01-02", 1, 103000),
    ("684039", "2024-01-03", 2, 0),
    ("700001", "2024-02-01", 7, 91500),
    ("700001", "2024-02-02", 8, 91500),
    ("713557", "2024-03-11", 1, 134501),
]
COLUMNS = [
    ("metadata", "rig"), ("metadata", "user_name"), ("metadata", "task"), ("metadata", "box"),
    ("auto_train", "curriculum_name"), ("auto_train", "curriculum_version"),
    ("auto_train", "current_stage_actual"), ("auto_train", "decision"),
    ("session_stats", "foraging_eff"), ("session_stats", "foraging_eff_random_seed"),
    ("session_stats", "finished_trials"), ("session_stats", "finished_rate"),
    ("session_stats", "total_trials"), ("session_stats", "bias_naive"),
    ("session_stats", "reward_trials"), ("session_stats", "autowater"),
]
VALUES = [
    ["447-1-A", "huy.nguyen", "Coupled Baiting", "A", "Uncoupled Baiting", "2.3", "STAGE_1", "stay",
     0.8, NAN, 300, 0.75, 400, 0.1, 210, False],
    ["447-1-A", "Huy", "Coupled Baiting", "A", None, None, None, None, NAN, 0.5, 10, 0.5, 20, -0.2, 4, True],
    ["1-4-D", None, "Uncoupled Without Baiting", "B", None, None, None, None, 0.6, 0.61, 100, 1.0, 100, 0.0,
     61, False],
    ["1-4-D", "Kai", "Uncoupled Without Baiting", "B", "Coupled Baiting", "1.0", "GRADUATED", "progress",
     0.7, 0.71, 120, 0.9, 133, 0.05, 80, False],
    ["323_EPHYS3", "Avalon Amaya", "Uncoupled Baiting", "C", None, None, None, None, NAN, NAN, 0, NAN, 0,
     NAN, 0, True],
]


def sessions_frame() -> pd.DataFrame:
    index = pd.MultiIndex.from_tuples(
        [(subject, pd.Timestamp(day), session, suffix) for subject, day, session, suffix in INDEX],
        names=["subject_id", "session_date", "session", "nwb_suffix"],
    )
    frame = pd.DataFrame(VALUES, index=index, columns=pd.MultiIndex.from_tuples(COLUMNS))
    # A nullable text column and explicit numeric dtypes, as a pipeline's frame has them.
    frame[("metadata", "task")] = frame[("metadata", "task")].astype("string")
    frame[("session_stats", "finished_trials")] = frame[("session_stats", "finished_trials")].astype(np.int64)
    frame[("session_stats", "autowater")] = frame[("session_stats", "autowater")].astype(bool)
    return frame


def main() -> None:
    frame = sessions_frame()
    numpy_major = np.__version__.split(".")[0]
    for protocol in (2, 3, 4, 5):
        name = f"pandas-{pd.__version__}-numpy-{numpy_major}-p{protocol}.pkl"
        (HERE / name).write_bytes(pickle.dumps(frame, protocol=protocol))
        print(name)


if __name__ == "__main__":
    main()
