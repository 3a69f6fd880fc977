"""platform_fib on records shaped like aind-data-schema's FIP acquisition + ophys procedures examples.

The examples name the implant ``Fiber 0`` and the connection target ``Fiber 0``; the old rule
(spaces → underscores on the target side only) matched nothing there.
"""

from __future__ import annotations

import copy

from fip_models import example_pair

from bdc_sync.tables import platform_fib


def _record() -> dict:
    procedures, acquisition = example_pair()
    return {"_id": "fip", "name": "fip_asset", "procedures": procedures, "acquisition": acquisition}


def _implants(record: dict) -> list[dict]:
    return record["procedures"]["subject_procedures"][0]["procedures"]


def test_schema_example_gives_one_row_per_fiber_and_channel() -> None:
    # Fiber 0 → VTA through Patch Cord A (3 channels); Fiber 1 → root ("missing") through
    # Patch Cord B (2 channels, the isosbestic one without an intended measurement).
    assert [
        (r["fiber"], r["patch_cord"], r["channel"], r["intended_measurement"], r["targeted_structure"])
        for r in platform_fib.rows(_record())
    ] == [
        ("Fiber 0", "Patch Cord A", "Fiber 0_red", "dopamine", "VTA"),
        ("Fiber 0", "Patch Cord A", "Fiber 0_green", "calcium", "VTA"),
        ("Fiber 0", "Patch Cord A", "Fiber 0_isosbestic", "control", "VTA"),
        ("Fiber 1", "Patch Cord B", "Fiber 1_green", "calcium", "missing"),
        ("Fiber 1", "Patch Cord B", "Fiber 1_isosbestic", "missing", "missing"),
    ]


def test_spaces_and_underscores_match_either_way_and_rows_carry_the_implant_spelling() -> None:
    underscored_implant = _record()
    for implant in _implants(underscored_implant):
        implant["implanted_device"]["name"] = implant["implanted_device"]["name"].replace(" ", "_")
    assert {r["fiber"] for r in platform_fib.rows(underscored_implant)} == {"Fiber_0", "Fiber_1"}

    underscored_target = copy.deepcopy(_record())
    for connection in underscored_target["acquisition"]["data_streams"][0]["connections"]:
        connection["target_device"] = connection["target_device"].replace(" ", "_")
    assert {r["fiber"] for r in platform_fib.rows(underscored_target)} == {"Fiber 0", "Fiber 1"}


def test_a_different_fiber_number_still_does_not_match() -> None:
    record = _record()
    record["acquisition"]["data_streams"][0]["connections"][1]["target_device"] = "Fiber 10"
    assert {r["fiber"] for r in platform_fib.rows(record)} == {"Fiber 0"}
