"""The non-DocDB inputs of the cache tables, derived deterministically from a corpus.

Every choice below is drawn from an RNG seeded with ``(seed, asset name)``, so an
asset's objects do not depend on the order of ``records`` or on the other records.

S3 objects in bucket ``aind-open-data`` (``asset key`` = ``location`` without
``s3://aind-open-data/``; assets stored elsewhere get no objects):

* **SmartSPIM stitched assets** (derived, a modality containing ``SPIM``, name
  containing ``stitched``): one placeholder object per channel at
  ``<asset key>/image_cell_segmentation/<channel>/visualization/neuroglancer_config.json``,
  channels drawn from ``Ex_445_Em_469``, ``Ex_488_Em_525``, ``Ex_561_Em_593``,
  ``Ex_639_Em_667`` (1-4 of them). ~10 % have no ``image_cell_segmentation/``
  at all; ~5 % also have a plain file ``image_cell_segmentation/segmentation_summary.json``,
  which is not a channel (channels are the *sub-folders*).
* **SmartSPIM raw assets** (raw, a ``SPIM`` modality, ``instrument_id`` without
  ``exa``): ``<raw name>/SPIM/derivatives/neuroglancer_config.json`` holding
  ``{"ng_link": ...}``. ~70 % link to ``.../<raw>/SPIM/derivatives/...``; ~15 %
  carry an old link to ``.../<raw>/derivatives/...`` (the table rewrites it);
  ~5 % have the file without ``ng_link``; ~10 % have no file.
* **exaSPIM raw assets** (raw, ``SPIM``, ``instrument_id`` containing ``exa``):
  ``<raw name>/neuroglancer.json`` only (~45 %), ``<raw name>/process_output.json``
  only (~25 %), both (~10 %), neither (~20 %).
* **Trainer state** for assets whose modalities contain ``behavior``
  (case-insensitive, so also ``behavior-videos``): VR-foraging sessions
  (``acquisition_type`` starting ``AindVrForaging``) use
  ``<asset key>/behavior/Logs/.launcher/TrainerState_<YYYYMMDDTHHMMSS>.json``,
  all others ``<asset key>/behavior/trainer_state/<subject>_<date>_trainer_state.json``.
  ~80 % of raw and ~25 % of derived behavior assets have one. The JSON holds
  ``curriculum.name``, ``curriculum.version``, ``curriculum.graph.nodes`` and
  ``stage.name``. ``nodes`` is a dict keyed by the integer node id written as a
  string (``{"0": {"name": ...}}``, as pydantic serialises ``dict[int, Stage]``)
  in ~80 % of files, and otherwise a **list of ``[<int id>, {"name": ...}]``
  pairs**; ids are not always 0..n-1. ~5 % have a stage whose name is not in the
  nodes (node id null), ~5 % ``"curriculum": null`` (off curriculum), ~1 % are
  truncated JSON. ~3 % of the folders also hold a non-JSON file that sorts first.

The foraging pickle, bucket ``aind-behavior-data``, key
``foraging_nwb_bonsai_processed/df_sessions.pkl``: a pandas DataFrame indexed by
``(subject_id: str, session_date: datetime64 (midnight), session: int, nwb_suffix: int)``
with two-level columns; the ones the table reads are

==============================  =============================================
``("metadata", "rig")``          str (a messy instrument id)
``("metadata", "user_name")``    str or None (messy experimenter forms)
``("metadata", "task")``         str
``("auto_train", "curriculum_name")``       str or None
``("auto_train", "curriculum_version")``    str or None
``("auto_train", "current_stage_actual")``  str or None
``("session_stats", "foraging_eff")``              float (NaN for some)
``("session_stats", "foraging_eff_random_seed")``  float (NaN for many)
``("session_stats", "finished_trials")``           int
``("session_stats", "finished_rate")``             float
``("session_stats", "total_trials")``              int
``("session_stats", "bias_naive")``                float
==============================  =============================================

plus a few columns the table ignores (``("metadata", "box")``,
``("session_stats", "reward_trials")``, ``("auto_train", "decision")``).
``session`` is the subject's running session number; ``nwb_suffix`` is the
session start clock ``HHMMSS`` as an int (0 for some old sessions). Rows come
from the corpus's raw dynamic-foraging sessions plus ~20 % extra sessions of
subjects that are not in the corpus.

``metadata_upgrade_status`` gives the external upgrader's table (stored by the
caller as the custom table ``metadata_upgrade_status_prod``).
"""

from __future__ import annotations

import io
import json
import random
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from bdc_local.corpus import OPEN_DATA_BUCKET, Record

BEHAVIOR_BUCKET = "aind-behavior-data"
FORAGING_SESSIONS_KEY = "foraging_nwb_bonsai_processed/df_sessions.pkl"
UPGRADER_VERSION = "0.6.2"
UPGRADE_STATUS_TABLE = "metadata_upgrade_status_prod"

SPIM_CHANNELS: tuple[str, ...] = ("Ex_445_Em_469", "Ex_488_Em_525", "Ex_561_Em_593", "Ex_639_Em_667")
_RAW_VIEWER = "https://aind-neuroglancer-sauujisjxq-uw.a.run.app#!"
_DYNAMIC_TASK = re.compile(r"^(Uncoupled|Coupled)( Without)? Baiting")

_FORAGING_CURRICULA: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "Uncoupled Baiting",
        "2.3",
        ("STAGE_1_WARMUP", "STAGE_1", "STAGE_2", "STAGE_3", "STAGE_FINAL", "GRADUATED"),
    ),
    ("Coupled Baiting", "1.0", ("STAGE_1", "STAGE_2", "STAGE_3", "STAGE_FINAL", "GRADUATED")),
    (
        "Uncoupled Without Baiting",
        "2.1",
        ("STAGE_1_WARMUP", "STAGE_1", "STAGE_2", "STAGE_FINAL", "GRADUATED"),
    ),
)
_VR_CURRICULA: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "vr_foraging_depletion",
        "0.3.1",
        (
            "s_stage_one_odor_no_depletion",
            "s_stage_one_odor_w_depletion",
            "s_stage_all_odors_rewarded",
            "s_stage_full_task",
        ),
    ),
    ("vr_foraging_operant", "0.1.0", ("s_habituation", "s_operant_learning", "s_stage_full_task")),
)


# --------------------------------------------------------------------------------------
# Reading corpus records defensively (malformed records may be mixed in)
# --------------------------------------------------------------------------------------
def _dig(record: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(record, dict):
            return None
        record = record.get(part)
    return record


def _abbreviations(record: Record) -> list[str]:
    modalities = _dig(record, "data_description", "modalities")
    if not isinstance(modalities, list):
        return []
    return [
        m["abbreviation"]
        for m in modalities
        if isinstance(m, dict) and isinstance(m.get("abbreviation"), str)
    ]


def _level(record: Record) -> Any:
    return _dig(record, "data_description", "data_level")


def _asset_key(record: Record) -> str | None:
    location = record.get("location")
    prefix = f"s3://{OPEN_DATA_BUCKET}/"
    if isinstance(location, str) and location.startswith(prefix) and len(location) > len(prefix):
        return location[len(prefix) :]
    return None


def _rng(seed: int, *parts: Any) -> random.Random:
    # String seeds are hashed with SHA-512, so this is stable across processes and Python runs.
    return random.Random(":".join(str(p) for p in (seed, *parts)))


def _is_spim(record: Record) -> bool:
    return any("SPIM" in m for m in _abbreviations(record))


def _is_exa(record: Record) -> bool:
    instrument = _dig(record, "acquisition", "instrument_id")
    return isinstance(instrument, str) and "exa" in instrument.lower()


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, indent=1).encode("utf-8")


# --------------------------------------------------------------------------------------
# SPIM
# --------------------------------------------------------------------------------------
def spim_source_objects(records: Iterable[Record], *, seed: int) -> dict[str, bytes]:
    """Objects in ``aind-open-data`` that the SmartSPIM and exaSPIM tables look for (see module doc)."""
    objects: dict[str, bytes] = {}
    for record in records:
        if not isinstance(record, dict) or not isinstance(record.get("name"), str) or not _is_spim(record):
            continue
        name = record["name"]
        level = _level(record)
        if level == "derived" and "stitched" in name:
            _stitched_objects(objects, record, seed)
        elif level == "raw" and _asset_key(record) is not None:
            if _is_exa(record):
                _exaspim_raw_objects(objects, name, seed)
            else:
                _smartspim_raw_objects(objects, name, seed)
    return objects


def _stitched_objects(objects: dict[str, bytes], record: Record, seed: int) -> None:
    key = _asset_key(record)
    if key is None:
        return
    rng = _rng(seed, "stitched", record["name"])
    if rng.random() < 0.10:
        return  # segmentation not run (yet)
    channels = sorted(rng.sample(SPIM_CHANNELS, rng.randint(1, len(SPIM_CHANNELS))))
    for channel in channels:
        layer = {
            "layers": [
                {
                    "name": channel,
                    "type": "segmentation",
                    "source": f"precomputed://s3://{OPEN_DATA_BUCKET}/{key}/image_cell_segmentation/"
                    f"{channel}/visualization/detected_precomputed",
                }
            ]
        }
        objects[f"{key}/image_cell_segmentation/{channel}/visualization/neuroglancer_config.json"] = (
            _json_bytes(layer)
        )
    if rng.random() < 0.05:
        objects[f"{key}/image_cell_segmentation/segmentation_summary.json"] = _json_bytes(
            {"channels": channels, "cells_detected": rng.randint(10_000, 2_000_000)}
        )


def _smartspim_raw_objects(objects: dict[str, bytes], raw_name: str, seed: int) -> None:
    rng = _rng(seed, "smartspim-raw", raw_name)
    roll = rng.random()
    if roll < 0.10:
        return
    key = f"{raw_name}/SPIM/derivatives/neuroglancer_config.json"
    config: dict[str, Any] = {
        "dimensions": {"x": [1.8e-6, "m"], "y": [1.8e-6, "m"], "z": [2e-6, "m"]},
        "layers": [{"type": "image", "name": "Ex_488_Em_525"}],
    }
    if roll < 0.80:
        config["ng_link"] = (
            f"{_RAW_VIEWER}s3://{OPEN_DATA_BUCKET}/{raw_name}/SPIM/derivatives/neuroglancer_config.json"
        )
    elif roll < 0.95:
        # Written before the raw layout moved under SPIM/: the table rewrites the path.
        config["ng_link"] = (
            f"{_RAW_VIEWER}s3://{OPEN_DATA_BUCKET}/{raw_name}/derivatives/neuroglancer_config.json"
        )
    objects[key] = _json_bytes(config)


def _exaspim_raw_objects(objects: dict[str, bytes], raw_name: str, seed: int) -> None:
    rng = _rng(seed, "exaspim-raw", raw_name)
    roll = rng.random()
    if roll < 0.55:  # neuroglancer.json only (45 %), or both (10 %)
        objects[f"{raw_name}/neuroglancer.json"] = _json_bytes(
            {
                "layers": [
                    {"type": "image", "source": f"zarr://s3://{OPEN_DATA_BUCKET}/{raw_name}/exaSPIM.zarr"}
                ]
            }
        )
    if 0.45 <= roll < 0.80:  # both, or process_output.json only (25 %)
        objects[f"{raw_name}/process_output.json"] = _json_bytes(
            {"status": "complete", "tiles": rng.randint(20, 400)}
        )


# --------------------------------------------------------------------------------------
# Trainer state
# --------------------------------------------------------------------------------------
def _is_vr(record: Record) -> bool:
    kind = _dig(record, "acquisition", "acquisition_type")
    return isinstance(kind, str) and kind.startswith("AindVrForaging")


def _runs_a_curriculum(record: Record) -> bool:
    """Only foraging tasks (VR or dynamic) are trained on a curriculum that writes a trainer state."""
    kind = _dig(record, "acquisition", "acquisition_type")
    return isinstance(kind, str) and (kind.startswith("AindVrForaging") or bool(_DYNAMIC_TASK.match(kind)))


def _subject_id(record: Record) -> str | None:
    value = _dig(record, "subject", "subject_id") or _dig(record, "data_description", "subject_id")
    return value if isinstance(value, str) else None


def _session_stamp(name: str) -> str | None:
    match = re.search(r"(\d{4}-\d{2}-\d{2})_(\d{2}-\d{2}-\d{2})", name)
    return f"{match.group(1)}_{match.group(2)}" if match else None


def trainer_state_objects(records: Iterable[Record], *, seed: int) -> dict[str, bytes]:
    """Trainer-state JSON objects in ``aind-open-data`` for behavior assets (see module doc)."""
    behavior = [
        r
        for r in records
        if isinstance(r, dict)
        and isinstance(r.get("name"), str)
        and _asset_key(r) is not None
        and any("behavior" in m.lower() for m in _abbreviations(r))
        and _runs_a_curriculum(r)
    ]
    # A subject advances through its curriculum: order its sessions by the raw name's date.
    sessions: dict[str, list[str]] = {}
    for record in behavior:
        stamp = _session_stamp(record["name"])
        subject = _subject_id(record)
        if stamp is not None and subject is not None:
            sessions.setdefault(subject, []).append(stamp)
    order = {
        subject: {s: i for i, s in enumerate(sorted(set(stamps)))} for subject, stamps in sessions.items()
    }

    objects: dict[str, bytes] = {}
    for record in behavior:
        name = record["name"]
        rng = _rng(seed, "trainer", name)
        if rng.random() >= (0.8 if _level(record) == "raw" else 0.25):
            continue
        key = _asset_key(record)
        assert key is not None
        subject = _subject_id(record) or "unknown"
        stamp = _session_stamp(name) or "1970-01-01_00-00-00"
        index = order.get(subject, {}).get(stamp, 0)
        vr = _is_vr(record)
        state = _trainer_state(_rng(seed, "curriculum", subject), rng, vr, index)
        if vr:
            compact = stamp.replace("-", "").replace("_", "T")
            folder = f"{key}/behavior/Logs/.launcher"
            path = f"{folder}/TrainerState_{compact}.json"
            stray = f"{folder}/TrainerState_{compact}.bak"
        else:
            folder = f"{key}/behavior/trainer_state"
            path = f"{folder}/{subject}_{stamp[:10]}_trainer_state.json"
            stray = f"{folder}/.DS_Store"
        text = json.dumps(state, indent=1)
        if rng.random() < 0.01:
            text = text[: len(text) // 2]  # an upload cut short
        objects[path] = text.encode("utf-8")
        if rng.random() < 0.03:
            objects[stray] = b"\x00\x01 not json"
    return objects


def _trainer_state(subject_rng: random.Random, rng: random.Random, vr: bool, index: int) -> dict[str, Any]:
    # The subject's curriculum is fixed; the session index decides how far along it is.
    name, version, stages = subject_rng.choice(_VR_CURRICULA if vr else _FORAGING_CURRICULA)
    list_form = subject_rng.random() < 0.2
    # Node ids are usually 0..n-1, but not always: readers must use the id, not the position.
    start_id = subject_rng.choice((0, 0, 0, 1, 10))
    gap_at = subject_rng.randrange(1, len(stages)) if subject_rng.random() < 0.15 else len(stages)
    ids = [start_id + i + (i >= gap_at) for i in range(len(stages))]
    nodes_by_id = {
        node_id: {
            "name": stage,
            "task": {"name": "AindVrForaging" if vr else "CoupledBaiting", "version": version},
            "description": None,
        }
        for node_id, stage in zip(ids, stages, strict=True)
    }
    nodes: Any = (
        [[k, v] for k, v in nodes_by_id.items()] if list_form else {str(k): v for k, v in nodes_by_id.items()}
    )
    stage = stages[min(index // 4, len(stages) - 1)]
    roll = rng.random()
    if roll < 0.05:
        stage = f"{stage}_manual_override"  # a stage that is not a node of the graph
    curriculum: dict[str, Any] | None = {
        "name": name,
        "version": version,
        "pkg_location": f"aind_behavior_curriculum.{name.lower().replace(' ', '_')}",
        "graph": {"nodes": nodes, "graph": {str(i): [] for i in ids}},
    }
    if 0.05 <= roll < 0.10:
        curriculum = None  # session run off curriculum
    return {
        "curriculum": curriculum,
        "stage": {"name": stage, "task": {"name": "AindVrForaging" if vr else "Foraging"}},
        "is_on_curriculum": curriculum is not None,
        "active_policies": None,
    }


# --------------------------------------------------------------------------------------
# Foraging sessions pickle
# --------------------------------------------------------------------------------------
_READ_COLUMNS: tuple[tuple[str, str], ...] = (
    ("metadata", "rig"),
    ("metadata", "user_name"),
    ("metadata", "task"),
    ("auto_train", "curriculum_name"),
    ("auto_train", "curriculum_version"),
    ("auto_train", "current_stage_actual"),
    ("session_stats", "foraging_eff"),
    ("session_stats", "foraging_eff_random_seed"),
    ("session_stats", "finished_trials"),
    ("session_stats", "finished_rate"),
    ("session_stats", "total_trials"),
    ("session_stats", "bias_naive"),
)
_EXTRA_COLUMNS: tuple[tuple[str, str], ...] = (
    ("metadata", "box"),
    ("session_stats", "reward_trials"),
    ("auto_train", "decision"),
)
FORAGING_COLUMNS: tuple[tuple[str, str], ...] = _READ_COLUMNS + _EXTRA_COLUMNS


def _experimenter_text(value: Any) -> str | None:
    if isinstance(value, list) and value:
        value = value[0]
    if isinstance(value, dict):
        value = value.get("name")
    return value if isinstance(value, str) else None


def foraging_sessions_frame(records: Iterable[Record], *, seed: int) -> pd.DataFrame:
    """The DataFrame that :func:`foraging_sessions_pickle` pickles (see module doc)."""
    rows: list[tuple[tuple[Any, ...], list[Any]]] = []
    sessions: list[tuple[str, datetime, str | None, str | None, str | None]] = []
    for record in records:
        if (
            not isinstance(record, dict)
            or _level(record) != "raw"
            or "behavior" not in _abbreviations(record)
        ):
            continue
        task = _dig(record, "acquisition", "acquisition_type")
        start = _dig(record, "acquisition", "acquisition_start_time")
        subject = _subject_id(record)
        if not (isinstance(task, str) and _DYNAMIC_TASK.match(task) and isinstance(start, str) and subject):
            continue
        try:
            started = datetime.fromisoformat(start)
        except ValueError:
            continue
        rig = _dig(record, "acquisition", "instrument_id")
        user = _experimenter_text(_dig(record, "acquisition", "experimenters"))
        sessions.append((subject, started, rig if isinstance(rig, str) else None, user, task))

    # Sessions the pipeline processed but whose assets are not in this corpus.
    extra_rng = _rng(seed, "foraging-extra")
    extra_count = round(len(sessions) * 0.2)
    for _ in range(extra_count):
        subject = str(400_000 + extra_rng.randrange(100_000))
        started = datetime(2023, 1, 9, 17, tzinfo=UTC) + timedelta(
            days=extra_rng.uniform(0, 900), seconds=extra_rng.randrange(36_000)
        )
        sessions.append(
            (
                subject,
                started,
                extra_rng.choice(("447-1-A", "1-4-D", "2-1-C")),
                extra_rng.choice(("Huy Nguyen", "huy.nguyen", None, "Kai")),
                extra_rng.choice(("Coupled Baiting", "Uncoupled Without Baiting", "Uncoupled Baiting")),
            )
        )

    sessions.sort(key=lambda s: (s[0], s[1]))
    counter: dict[str, int] = {}
    for subject, started, rig, user, task in sessions:
        rng = _rng(seed, "foraging", subject, started.isoformat())
        number = counter[subject] = counter.get(subject, 0) + 1
        curriculum = (
            _FORAGING_CURRICULA[int(subject) % len(_FORAGING_CURRICULA)] if subject.isdigit() else None
        )
        on_curriculum = curriculum is not None and rng.random() < 0.85
        total = rng.randint(80, 700)
        finished = rng.randint(int(total * 0.4), total)
        eff = rng.uniform(0.4, 0.95) if rng.random() < 0.97 else float("nan")
        suffix = int(started.strftime("%H%M%S")) if rng.random() < 0.9 else 0
        values = [
            rig,
            user,
            task,
            curriculum[0] if on_curriculum and curriculum else None,
            curriculum[1] if on_curriculum and curriculum else None,
            curriculum[2][min((number - 1) // 4, len(curriculum[2]) - 1)]
            if on_curriculum and curriculum
            else None,
            eff,
            eff + rng.uniform(-0.05, 0.05) if rng.random() < 0.6 else float("nan"),
            finished,
            finished / total,
            total,
            rng.uniform(-1, 1),
            rng.choice(("A", "B", "C", "D")),
            rng.randint(0, finished),
            rng.choice(("stay", "progress", "regress", None)),
        ]
        index = (subject, pd.Timestamp(started.date()), number, suffix)
        rows.append((index, values))

    keys = [r[0] for r in rows]
    index = pd.MultiIndex.from_arrays(
        [
            pd.Index([k[0] for k in keys], dtype=object),
            pd.DatetimeIndex([k[1] for k in keys], dtype="datetime64[ns]"),
            pd.Index([k[2] for k in keys], dtype="int64"),
            pd.Index([k[3] for k in keys], dtype="int64"),
        ],
        names=["subject_id", "session_date", "session", "nwb_suffix"],
    )
    columns = pd.MultiIndex.from_tuples(FORAGING_COLUMNS)
    # Plain object columns, as the pipeline's pickle has, rather than pandas 3's "str" dtype.
    frame = pd.DataFrame([r[1] for r in rows], index=index, columns=columns, dtype=object)
    for column in (
        ("session_stats", "finished_trials"),
        ("session_stats", "total_trials"),
        ("session_stats", "reward_trials"),
    ):
        frame[column] = frame[column].astype("int64")
    for column in (
        ("session_stats", "foraging_eff"),
        ("session_stats", "foraging_eff_random_seed"),
        ("session_stats", "finished_rate"),
        ("session_stats", "bias_naive"),
    ):
        frame[column] = frame[column].astype("float64")
    return frame


def foraging_sessions_pickle(records: Iterable[Record], *, seed: int) -> bytes:
    """``df_sessions.pkl`` for ``s3://aind-behavior-data/foraging_nwb_bonsai_processed/`` (see module doc)."""
    buffer = io.BytesIO()
    foraging_sessions_frame(records, seed=seed).to_pickle(buffer)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------
# Metadata upgrade status
# --------------------------------------------------------------------------------------
def metadata_upgrade_status(records: Iterable[Record], v1: Sequence[Record], *, seed: int) -> pd.DataFrame:
    """The upgrader's table: one row per v1 record, in ``v1`` order.

    Columns ``v1_id``, ``v2_id``, ``upgrader_version`` (``"0.6.2"`` in every row),
    ``status``, ``last_modified`` (the v1 record's ``last_modified`` text) and
    ``upgrade_datetime`` (a UTC ``datetime64``). A v1 record whose ``name`` is a v2
    record's name upgraded (``success``, ``v2_id`` set); the others ``failed``
    (~70 %) or were ``skipped``, with ``v2_id`` null.
    """
    v2_ids: dict[str, str] = {}
    for record in records:
        if (
            isinstance(record, dict)
            and isinstance(record.get("name"), str)
            and isinstance(record.get("_id"), str)
        ):
            v2_ids.setdefault(record["name"], record["_id"])
    run = datetime(2026, 5, 1, 3, 0, tzinfo=UTC)
    rows = []
    for i, record in enumerate(v1):
        rng = _rng(seed, "upgrade", record.get("_id"))
        v2_id = v2_ids.get(record.get("name")) if isinstance(record.get("name"), str) else None
        status = "success" if v2_id else ("failed" if rng.random() < 0.7 else "skipped")
        rows.append(
            {
                "v1_id": record.get("_id"),
                "v2_id": v2_id,
                "upgrader_version": UPGRADER_VERSION,
                "status": status,
                "last_modified": record.get("last_modified"),
                "upgrade_datetime": run + timedelta(seconds=i * 2 + rng.random()),
            }
        )
    frame = pd.DataFrame(
        rows, columns=["v1_id", "v2_id", "upgrader_version", "status", "last_modified", "upgrade_datetime"]
    )
    frame["upgrade_datetime"] = pd.to_datetime(frame["upgrade_datetime"], utc=True)
    return frame


def write_upgrade_status(s3_client: Any, frame: pd.DataFrame, *, bucket: str, folder: str) -> str:
    """Store ``frame`` as the custom table ``metadata_upgrade_status_prod`` of cache ``folder``.

    ``folder`` is a version folder such as ``bdc-v1.0``; returns the object key.
    """
    from biodata_cache import layout

    ensure_bucket(s3_client, bucket)
    key = layout.custom_key(folder, UPGRADE_STATUS_TABLE)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    s3_client.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
    return key


# --------------------------------------------------------------------------------------
# Upload
# --------------------------------------------------------------------------------------
def ensure_bucket(s3_client: Any, bucket: str) -> None:
    """Create ``bucket`` unless it exists (outside us-east-1 S3 needs a location constraint)."""
    from botocore.exceptions import ClientError

    try:
        s3_client.head_bucket(Bucket=bucket)
        return
    except ClientError:
        pass
    region = s3_client.meta.region_name
    if region and region != "us-east-1":
        s3_client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    else:
        s3_client.create_bucket(Bucket=bucket)


def write_sources(
    s3_client: Any, records: Sequence[Record], *, seed: int, workers: int = 16
) -> dict[str, int]:
    """Create ``aind-open-data`` and ``aind-behavior-data`` if missing and upload every source object.

    Returns the number of objects put per bucket. The metadata-upgrade table is not
    an S3 object of these buckets; store :func:`metadata_upgrade_status` with
    :func:`write_upgrade_status`.
    """
    ensure_bucket(s3_client, OPEN_DATA_BUCKET)
    ensure_bucket(s3_client, BEHAVIOR_BUCKET)
    uploads: list[tuple[str, str, bytes]] = []
    uploads += [(OPEN_DATA_BUCKET, k, v) for k, v in spim_source_objects(records, seed=seed).items()]
    uploads += [(OPEN_DATA_BUCKET, k, v) for k, v in trainer_state_objects(records, seed=seed).items()]
    uploads.append((BEHAVIOR_BUCKET, FORAGING_SESSIONS_KEY, foraging_sessions_pickle(records, seed=seed)))

    def put(item: tuple[str, str, bytes]) -> None:
        bucket, key, body = item
        content_type = "application/json" if key.endswith(".json") else "application/octet-stream"
        s3_client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)

    # boto3 clients are thread-safe; thousands of small PUTs are latency-bound.
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(put, uploads))
    counts: dict[str, int] = {OPEN_DATA_BUCKET: 0, BEHAVIOR_BUCKET: 0}
    for bucket, _, _ in uploads:
        counts[bucket] += 1
    return counts
