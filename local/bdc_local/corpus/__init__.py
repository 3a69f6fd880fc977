"""Deterministic synthetic corpus of AIND metadata records (DocDB schema v2); see ``builder``."""

from bdc_local.corpus.builder import *  # noqa: F403  (step one of the split: the module moved whole)
