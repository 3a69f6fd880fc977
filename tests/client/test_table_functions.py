"""The tables' functions follow from the catalog: made from each spec (or written by hand
in ``api``), exported by name, declared for type checkers by the generated stub, and
named in the READMEs' sentence about them."""

from __future__ import annotations

import ast
import inspect
import re
from dataclasses import replace
from pathlib import Path

import pytest

import biodata_cache as bc
from biodata_cache import _table_functions, api, catalog

ROOT = Path(__file__).resolve().parents[2]
INIT = Path(bc.__file__)
READMES = [ROOT / "README.md", ROOT / "client" / "README.md"]


# -- made from the spec -----------------------------------------------------------------
def test_each_table_has_its_function_exported_by_name() -> None:
    for spec in catalog.ALL_TABLES:
        function = getattr(bc, spec.function_name)
        assert function is api.TABLE_FUNCTIONS[spec.function_name], spec.name
        assert spec.function_name in bc.__all__ and spec.function_name in dir(bc)
    assert list(api.TABLE_FUNCTIONS) == [spec.function_name for spec in catalog.ALL_TABLES]


def test_the_hand_written_functions_are_table_functions() -> None:
    assert set(api.HAND_WRITTEN) <= {spec.function_name for spec in catalog.ALL_TABLES}
    for name, function in api.HAND_WRITTEN.items():
        assert function.__name__ == name


def test_made_functions_are_named_and_documented_from_their_spec() -> None:
    frame_parameters = ["columns", "filters", "version", "use_cache"]
    for spec in catalog.ALL_TABLES:
        if spec.function_name in api.HAND_WRITTEN:
            continue
        function = getattr(bc, spec.function_name)
        summary = spec.summary or spec.description
        parameters = inspect.signature(function).parameters
        assert function.__name__ == spec.function_name
        assert function.__module__ == "biodata_cache.api"
        if spec.returns == "values":
            assert function.__doc__ == f"{summary}, sorted."
            assert list(parameters) == ["version", "use_cache"]
            assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters.values())
        else:
            assert (function.__doc__ or "").startswith(f"{summary}.\n\nColumns: {spec.column_names[0]}, ")
            assert list(parameters) == frame_parameters


def test_a_values_table_gets_a_list_function() -> None:
    spec = replace(catalog.UNIQUE_GENOTYPES, name="unique_things", summary=None, description="Things")
    (function,) = api.table_functions([spec]).values()
    assert function.__name__ == "unique_things"
    assert function.__doc__ == "Things, sorted."
    assert inspect.signature(function).return_annotation == "list[str]"


def test_a_table_cannot_replace_another_function() -> None:
    clash = replace(catalog.SOURCE_DATA, name="sql")
    with pytest.raises(ValueError, match=r"its function sql would replace biodata_cache\.api\.sql"):
        api.table_functions([clash])


# -- what type checkers see -----------------------------------------------------------
def test_the_stub_is_current() -> None:
    """``_table_functions.pyi`` is what the generator writes today; if not, run
    ``python -m biodata_cache._table_functions``."""
    assert _table_functions.STUB.read_text() == _table_functions.render_stub(), (
        "stale stub: run python -m biodata_cache._table_functions"
    )
    assert _table_functions.main(["--check"]) == 0


def test_a_new_table_makes_the_stub_stale() -> None:
    spec = replace(catalog.SOURCE_DATA, name="new_table")
    functions = {**_table_functions.GENERATED, **api.table_functions([spec])}
    text = _table_functions.render_stub(functions)
    assert text != _table_functions.STUB.read_text()
    assert "def new_table(\n    columns: Sequence[str] | None = None,\n" in text
    assert '    "new_table",\n' in text


def test_the_stub_declares_exactly_the_made_functions() -> None:
    tree = ast.parse(_table_functions.STUB.read_text())
    defined = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]
    assert defined == list(_table_functions.GENERATED)
    assert set(defined) == set(api.TABLE_FUNCTIONS) - set(api.HAND_WRITTEN)
    compile(_table_functions.STUB.read_text(), "stub", "exec")  # valid Python


def _static_names() -> set[str]:
    """The public names type checkers see in ``biodata_cache/__init__.py``: its imports
    under ``TYPE_CHECKING``, the star import counted as the stub's ``__all__``."""
    tree = ast.parse(INIT.read_text())
    (block,) = [
        node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    ]
    names: set[str] = {"__version__"}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom)
        for alias in node.names:
            if alias.name == "*":
                assert node.module == "biodata_cache._table_functions"
                names |= set(_table_functions.__all__)
            else:
                names.add(alias.asname or alias.name)
    return names


def test_type_checkers_see_every_public_name() -> None:
    assert _static_names() == set(bc.__all__)


# -- the READMEs' sentence ---------------------------------------------------------------
_SENTENCE = re.compile(
    r"Every table has a function, named as in 0\.x for the tables 0\.x had: (?P<values>.*?) return lists\. "
    # "return DataFrames, and so does `record_consistency(...)`." may name a non-table function.
    r"(?P<frames>.*?) return DataFrames(?:, [^.]*)?\. So do (?P<partitioned>.*?)\. ",
    re.DOTALL,
)


def readme_functions(text: str) -> dict[str, set[str]]:
    """The functions the sentence names, by what it says they return."""
    match = _SENTENCE.search(text)
    if match is None:
        return {}
    return {kind: set(re.findall(r"`([a-z0-9_]+)[`(]", match[kind])) for kind in _SENTENCE.groupindex}


def catalog_functions() -> dict[str, set[str]]:
    kinds: dict[str, set[str]] = {"values": set(), "frames": set(), "partitioned": set()}
    for spec in catalog.ALL_TABLES:
        kind = "values" if spec.returns == "values" else "partitioned" if spec.partitioned else "frames"
        kinds[kind].add(spec.function_name)
    return kinds


@pytest.mark.parametrize("readme", READMES, ids=lambda path: str(path.relative_to(ROOT)))
def test_the_readme_names_every_table_function(readme: Path) -> None:
    assert readme_functions(readme.read_text()) == catalog_functions()


def test_the_sentence_may_name_other_functions_too() -> None:
    text = READMES[0].read_text().replace(
        " return DataFrames. So do", " return DataFrames, and so does `record_consistency(check=None)`. So do"
    )
    assert "and so does `record_consistency" in text
    assert readme_functions(text) == readme_functions(READMES[0].read_text()) != {}


def test_a_function_missing_from_the_sentence_is_found() -> None:
    text = READMES[0].read_text()
    damaged = text.replace("`platform_fib`, ", "")
    assert readme_functions(text)["frames"] - readme_functions(damaged)["frames"] == {"platform_fib"}
