"""Assembling the v2 records: subjects, sessions, raw and derived assets, in acquisition order.

:func:`iter_corpus` and :func:`generate_corpus` are the entry points; the package docstring
(``bdc_local.corpus``) describes what a corpus contains.
"""

from __future__ import annotations

import gc
import heapq
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bdc_local.corpus.families import (
    _FIXTURE_SUBJECTS,
    _INTENDED_MEASUREMENTS,
    _SCHEMA_URL,
    _STRUCTURES,
    ASSETS_PER_SUBJECT,
    CODEOCEAN_BUCKET,
    EARLIEST_SESSION,
    FAMILIES,
    FULL_SIZE_PROBABILITY,
    LATEST_MODIFIED,
    LATEST_SESSION,
    OPEN_DATA_BUCKET,
    PRIVATE_BUCKET,
    PROJECT_INVESTIGATORS,
    Family,
    Record,
)
from bdc_local.corpus.qc import _QualityControl
from bdc_local.corpus.templates import (
    _clone,
    _dotted,
    _iso_ms_z,
    _iso_z,
    _modality,
    _person,
    _stamp,
    _TimeStyle,
)


@dataclass
class _Subject:
    subject_id: str
    family: Family
    project: str
    experimenters: tuple[str, ...]
    instrument: str
    time_style: _TimeStyle
    dob: date | None
    dob_mode: str  # "date" (a mouse with a birth date) or "none" (a calibration object)
    subject_section: Record | None
    procedures: Record | None
    institution: Record
    fibers: list[tuple[str, str | None]] = field(default_factory=list)
    budget: int = 0  # records still to generate
    start: datetime = EARLIEST_SESSION
    next_start: datetime = EARLIEST_SESSION
    raw_names: list[str] = field(default_factory=list)


@dataclass
class _Session:
    subject: _Subject
    raw_name: str
    start: datetime
    end: datetime
    acquisition_type: str | None
    instrument: str | None
    experimenters: list[Any]
    raw_modalities: tuple[str, ...]
    acquisition: Record | None
    uploaded: datetime | None = None  # when the raw asset reached DocDB; processing starts later



# --------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------
class _CorpusBuilder(_QualityControl):
    """Builds subjects, sessions and records from one seeded RNG (so output is reproducible)."""

    # -- subjects ----------------------------------------------------------------------
    def subjects(self, n: int, n_subjects: int) -> list[_Subject]:
        rng = self.rng
        family_weights = [(f, f.share / f.assets_per_subject) for f in FAMILIES]
        id_space = range(550_000, 550_000 + max(300_000, 3 * n_subjects))
        # Never reuse a fixture's subject: tests mix the real records into corpora.
        ids = sorted(i for i in rng.sample(id_space, n_subjects + 3) if i not in _FIXTURE_SUBJECTS)[
            :n_subjects
        ]
        subjects = [self.subject(str(sid), self.weighted(family_weights)) for sid in ids]
        # Heavy-tailed session counts: some mice train for months, most brains are imaged once.
        weights = [s.family.assets_per_subject * rng.lognormvariate(0, 0.5) for s in subjects]
        for subject, count in zip(subjects, _allocate(n, weights), strict=True):
            subject.budget = count
            self.place_in_time(subject)
        return subjects

    def subject(self, subject_id: str, family: Family) -> _Subject:
        rng = self.rng
        project = self.weighted([(p, 3.0 if i == 0 else 1.0) for i, p in enumerate(family.projects)])
        people = list(family.experimenters)
        # The subject's usual trainer first, then one or two helpers.
        usual = rng.choice(people)
        helpers = rng.sample([p for p in people if p != usual], k=min(len(people) - 1, rng.randint(0, 2)))
        is_spim = family.key in ("smartspim", "exaspim")
        offset = self.chance(family.offset_times)
        style = _TimeStyle(offset=offset, sep=" " if family.key == "pophys" else "T")
        # In the schema a mouse has a date of birth; a subject without one is a calibration object.
        dob_mode = self.weighted([("date", 0.97), ("none", 0.03)])
        subject = _Subject(
            subject_id=subject_id,
            family=family,
            project=project,
            experimenters=(usual, *helpers),
            instrument=rng.choice(family.instruments),
            time_style=style,
            dob=None,
            dob_mode=dob_mode,
            subject_section=None,
            procedures=None,
            institution=(
                {
                    "abbreviation": "AIND",
                    "name": "Allen Institute for Neural Dynamics",
                    "registry": "Research Organization Registry (ROR)",
                    "registry_identifier": "04szwah67",
                }
                if self.chance(0.9 if is_spim else 0.97)
                else {
                    "abbreviation": "AIBS",
                    "name": "Allen Institute for Brain Science",
                    "registry": "Research Organization Registry (ROR)",
                    "registry_identifier": "00dcv1019",
                }
            ),
        )
        if family.key in ("fib",) or (family.key == "misc" and self.chance(0.2)):
            subject.fibers = self.fibers()
        return subject

    def place_in_time(self, subject: _Subject) -> None:
        rng = self.rng
        family = subject.family
        mean_per_session = 1 + sum(i * w for i, w in enumerate(family.derived_counts)) / sum(
            family.derived_counts
        )
        sessions = max(1.0, subject.budget / mean_per_session)
        # Plan with the longest gap so that a subject's last session still falls before LATEST_SESSION.
        span_days = sessions * family.session_gap_days[1] + 30
        latest_start = LATEST_SESSION - timedelta(days=span_days)
        window = max(0.0, (latest_start - EARLIEST_SESSION).total_seconds())
        day = EARLIEST_SESSION + timedelta(seconds=rng.uniform(0, window))
        # Sessions start in lab hours (16:00-02:00 UTC is 08:00-18:00 Pacific).
        subject.start = day.replace(hour=16, minute=0, second=0, microsecond=0) + timedelta(
            minutes=rng.uniform(0, 600), microseconds=rng.randrange(1_000_000)
        )
        is_spim = family.key in ("smartspim", "exaspim")
        age_days = rng.uniform(80, 300) if is_spim else rng.uniform(55, 150)
        subject.dob = (subject.start - timedelta(days=age_days)).date()
        subject.next_start = subject.start
        subject.subject_section = self.subject_section(subject)
        subject.procedures = self.procedures(subject)

    def fibers(self) -> list[tuple[str, str | None]]:
        count = self.weighted([(1, 0.2), (2, 0.4), (3, 0.15), (4, 0.25)])
        fibers = []
        for i in range(count):
            acronym = self.weighted(
                [(a, 1.0) for a in _STRUCTURES if a != "root"] + [("root", 0.4), (None, 0.3)]
            )
            fibers.append((f"Fiber_{i}", acronym))
        return fibers

    def subject_section(self, subject: _Subject) -> Record:
        details: Record
        if subject.dob_mode == "none":
            # No birth date and no genotype: what the schema allows for a subject without one.
            details = {
                "object_type": "Calibration object",
                "empty": False,
                "description": "Fluorescent bead phantom",
                "objects": None,
            }
        else:
            details = _clone(self.t.subject_details)
            details["sex"] = self.rng.choice(("Male", "Female"))
            if self.chance(0.25):
                details["housing"]["cage_id"] = str(self.rng.randint(1_000_000, 9_999_999))
            else:
                details["housing"] = None
            details["genotype"] = self.rng.choice(subject.family.genotypes)
            assert subject.dob is not None
            details["date_of_birth"] = subject.dob.isoformat()
        return {
            "describedBy": _SCHEMA_URL.format("subject"),
            "notes": None,
            "object_type": "Subject",
            "schema_version": "2.0.13",
            "subject_details": details,
            "subject_id": subject.subject_id,
        }

    def procedures(self, subject: _Subject) -> Record:
        family = subject.family
        if family.key == "pophys":
            procedures = _clone(self.t.pophys_procedures)
        elif subject.fibers:
            procedures = _clone(self.t.vr_procedures)
            surgery = _clone(self.t.fib_surgery)
            for name, acronym in subject.fibers:
                surgery["procedures"].append(self.implant(name, acronym))
            procedures["subject_procedures"] = [surgery]
        elif family.key in ("smartspim", "exaspim"):
            procedures = _clone(self.t.vr_procedures)
            procedures["subject_procedures"] = procedures["subject_procedures"][:1]
            assert subject.dob is not None
            first_day = subject.dob + timedelta(days=self.rng.randint(60, 90))
            procedures["specimen_procedures"] = [
                {
                    "object_type": "Specimen procedure",
                    "procedure_type": step,
                    "specimen_id": subject.subject_id,
                    "start_date": (first_day + timedelta(days=7 * i)).isoformat(),
                    "end_date": (first_day + timedelta(days=7 * i + 6)).isoformat(),
                    "experimenters": [],
                    "protocol_id": [],
                }
                for i, step in enumerate(("Fixation", "Delipidation", "Refractive index matching"))
            ]
        else:
            procedures = _clone(self.t.vr_procedures)
            if family.key in ("ecephys", "slap2"):
                procedures["subject_procedures"] = procedures["subject_procedures"][
                    :1
                ]  # no water restriction
        procedures["subject_id"] = subject.subject_id
        self.date_procedures(procedures, subject)
        return procedures

    def date_procedures(self, procedures: Record, subject: _Subject) -> None:
        """Move the template's surgery dates into this subject's life, and slim the geometry."""
        assert subject.dob is not None
        surgery_day = subject.dob + timedelta(days=self.rng.randint(35, 50))
        procedures["coordinate_system"] = None
        for surgery in procedures.get("subject_procedures") or []:
            if surgery.get("object_type") == "Water restriction":
                surgery.setdefault("ethics_review_id", "2115")  # required by the schema
                surgery["start_date"] = (
                    subject.start.date() - timedelta(days=self.rng.randint(5, 20))
                ).isoformat()
                surgery["baseline_weight"] = round(self.rng.uniform(18, 28), 2)
                continue
            kinds = {p.get("object_type") for p in surgery.get("procedures") or []}
            when = subject.start.date() + timedelta(days=200) if "Perfusion" in kinds else surgery_day
            surgery["start_date"] = when.isoformat()
            surgery["coordinate_system"] = None
            surgery["measured_coordinates"] = None
            surgery["workstation_id"] = None
            if self.chance(0.7):
                surgery["anaesthesia"] = None

    def implant(self, name: str, acronym: str | None) -> Record:
        # The schema requires a targeted structure: an implant without a known target says root.
        acronym = acronym or "root"
        sid, full = _STRUCTURES[acronym]
        structure = {"acronym": acronym, "atlas": "CCFv3", "id": sid, "name": full}
        return {
            "device_config": {
                "device_name": name,
                "object_type": "Probe config",
                "other_targeted_structure": [],
                "primary_targeted_structure": structure,
                "local_coordinate_system": _PROBE_TIP,
                "transform": [
                    {
                        "object_type": "Translation",
                        "translation": [round(self.rng.uniform(-3, 3), 2), 0.0, 0.0, 4.2],
                    }
                ],
            },
            "implanted_device": {
                "core_diameter": 200,
                "core_diameter_unit": "micrometer",
                "ferrule_material": "Ceramic",
                "manufacturer": {"abbreviation": None, "name": "Neurophotometrics"},
                "name": name,
                "numerical_aperture": 0.37,
                "object_type": "Fiber probe",
                "total_length": "2.0",
            },
            "object_type": "Probe implant",
            "protocol_id": None,
        }

    # -- sessions and records ----------------------------------------------------------
    def records(self, n: int, n_subjects: int) -> Iterator[Record]:
        """All sessions of all subjects in order of acquisition start (as the lab recorded them).

        A heap of each subject's next session keeps this streaming: memory holds the
        subjects, never the records.
        """
        subjects = self.subjects(n, n_subjects)
        heap = [(s.next_start, i) for i, s in enumerate(subjects) if s.budget > 0]
        heapq.heapify(heap)
        while heap:
            _, i = heapq.heappop(heap)
            subject = subjects[i]
            yield from self.session_records(subject)
            if subject.budget > 0:
                heapq.heappush(heap, (subject.next_start, i))

    def session_records(self, subject: _Subject) -> Iterator[Record]:
        """One session: the raw asset, then its derived assets (at most the subject's budget)."""
        family = subject.family
        session = self.session(subject, subject.next_start)
        yield self.raw_record(session)
        subject.budget -= 1
        k = min(subject.budget, self.weighted(list(enumerate(family.derived_counts))))
        assert session.uploaded is not None
        processed_at = self.before_horizon(session.uploaded, *family.processing_delay_hours)
        for j in range(k):
            yield self.derived_record(session, processed_at, j)
            subject.budget -= 1
            processed_at = self.before_horizon(processed_at, 2, 24 * 90)
        gap_days = self.rng.uniform(*family.session_gap_days)
        subject.next_start = session.start + timedelta(days=gap_days, minutes=self.rng.uniform(-90, 90))

    def session(self, subject: _Subject, start: datetime) -> _Session:
        family = subject.family
        rng = self.rng
        end = start + timedelta(
            minutes=rng.uniform(*family.duration_minutes), microseconds=rng.randrange(10**6)
        )
        clock = subject.time_style.name_clock(start)
        raw_name = f"{family.name_prefix}{subject.subject_id}_{_stamp(clock)}"
        subject.raw_names.append(raw_name)
        # Always a non-empty id: the schema requires one of an acquisition with data streams
        # (a null or "" id is in the malformed set).
        instrument = subject.instrument if self.chance(0.85) else rng.choice(family.instruments)
        session = _Session(
            subject=subject,
            raw_name=raw_name,
            start=start,
            end=end,
            acquisition_type=self.weighted(family.acquisition_types) or "",
            instrument=instrument,
            experimenters=self.experimenters(subject),
            raw_modalities=self.weighted(family.raw_modalities),
            acquisition=None,
        )
        if not self.chance(0.015):
            session.acquisition = self.acquisition(session)
        return session

    def experimenters(self, subject: _Subject) -> list[Any]:
        rng = self.rng
        people = subject.experimenters
        if subject.family.key == "pophys" and self.chance(0.05):
            return ["unknown user"]
        main = people[0] if (len(people) == 1 or self.chance(0.65)) else rng.choice(people[1:])
        entries = [self.name_variant(main, people)]
        if self.chance(0.1):
            other = rng.choice(subject.family.experimenters)
            if other != main:
                entries.append(self.name_variant(other, people))
        return entries

    def name_variant(self, name: str, people: Sequence[str]) -> Any:
        form = self.weighted(
            [
                ("dotted", 0.3),
                ("full", 0.35),
                ("first", 0.1),
                ("pair", 0.08),
                ("upper", 0.1),
                ("lower", 0.07),
            ]
        )
        if form == "dotted":
            return _dotted(name)
        if form == "first":
            return name.split()[0]
        if form == "lower":
            return name.lower()
        if form == "upper":
            return name.upper()
        if form == "pair":
            others = [p for p in people if p != name] or [self.rng.choice(FAMILIES[0].experimenters)]
            return f"{name}, {self.rng.choice(others)}"
        return name

    def acquisition(self, session: _Session) -> Record:
        subject = session.subject
        family = subject.family
        fmt = subject.time_style.fmt
        streams = self.data_streams(session)
        is_spim = family.key in ("smartspim", "exaspim")
        details: Record | None = None
        if not is_spim:
            details = {
                "anaesthesia": None,
                "animal_weight_post": None,
                "animal_weight_prior": None,
                "mouse_platform_name": self.rng.choice(("wheel", "disc", "tube")),
                "object_type": "Acquisition subject details",
                "reward_consumed_total": (
                    f"{self.rng.uniform(0.2, 1.6):.3g}" if "behavior" in session.raw_modalities else None
                ),
                "reward_consumed_unit": "milliliter",
                "weight_unit": "gram",
            }
        return {
            "acquisition_end_time": fmt(session.end),
            "acquisition_start_time": fmt(session.start),
            "acquisition_type": session.acquisition_type,
            "calibrations": [],
            "coordinate_system": None,
            "data_streams": streams,
            "describedBy": _SCHEMA_URL.format("acquisition"),
            "ethics_review_id": None if is_spim else ["2414"],
            "experimenters": session.experimenters,
            "instrument_id": session.instrument,
            "maintenance": [],
            "manipulations": [],
            "notes": None,
            "object_type": "Acquisition",
            "protocol_id": None,
            "schema_version": "2.2.3",
            "specimen_id": subject.subject_id if is_spim else None,
            "stimulus_epochs": [],
            "subject_details": details,
            "subject_id": subject.subject_id,
        }

    def data_streams(self, session: _Session) -> list[Record]:
        fmt = session.subject.time_style.fmt
        mods = list(session.raw_modalities)
        streams = []
        if "fib" in mods and session.subject.fibers:
            streams.append(self.fib_stream(session))
            mods.remove("fib")
        if mods:
            streams.append(
                {
                    "active_devices": [f"{m}_device" for m in mods],
                    "code": None,
                    "configurations": _stream_configurations(mods),
                    "connections": [],
                    "modalities": [_modality(m) for m in mods],
                    "notes": None,
                    "object_type": "Data stream",
                    "stream_end_time": fmt(session.end),
                    "stream_start_time": fmt(session.start),
                }
            )
        return streams

    def fib_stream(self, session: _Session) -> Record:
        """A fiber-photometry stream shaped like fib_derived.json: patch cords connect to fibers."""
        fmt = session.subject.time_style.fmt
        rng = self.rng
        connections = []
        configurations: list[Record] = [
            {
                "device_name": led,
                "object_type": "Light emitting diode config",
                "power": 20,
                "power_unit": "percent",
            }
            for led in ("415nm LED", "470nm LED", "560nm LED")
        ]
        devices = ["415nm LED", "470nm LED", "560nm LED", "Green CMOS", "Red CMOS"]
        for i, (fiber, _) in enumerate(session.subject.fibers):
            cord = f"Patch Cord {i}"
            # The connection names the fiber with a space ("Fiber 0"); the implant uses "Fiber_0".
            target = fiber.replace("_", " ")
            if self.chance(0.02):
                target = f"Fiber {i + 4}"  # a cord plugged into nothing that was implanted
            devices += [cord, target]
            connections.append(
                {
                    "object_type": "Connection",
                    "send_and_receive": False,
                    "source_device": cord,
                    "source_port": None,
                    "target_device": target,
                    "target_port": None,
                }
            )
            green = rng.choice(_INTENDED_MEASUREMENTS[:5])
            red = rng.choice(_INTENDED_MEASUREMENTS)
            entries = []
            for suffix, measurement in (("Green", green), ("Isosbestic", "control"), ("Red", red)):
                entry: Record = {
                    "channel_name": f"{fiber}_{suffix}",
                    "intended_measurement": measurement,
                    "object_type": "Channel",
                    "detector": _detector("Red CMOS" if suffix == "Red" else "Green CMOS"),
                }
                if measurement is None and self.chance(0.5):
                    del entry["intended_measurement"]  # optional in the schema
                entries.append(entry)
            configurations.append(
                {"channels": entries, "device_name": cord, "object_type": "Patch cord config"}
            )
        return {
            "active_devices": devices,
            "code": None,
            "configurations": configurations,
            "connections": connections,
            "modalities": [_modality("fib")],
            "notes": None,
            "object_type": "Data stream",
            "stream_end_time": fmt(session.end),
            "stream_start_time": fmt(session.start),
        }

    def location(self, name: str, code_ocean_id: str, codeocean_share: float) -> str:
        if self.chance(codeocean_share):
            return f"s3://{CODEOCEAN_BUCKET}/{code_ocean_id}"
        return f"s3://{OPEN_DATA_BUCKET}/{name}"

    def envelope(
        self, name: str, location: str, code_ocean: list[str] | None, created: datetime, schema_version: str
    ) -> Record:
        other: Record | None = {"Code Ocean": code_ocean} if code_ocean is not None else None
        return {
            "_id": self.uuid(),
            "object_type": "Metadata",
            "describedBy": _SCHEMA_URL.format("metadata"),
            "schema_version": schema_version,
            "name": name,
            "location": location,
            "other_identifiers": other,
            "subject": None,
            "data_description": None,
            "procedures": None,
            "instrument": None,
            "processing": None,
            "acquisition": None,
            "quality_control": None,
            "model": None,
            "_created": _iso_ms_z(created),
            "_last_modified": _iso_ms_z(created),
        }

    def data_description(
        self,
        session: _Session,
        name: str,
        level: str,
        created: datetime,
        modalities: Sequence[str],
        source_data: list[str] | None,
    ) -> Record:
        subject = session.subject
        project = subject.project
        investigators = PROJECT_INVESTIGATORS.get(subject.project, ())
        people = [_person(p) for p in investigators]
        if people and self.chance(0.03):
            people[0]["name"] = _dotted(people[0]["name"])  # the messy forms reach investigators too
        mods: list[Record] | None = [_modality(m) for m in modalities]
        if self.rng.random() < 0.005:
            mods = []
        section: Record = {
            "creation_time": _iso_z(created),
            "data_level": level,
            "data_summary": None,
            "describedBy": _SCHEMA_URL.format("data_description"),
            "funding_source": [
                {
                    "fundee": [],
                    "funder": {
                        "abbreviation": "AI",
                        "name": "Allen Institute",
                        "registry": "Research Organization Registry (ROR)",
                        "registry_identifier": "03cpe7c52",
                    },
                    "grant_number": None,
                    "object_type": "Funding",
                }
            ],
            "group": None,
            "institution": dict(subject.institution),
            "investigators": people,
            "license": "CC-BY-4.0",
            "modalities": mods,
            "name": name,
            "object_type": "Data description",
            "project_name": project,
            "restrictions": None,
            "schema_version": "2.3.0",
            "source_data": source_data,
            "subject_id": subject.subject_id,
            "tags": None,
        }
        return section

    def fill_common(self, record: Record, session: _Session, full: bool) -> None:
        subject = session.subject
        if subject.subject_section is not None and not self.chance(0.003):
            record["subject"] = _clone(subject.subject_section)
        if subject.procedures is not None and not self.chance(0.03):
            record["procedures"] = _clone(subject.procedures)
        if session.acquisition is not None:
            acquisition = _clone(session.acquisition)
            if full and subject.family.fixture:
                kind = subject.family.qc_kind
                acquisition["calibrations"] = _clone(self.t.calibrations_full[kind])
                acquisition["stimulus_epochs"] = _clone(self.t.stimulus_epochs_full[kind])
            record["acquisition"] = acquisition
        if not self.chance(0.08):
            record["instrument"] = self.instrument(session, full)

    def instrument(self, session: _Session, full: bool) -> Record:
        family = session.subject.family
        if full and family.fixture:
            instrument = _clone(self.t.instrument_full[family.qc_kind])
            instrument["instrument_id"] = session.instrument
            return instrument
        # A stub: the real section is 10-50 KB of device descriptions no table reads. The
        # schema's required fields are there; listing no modalities spares it the devices
        # each modality would require.
        return {
            "instrument_id": session.instrument,
            "modalities": [],
            "coordinate_system": _PROBE_TIP,  # the schema's global coordinate system, kept small
            "components": [],
            "modification_date": (session.start - timedelta(days=self.rng.randint(1, 400)))
            .date()
            .isoformat(),
            "object_type": "Instrument",
            "schema_version": "2.0.36",
        }

    def raw_record(self, session: _Session) -> Record:
        subject = session.subject
        family = subject.family
        upload_start = self.between(session.end, 0.3, 8)
        upload_end = self.between(upload_start, 0.1, 10)
        created = upload_end + timedelta(minutes=self.rng.uniform(1, 10))
        session.uploaded = created
        full = family.fixture is not None and self.chance(FULL_SIZE_PROBABILITY)
        name = session.raw_name
        code_ocean = [self.uuid()] if self.chance(0.85) else None
        bucket = (
            PRIVATE_BUCKET
            if self.chance(0.03) and family.key not in ("smartspim", "exaspim")
            else OPEN_DATA_BUCKET
        )
        record = self.envelope(name, f"s3://{bucket}/{name}", code_ocean, created, "2.2.2")
        record["data_description"] = self.data_description(
            session, name, "raw", upload_start, session.raw_modalities, None
        )
        self.fill_common(record, session, full)
        if not self.chance(0.02):
            record["processing"] = self.raw_processing(session, upload_start, upload_end)
        latest = created
        if self.chance(0.25):
            record["quality_control"], latest = self.quality_control(
                session, session.raw_modalities, self.between(session.end, 0.5, 6), "Raw data", full
            )
        self.touch(record, created, latest)
        return record

    def raw_processing(self, session: _Session, start: datetime, end: datetime) -> Record:
        processing = _clone(self.t.raw_processing)
        copy_step, compress_step = processing["data_processes"]
        copy_step["start_date_time"] = copy_step["end_date_time"] = _iso_z(start)
        copy_step["code"]["parameters"] = {"input_source": f"//allen/aind/stage/{session.raw_name}"}
        compress_step["start_date_time"] = _iso_z(start)
        compress_step["end_date_time"] = _iso_z(end)
        compress_step["code"]["parameters"] = None
        compress_step["code"]["url"] = ""
        for pipeline in processing["pipelines"]:
            for key in ("language", "language_version", "parameters"):
                pipeline.pop(key, None)
        if "behavior-videos" not in session.raw_modalities:
            processing["data_processes"] = [copy_step]
        return processing

    def derived_record(self, session: _Session, processed_at: datetime, index: int) -> Record:
        subject = session.subject
        family = subject.family
        rng = self.rng
        if index == 0 and self.chance(0.85):
            pipeline, suffix = family.pipelines[0]
        else:
            pipeline, suffix = rng.choice(family.pipelines)
        if family.key == "smartspim" and suffix == "_stitched_" and self.chance(0.03):
            suffix = "_processed_"  # a stitched product under the generic suffix: not "stitched" by name
        name = f"{session.raw_name}{suffix}{_stamp(processed_at)}"
        created = processed_at + timedelta(minutes=rng.uniform(2, 30))
        full = family.fixture is not None and self.chance(FULL_SIZE_PROBABILITY)
        code_ocean_id = self.uuid()
        location = self.location(name, code_ocean_id, family.codeocean_share)
        code_ocean: list[str] | None = [code_ocean_id] if self.chance(0.95) else None
        if code_ocean is not None and self.chance(0.02):
            code_ocean.append(self.uuid())
        record = self.envelope(name, location, code_ocean, created, "2.2.2")
        roll = rng.random()
        source: list[str] | None = [session.raw_name]
        if roll < 0.005:
            source = None
        elif roll < 0.008:
            source = []
        elif roll < 0.02 and family.key in ("pophys", "ecephys") and len(subject.raw_names) > 1:
            source = [session.raw_name, subject.raw_names[-2]]  # a multi-session product
        modalities = self.weighted(family.derived_modalities)
        record["data_description"] = self.data_description(
            session, name, "derived", processed_at, modalities, source
        )
        self.fill_common(record, session, full)
        if not self.chance(0.02):
            record["processing"] = self.derived_processing(session, pipeline, processed_at)
        latest = created
        if self.chance(0.7):
            qc_start = processed_at - timedelta(minutes=rng.uniform(3, 20))
            record["quality_control"], latest = self.quality_control(
                session, modalities, qc_start, "Processing", full
            )
        self.touch(record, created, latest)
        return record

    def derived_processing(self, session: _Session, pipeline: str, processed_at: datetime) -> Record:
        family = session.subject.family
        rng = self.rng
        steps: list[Record] = []
        no_processes = self.chance(0.35 if family.key == "pophys" else 0.04)
        if not no_processes and family.process_steps:
            count = min(len(family.process_steps), self.weighted([(1, 0.6), (2, 0.3), (3, 0.1)]))
            scale = 6.0 if family.key in ("smartspim", "exaspim") else 1.0
            t_end = processed_at - timedelta(seconds=rng.uniform(1, 120))
            durations = [timedelta(hours=rng.uniform(0.03, 3) * scale) for _ in range(count)]
            t = t_end - sum(durations, timedelta())
            offset_dates = self.chance(0.05)
            for (process_name, url), duration in zip(family.process_steps[:count], durations, strict=True):
                start, t = t, t + duration
                steps.append(
                    {
                        "object_type": "Data process",
                        "process_type": _process_type(process_name),
                        "name": process_name,
                        "stage": "Processing",
                        "code": {
                            "object_type": "Code",
                            "url": url,
                            "version": f"{rng.randint(0, 15)}.{rng.randint(0, 9)}",
                        },
                        "experimenters": [
                            rng.choice(("AIND Scientific Computing", "Arjun Sridhar", "Ahad Bawany"))
                        ],
                        "pipeline_name": None,
                        "start_date_time": start.isoformat() if offset_dates else _iso_z(start),
                        "end_date_time": t.isoformat() if offset_dates else _iso_z(t),
                        "output_path": None,
                        "notes": None,
                    }
                )
        roll = rng.random()
        pipelines: list[Record] | None
        if (no_processes and family.key == "pophys") or roll < 0.02:
            pipelines = None  # as in pophys_derived.json
        elif roll < 0.04:
            pipelines = []
        else:
            pipelines = [
                {
                    "object_type": "Code",
                    "url": "" if pipeline == "" else "https://github.com/AllenNeuralDynamics/aind-pipelines",
                    "name": pipeline,
                    "version": str(rng.randint(1, 9)),
                    "parameters": None,
                }
            ]
        return {
            "object_type": "Processing",
            "describedBy": _SCHEMA_URL.format("processing"),
            "schema_version": "2.2.0",
            "data_processes": steps,
            "pipelines": pipelines,
            "notes": None,
            "dependency_graph": _chain(steps),
        }

    def touch(self, record: Record, created: datetime, latest: datetime) -> None:
        """Set ``_last_modified``: after creation, after the latest QC review, mostly untouched."""
        modified = max(created, latest)
        if self.chance(0.25):
            modified = self.between(modified, 1, 24 * 120)
        modified = min(modified, LATEST_MODIFIED)
        record["_last_modified"] = _iso_ms_z(max(modified, created))


# budget counts every byte; the schema fills in the object types).
_PROBE_TIP: Record = {
    "name": "PROBE_TIP",
    "origin": "Tip",
    "axes": [
        {"name": "X", "direction": "Left_to_right"},
        {"name": "Y", "direction": "Back_to_front"},
        {"name": "Z", "direction": "Up_to_down"},
    ],
    "axis_unit": "millimeter",
}


def _detector(name: str) -> Record:
    # The schema's minimum (lean records: the size budget counts every byte).
    return {"device_name": name, "exposure_time": 15350, "trigger_type": "Internal"}


def _stream_configurations(modalities: Sequence[str]) -> list[Record]:
    """The one device configuration the schema requires of a data stream per modality."""
    configurations: list[Record] = []
    if any(m in ("pophys", "SPIM", "slap2") for m in modalities):
        configurations.append(
            {"object_type": "Imaging config", "device_name": "Microscope", "channels": [], "images": []}
        )
    if "SPIM" in modalities:
        configurations.append(
            {
                "object_type": "Sample chamber config",
                "device_name": "Sample chamber",
                "chamber_immersion": {"object_type": "Immersion", "medium": "oil", "refractive_index": 1.52},
            }
        )
    if "ecephys" in modalities:
        configurations.append(
            {
                "object_type": "Manipulator config",
                "device_name": "Manipulator A",
                "coordinate_system": _PROBE_TIP,
                "local_axis_positions": {"object_type": "Translation", "translation": [0.0, 0.0, 0.0]},
            }
        )
    if "fib" in modalities:  # a fiber photometry stream of a subject without implants
        configurations.append(
            {
                "object_type": "Light emitting diode config",
                "device_name": "470nm LED",
                "power": 20,
                "power_unit": "percent",
            }
        )
        configurations.append(
            {"object_type": "Patch cord config", "device_name": "Patch Cord 0", "channels": []}
        )
    return configurations


# Process names the families use that are not values of the schema's ProcessName enum, with
# the enum value their process_type takes (the name itself stays as written).
_PROCESS_TYPE_OF: dict[str, str] = {
    "Behavior QC": "Other",
    "Fiber photometry QC": "Other",
    "Image tile stitching": "Image tile alignment",
    "Motion correction": "Video motion correction",
    "NWB packaging": "File format conversion",
    "Segmentation": "Video ROI segmentation",
    "Video compression": "Compression",
    "Source extraction": "Video ROI timeseries extraction",
}


def _process_type(process_name: str) -> str:
    return _PROCESS_TYPE_OF.get(process_name, process_name)


def _chain(steps: Sequence[Record]) -> dict[str, list[str]] | None:
    """The schema's dependency graph of sequential steps: each process takes the previous one."""
    if not steps:
        return None
    names = [step["name"] for step in steps]
    return {name: names[i - 1 : i] for i, name in enumerate(names)}




def _allocate(total: int, weights: Sequence[float]) -> list[int]:
    """Split ``total`` into integer parts proportional to ``weights`` (largest remainder).

    Every part gets at least one when there is enough to go round, so no subject is empty.
    """
    count = len(weights)
    if count == 0:
        return []
    base = 1 if total >= count else 0
    rest = total - base * count
    weight_sum = sum(weights) or 1.0
    shares = [rest * w / weight_sum for w in weights]
    parts = [base + math.floor(s) for s in shares]
    leftover = total - sum(parts)
    order = sorted(range(count), key=lambda i: (-(shares[i] - math.floor(shares[i])), i))
    for i in order[:leftover]:
        parts[i] += 1
    return parts


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------
def iter_corpus(n: int = 2000, *, seed: int = 0, subjects: int | None = None) -> Iterator[Record]:
    """The records of :func:`generate_corpus`, one at a time, in the same order (low memory)."""
    if n < 0:
        raise ValueError("n must be >= 0")
    n_subjects = subjects if subjects is not None else max(1, round(n / ASSETS_PER_SUBJECT))
    if n_subjects < 1:
        raise ValueError("subjects must be >= 1")
    yield from _CorpusBuilder(seed).records(n, n_subjects)


def generate_corpus(
    n: int = 2000, *, seed: int = 0, subjects: int | None = None, size_profile: str | None = None
) -> list[Record]:
    """``n`` realistic v2 records, identical for identical arguments.

    Records come in order of acquisition start, each raw asset followed by its derived
    assets. ``subjects`` defaults to ``n / 12`` (AIND's ratio of assets to subjects).
    ``size_profile="realistic"`` grows the records to real sizes (50-130 KB, a tail
    near 300 KB) without changing what the tables read (``bdc_local.record_sizes``);
    for a large corpus let the DocDB stand-in grow it instead (``--size-profile``).
    """
    # Building ~10^7 small containers triggers many full GC passes that find no cycles;
    # pausing the collector halves the run time.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        records = list(iter_corpus(n, seed=seed, subjects=subjects))
        if size_profile is not None:
            from bdc_local.record_sizes import apply_profile

            apply_profile(records, size_profile, seed=seed)
    finally:
        if was_enabled:
            gc.enable()
    return records


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def latest_modified(records: Iterable[Record]) -> datetime | None:
    """The greatest parseable ``_last_modified`` of ``records``."""
    times = (_parse_time(r.get("_last_modified")) for r in records if isinstance(r, dict))
    return max((t for t in times if t is not None), default=None)

