"""Name normalisation keeps Unicode letters (tables.md deviation): experimenters, investigators, trainers."""

from __future__ import annotations

import unicodedata

import pyarrow as pa
import pytest

from bdc_sync.names import clean_names
from bdc_sync.tables import asset_basics, foraging_sessions


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (["tomás.pérez"], ["Tomás Pérez"]),
        (["Ana-Lucía"], ["Ana Lucía"]),
        ([unicodedata.normalize("NFD", "tomás.pérez")], ["Tomás Pérez"]),  # decomposed accents
        (["TOMÁS PÉREZ", "tomás pérez"], ["Tomás Pérez"]),
        (["Zoë_Ng"], ["Zoë Ng"]),  # "_" is not a name character
        (["Łukasz Żółw, Søren Ødegård"], ["Łukasz Żółw", "Søren Ødegård"]),
        (["Tom", "Tomás Pérez"], ["Tom", "Tomás Pérez"]),  # Tom is not the first word of Tomás
        (["Tomás", "Tomás Pérez"], ["Tomás Pérez"]),
    ],
)
def test_clean_names_keeps_unicode_letters(raw: list[str], expected: list[str]) -> None:
    assert clean_names(raw) == expected


def _people(experimenters: list[list[str]], investigators: list[list[str]]) -> pa.Table:
    rows = len(experimenters)
    table = pa.table(
        {
            "experimenters": experimenters,
            "investigators": investigators,
            "experimenters_normalized": pa.nulls(rows, pa.list_(pa.string())),
            "investigators_normalized": pa.nulls(rows, pa.list_(pa.string())),
        }
    )
    return asset_basics.normalize_people(table)


def test_one_word_tom_does_not_merge_into_tomas_across_the_table() -> None:
    table = _people(
        [["tomás.pérez"], ["Tom"], ["Tomás"], ["Ana-Lucía"]],
        [["Tomás Pérez"], [], [], ["ana"]],
    )
    assert table["experimenters_normalized"].to_pylist() == [
        ["Tomás Pérez"],
        ["Tom"],  # no multi-word name starts with the word Tom
        ["Tomás Pérez"],  # the only multi-word Tomás
        ["Ana Lucía"],
    ]
    assert table["investigators_normalized"].to_pylist() == [["Tomás Pérez"], [], [], ["Ana Lucía"]]


def test_one_word_tom_merges_into_tom_when_a_tom_exists() -> None:
    table = _people([["Tom"], ["tom.ng"], ["tomás.pérez"]], [[], [], []])
    assert table["experimenters_normalized"].to_pylist() == [["Tom Ng"], ["Tom Ng"], ["Tomás Pérez"]]


def test_trainers_keep_unicode_letters() -> None:
    rows = [{"trainer": "tomás.pérez"}, {"trainer": "Tom"}, {"trainer": "Tomás"}, {"trainer": None}]
    foraging_sessions.normalize_trainers(rows)
    assert [row["trainer_normalized"] for row in rows] == ["Tomás Pérez", "Tom", "Tomás Pérez", ""]
