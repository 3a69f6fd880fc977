"""A fiber photometry record built with aind-data-schema's models, shaped like the schema's
own examples (``examples/fip_ophys_acquisition.py`` with ``examples/ophys_procedures.py``):
implants named ``Fiber 0`` / ``Fiber 1``, connections targeting ``Fiber 0`` / ``Fiber 1``.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from aind_data_schema.components.configs import (
    Channel,
    DetectorConfig,
    LightEmittingDiodeConfig,
    PatchCordConfig,
    ProbeConfig,
    TriggerType,
)
from aind_data_schema.components.connections import Connection
from aind_data_schema.components.coordinates import CoordinateSystemLibrary, Translation
from aind_data_schema.components.devices import FiberProbe
from aind_data_schema.components.surgery_procedures import ProbeImplant
from aind_data_schema.core.acquisition import Acquisition, DataStream
from aind_data_schema.core.procedures import Procedures, Surgery
from aind_data_schema_models.brain_atlas import CCFv3
from aind_data_schema_models.modalities import Modality
from aind_data_schema_models.units import PowerUnit, SizeUnit, TimeUnit

START = datetime(2024, 1, 15, 15, 56, 28, tzinfo=ZoneInfo("America/Los_Angeles"))


def _implant(fiber: str, structure: object) -> ProbeImplant:
    return ProbeImplant(
        protocol_id="dx.doi.org/10.17504/protocols.io.example",
        implanted_device=FiberProbe(
            name=fiber,
            core_diameter=200,
            numerical_aperture=0.37,
            ferrule_material="Ceramic",
            total_length=0.5,
        ),
        device_config=ProbeConfig(
            device_name=fiber,
            primary_targeted_structure=structure,
            local_coordinate_system=CoordinateSystemLibrary.MPM_MANIP_RFB,
            coordinate_system=CoordinateSystemLibrary.BREGMA_ARID,
            transform=[Translation(translation=[-600, -3050, 0, 4200])],
        ),
    )


def procedures(subject_id: str, fibers: dict[str, object]) -> Procedures:
    return Procedures(
        subject_id=subject_id,
        subject_procedures=[
            Surgery(
                start_date=date(2023, 12, 1),
                experimenters=["Scientist Smith"],
                ethics_review_id="2109",
                protocol_id="doi",
                coordinate_system=CoordinateSystemLibrary.BREGMA_ARID,
                procedures=[_implant(fiber, structure) for fiber, structure in fibers.items()],
            )
        ],
    )


def _channel(name: str, measurement: str | None, detector: str) -> Channel:
    return Channel(
        channel_name=name,
        intended_measurement=measurement,
        detector=DetectorConfig(
            device_name=detector,
            exposure_time=15350,
            exposure_time_unit=TimeUnit.US,
            trigger_type=TriggerType.INTERNAL,
        ),
        light_sources=[],
        emission_wavelength=510,
        emission_wavelength_unit=SizeUnit.NM,
    )


def acquisition(
    subject_id: str,
    experimenters: list[str],
    cords: dict[str, tuple[str, list[tuple[str, str | None]]]],
    start: datetime = START,
) -> Acquisition:
    """``cords``: patch cord → (connected fiber, [(channel, intended measurement)])."""
    configurations = [
        PatchCordConfig(
            device_name=cord,
            channels=[_channel(channel, measurement, "Green CMOS") for channel, measurement in channels],
        )
        for cord, (_, channels) in cords.items()
    ]
    connections = [
        Connection(source_device=cord, target_device=fiber, send_and_receive=True)
        for cord, (fiber, _) in cords.items()
    ] + [Connection(source_device=cord, target_device="Green CMOS") for cord in cords]
    return Acquisition(
        experimenters=experimenters,
        subject_id=subject_id,
        acquisition_start_time=start,
        acquisition_end_time=start + timedelta(hours=1),
        acquisition_type="Pavlovian Conditioning",
        instrument_id="1_FIP1",
        ethics_review_id=["2115"],
        data_streams=[
            DataStream(
                stream_start_time=start,
                stream_end_time=start + timedelta(hours=1),
                modalities=[Modality.FIB],
                active_devices=["Green CMOS", "470nm LED", *cords, *(fiber for fiber, _ in cords.values())],
                configurations=[
                    LightEmittingDiodeConfig(device_name="470nm LED", power=20, power_unit=PowerUnit.UW),
                    *configurations,
                ],
                connections=connections,
            )
        ],
    )


def example_pair() -> tuple[dict, dict]:
    """(procedures, acquisition) as the schema's FIP + ophys examples write them, dumped to JSON shapes."""
    proc = procedures("687582", {"Fiber 0": CCFv3.VTA, "Fiber 1": CCFv3.ROOT})
    acq = acquisition(
        "687582",
        ["Bryan MacLennan", "Kenta Hagihara"],
        {
            "Patch Cord A": (
                "Fiber 0",
                [
                    ("Fiber 0_red", "dopamine"),
                    ("Fiber 0_green", "calcium"),
                    ("Fiber 0_isosbestic", "control"),
                ],
            ),
            "Patch Cord B": ("Fiber 1", [("Fiber 1_green", "calcium"), ("Fiber 1_isosbestic", None)]),
        },
    )
    return proc.model_dump(mode="json"), acq.model_dump(mode="json")
