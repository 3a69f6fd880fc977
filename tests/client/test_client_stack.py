"""The client reading what the real Lambdas built in the local stack.

One nightly run over a small corpus (the four real records plus generated ones) in
moto server + the local DocDB API; then every client function reads the result.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import biodata_cache as bc
from biodata_cache import catalog
from biodata_cache.cli import main
from biodata_cache.rebuild import start_rebuild

stack_module = pytest.importorskip("bdc_local.stack")
pytestmark = pytest.mark.e2e

REAL_RECORDS = 4  # tests/conftest.py's real_records


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory, real_records: dict[str, dict]
) -> Iterator[tuple[Any, Any]]:
    """A local stack after one scheduled run of every table."""
    from bdc_local.corpus import generate_corpus, write_jsonl
    from bdc_local.runner import run_and_wait

    records = [*real_records.values(), *generate_corpus(40, seed=3)]
    path: Path = tmp_path_factory.mktemp("stack-corpus") / "records.jsonl"
    write_jsonl(records, path)
    saved = dict(os.environ)
    try:
        config = stack_module.StackConfig(worker_timeout_seconds=60)
        with stack_module.local_stack(path, config=config) as stack:
            stack.load_sources(records, seed=3)
            result = run_and_wait(stack, timeout=300)
            yield stack, result
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture
def stack(built: tuple[Any, Any], tmp_path: Path) -> Any:
    stack = built[0]
    bc.configure(bucket=stack.config.bucket, endpoint_url=stack.moto_url, cache_dir=tmp_path / "cache")
    return stack


def test_every_table_was_built(built: tuple[Any, Any], stack: Any) -> None:
    registry = bc.get_cache_registry()
    assert registry.names == [spec.name for spec in catalog.ALL_TABLES]
    assert {t.name: t.status for t in registry.tables} == dict.fromkeys(catalog.TABLES, "ok")
    assert {t.last_run_id for t in registry.tables} == {built[1].run_id}


def test_lists_and_tables_match_the_registry(stack: Any) -> None:
    registry = bc.get_cache_registry()
    for spec in catalog.ALL_TABLES:
        if spec.returns != "values":
            continue
        values = getattr(bc, spec.function_name)()
        assert isinstance(values, list) and values == sorted(values)
        assert len(values) == registry[spec.name].rows
    for spec in catalog.ALL_TABLES:
        if spec.returns != "frame" or spec.partitioned:
            continue
        name = spec.name
        frame = getattr(bc, spec.function_name)()
        assert isinstance(frame, pd.DataFrame)
        assert len(frame) == registry[name].rows, name
        assert set(catalog.get_spec(name).column_names) <= set(frame.columns), name
    assert len(bc.asset_basics()) == REAL_RECORDS + 40


def test_partitioned_tables(stack: Any) -> None:
    registry = bc.get_cache_registry()
    subjects = bc.unique_subject_ids()
    qc_rows = sum(len(bc.qc(subject)) for subject in subjects)
    assert qc_rows == registry["quality_control"].rows
    tag_rows = sum(len(bc.qc_tag_status(subject)) for subject in subjects)
    assert tag_rows == registry["qc_tag_status"].rows
    platform_rows = sum(len(bc.platform_qc(platform)) for platform in catalog.PLATFORMS)
    assert platform_rows == registry["platform_qc"].rows
    with pytest.raises(bc.UnknownSubjectError):
        bc.qc("not-a-subject")


def test_qc_lazy_sql_and_raw_to_derived(stack: Any) -> None:
    import duckdb

    subject = next(s for s in bc.unique_subject_ids() if len(bc.qc(s)))
    metrics = bc.qc(subject)
    assert duckdb.sql(f"SELECT count(*) FROM read_parquet('{bc.qc(subject, lazy=True)}')").fetchall() == [
        (len(metrics),)
    ]
    joined = bc.sql(
        "SELECT q.name FROM asset_basics a JOIN quality_control q ON a.name = q.asset_name "
        f"WHERE q.subject_id = '{subject}'"
    )
    assert len(joined) == len(metrics)
    sources = bc.source_data()
    raw = sources.loc[sources["source_data"] != "", "source_data"].iloc[0]
    expected = sorted(sources.loc[sources["source_data"] == raw, "name"])
    assert sorted(bc.raw_to_derived(raw)) == expected


def test_versions_report_and_custom(built: tuple[Any, Any], stack: Any) -> None:
    assert bc.list_versions() == ["bdc-v1.0"]
    report = bc.run_report()
    assert report["run_id"] == built[1].run_id
    assert report["totals"]["failed"] == 0
    frame = pd.DataFrame({"score": [0.5, 0.7]})
    bc.custom("client_e2e", frame)
    pd.testing.assert_frame_equal(bc.custom("client_e2e"), frame)


def test_cli_against_the_stack(stack: Any, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--bucket", stack.config.bucket, "--endpoint", stack.moto_url, "--cache-dir", tempfile.mkdtemp()]
    assert main([*args, "tables"]) == 0
    out = capsys.readouterr().out
    rows = bc.get_cache_registry()["asset_basics"].rows
    assert any(
        line.split()[:4] == ["asset_basics", "metadata", "-", f"{rows:,}"] for line in out.splitlines()
    )
    assert main([*args, "report"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["failed"] == 0


def test_rebuild_reaches_the_dispatcher(stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The payload the CLI sends is one the real dispatcher accepts."""
    from bdc_local.runner import invoke_dispatcher

    for name, value in stack.env.items():  # the handler reads its settings from the environment
        monkeypatch.setenv(name, value)

    class LocalLambda:
        def invoke(self, FunctionName: str, InvocationType: str, Payload: bytes) -> dict[str, Any]:
            answer = invoke_dispatcher(json.loads(Payload))
            return {"Payload": io.BytesIO(json.dumps(answer).encode())}

    answer = start_rebuild(["platform_fib"], function_name="bdc-dispatcher", lambda_client=LocalLambda())
    assert answer["ok"] is True and answer["run_id"]
    assert "platform_fib" in answer["tables"]
