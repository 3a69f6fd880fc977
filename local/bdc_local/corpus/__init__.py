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

The package's modules, by concern: ``families`` (the platform families and the facts
they draw from), ``templates`` (fixtures, lean templates, shared helpers), ``builder``
(assembling v2 records; ``iter_corpus``, ``generate_corpus``), ``qc`` (quality control
sections), ``mutate`` (changed copies), ``malformed`` (damage kinds), ``v1`` (v1 records),
``jsonl`` (files) and ``cli`` (``python -m bdc_local.corpus``).
"""

from bdc_local.corpus.builder import generate_corpus, iter_corpus
from bdc_local.corpus.cli import main
from bdc_local.corpus.families import CODEOCEAN_BUCKET, OPEN_DATA_BUCKET, Record, real_fixtures_dir
from bdc_local.corpus.jsonl import read_jsonl, write_jsonl
from bdc_local.corpus.malformed import MALFORMED_KINDS, malformed_records
from bdc_local.corpus.mutate import mutate_records
from bdc_local.corpus.templates import load_fixture
from bdc_local.corpus.v1 import v1_records

__all__ = [
    "CODEOCEAN_BUCKET",
    "MALFORMED_KINDS",
    "OPEN_DATA_BUCKET",
    "Record",
    "generate_corpus",
    "iter_corpus",
    "load_fixture",
    "main",
    "malformed_records",
    "mutate_records",
    "read_jsonl",
    "real_fixtures_dir",
    "v1_records",
    "write_jsonl",
]
