"""Schema-v1 records, for the metadata-upgrade table."""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bdc_local.corpus.families import _SCHEMA_URL, OPEN_DATA_BUCKET, PROJECT_NAMES, Record
from bdc_local.corpus.templates import _iso_ms_z, _modality, _stamp


def v1_records(v2_records: Sequence[Record], n: int, *, seed: int) -> list[Record]:
    """``n`` schema-v1 records with fresh ``_id``s (never ids of ``v2_records``).

    About 70 % mirror a v2 record (same ``name``, subject, project and level: the
    upgrader converted them); the rest exist only in v1 (old assets the upgrader
    failed on or skipped). :func:`bdc_local.sources.metadata_upgrade_status`
    pairs them with v2 ids by ``name``.
    """
    rng = random.Random(f"v1:{seed}")
    eligible = [
        r
        for r in v2_records
        if isinstance(r.get("data_description"), dict) and isinstance(r.get("name"), str)
    ]
    mirrored = min(len(eligible), round(n * 0.7))
    picks = sorted(rng.sample(range(len(eligible)), mirrored))
    v2_ids = {r.get("_id") for r in v2_records}
    records: list[Record] = []

    def fresh_id() -> str:
        while True:
            candidate = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            if candidate not in v2_ids:
                return candidate

    for i in picks:
        source = eligible[i]
        description = source["data_description"]
        subject = source.get("subject") if isinstance(source.get("subject"), dict) else {}
        details = subject.get("subject_details") if isinstance(subject.get("subject_details"), dict) else {}
        modalities = description.get("modalities") if isinstance(description.get("modalities"), list) else []
        records.append(
            _v1_record(
                fresh_id(),
                source["name"],
                description.get("data_level"),
                description.get("project_name"),
                subject.get("subject_id"),
                details.get("genotype"),
                details.get("date_of_birth"),
                [m for m in modalities if isinstance(m, dict)],
                source.get("_created"),
                rng,
            )
        )
    for _ in range(n - mirrored):
        subject_id = str(rng.randint(400_000, 549_999))
        when = datetime(2020, 6, 1, 17, tzinfo=UTC) + timedelta(days=rng.uniform(0, 700))
        prefix, modality = rng.choice(
            (
                ("ecephys_", "ecephys"),
                ("behavior_", "behavior"),
                ("single-plane-ophys_", "pophys"),
                ("SmartSPIM_", "SPIM"),
            )
        )
        name = f"{prefix}{subject_id}_{_stamp(when)}"
        level = "raw"
        if rng.random() < 0.4:
            name += f"_processed_{_stamp(when + timedelta(days=rng.uniform(1, 40)))}"
            level = "derived"
        project = rng.choice(PROJECT_NAMES) if rng.random() < 0.9 else None
        records.append(
            _v1_record(
                fresh_id(),
                name,
                level,
                project,
                subject_id,
                None,
                (when - timedelta(days=120)).date().isoformat(),
                [_modality(modality)],
                _iso_ms_z(when),
                rng,
            )
        )
    rng.shuffle(records)
    return records


def _v1_record(
    record_id: str,
    name: str,
    level: Any,
    project: Any,
    subject_id: Any,
    genotype: Any,
    dob: Any,
    modalities: list[Record],
    created: Any,
    rng: random.Random,
) -> Record:
    created_text = created if isinstance(created, str) else "2024-01-01T00:00:00.000Z"
    return {
        "_id": record_id,
        "name": name,
        "location": f"s3://{OPEN_DATA_BUCKET}/{name}",
        "created": created_text,
        "last_modified": created_text,
        "schema_version": "1.1.1",
        "describedBy": _SCHEMA_URL.format("metadata"),
        "metadata_status": rng.choice(("Valid", "Invalid", "Missing")),
        "external_links": {"Code Ocean": [str(uuid.UUID(int=rng.getrandbits(128), version=4))]},
        "data_description": {
            "name": name,
            "subject_id": subject_id,
            "data_level": level,
            "project_name": project,
            "modality": [{"name": m.get("name"), "abbreviation": m.get("abbreviation")} for m in modalities],
            "platform": {"name": "Behavior platform", "abbreviation": "behavior"},
            "creation_time": created_text,
            "institution": {"name": "Allen Institute for Neural Dynamics", "abbreviation": "AIND"},
            "investigators": [{"name": "Shawn Olsen", "abbreviation": None}],
            "funding_source": [],
            "schema_version": "1.0.0",
        },
        "subject": {
            "subject_id": subject_id,
            "genotype": genotype,
            "date_of_birth": dob,
            "sex": rng.choice(("Male", "Female")),
            "species": {"name": "Mus musculus"},
            "schema_version": "1.0.0",
        },
        "procedures": None,
        "session": None,
        "rig": None,
        "processing": None,
        "acquisition": None,
        "instrument": None,
        "quality_control": None,
    }

