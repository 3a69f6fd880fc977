"""Deterministic synthetic corpus of AIND metadata records (DocDB schema v2).

The four real records in ``fixtures/`` are the templates: every synthetic record
keeps their section layout (``subject``, ``data_description``, ``procedures``,
``instrument``, ``processing``, ``acquisition``, ``quality_control``) and field
names, while ids, names, subjects, dates, people and QC outcomes vary. The
corpus exists to exercise every derivation of ``shared/spec/tables.md`` at the
scale of the real database (100,000 assets over ~8,000 subjects), so it is
deliberately messy in the ways the real one is.

What a corpus of ``n`` records contains (shares are approximate, of records):

* Platform families, one per subject: dynamic foraging (~28 %, behavior),
  VR foraging (~10 %, ``AindVrForaging``), fiber photometry (~15 %, shaped like
  ``fib_derived.json``), planar ophys (~14 %), ecephys (~12 %), SmartSPIM (~6 %),
  exaSPIM (~2 %), SLAP2 (~4 %) and behavior-only odds and ends (~9 %).
  About half the records are ``raw`` and half ``derived``.
* Each subject has several sessions; each session is one raw asset followed by
  0-3 derived assets whose ``data_description.source_data`` is ``[raw name]``
  (rarely two raw names of the same subject, rarely ``null`` or ``[]``).
  Derived names are ``<raw>_processed_<YYYY-MM-DD_HH-MM-SS>``; SmartSPIM uses
  ``_stitched_`` (sometimes ``_processed_``), exaSPIM ``_fused_``, ecephys
  ``_sorted_``. Several derived assets of one raw differ in pipeline
  (``processing.pipelines[0].name``, which may be ``""`` or absent) or time.
* Records come in order of acquisition start (each raw asset directly followed
  by its derived assets), roughly the order in which DocDB received them; every
  derived asset is created after its raw asset.
* Every record's core files validate against aind-data-schema 2.x (checked by
  ``bdc_local.schema_check`` in the tests, not here: the generator emits plain dicts
  and stays fast). The mess stays inside what the schema allows.
* Messy values on purpose: experimenters as ``huy.nguyen`` / ``Huy Nguyen`` /
  ``Huy`` / ``"A B, C D"`` / ``HUY NGUYEN``, an ambiguous first name
  (``Grace``), Unicode names (``Tomás Ibarra``, ``Ana-Lucía Pérez``) beside a
  one-word ``Tom``; instrument ids in every real form; acquisition times with ``Z``
  or a ``-07:00``/``-08:00`` offset (pophys with a space separator); mice with a
  ``date_of_birth`` and ~3 % subjects without one (calibration objects).
* Roughly 1-3 % each: no ``acquisition``, no ``processing``, no ``procedures``,
  ``data_description.modalities`` ``[]``. Shapes outside the schema that older
  records have (experimenters as ``{"name": ...}``, only ``year_of_birth``, a birth
  date only in ``acquisition.subject_details``, null ``subject_details``, genotype,
  ``acquisition_type``, ``project_name`` or ``instrument_id``, a modality without
  ``abbreviation``) are damage kinds of ``malformed_records``.
  ~75 % of raw and ~30 % of derived records have ``quality_control: null``.
  Most derived assets live in ``s3://aind-open-data/<name>``; ~5 % (40 % of
  ophys) in ``s3://codeocean-s3datasetsbucket-1u41qdg42ur9/<Code Ocean id>``,
  ~3 % of raw assets in a private bucket.
* QC metrics carry ``value`` of every JSON type (a list for Curation metrics),
  1-2 ``status_history`` entries, ``tags`` as a dict (``{"Channel": "green"}``;
  status key ``"Channel:green"``; ``{}`` when untagged). ``quality_control.status``
  also has modality and stage keys.
  Ecephys QC may contain ``"Curation metric"`` entries.
* Records are lean (instrument reduced to a stub, QC trimmed to a few metrics,
  short descriptions): ``json.dumps`` of a record is ~8 KB on average. About
  0.15 % (0.4 % of VR, fiber and ophys records) are full-size: the fixture's
  whole instrument, calibrations, stimulus epochs and all its QC metrics
  (50-300 KB each).
* Records share their immutable leaves (strings, numbers) with each other, never
  their dicts or lists: mutating one record never changes another.

``iter_corpus`` streams the same records with little memory (100,000 records
held in a list take ~1.6 GB). ``malformed_records`` gives damaged records
separately; ``mutate_records`` gives changed copies for incremental runs;
``v1_records`` gives schema-v1 records for the metadata-upgrade table.
``bdc_local.sources`` derives the S3 objects the tables read besides DocDB.
"""

from __future__ import annotations

import argparse
import functools
import gc
import heapq
import itertools
import json
import math
import random
import sys
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any

Record = dict[str, Any]

FIXTURES_DIR = Path(__file__).resolve().parent.parent / "fixtures"
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


# --------------------------------------------------------------------------------------
# Fixtures and the lean templates cut from them
# --------------------------------------------------------------------------------------
@functools.cache
def _fixture_text(name: str) -> str:
    return (FIXTURES_DIR / f"{name}.json").read_text(encoding="utf-8")


def load_fixture(name: str) -> Record:
    """A fresh copy of one real fixture record (``vr_foraging_raw``, ``fib_derived``, ...)."""
    if name not in FIXTURE_NAMES:
        raise ValueError(f"unknown fixture {name!r}; expected one of {FIXTURE_NAMES}")
    return json.loads(_fixture_text(name))


def _short(text: Any, limit: int = 100) -> Any:
    if isinstance(text, str) and len(text) > limit:
        return text[: limit - 1] + "…"
    return text


def _clone(value: Any) -> Any:
    """Copy the containers of a JSON-like value and share its leaves.

    Strings and numbers are immutable, so records may share them with the templates
    and with each other; that keeps 100,000 records in a fraction of the memory a
    ``json.loads`` copy (fresh strings and keys everywhere) would take. Leaves are
    copied inline rather than by a recursive call: most nodes are leaves.
    """
    kind = type(value)
    if kind is dict:
        return {k: _clone(v) if type(v) in _CONTAINERS else v for k, v in value.items()}
    if kind is list:
        return [_clone(v) if type(v) in _CONTAINERS else v for v in value]
    return value


_CONTAINERS = (dict, list)


@dataclass(frozen=True)
class _Templates:
    """The fixture parts reused per record; always :func:`_clone` them before use."""

    subject_details: Record
    vr_procedures: Record
    pophys_procedures: Record
    fib_surgery: Record
    raw_processing: Record
    instrument_full: dict[str, Record]
    calibrations_full: dict[str, list[Any]]
    stimulus_epochs_full: dict[str, list[Any]]
    metric_pools: dict[str, list[Record]]  # lean metrics (short descriptions)
    metric_pools_full: dict[str, list[Record]]
    default_grouping: dict[str, list[Any]]


@functools.cache
def _templates() -> _Templates:
    vr_raw = load_fixture("vr_foraging_raw")
    vr_derived = load_fixture("vr_foraging_derived")
    pophys = load_fixture("pophys_derived")
    fib = load_fixture("fib_derived")
    fixtures = {"vr": vr_derived, "fib": fib, "pophys": pophys}

    pools: dict[str, list[Record]] = {}
    pools_full: dict[str, list[Record]] = {}
    for kind, record in fixtures.items():
        metrics = record["quality_control"]["metrics"]
        pools_full[kind] = metrics
        pools[kind] = [{**m, "description": _short(m.get("description"), 40)} for m in metrics]

    fib_surgery = next(
        s for s in fib["procedures"]["subject_procedures"] if s.get("object_type") == "Surgery"
    )
    fib_surgery = dict(fib_surgery)
    # Implants and injections are rebuilt per subject; keep the surgery envelope and headframe.
    fib_surgery["procedures"] = [p for p in fib_surgery["procedures"] if p.get("object_type") == "Headframe"]

    return _Templates(
        subject_details=vr_raw["subject"]["subject_details"],
        vr_procedures=vr_raw["procedures"],
        pophys_procedures=pophys["procedures"],
        fib_surgery=fib_surgery,
        raw_processing=vr_raw["processing"],
        instrument_full={k: r["instrument"] for k, r in fixtures.items()},
        calibrations_full={k: r["acquisition"]["calibrations"] for k, r in fixtures.items()},
        stimulus_epochs_full={k: r["acquisition"]["stimulus_epochs"] for k, r in fixtures.items()},
        metric_pools=pools,
        metric_pools_full=pools_full,
        default_grouping={k: r["quality_control"]["default_grouping"] for k, r in fixtures.items()},
    )


# --------------------------------------------------------------------------------------
# Small helpers: time formats, weighted choice, people
# --------------------------------------------------------------------------------------
def _iso_z(dt: datetime) -> str:
    # isoformat is several times faster than strftime, which matters at 100,000 records.
    return dt.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def _iso_ms_z(dt: datetime) -> str:
    """DocDB's own bookkeeping format: ``2026-02-14T12:34:44.410Z``."""
    return dt.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _pacific(dt: datetime) -> datetime:
    # Lab clocks are Pacific; an approximate DST rule is enough for realistic offsets.
    hours = -7 if 3 <= dt.month <= 10 else -8
    return dt.astimezone(timezone(timedelta(hours=hours)))


def _iso_offset(dt: datetime, sep: str = "T") -> str:
    return _pacific(dt).isoformat(sep=sep, timespec="microseconds")


def _stamp(dt: datetime) -> str:
    return f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}_{dt.hour:02d}-{dt.minute:02d}-{dt.second:02d}"


def _person(name: str) -> Record:
    return {
        "name": name,
        "object_type": "Person",
        "registry": "Open Researcher and Contributor ID (ORCID)",
        "registry_identifier": None,
    }


def _modality(abbreviation: str) -> Record:
    return {"abbreviation": abbreviation, "name": MODALITY_NAMES[abbreviation]}


def _dotted(name: str) -> str:
    return ".".join(name.lower().split())


@dataclass
class _TimeStyle:
    """How one subject's lab writes times: ``Z`` or a Pacific offset, ``T`` or space."""

    offset: bool
    sep: str = "T"

    def fmt(self, dt: datetime) -> str:
        return _iso_offset(dt, self.sep) if self.offset else _iso_z(dt)

    def name_clock(self, dt: datetime) -> datetime:
        return _pacific(dt) if self.offset else dt.astimezone(UTC)


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
class _CorpusBuilder:
    """Builds subjects, sessions and records from one seeded RNG (so output is reproducible)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.t = _templates()

    # -- randomness helpers ------------------------------------------------------------
    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def weighted(self, options: Sequence[tuple[Any, float]]) -> Any:
        total = sum(w for _, w in options)
        x = self.rng.random() * total
        for value, weight in options:
            x -= weight
            if x < 0:
                return value
        return options[-1][0]

    def between(self, start: datetime, hours_lo: float, hours_hi: float) -> datetime:
        return start + timedelta(hours=self.rng.uniform(hours_lo, hours_hi))

    def before_horizon(self, start: datetime, hours_lo: float, hours_hi: float) -> datetime:
        """Like :meth:`between`, but not past PROCESSING_HORIZON when there is room before it."""
        room = (PROCESSING_HORIZON - start).total_seconds() / 3600
        if room > hours_lo:
            hours_hi = min(hours_hi, room)
        return self.between(start, hours_lo, hours_hi)

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

    # -- quality control ---------------------------------------------------------------
    def quality_control(
        self, session: _Session, modalities: Sequence[str], t0: datetime, stage: str, full: bool
    ) -> tuple[Record, datetime]:
        kind = session.subject.family.qc_kind
        fmt = session.subject.time_style.fmt
        latest = t0
        if kind in self.t.metric_pools:
            pool = self.t.metric_pools_full[kind] if full else self.t.metric_pools[kind]
            if full or len(pool) <= 4:
                chosen = pool
            else:
                picks = sorted(self.rng.sample(range(len(pool)), self.rng.randint(1, 4)))
                chosen = [pool[i] for i in picks]
            metrics = [_clone(metric) for metric in chosen]
            if full:
                grouping = _clone(self.t.default_grouping[kind])
            else:
                grouping = ["modality", _tag_types(metrics)]
        else:
            metrics = self.synthetic_metrics(kind, modalities, stage)
            grouping = ["modality", _tag_types(metrics)]
        for metric in metrics:
            metric["status_history"], reviewed = self.status_history(t0, fmt)
            latest = max(latest, reviewed)
        status = _aggregate_status(metrics)
        if self.chance(0.02):
            status["Stale tag:removed"] = "Fail"  # a status left behind by a deleted metric
        qc = {
            "object_type": "Quality control",
            "describedBy": _SCHEMA_URL.format("quality_control"),
            "schema_version": "2.4.0",
            "metrics": metrics,
            "key_experimenters": None,
            "notes": None,
            "default_grouping": grouping,
            "allow_tag_failures": [],
            "status": status,
        }
        return qc, latest

    def status_history(self, t0: datetime, fmt: Any) -> tuple[list[Record], datetime]:
        t = t0 + timedelta(seconds=self.rng.uniform(0, 300))
        first = self.weighted([("Pass", 0.6), ("Fail", 0.14), ("Pending", 0.26)])
        history = [
            {"object_type": "QC status", "evaluator": "Automated", "status": first, "timestamp": fmt(t)}
        ]
        if self.chance(0.25):
            t = self.before_horizon(t, 1, 24 * 30)
            reviewer = self.rng.choice(("Huy Nguyen", "Olivia Unokesan", "Ren Takeda", "Priya Raman"))
            history.append(
                {
                    "object_type": "QC status",
                    "evaluator": reviewer,
                    "status": self.weighted([("Pass", 0.75), ("Fail", 0.25)]),
                    "timestamp": fmt(t),
                }
            )
        return history, t

    def synthetic_metrics(self, kind: str, modalities: Sequence[str], stage: str) -> list[Record]:
        specs = _SYNTHETIC_METRICS[kind]
        usable = [s for s in specs if s[1] in modalities or s[1] == "*"]
        if not usable:
            usable = specs
        count = min(len(usable), self.rng.randint(1, 5))
        picks = sorted(self.rng.sample(range(len(usable)), count))
        metrics = []
        for i in picks:
            name, modality, tag_type, tag_values, value_kind = usable[i]
            abbreviation = modality if modality != "*" else modalities[0] if modalities else "behavior"
            if abbreviation not in MODALITY_NAMES:
                abbreviation = "behavior"
            tag_value = self.rng.choice(tag_values)
            metric: Record = {
                "object_type": "QC metric",
                "name": f"{name} {tag_value}" if tag_type else name,
                "modality": _modality(abbreviation),
                "stage": stage
                if self.chance(0.8)
                else ("Raw data" if stage == "Processing" else "Processing"),
                "value": self.metric_value(value_kind),
                "status_history": [],
                "description": f"Check {name.lower()}.",
                "reference": None,
                "tags": {tag_type: tag_value} if tag_type else {},  # the schema's tags are a dict
                "evaluated_assets": None,
            }
            if value_kind == "curation":
                metric["object_type"] = "Curation metric"
                metric["type"] = "ecephys units"
                metric["curation_history"] = [{"curator": "Owen Price", "timestamp": "2025-01-01T00:00:00Z"}]
            metrics.append(metric)
        return metrics

    def metric_value(self, kind: str) -> Any:
        rng = self.rng
        if kind == "none":
            return None
        if kind == "bool":
            return rng.random() < 0.8
        if kind == "int":
            return rng.randint(0, 5000)
        if kind == "float":
            return round(rng.uniform(0, 1), 4)
        if kind == "str":
            return rng.choice(
                ("ok", "Drift detected", "Sorted with Kilosort 4", "no licks in first 10 min", "")
            )
        if kind == "list":
            return sorted(rng.sample(range(384), rng.randint(0, 6)))
        if kind == "dict":
            return {"value": round(rng.uniform(0, 100), 2), "unit": "percent", "threshold": 5}
        if kind == "dropdown":
            return {
                "value": None,
                "options": ["Good", "Acceptable", "Bad"],
                "status": ["Pass", "Pass", "Fail"],
                "type": "dropdown",
            }
        if kind == "curation":  # a Curation metric's value is a list (one entry per curation)
            return [{"unit_id": i, "label": rng.choice(("good", "mua", "noise"))} for i in range(3)]
        raise ValueError(kind)


# (name, modality or "*", tag type or None, tag values, value kind)
_MetricSpec = tuple[str, str, str | None, tuple[str, ...], str]
_SYNTHETIC_METRICS: dict[str, list[_MetricSpec]] = {
    "behavior": [
        ("Lick interval violations", "behavior", "Behavior", ("Licks",), "float"),
        ("Reward delivery", "behavior", "Behavior", ("Rewards",), "bool"),
        ("Side bias", "behavior", "Behavior", ("Performance",), "float"),
        ("Finished trials", "behavior", "Behavior", ("Performance",), "int"),
        ("Task parameters", "behavior", "Behavior", ("Task",), "dict"),
        ("Session notes", "behavior", None, ("",), "str"),
        ("Video frame count", "behavior-videos", "Video", ("BottomCamera", "SideCamera"), "int"),
        ("Dropped frames", "behavior-videos", "Video", ("BottomCamera", "SideCamera"), "list"),
        ("Timestamps monotonic", "behavior-videos", "Video", ("BottomCamera", "SideCamera"), "bool"),
        ("Reviewer comment", "*", None, ("",), "none"),
    ],
    "ecephys": [
        ("AP band noise", "ecephys", "Probe", ("ProbeA", "ProbeB", "ProbeC", "ProbeD"), "float"),
        ("Drift map", "ecephys", "Probe", ("ProbeA", "ProbeB", "ProbeC", "ProbeD"), "dropdown"),
        ("Unit yield", "ecephys", "Probe", ("ProbeA", "ProbeB", "ProbeC", "ProbeD"), "int"),
        ("Bad channels", "ecephys", "Probe", ("ProbeA", "ProbeB", "ProbeC", "ProbeD"), "list"),
        ("Sorting summary", "ecephys", None, ("",), "str"),
        ("LFP present", "ecephys", None, ("",), "bool"),
        ("Unit curation", "ecephys", "Probe", ("ProbeA", "ProbeB"), "curation"),
        ("Eye camera frames", "behavior-videos", "Video", ("EyeCamera",), "int"),
        ("Running wheel", "behavior", "Behavior", ("Encoder",), "none"),
    ],
    "spim": [
        (
            "Stitching alignment",
            "SPIM",
            "Channel",
            ("Ex_488_Em_525", "Ex_561_Em_593", "Ex_639_Em_667"),
            "dropdown",
        ),
        ("Cell count", "SPIM", "Channel", ("Ex_488_Em_525", "Ex_561_Em_593", "Ex_639_Em_667"), "int"),
        ("Tile overlap", "SPIM", "Channel", ("Ex_488_Em_525", "Ex_639_Em_667"), "list"),
        ("Registration to CCF", "SPIM", "Registration", ("CCF",), "str"),
        ("Intensity saturation", "SPIM", "Channel", ("Ex_488_Em_525", "Ex_639_Em_667"), "float"),
        ("Imaging complete", "SPIM", None, ("",), "bool"),
    ],
    "slap2": [
        ("Motion correction", "slap2", "FOV", ("FOV_0", "FOV_1"), "dropdown"),
        ("Dendrite count", "slap2", "FOV", ("FOV_0", "FOV_1"), "int"),
        ("Frame rate", "slap2", None, ("",), "float"),
        ("Laser power log", "slap2", None, ("",), "dict"),
        ("Notes", "slap2", None, ("",), "str"),
        ("Face camera", "behavior-videos", "Video", ("FaceCamera",), "bool"),
    ],
}


# A probe tip's coordinate system, in the schema's minimum form (lean records: the size
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


def _tag_types(metrics: Iterable[Record]) -> list[str]:
    types: list[str] = []
    for metric in metrics:
        tags = metric.get("tags")
        for tag in tags if isinstance(tags, dict) else ():
            if tag not in types:
                types.append(tag)
    return types


def _aggregate_status(metrics: Iterable[Record]) -> dict[str, str]:
    """Status per tag key, then per modality, then per stage, like the real QC writer.

    Dict tags give keys ``<type>:<value>``; list tags (ophys) give the tag strings.
    A group fails if any metric fails, else is pending if any is pending.
    """
    groups: dict[str, list[str]] = {}
    modality_groups: dict[str, list[str]] = {}
    stage_groups: dict[str, list[str]] = {}
    for metric in metrics:
        if metric.get("object_type") == "Curation metric":
            continue
        history = metric.get("status_history") or []
        status = history[-1]["status"] if history else "Pending"
        tags = metric.get("tags")
        if isinstance(tags, dict):
            keys = [f"{k}:{v}" for k, v in tags.items()]
        elif isinstance(tags, list):
            keys = [str(t) for t in tags]
        else:
            keys = []
        for key in keys:
            groups.setdefault(key, []).append(status)
        modality = (metric.get("modality") or {}).get("abbreviation")
        if modality:
            modality_groups.setdefault(modality, []).append(status)
        if metric.get("stage"):
            stage_groups.setdefault(metric["stage"], []).append(status)
    result: dict[str, str] = {}
    for group in (groups, modality_groups, stage_groups):
        for key, statuses in group.items():
            result[key] = "Fail" if "Fail" in statuses else "Pending" if "Pending" in statuses else "Pass"
    return result


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
    near 300 KB) without changing what the tables read (``bdc_local.record_sizes``).
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


def mutate_records(records: Sequence[Record], fraction: float, *, seed: int) -> list[Record]:
    """Changed copies of a deterministic ``fraction`` of ``records`` (for incremental runs).

    Each copy keeps its ``_id`` and ``name``, gets a ``_last_modified`` later than any
    in ``records`` (distinct per copy), and one changed field: ``project_name``, a QC
    status (``quality_control.status`` entry plus a new ``status_history`` entry), or
    the experimenters. The inputs are not modified.
    """
    if not 0 <= fraction <= 1:
        raise ValueError("fraction must be within [0, 1]")
    rng = random.Random(f"mutate:{seed}")
    count = round(len(records) * fraction)
    if fraction > 0 and records and count == 0:
        count = 1
    indices = sorted(rng.sample(range(len(records)), count))
    base = max(latest_modified(records) or LATEST_MODIFIED, LATEST_MODIFIED) + timedelta(days=1)
    changed = []
    for j, i in enumerate(indices):
        record = json.loads(json.dumps(records[i]))  # a deep copy that keeps odd strings intact
        when = base + timedelta(seconds=j, milliseconds=rng.randrange(1000))
        kind = rng.choice(("project", "qc", "qc", "experimenters"))
        if not (kind == "qc" and _mutate_qc(record, rng, when)):
            if not (kind == "experimenters" and _mutate_experimenters(record, rng)):
                _mutate_project(record, rng)
        record["_last_modified"] = _iso_ms_z(when)
        changed.append(record)
    return changed


def _mutate_project(record: Record, rng: random.Random) -> None:
    description = record.get("data_description")
    if not isinstance(description, dict):
        description = {}
        record["data_description"] = description
    current = description.get("project_name")
    description["project_name"] = rng.choice([p for p in PROJECT_NAMES if p != current])


def _mutate_qc(record: Record, rng: random.Random, when: datetime) -> bool:
    qc = record.get("quality_control")
    if not isinstance(qc, dict) or not isinstance(qc.get("status"), dict) or not qc["status"]:
        return False
    key = rng.choice(sorted(qc["status"]))
    old = qc["status"][key]
    new = rng.choice([s for s in ("Pass", "Fail", "Pending") if s != old])
    qc["status"][key] = new
    for metric in qc.get("metrics") or []:
        if isinstance(metric, dict) and isinstance(metric.get("status_history"), list):
            metric["status_history"].append(
                {
                    "object_type": "QC status",
                    "evaluator": "Huy Nguyen",
                    "status": new,
                    "timestamp": _iso_z(when),
                }
            )
            break
    return True


def _mutate_experimenters(record: Record, rng: random.Random) -> bool:
    acquisition = record.get("acquisition")
    if not isinstance(acquisition, dict) or not isinstance(acquisition.get("experimenters"), list):
        return False
    acquisition["experimenters"] = acquisition["experimenters"] + [
        rng.choice(("Olivia Unokesan", "huy.nguyen"))
    ]
    return True


# --------------------------------------------------------------------------------------
# Malformed records
# --------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------
# v1 records
# --------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------
# JSON lines
# --------------------------------------------------------------------------------------
def _dump_line(record: Record) -> str:
    try:
        line = json.dumps(record, ensure_ascii=False)
        line.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates cannot be UTF-8 encoded; \u escapes keep them and stay valid UTF-8.
        line = json.dumps(record, ensure_ascii=True)
    return line


def write_jsonl(records: Iterable[Record], path: str | Path | IO[str]) -> int:
    """Write one JSON object per line (UTF-8); returns the number of records written."""
    if not isinstance(path, (str, Path)):
        return _write_lines(records, path)
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        return _write_lines(records, handle)


def _write_lines(records: Iterable[Record], handle: IO[str]) -> int:
    count = 0
    for record in records:
        handle.write(_dump_line(record))
        handle.write("\n")
        count += 1
    return count


def iter_jsonl(path: str | Path) -> Iterator[Record]:
    """Stream the records of a JSON-lines file, one line at a time (blank lines skipped)."""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def read_jsonl(path: str | Path) -> list[Record]:
    """All records of a JSON-lines file written by :func:`write_jsonl` (read line by line)."""
    return list(iter_jsonl(path))


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bdc_local.corpus", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="number of valid v2 records")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--subjects", type=int, default=None, help="number of subjects (default n/12)")
    parser.add_argument("--malformed", type=int, default=0, help="also append this many damaged records")
    parser.add_argument("--out", default="-", help="output JSON-lines file ('-' for stdout)")
    parser.add_argument("--v1", type=int, default=0, help="number of v1 records to write to --v1-out")
    parser.add_argument("--v1-out", default=None, help="JSON-lines file for the v1 records")
    args = parser.parse_args(argv)

    if args.v1 and not args.v1_out:
        parser.error("--v1 needs --v1-out")
    extra = malformed_records(args.malformed, seed=args.seed) if args.malformed else []
    # Stream unless the v1 records need the whole corpus: 100,000 records in memory take ~1.6 GB.
    records: list[Record] | None = None
    if args.v1:
        records = generate_corpus(args.n, seed=args.seed, subjects=args.subjects)
    stream = records if records is not None else iter_corpus(args.n, seed=args.seed, subjects=args.subjects)
    target: str | IO[str] = sys.stdout if args.out == "-" else args.out
    written = write_jsonl(itertools.chain(stream, extra), target)
    if records is not None:
        write_jsonl(v1_records(records, args.v1, seed=args.seed), args.v1_out)
    print(f"wrote {written} records ({len(extra)} malformed)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
