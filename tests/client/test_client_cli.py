"""The ``biodata-cache`` command line tool."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cache_fixtures import FOLDER, RUN_ID, run_report_document

from biodata_cache import catalog
from biodata_cache.cli import main


@pytest.fixture
def run(local_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Any:
    def invoke(*args: str) -> tuple[int, str, str]:
        code = main(["--root", local_root.as_uri(), "--cache-dir", str(tmp_path / "c"), *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


def test_tables(run: Any, local_root: Path) -> None:
    code, out, err = run("tables")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == f"{local_root.as_uri()}/{FOLDER}/"
    assert lines[1].split() == ["TABLE", "TYPE", "PARTITIONED", "BY", "ROWS", "LAST", "BUILT", "STATUS"]
    basics = next(line for line in lines if line.split()[:1] == ["asset_basics"])
    assert basics.split() == ["asset_basics", "metadata", "-", "8", "2026-01-01T00:10:00+00:00", "ok"]
    assert len(lines) == 2 + len(catalog.ALL_TABLES)


def test_head(run: Any) -> None:
    code, out, _ = run("head", "asset_basics", "-n", "2", "--columns", "name,subject_id")
    assert code == 0
    assert out.splitlines()[0].split() == ["name", "subject_id"]
    assert len(out.splitlines()) == 3
    code, out, _ = run("head", "quality_control", "--partition", "100001")
    assert code == 0 and "drift" in out
    code, out, _ = run("head", "platform_qc", "--partition", "fib")
    assert code == 0 and "fib_1" in out


def test_head_of_a_partitioned_table_needs_a_partition(run: Any) -> None:
    code, out, err = run("head", "quality_control")
    assert (code, out) == (1, "")
    assert err == "error: quality_control is partitioned by subject_id: pass --partition <subject_id>\n"


def test_sql(run: Any) -> None:
    code, out, _ = run("sql", "SELECT subject_id FROM unique_subject_ids ORDER BY 1", "--format", "csv")
    assert (code, out) == (0, "subject_id\n100001\n100002\n100003\n")
    code, out, _ = run(
        "sql", "SELECT count(*) AS n FROM quality_control WHERE subject_id = '100001'", "--format", "json"
    )
    assert json.loads(out) == [{"n": 3}]
    code, out, _ = run("sql", "SELECT project_name FROM unique_project_names")
    assert out.split() == ["project_name", "Project", "A", "Project", "B"]


def test_sql_error(run: Any) -> None:
    code, _, err = run("sql", "SELEC 1")
    assert code == 1 and err.startswith('error: Parser Error: syntax error at or near "SELEC"')


def test_versions(run: Any) -> None:
    _, out, _ = run("versions")
    assert out.splitlines() == ["bdc-v0.9", "bdc-v0.10", "bdc-v1.0  (read by default)"]


def test_report(run: Any) -> None:
    code, out, _ = run("report")
    assert code == 0 and json.loads(out) == run_report_document()
    _, out, _ = run("report", RUN_ID)
    assert json.loads(out)["run_id"] == RUN_ID


def test_errors_are_one_line(run: Any) -> None:
    code, out, err = run("--cache-version", "7.0", "tables")
    assert code == 1 and out == ""
    assert err.startswith("error: cache version bdc-v7.0 does not exist in file://")
    assert err.count("\n") == 1
    code, _, err = run("head", "nope")
    assert err == f"error: unknown table 'nope'; known tables: {', '.join(sorted(catalog.TABLES))}\n"
    code, _, err = run("--cache-version", "latest", "versions")
    assert err.startswith("error: not a cache version: 'latest'")


def test_rebuild(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    class FakeLambda:
        def invoke(self, **kwargs: Any) -> dict[str, Any]:
            calls.append(kwargs)
            tables = json.loads(kwargs["Payload"])["tables"]
            answer = {"ok": True, "run_id": "run-9", "tables": tables, "enqueued": tables}
            return {"Payload": io.BytesIO(json.dumps(answer).encode())}

    import boto3

    monkeypatch.setattr(boto3, "client", lambda service, **kw: FakeLambda())
    code, out, _ = run(
        "rebuild", "asset_basics", "source_data", "--function", "arn:aws:lambda:x:1:function:d"
    )
    assert (code, out) == (0, "run run-9 started: asset_basics, source_data\n")
    assert calls[0]["FunctionName"] == "arn:aws:lambda:x:1:function:d"
    code, _, err = run("rebuild", "asset_basics")
    assert code == 1 and err.startswith("error: no dispatcher Lambda named")


def test_cache_info_and_clear(local_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache_dir = tmp_path / "c"
    (cache_dir / "objects" / "s3" / "x").mkdir(parents=True)
    (cache_dir / "objects" / "s3" / "x" / "t.pqt").write_bytes(b"x" * 2_000_000)
    assert main(["--cache-dir", str(cache_dir), "cache", "info"]) == 0
    assert capsys.readouterr().out == f"{cache_dir}: 1 files, 2.0 MB\n"
    assert main(["--cache-dir", str(cache_dir), "cache", "clear"]) == 0
    assert capsys.readouterr().out == f"cleared {cache_dir} (2.0 MB)\n"
    assert not (cache_dir / "objects").exists()


def test_console_script_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "biodata_cache.cli", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("tables", "head", "sql", "versions", "report", "rebuild", "cache"):
        assert command in result.stdout
