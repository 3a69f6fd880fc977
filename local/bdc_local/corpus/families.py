"""The platform families of the synthetic corpus and the facts they draw from.

Buckets, the time span of sessions, modality and project names, and one :class:`Family`
per data-collection platform (its share of records, modalities, instruments, pipelines,
people and QC kind). Plain data: the builder reads it, nothing here draws a random number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

Record = dict[str, Any]

FIXTURES_DIR = Path(__file__).resolve().parent.parent / "fixtures"
# The project's shared folder beside the checkout, which this copy of the records came from.
SHARED_FIXTURES_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "docdb"


def real_fixtures_dir() -> Path:
    """The four real DocDB records: the shared folder when it is beside the checkout, else
    the repository's copy of it (the same records)."""
    return SHARED_FIXTURES_DIR if SHARED_FIXTURES_DIR.is_dir() else FIXTURES_DIR
FIXTURE_NAMES: tuple[str, ...] = ("vr_foraging_raw", "vr_foraging_derived", "pophys_derived", "fib_derived")

OPEN_DATA_BUCKET = "aind-open-data"
CODEOCEAN_BUCKET = "codeocean-s3datasetsbucket-1u41qdg42ur9"
PRIVATE_BUCKET = "aind-private-data-prod-o5171v"

# AIND: ~100,000 assets over ~8,000 subjects.
ASSETS_PER_SUBJECT = 12
EARLIEST_SESSION = datetime(2022, 1, 3, 16, 0, tzinfo=UTC)
LATEST_SESSION = datetime(2026, 4, 24, 16, 0, tzinfo=UTC)
# Nothing in a corpus is modified after this; mutate_records goes later still.
LATEST_MODIFIED = datetime(2026, 5, 20, tzinfo=UTC)
# Processing and QC reviews happen before this (the corpus is a snapshot, not a forecast).
PROCESSING_HORIZON = datetime(2026, 5, 15, tzinfo=UTC)
# Share of records of the templated families (vr, fib, pophys) kept full-size.
FULL_SIZE_PROBABILITY = 0.004

_SCHEMA_URL = "https://raw.githubusercontent.com/AllenNeuralDynamics/aind-data-schema/main/src/aind_data_schema/core/{}.py"

MODALITY_NAMES: dict[str, str] = {
    "behavior": "Behavior",
    "behavior-videos": "Behavior videos",
    "fib": "Fiber photometry",
    "pophys": "Planar optical physiology",
    "SPIM": "Selective plane illumination microscopy",
    "ecephys": "Extracellular electrophysiology",
    "slap2": "Random access projection microscopy",
}

PROJECT_INVESTIGATORS: dict[str, tuple[str, ...]] = {
    "Cognitive flexibility in patch foraging": ("Bruno Cruz", "Cindy Poo", "Tiffany Ona"),
    "Learning mFISH-V1omFISH": ("Peter Groblewski", "Marina Garrett", "Shawn Olsen"),
    "Behavior Platform": ("Avery Lindqvist",),
    "Dynamic Foraging": ("Jonah Reyes", "Priya Raman"),
    "Neuromodulator circuit dynamics during foraging": ("Jonah Reyes", "Mara Okafor"),
    "Brain Computer Interface": ("Lena Vogt",),
    "Thalamus in the middle": ("Felix Brandt", "Nadia Farouk"),
    "Ephys Platform": ("Owen Price",),
    "Neurobiology of Action": ("Dana Whitcombe",),
    "MSMA Platform": ("Ren Takeda",),
    "Molecular Anatomy Cell Types": ("Ren Takeda", "Ivy Chen"),
    "Single-neuron computations within brain-wide circuits (SCBC)": ("Kai Moreno", "Shawn Olsen"),
    "OpenScope": ("Jasper Lund",),
    "Dendritic computation with SLAP2": ("Sam Whitfield",),
    "Mouse Light Neuron Morphology": ("Ivy Chen",),
    "Force Foraging": ("Mara Okafor",),
}
PROJECT_NAMES: tuple[str, ...] = tuple(PROJECT_INVESTIGATORS)

# Fiber targets: CCF acronym -> (id, name). "root" is what the tables report as "missing".
_STRUCTURES: dict[str, tuple[str, str]] = {
    "PL": ("972", "Prelimbic area"),
    "ACB": ("56", "Nucleus accumbens"),
    "VTA": ("749", "Ventral tegmental area"),
    "CP": ("672", "Caudoputamen"),
    "LC": ("147", "Locus ceruleus"),
    "MOs": ("993", "Secondary motor area"),
    "BLA": ("295", "Basolateral amygdalar nucleus"),
    "DR": ("872", "Dorsal nucleus raphe"),
    "root": ("997", "root"),
}
_FIXTURE_SUBJECTS = frozenset({828418, 808054, 692478})
_INTENDED_MEASUREMENTS: tuple[str | None, ...] = (
    "calcium",
    "dopamine",
    "acetylcholine",
    "norepinephrine",
    "serotonin",
    None,
)


@dataclass(frozen=True)
class Family:
    """One data-collection platform: how its subjects, sessions and derived assets look."""

    key: str
    share: float  # target share of all records
    assets_per_subject: float  # relative number of assets per subject
    name_prefix: str
    raw_modalities: tuple[tuple[tuple[str, ...], float], ...]
    derived_modalities: tuple[tuple[tuple[str, ...], float], ...]
    acquisition_types: tuple[tuple[str | None, float], ...]
    instruments: tuple[str, ...]
    pipelines: tuple[tuple[str, str], ...]  # (pipeline name, name suffix); first is the usual one
    derived_counts: tuple[float, ...]  # weights of 0, 1, 2, 3 derived assets per raw
    projects: tuple[str, ...]
    genotypes: tuple[str, ...]
    experimenters: tuple[str, ...]
    session_gap_days: tuple[float, float]
    duration_minutes: tuple[float, float]
    processing_delay_hours: tuple[float, float]
    offset_times: float  # share of subjects whose times carry a UTC offset instead of Z
    codeocean_share: float  # share of derived assets stored in the Code Ocean bucket
    qc_kind: str
    fixture: str | None = None  # template for full-size records
    process_steps: tuple[tuple[str, str], ...] = ()  # (process name, code url)


_BEHAVIOR_GENOTYPES = ("wt/wt", "Dbh-Cre-KI/wt", "Drd1-Cre/wt", "Chat-IRES-Cre-neo/wt", "Slc6a3-IRES-Cre/wt")
_DYNAMIC_TYPES: tuple[tuple[str | None, float], ...] = (
    ("Coupled Baiting", 0.33),
    ("Uncoupled Without Baiting", 0.24),
    ("Coupled Without Baiting", 0.12),
    ("Uncoupled Baiting", 0.15),
    ("Uncoupled Without Baiting (optogenetics)", 0.05),
    ("Coupled Baiting_v2", 0.03),
    ("Dynamic Foraging", 0.04),
    (None, 0.04),
)

FAMILIES: tuple[Family, ...] = (
    Family(
        key="dynamic_foraging",
        share=0.28,
        assets_per_subject=30,
        name_prefix="behavior_",
        raw_modalities=((("behavior", "behavior-videos"), 0.75), (("behavior",), 0.25)),
        derived_modalities=((("behavior",), 0.7), (("behavior", "behavior-videos"), 0.3)),
        acquisition_types=_DYNAMIC_TYPES,
        instruments=(
            "447-1-A",
            "447-2-B",
            "447-3-D",
            "1-4-D",
            "322_EPHYS1_231101",
            "447_5-A_20240412",
            "2-1-C",
        ),
        pipelines=(
            ("Dynamic foraging NWB packaging", "_processed_"),
            ("Dynamic foraging model fitting", "_processed_"),
        ),
        derived_counts=(0.35, 0.5, 0.15),
        projects=(
            "Behavior Platform",
            "Dynamic Foraging",
            "Neuromodulator circuit dynamics during foraging",
            "Force Foraging",
        ),
        genotypes=_BEHAVIOR_GENOTYPES,
        experimenters=(
            "Huy Nguyen",
            "Grace Liu",
            "Grace Huang",
            "Kai Moreno",
            "Tomás Ibarra",
            "Tom Becker",
            "Mara Okafor",
        ),
        session_gap_days=(1, 3),
        duration_minutes=(40, 90),
        processing_delay_hours=(2, 30),
        offset_times=0.3,
        codeocean_share=0.06,
        qc_kind="behavior",
        process_steps=(
            ("NWB packaging", "https://github.com/AllenNeuralDynamics/aind-dynamic-foraging-nwb"),
            ("Behavior QC", "https://github.com/AllenNeuralDynamics/aind-dynamic-foraging-qc"),
        ),
    ),
    Family(
        key="vr_foraging",
        share=0.10,
        assets_per_subject=20,
        name_prefix="",
        raw_modalities=((("behavior", "behavior-videos"), 1.0),),
        derived_modalities=((("behavior",), 1.0),),
        acquisition_types=(("AindVrForaging", 0.97), ("AindVrForagingOperantLearning", 0.03)),
        instruments=("4A", "4B", "5A", "5B", "13A", "13B"),
        pipelines=(("", "_processed_"), ("VR foraging primary data NWB packaging", "_processed_")),
        derived_counts=(0.2, 0.65, 0.15),
        projects=("Cognitive flexibility in patch foraging",),
        genotypes=_BEHAVIOR_GENOTYPES,
        experimenters=("Huy Nguyen", "Olivia Unokesan", "Tiffany Ona", "Bruno Cruz", "Ana-Lucía Pérez"),
        session_gap_days=(1, 3),
        duration_minutes=(45, 90),
        processing_delay_hours=(4, 30),
        offset_times=0.0,
        codeocean_share=0.04,
        qc_kind="vr",
        fixture="vr_foraging_derived",
        process_steps=(
            (
                "Pipeline",
                "https://github.com/AllenNeuralDynamics/aind-vr-foraging-primary-data-nwb-packaging.git",
            ),
        ),
    ),
    Family(
        key="fib",
        share=0.15,
        assets_per_subject=16,
        name_prefix="",
        raw_modalities=(
            (("behavior", "behavior-videos", "fib"), 0.7),
            (("behavior", "fib"), 0.2),
            (("fib",), 0.1),
        ),
        derived_modalities=((("fib",), 0.9), (("fib", "behavior"), 0.1)),
        acquisition_types=(
            ("AindVrForaging", 0.4),
            ("Coupled Baiting", 0.25),
            ("Uncoupled Without Baiting", 0.2),
            ("FIP passive", 0.1),
            (None, 0.05),
        ),
        instruments=("13A", "13B", "FIP_1", "447_FIP2_20240305", "1-1-B"),
        pipelines=(
            ("Fiberphotometry Schema 2.0 Processing Pipeline", "_processed_"),
            ("Fiber photometry dF/F and QC", "_processed_"),
        ),
        derived_counts=(0.15, 0.6, 0.2, 0.05),
        projects=(
            "Cognitive flexibility in patch foraging",
            "Neuromodulator circuit dynamics during foraging",
            "Dynamic Foraging",
            "Neurobiology of Action",
        ),
        genotypes=("Dbh-Cre-KI/wt", "Slc6a3-IRES-Cre/wt", "Chat-IRES-Cre-neo/wt", "Drd1-Cre/wt", "wt/wt"),
        experimenters=("Olivia Unokesan", "Huy Nguyen", "Ahad Bawany", "Mara Okafor"),
        session_gap_days=(1, 4),
        duration_minutes=(40, 80),
        processing_delay_hours=(2, 48),
        offset_times=0.1,
        codeocean_share=0.05,
        qc_kind="fib",
        fixture="fib_derived",
        process_steps=(
            ("dF/F estimation", "https://github.com/AllenNeuralDynamics/aind-fip-dff"),
            ("Fiber photometry QC", "https://github.com/AllenNeuralDynamics/aind-fip-qc"),
        ),
    ),
    Family(
        key="pophys",
        share=0.14,
        assets_per_subject=12,
        name_prefix="multiplane-ophys_",
        raw_modalities=(
            (("pophys", "behavior-videos"), 0.6),
            (("pophys", "behavior", "behavior-videos"), 0.3),
            (("pophys",), 0.1),
        ),
        derived_modalities=((("pophys", "behavior-videos"), 0.5), (("pophys",), 0.5)),
        acquisition_types=(
            ("OPHYS_2_images_A_passive", 0.2),
            ("OPHYS_1_images_A", 0.2),
            ("TRAINING_5_images_A_handoff_ready", 0.15),
            ("BCI single neuron stim", 0.15),
            ("Spontaneous", 0.15),
            ("Coupled Baiting", 0.05),
            (None, 0.1),
        ),
        instruments=("429-mesoscope-20220321", "MESO.1", "MESO.2", "BCI_1", "ophys-2p-3_2023-06-01"),
        pipelines=(
            ("Multiplane Ophys Processing Pipeline", "_processed_"),
            ("Ophys motion correction and segmentation", "_processed_"),
        ),
        derived_counts=(0.1, 0.55, 0.3, 0.05),
        projects=(
            "Learning mFISH-V1omFISH",
            "Brain Computer Interface",
            "OpenScope",
            "Single-neuron computations within brain-wide circuits (SCBC)",
        ),
        genotypes=(
            "Slc32a1-IRES-Cre/wt;Oi1(TIT2L-jGCaMP8s-WPRE-ICL-IRES-tTA2)/wt",
            "Slc17a7-IRES2-Cre/wt;Camk2a-tTA/wt;Ai93(TITL-GCaMP6f)/wt",
            "Sst-IRES-Cre/wt;Ai148(TIT2L-GC6f-ICL-tTA2)/wt",
            "Vip-IRES-Cre/wt;Ai148(TIT2L-GC6f-ICL-tTA2)/wt",
        ),
        experimenters=("Priya Raman", "Sam Whitfield", "Lena Vogt", "Jasper Lund"),
        session_gap_days=(1, 7),
        duration_minutes=(60, 80),
        processing_delay_hours=(12, 24 * 200),
        offset_times=1.0,
        codeocean_share=0.4,
        qc_kind="pophys",
        fixture="pophys_derived",
        process_steps=(
            ("Motion correction", "https://github.com/AllenNeuralDynamics/aind-ophys-motion-correction"),
            ("Segmentation", "https://github.com/AllenNeuralDynamics/aind-ophys-extraction-suite2p"),
            ("dF/F estimation", "https://github.com/AllenNeuralDynamics/aind-ophys-dff"),
        ),
    ),
    Family(
        key="ecephys",
        share=0.12,
        assets_per_subject=6,
        name_prefix="ecephys_",
        raw_modalities=(
            (("ecephys", "behavior-videos"), 0.6),
            (("ecephys", "behavior", "behavior-videos"), 0.3),
            (("ecephys",), 0.1),
        ),
        derived_modalities=((("ecephys",), 0.85), (("ecephys", "behavior"), 0.15)),
        acquisition_types=(
            ("Neuropixels passive stimulation", 0.3),
            ("Dynamic Routing", 0.2),
            ("Uncoupled Baiting", 0.2),
            ("Spontaneous", 0.2),
            (None, 0.1),
        ),
        instruments=(
            "323_EPHYS1_20231115",
            "323_EPHYS2-RF_2024-01-18",
            "327_NP2_240401",
            "NP3",
            "323_EPHYS3-OPTO_20240628",
        ),
        pipelines=(
            ("Ecephys Spike Sorting Pipeline (Kilosort 4)", "_sorted_"),
            ("Ecephys Spike Sorting Pipeline (Kilosort 2.5)", "_sorted_"),
            ("Ecephys LFP preprocessing", "_processed_"),
        ),
        derived_counts=(0.1, 0.5, 0.3, 0.1),
        projects=(
            "Ephys Platform",
            "Thalamus in the middle",
            "Single-neuron computations within brain-wide circuits (SCBC)",
            "OpenScope",
            "Neurobiology of Action",
        ),
        genotypes=(
            "wt/wt",
            "Sst-IRES-Cre/wt;Ai32(RCL-ChR2(H134R)_EYFP)/wt",
            "Pvalb-IRES-Cre/wt",
            "Vip-IRES-Cre/wt",
        ),
        experimenters=("Owen Price", "Nadia Farouk", "Felix Brandt", "Jasper Lund"),
        session_gap_days=(1, 14),
        duration_minutes=(90, 150),
        processing_delay_hours=(12, 24 * 30),
        offset_times=0.5,
        codeocean_share=0.1,
        qc_kind="ecephys",
        process_steps=(
            ("Ephys preprocessing", "https://github.com/AllenNeuralDynamics/aind-ephys-preprocessing"),
            ("Spike sorting", "https://github.com/AllenNeuralDynamics/aind-ephys-spikesort-kilosort4"),
            ("Ephys postprocessing", "https://github.com/AllenNeuralDynamics/aind-ephys-postprocessing"),
        ),
    ),
    Family(
        key="smartspim",
        share=0.06,
        assets_per_subject=2.5,
        name_prefix="SmartSPIM_",
        raw_modalities=((("SPIM",), 1.0),),
        derived_modalities=((("SPIM",), 1.0),),
        acquisition_types=(("SmartSPIM whole brain imaging", 0.8), (None, 0.2)),
        instruments=(
            "SmartSPIM1-2_20240101",
            "SmartSPIM2-1_2023-11-15",
            "SmartSPIM3-2",
            "440_SmartSPIM1_20240327",
            "SPIM-LS2_2023-05-02",
        ),
        pipelines=(
            ("SmartSPIM Stitching and Cell Segmentation", "_stitched_"),
            ("SmartSPIM CCF Registration", "_processed_"),
        ),
        derived_counts=(0.15, 0.55, 0.25, 0.05),
        projects=("MSMA Platform", "Thalamus in the middle", "Molecular Anatomy Cell Types"),
        genotypes=(
            "wt/wt",
            "Pvalb-IRES-Cre/wt;Ai14(RCL-tdT)/wt",
            "Sst-IRES-Cre/wt;Ai14(RCL-tdT)/wt",
            "Slc17a6-IRES-Cre/wt",
        ),
        experimenters=("Ren Takeda", "Ivy Chen", "Dana Whitcombe"),
        session_gap_days=(30, 200),
        duration_minutes=(600, 1800),
        processing_delay_hours=(48, 24 * 40),
        offset_times=0.0,
        codeocean_share=0.0,
        qc_kind="spim",
        process_steps=(
            ("Image tile stitching", "https://github.com/AllenNeuralDynamics/aind-smartspim-stitch"),
            ("Image cell segmentation", "https://github.com/AllenNeuralDynamics/aind-smartspim-segmentation"),
            ("Image atlas alignment", "https://github.com/AllenNeuralDynamics/aind-ccf-registration"),
        ),
    ),
    Family(
        key="exaspim",
        share=0.02,
        assets_per_subject=2.5,
        name_prefix="exaSPIM_",
        raw_modalities=((("SPIM",), 1.0),),
        derived_modalities=((("SPIM",), 1.0),),
        acquisition_types=(("exaSPIM whole brain imaging", 0.8), (None, 0.2)),
        instruments=("exaSPIM-01_2024-05-01", "exaSPIM-02", "exaspim_03_20231005"),
        pipelines=(("exaSPIM Fusion Pipeline", "_fused_"), ("exaSPIM Tile Alignment", "_processed_")),
        derived_counts=(0.25, 0.6, 0.15),
        projects=("Mouse Light Neuron Morphology", "Molecular Anatomy Cell Types"),
        genotypes=("wt/wt", "Slc17a6-IRES-Cre/wt"),
        experimenters=("Ivy Chen", "Ren Takeda"),
        session_gap_days=(14, 120),
        duration_minutes=(1200, 4000),
        processing_delay_hours=(72, 24 * 60),
        offset_times=0.0,
        codeocean_share=0.0,
        qc_kind="spim",
        process_steps=(
            ("Image tile alignment", "https://github.com/AllenNeuralDynamics/aind-exaspim-alignment"),
            ("Image tile fusing", "https://github.com/AllenNeuralDynamics/aind-exaspim-fusion"),
        ),
    ),
    Family(
        key="slap2",
        share=0.04,
        assets_per_subject=8,
        name_prefix="slap2_",
        raw_modalities=((("slap2", "behavior-videos"), 0.5), (("slap2",), 0.5)),
        derived_modalities=((("slap2",), 1.0),),
        acquisition_types=(("Spontaneous dendritic imaging", 0.5), ("Visual stimulation", 0.4), (None, 0.1)),
        instruments=("SLAP2_1_20240401", "slap2-rig-1", "325_SLAP2_240612"),
        pipelines=(("SLAP2 Processing Pipeline", "_processed_"),),
        derived_counts=(0.3, 0.6, 0.1),
        projects=("Dendritic computation with SLAP2",),
        genotypes=("wt/wt", "Emx1-IRES-Cre/wt"),
        experimenters=("Sam Whitfield", "Lena Vogt"),
        session_gap_days=(2, 10),
        duration_minutes=(60, 120),
        processing_delay_hours=(6, 72),
        offset_times=0.5,
        codeocean_share=0.1,
        qc_kind="slap2",
        process_steps=(
            ("Motion correction", "https://github.com/AllenNeuralDynamics/aind-slap2-motion-correction"),
            ("Source extraction", "https://github.com/AllenNeuralDynamics/aind-slap2-extraction"),
        ),
    ),
    Family(
        key="misc",
        share=0.09,
        assets_per_subject=5,
        name_prefix="behavior_",
        raw_modalities=((("behavior-videos",), 0.4), (("behavior",), 0.4), (("fib", "behavior"), 0.2)),
        derived_modalities=((("behavior-videos",), 0.5), (("behavior",), 0.5)),
        acquisition_types=(
            ("Coupled Baiting", 0.3),
            ("Uncoupled Without Baiting", 0.2),
            ("Habituation", 0.2),
            (None, 0.3),
        ),
        instruments=("447-1-A", "BehaviorVideo-1", "4A"),
        pipelines=(("Behavior videos compression", "_processed_"),),
        derived_counts=(0.6, 0.4),
        projects=("Behavior Platform", "Force Foraging", "OpenScope"),
        genotypes=_BEHAVIOR_GENOTYPES,
        experimenters=("Huy Nguyen", "Kai Moreno"),
        session_gap_days=(1, 14),
        duration_minutes=(10, 60),
        processing_delay_hours=(1, 24),
        offset_times=0.3,
        codeocean_share=0.1,
        qc_kind="behavior",
        process_steps=(
            (
                "Video compression",
                "https://github.com/AllenNeuralDynamics/aind-behavior-video-transformation",
            ),
        ),
    ),
)
FAMILY_BY_KEY: dict[str, Family] = {f.key: f for f in FAMILIES}
