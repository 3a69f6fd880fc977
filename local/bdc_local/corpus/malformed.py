"""Damaged records: one damage kind each, for the tables' handling of bad input."""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

from bdc_local.corpus.builder import generate_corpus
from bdc_local.corpus.families import Record

_HUGE_LIMIT = 3  # at most this many 1 MB records, however many are asked for
_ODD_TEXT = (
    "lone \ud800 high, lone \udfff low, NUL \x00, ESC \x1b, BOM \ufeff, LS \u2028, "
    'emoji 🐭, \\n literal, "quoted"'
)


def _damage_kinds() -> list[tuple[str, Any]]:
    def drop_data_description(r: Record, rng: random.Random) -> None:
        del r["data_description"]

    def description_list(r: Record, rng: random.Random) -> None:
        r["data_description"] = [r["data_description"]]

    def description_string(r: Record, rng: random.Random) -> None:
        r["data_description"] = "see attached"

    def subject_string(r: Record, rng: random.Random) -> None:
        r["subject"] = str(rng.randint(600000, 800000))

    def subject_id_number(r: Record, rng: random.Random) -> None:
        if isinstance(r.get("subject"), dict):
            r["subject"]["subject_id"] = rng.randint(600000, 800000)
        r["data_description"]["subject_id"] = rng.randint(600000, 800000)

    def modalities_string(r: Record, rng: random.Random) -> None:
        r["data_description"]["modalities"] = "behavior"

    def modalities_strings_list(r: Record, rng: random.Random) -> None:
        r["data_description"]["modalities"] = ["behavior", None, 7, {"name": "no abbreviation"}]

    def modalities_number(r: Record, rng: random.Random) -> None:
        r["data_description"]["modalities"] = 3

    def source_data_string(r: Record, rng: random.Random) -> None:
        r["data_description"]["data_level"] = "derived"
        r["data_description"]["source_data"] = r["name"].split("_processed_")[0]

    def source_data_number(r: Record, rng: random.Random) -> None:
        r["data_description"]["data_level"] = "derived"
        r["data_description"]["source_data"] = 12

    def data_level_odd(r: Record, rng: random.Random) -> None:
        r["data_description"]["data_level"] = rng.choice(("Raw", "processed", None, 1))

    def metrics_null(r: Record, rng: random.Random) -> None:
        r["quality_control"] = {"metrics": None, "status": None}

    def metrics_number(r: Record, rng: random.Random) -> None:
        r["quality_control"] = {"metrics": 4, "status": ["Pass"]}

    def metric_entries_odd(r: Record, rng: random.Random) -> None:
        r["quality_control"] = {
            "metrics": [
                "just a string",
                None,
                {
                    "name": "no history",
                    "modality": "behavior",
                    "value": 2**70,
                    "status_history": None,
                    "tags": "Behavior:Licks",
                },
                {
                    "name": "empty history",
                    "modality": None,
                    "value": [1, [2, {"3": None}]],
                    "status_history": [],
                    "tags": {"Behavior": None},
                },
                {
                    "name": "history entry not an object",
                    "modality": {"abbreviation": 5},
                    "status_history": ["Pass"],
                    "stage": 3,
                },
            ],
            "status": {"Behavior:Licks": "Maybe", "behavior": None, "": "Pass"},
        }

    def qc_string(r: Record, rng: random.Random) -> None:
        r["quality_control"] = "Pending"

    def start_time_non_iso(r: Record, rng: random.Random) -> None:
        acquisition = r.setdefault("acquisition", {}) or {}
        r["acquisition"] = acquisition
        acquisition["acquisition_start_time"] = rng.choice(
            ("13/02/2026 6:31 PM", "2026-02-30T25:61:00Z", "yesterday", "1707849073", "")
        )
        acquisition["acquisition_end_time"] = 1707849073.5

    def start_time_number(r: Record, rng: random.Random) -> None:
        if isinstance(r.get("acquisition"), dict):
            r["acquisition"]["acquisition_start_time"] = 1707849073
        else:
            r["acquisition"] = {"acquisition_start_time": 1707849073}

    def birth_non_iso(r: Record, rng: random.Random) -> None:
        subject = r.get("subject") if isinstance(r.get("subject"), dict) else None
        if subject is None:
            subject = {"subject_id": "000000"}
            r["subject"] = subject
        subject["subject_details"] = {
            "date_of_birth": rng.choice(("July 29 2025", "2025/07/29", "29-07-2025", 20250729)),
            "genotype": ["wt/wt"],
            "year_of_birth": "nineteen",
        }

    def experimenters_string(r: Record, rng: random.Random) -> None:
        if isinstance(r.get("acquisition"), dict):
            r["acquisition"]["experimenters"] = "huy.nguyen; Olivia Unokesan"
        else:
            r["acquisition"] = {"experimenters": "huy.nguyen"}

    def experimenters_odd_entries(r: Record, rng: random.Random) -> None:
        if not isinstance(r.get("acquisition"), dict):
            r["acquisition"] = {}
        r["acquisition"]["experimenters"] = [
            None,
            42,
            ["nested", "list"],
            {"name": None},
            {"no_name": "x"},
            " , ,",
        ]
        r["data_description"]["investigators"] = ["Shawn Olsen", {"name": 3}, None]

    def processes_number(r: Record, rng: random.Random) -> None:
        r["processing"] = {"data_processes": 3, "pipelines": "transform_and_upload"}

    def processes_bad_dates(r: Record, rng: random.Random) -> None:
        r["processing"] = {
            "data_processes": [
                {"start_date_time": None, "end_date_time": "not a date"},
                {"start_date_time": "2025-13-45T00:00:00Z"},
                "Compression",
            ],
            "pipelines": [None, {"name": None}],
        }

    def code_ocean_string(r: Record, rng: random.Random) -> None:
        r["other_identifiers"] = {"Code Ocean": "3c417189-1c93-4a97-92cd-b6201171c1f4"}

    def other_identifiers_list(r: Record, rng: random.Random) -> None:
        r["other_identifiers"] = ["Code Ocean", "3c417189"]

    def fib_damage(r: Record, rng: random.Random) -> None:
        r["data_description"]["modalities"] = [{"abbreviation": "fib", "name": "Fiber photometry"}]
        r["procedures"] = {
            "subject_procedures": [
                {
                    "procedures": [
                        {"object_type": "Probe implant", "implanted_device": None},
                        {
                            "object_type": "Probe implant",
                            "implanted_device": {"name": "Fiber_0"},
                            "device_config": {"primary_targeted_structure": "PL"},
                        },
                    ]
                },
                "Surgery",
            ]
        }
        r["acquisition"] = {
            "data_streams": [
                None,
                {"connections": {"source_device": "Patch Cord 0"}, "configurations": None},
                {
                    "connections": [{"source_device": "Patch Cord 0", "target_device": "Fiber 0"}],
                    "configurations": [
                        {"object_type": "Patch cord config", "device_name": "Patch Cord 0", "channels": None}
                    ],
                },
            ]
        }

    def location_odd(r: Record, rng: random.Random) -> None:
        r["location"] = rng.choice((None, "", "aind-open-data/" + r["name"], "s3://aind-open-data/"))

    def odd_text(r: Record, rng: random.Random) -> None:
        r["data_description"]["project_name"] = "Cognitive flexibility " + _ODD_TEXT
        if isinstance(r.get("acquisition"), dict):
            r["acquisition"]["experimenters"] = ["Huy\u00a0Nguyen", "O'Brien, \u202eRTL", "\ud83d"]
            r["acquisition"]["instrument_id"] = "4A\x00"

    def deep_nesting(r: Record, rng: random.Random) -> None:
        value: Any = "bottom"
        for _ in range(100):
            value = {"v": value}
        r["quality_control"] = {
            "metrics": [
                {
                    "name": "deep",
                    "modality": {"abbreviation": "behavior"},
                    "value": value,
                    "status_history": [{"status": "Pass", "timestamp": "2025-01-01T00:00:00Z"}],
                    "tags": {"Deep": "deep"},
                }
            ],
            "status": {"Deep:deep": "Pass"},
        }

    def huge_string(r: Record, rng: random.Random) -> None:
        r["data_description"]["data_summary"] = "x" * (1 << 20)

    def sections_missing(r: Record, rng: random.Random) -> None:
        for key in (
            "subject",
            "acquisition",
            "processing",
            "quality_control",
            "procedures",
            "location",
            "other_identifiers",
            "_created",
        ):
            r.pop(key, None)

    def sections_null(r: Record, rng: random.Random) -> None:
        for key in ("subject", "acquisition", "processing", "quality_control", "data_description"):
            r[key] = None

    # Shapes outside aind-data-schema 2.x that older records do have and the tables read
    # (tables.md): the well-formed corpus validates, so they live here.
    def experimenters_objects(r: Record, rng: random.Random) -> None:
        if not isinstance(r.get("acquisition"), dict):
            r["acquisition"] = {}
        names = [e for e in r["acquisition"].get("experimenters") or [] if isinstance(e, str)]
        r["acquisition"]["experimenters"] = [{"name": e} for e in names or ["Huy Nguyen"]]

    def birth_legacy(r: Record, rng: random.Random) -> None:
        if not isinstance(r.get("subject"), dict):
            r["subject"] = {"subject_id": "700000"}
        details = r["subject"].get("subject_details")
        born = details.get("date_of_birth") if isinstance(details, dict) else None
        born = born if isinstance(born, str) else "2025-01-15"
        form = rng.choice(("year_only", "null", "in_acquisition", "no_details"))
        if form == "no_details":
            r["subject"]["subject_details"] = None
            return
        if not isinstance(details, dict):
            details = r["subject"]["subject_details"] = {"object_type": "Mouse subject"}
        details.pop("date_of_birth", None)
        if form == "year_only":
            details["year_of_birth"] = int(born[:4])
        elif form == "null":
            details["date_of_birth"] = None
        elif isinstance(r.get("acquisition"), dict):
            details["date_of_birth"] = None
            if not isinstance(r["acquisition"].get("subject_details"), dict):
                r["acquisition"]["subject_details"] = {}
            r["acquisition"]["subject_details"]["date_of_birth"] = born

    def fields_null(r: Record, rng: random.Random) -> None:
        description = r["data_description"]
        acquisition = r.get("acquisition") if isinstance(r.get("acquisition"), dict) else None
        details = (
            (r.get("subject") or {}).get("subject_details") if isinstance(r.get("subject"), dict) else None
        )
        form = rng.choice(("genotype", "acquisition_type", "instrument_id", "project_name", "modalities"))
        if form == "genotype" and isinstance(details, dict):
            if rng.random() < 0.5:
                details["genotype"] = None
            else:
                details.pop("genotype", None)
        elif form == "acquisition_type" and acquisition is not None:
            acquisition["acquisition_type"] = None
        elif form == "instrument_id" and acquisition is not None:
            acquisition["instrument_id"] = rng.choice((None, ""))
        elif form == "modalities":
            if rng.random() < 0.5:
                description.pop("modalities", None)
            elif isinstance(description.get("modalities"), list):
                description["modalities"].append({"name": "Unknown modality"})  # no abbreviation
        else:
            description["project_name"] = None

    return [
        (f.__name__, f)
        for f in (
            drop_data_description,
            description_list,
            description_string,
            subject_string,
            subject_id_number,
            modalities_string,
            modalities_strings_list,
            modalities_number,
            source_data_string,
            source_data_number,
            data_level_odd,
            metrics_null,
            metrics_number,
            metric_entries_odd,
            qc_string,
            start_time_non_iso,
            start_time_number,
            birth_non_iso,
            experimenters_string,
            experimenters_odd_entries,
            processes_number,
            processes_bad_dates,
            code_ocean_string,
            other_identifiers_list,
            fib_damage,
            location_odd,
            odd_text,
            deep_nesting,
            huge_string,
            sections_missing,
            sections_null,
            experimenters_objects,
            birth_legacy,
            fields_null,
        )
    ]


MALFORMED_KINDS: tuple[str, ...] = tuple(name for name, _ in _damage_kinds())


def malformed_records(n: int, *, seed: int) -> list[Record]:
    """``n`` records with realistic damage, one damage kind each (cycling through ``MALFORMED_KINDS``).

    Each is a valid corpus record first, then damaged; it keeps a string ``_id``, a
    ``name`` and an ISO ``_last_modified``, and is JSON-serialisable (with the default
    ``ensure_ascii=True`` where lone surrogates are present). The damage kind is named
    in an extra top-level field ``_damage`` (not a DocDB field; tables never read it).
    At most three records carry a 1 MB string.
    """
    if n <= 0:
        return []
    rng = random.Random(f"malformed:{seed}")
    base = generate_corpus(max(n, 40), seed=rng.randrange(1 << 30) + 1_000_003)
    kinds = _damage_kinds()
    huge = 0
    damaged: list[Record] = []
    for i in range(n):
        record = json.loads(json.dumps(base[i % len(base)]))
        record["_id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if i >= len(base):
            record["name"] = f"{record['name']}_{i}"
        if not isinstance(record.get("data_description"), dict):
            record["data_description"] = {"name": record["name"]}
        name, damage = kinds[i % len(kinds)]
        if name == "huge_string":
            huge += 1
            if huge > _HUGE_LIMIT:
                name, damage = kinds[0]
        damage(record, rng)
        record["_damage"] = name
        damaged.append(record)
    return damaged

