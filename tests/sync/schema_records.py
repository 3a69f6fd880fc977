"""The fixture set in aind-data-schema's own shapes: one raw and one derived record per family
the tables read, each core file built with the 2.x models (following the schema's ``examples/``)
and dumped with ``mode="json"``.

``python tests/sync/schema_records.py`` rewrites ``schema_records.json``; the test checks the
checked-in file is exactly what this module builds, so the JSON never drifts from the models.
"""

from __future__ import annotations

import json
import sys
import warnings
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from aind_data_schema.components.configs import (
    DetectorConfig,
    ImagingConfig,
    Immersion,
    LightEmittingDiodeConfig,
    ManipulatorConfig,
    SampleChamberConfig,
    TriggerType,
)
from aind_data_schema.components.coordinates import CoordinateSystemLibrary, Translation
from aind_data_schema.components.identifiers import Code, Person
from aind_data_schema.components.subjects import MouseSubject, Sex
from aind_data_schema.core.acquisition import Acquisition, DataStream
from aind_data_schema.core.data_description import DataDescription, Funding
from aind_data_schema.core.processing import DataProcess, Processing, ProcessStage
from aind_data_schema.core.quality_control import QCMetric, QCStatus, QualityControl, Stage, Status
from aind_data_schema.core.subject import Subject
from aind_data_schema_models.brain_atlas import CCFv3
from aind_data_schema_models.data_name_patterns import DataLevel
from aind_data_schema_models.modalities import Modality
from aind_data_schema_models.organizations import Organization
from aind_data_schema_models.process_names import ProcessName
from aind_data_schema_models.species import Species, Strain
from aind_data_schema_models.units import PowerUnit, TimeUnit
from fip_models import acquisition as fip_acquisition
from fip_models import procedures as fip_procedures

RECORDS_JSON = Path(__file__).with_name("schema_records.json")
OPEN_DATA = "s3://aind-open-data"


def _stream_configs(modalities: list[Any]) -> list[Any]:
    """The device configurations the schema requires of a data stream per modality."""
    abbreviations = {m.abbreviation for m in modalities}
    configs: list[Any] = []
    if abbreviations & {"pophys", "SPIM", "slap2"}:
        configs.append(ImagingConfig(device_name="Microscope", channels=[], images=[]))
    if "SPIM" in abbreviations:
        configs.append(
            SampleChamberConfig(
                device_name="Sample chamber", chamber_immersion=Immersion(medium="oil", refractive_index=1.52)
            )
        )
    if "ecephys" in abbreviations:
        configs.append(
            ManipulatorConfig(
                device_name="Manipulator A",
                coordinate_system=CoordinateSystemLibrary.MPM_MANIP_RFB,
                local_axis_positions=Translation(translation=[0, 0, 0]),
            )
        )
    if "behavior-videos" in abbreviations:
        configs.append(
            DetectorConfig(
                device_name="FaceCamera",
                exposure_time=1000,
                exposure_time_unit=TimeUnit.US,
                trigger_type=TriggerType.EXTERNAL,
            )
        )
    if "fib" in abbreviations:
        configs.append(LightEmittingDiodeConfig(device_name="470nm LED", power=20, power_unit=PowerUnit.UW))
    return configs


def _acquisition(
    subject_id: str,
    start: datetime,
    modalities: list[Any],
    acquisition_type: str,
    instrument_id: str,
    experimenters: list[str],
) -> Acquisition:
    end = start + timedelta(hours=1)
    configs = _stream_configs(modalities)
    return Acquisition(
        subject_id=subject_id,
        specimen_id=f"{subject_id}-brain" if any(m.abbreviation == "SPIM" for m in modalities) else None,
        acquisition_start_time=start,
        acquisition_end_time=end,
        acquisition_type=acquisition_type,
        instrument_id=instrument_id,
        experimenters=experimenters,
        ethics_review_id=["2115"],
        data_streams=[
            DataStream(
                stream_start_time=start,
                stream_end_time=end,
                modalities=modalities,
                active_devices=[c.device_name for c in configs],
                configurations=configs,
            )
        ],
    )


def _subject(subject_id: str, born: date, genotype: str) -> Subject:
    return Subject(
        subject_id=subject_id,
        subject_details=MouseSubject(
            species=Species.HOUSE_MOUSE,
            strain=Strain.C57BL_6J,
            sex=Sex.FEMALE,
            date_of_birth=born,
            source=Organization.JAX,
            genotype=genotype,
        ),
    )


def _description(
    name: str,
    subject_id: str,
    created: datetime,
    modalities: list[Any],
    project: str,
    investigators: list[str],
    level: DataLevel,
    source_data: list[str] | None = None,
) -> DataDescription:
    return DataDescription(
        name=name,
        subject_id=subject_id,
        creation_time=created,
        institution=Organization.AIND,
        investigators=[Person(name=n) for n in investigators],
        funding_source=[Funding(funder=Organization.AI)],
        project_name=project,
        data_level=level,
        modalities=modalities,
        source_data=source_data,
    )


def _processing(steps: list[tuple[ProcessName, datetime, datetime]], pipeline: str | None) -> Processing:
    processes = [
        DataProcess(
            process_type=kind,
            name=kind.value,
            stage=ProcessStage.PROCESSING,
            code=Code(url="https://github.com/AllenNeuralDynamics/example", version="1.0"),
            experimenters=["AIND Scientific Computing"],
            start_date_time=t0,
            end_date_time=t1,
            pipeline_name=pipeline,
        )
        for kind, t0, t1 in steps
    ]
    return Processing.create_with_sequential_process_graph(
        data_processes=processes,
        pipelines=[Code(name=pipeline, url="https://github.com/AllenNeuralDynamics/pipeline", version="2")]
        if pipeline
        else None,
    )


def _qc(
    modality: Any, when: datetime, metrics: list[tuple[str, Any, dict[str, str], list[Status]]]
) -> QualityControl:
    built = []
    for name, value, tags, statuses in metrics:
        history = [
            QCStatus(
                evaluator="Automated" if i == 0 else "Huy Nguyen",
                status=s,
                timestamp=when + timedelta(hours=i),
            )
            for i, s in enumerate(statuses)
        ]
        built.append(
            QCMetric(
                name=name,
                modality=modality,
                stage=Stage.PROCESSING,
                value=value,
                tags=tags,
                status_history=history,
            )
        )
    return QualityControl(metrics=built, default_grouping=["modality"])


# family key → how its pair looks. Times are UTC; births give ages worked out in the test.
FAMILIES: dict[str, dict[str, Any]] = {
    "ecephys": dict(
        modalities=[Modality.ECEPHYS, Modality.BEHAVIOR_VIDEOS],
        type="Ecephys recording",
        instrument="323_EPHYS1_20231115",
        project="Ephys Platform",
        suffix="sorted",
        steps=[ProcessName.EPHYS_PREPROCESSING, ProcessName.SPIKE_SORTING],
    ),
    "fib": dict(
        modalities=[Modality.FIB],
        type="Pavlovian Conditioning",
        instrument="1_FIP1",
        project="Neuromodulator circuit dynamics during foraging",
        suffix="processed",
        steps=[ProcessName.OTHER],
    ),
    "smartspim": dict(
        modalities=[Modality.SPIM],
        type="SmartSPIM whole brain imaging",
        instrument="SmartSPIM1-2_20240101",
        project="Molecular Anatomy Cell Types",
        suffix="stitched",
        steps=[ProcessName.IMAGE_TILE_ALIGNMENT, ProcessName.IMAGE_TILE_FUSING],
    ),
    "exaspim": dict(
        modalities=[Modality.SPIM],
        type="exaSPIM whole brain imaging",
        instrument="exaSPIM-01_2024-05-01",
        project="Mouse Light Neuron Morphology",
        suffix="fused",
        steps=[ProcessName.IMAGE_TILE_FUSING],
    ),
    "pophys": dict(
        modalities=[Modality.POPHYS, Modality.BEHAVIOR_VIDEOS],
        type="Visual stimulation",
        instrument="429-mesoscope-20220321",
        project="Learning mFISH-V1omFISH",
        suffix="processed",
        steps=[ProcessName.VIDEO_MOTION_CORRECTION, ProcessName.DF_F_ESTIMATION],
    ),
    "slap2": dict(
        modalities=[Modality.SLAP2],
        type="Spontaneous dendritic imaging",
        instrument="SLAP2_1_20240301",
        project="Dendritic computation with SLAP2",
        suffix="processed",
        steps=[ProcessName.OTHER],
    ),
    "dynamic_foraging": dict(
        modalities=[Modality.BEHAVIOR, Modality.BEHAVIOR_VIDEOS],
        type="Coupled Baiting",
        instrument="447_FRG.1-A_20240110",
        project="Dynamic Foraging",
        suffix="processed",
        steps=[ProcessName.OTHER],
    ),
    "vr_foraging": dict(
        modalities=[Modality.BEHAVIOR, Modality.BEHAVIOR_VIDEOS],
        type="AindVrForaging",
        instrument="4A",
        project="Cognitive flexibility in patch foraging",
        suffix="processed",
        steps=[ProcessName.COMPRESSION],
    ),
}
EXPERIMENTERS = ["tomás.pérez", "Ana-Lucía Ortiz"]
INVESTIGATORS = ["Tomás Pérez", "Tom"]


def family_pair(index: int, key: str) -> tuple[dict, dict]:
    spec = FAMILIES[key]
    subject_id = str(700100 + index)
    born = date(2025, 1, 1) + timedelta(days=index)
    start = datetime(2025, 6, 2, 17, 0, tzinfo=UTC) + timedelta(days=index)
    raw_name = f"{spec['modalities'][0].abbreviation}_{subject_id}_{start:%Y-%m-%d_%H-%M-%S}"
    processed = start + timedelta(days=1)
    derived_name = f"{raw_name}_{spec['suffix']}_{processed:%Y-%m-%d_%H-%M-%S}"
    subject = _subject(subject_id, born, "Slc17a7-IRES2-Cre/wt")
    experimenters = EXPERIMENTERS if index % 2 == 0 else ["Tom"]
    procedures = None
    if key != "fib":
        acquisition = _acquisition(
            subject_id, start, spec["modalities"], spec["type"], spec["instrument"], experimenters
        )
    else:
        procedures = fip_procedures(subject_id, {"Fiber 0": CCFv3.VTA, "Fiber_1": CCFv3.ROOT})
        acquisition = fip_acquisition(
            subject_id,
            experimenters,
            {
                "Patch Cord A": (
                    "Fiber 0",
                    [("Fiber 0_green", "dopamine"), ("Fiber 0_isosbestic", "control")],
                ),
                "Patch Cord B": ("Fiber 1", [("Fiber 1_green", None)]),
            },
            start,
        )
    raw = {
        "_id": f"raw-{key}",
        "name": raw_name,
        "location": f"{OPEN_DATA}/{raw_name}",
        "_last_modified": (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "data_description": _description(
            raw_name,
            subject_id,
            start + timedelta(hours=1),
            spec["modalities"],
            spec["project"],
            INVESTIGATORS,
            DataLevel.RAW,
        ),
        "subject": subject,
        "procedures": procedures,
        "acquisition": acquisition,
        "processing": _processing(
            [(ProcessName.COMPRESSION, start + timedelta(hours=1), start + timedelta(hours=2))], None
        ),
        "quality_control": None,
    }
    steps = [
        (
            kind,
            processed - timedelta(hours=len(spec["steps"]) - i),
            processed - timedelta(hours=len(spec["steps"]) - i - 1),
        )
        for i, kind in enumerate(spec["steps"])
    ]
    qc_modality = spec["modalities"][0]
    derived = dict(raw)
    derived.update(
        {
            "_id": f"derived-{key}",
            "name": derived_name,
            "location": f"{OPEN_DATA}/{derived_name}",
            "_last_modified": (processed + timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "data_description": _description(
                derived_name,
                subject_id,
                processed,
                spec["modalities"],
                spec["project"],
                INVESTIGATORS,
                DataLevel.DERIVED,
                [raw_name],
            ),
            "processing": _processing(steps, f"{key}-pipeline"),
            "quality_control": _qc(
                qc_modality,
                processed + timedelta(hours=1),
                [
                    ("Signal quality", 0.93, {"Channel": "green"}, [Status.PASS]),
                    (
                        "Drift",
                        {
                            "value": "",
                            "options": ["Low", "High"],
                            "status": ["Pass", "Fail"],
                            "type": "dropdown",
                        },
                        {"Probe": "A"},
                        [Status.PENDING, Status.FAIL],
                    ),
                ],
            ),
        }
    )
    return _dump(raw), _dump(derived)


def _dump(record: dict) -> dict:
    return {k: v.model_dump(mode="json") if hasattr(v, "model_dump") else v for k, v in record.items()}


def build() -> list[dict]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        records: list[dict] = []
        for index, key in enumerate(FAMILIES):
            records.extend(family_pair(index, key))
    return records


if __name__ == "__main__":
    RECORDS_JSON.write_text(json.dumps(build(), indent=1, sort_keys=True) + "\n")
    sys.exit(0)
