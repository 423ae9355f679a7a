"""`make mutate`'s own rules: which tests a mutant runs, the reviewed equivalents, the score.
Expected values are written by hand."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench import mutate

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def test_core_mutants_run_unit_tests_and_remediation_mutants_the_flows_tests() -> None:
    record = {
        "lambdas.core.rewrite.x_rewrite_policy": {
            "tests/unit/test_rewrite.py::test_a",
            "tests/functional/test_remediator.py::test_b",
        },
        "lambdas.remediation.remediate.xǁRemediatorǁremediate": {
            "tests/unit/test_flows_on_fakes.py::test_c",
            "tests/functional/test_remediator.py::test_d",
            "tests/functional/test_remediator_guards.py::test_e",
            "tests/functional/test_restore_guards.py::test_f",
            "tests/functional/test_report.py::test_g",
        },
        "lambdas.adapters.backup.xǁBackupStoreǁput": {
            "tests/functional/test_backup_store.py::test_h",
            "tests/functional/test_findings_handlers.py::test_i",
        },
        "lambdas.validator.handler.x_handler": {"tests/functional/test_validator.py::test_j"},
    }
    mutate.select_tests(record)
    assert record == {
        "lambdas.core.rewrite.x_rewrite_policy": {"tests/unit/test_rewrite.py::test_a"},
        "lambdas.remediation.remediate.xǁRemediatorǁremediate": {
            "tests/unit/test_flows_on_fakes.py::test_c",
            "tests/functional/test_remediator.py::test_d",
            "tests/functional/test_remediator_guards.py::test_e",
        },
        "lambdas.adapters.backup.xǁBackupStoreǁput": {
            "tests/functional/test_backup_store.py::test_h"
        },
        # a module make mutate does not mutate keeps its record
        "lambdas.validator.handler.x_handler": {"tests/functional/test_validator.py::test_j"},
    }


def test_selected_functional_files_exist() -> None:
    for kept in mutate.SELECTED_TESTS.values():
        for prefix in kept:
            path = ROOT / prefix.removesuffix("::")
            assert path.exists(), prefix


def test_equivalents_need_a_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    listed = tmp_path / "equivalent.txt"
    listed.write_text(
        "# reviewed\n\nlambdas.core.a.x_f__mutmut_1  None and False both falsy here\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(mutate, "EQUIVALENT", listed)
    assert mutate.equivalents() == {
        "lambdas.core.a.x_f__mutmut_1": "None and False both falsy here"
    }
    listed.write_text("lambdas.core.a.x_f__mutmut_1\n", encoding="utf-8")
    with pytest.raises(
        SystemExit, match=r"equivalent.txt:1: lambdas.core.a.x_f__mutmut_1: no reason"
    ):
        mutate.equivalents()


def test_every_reviewed_equivalent_names_a_mutant_of_a_listed_module() -> None:
    prefixes = tuple(mutate._module_prefix(path) for path in mutate.MODULES.values())
    named = re.compile(r"^[\w.ǁ]+__mutmut_\d+$")
    for name, reason in mutate.equivalents().items():
        assert name.startswith(prefixes), name
        assert named.match(name), name
        assert len(reason) > 20, name


def test_score_is_killed_over_judged() -> None:
    assert mutate.Tally(killed=9, survived=1, timeout=4, equivalent=3).score == 0.9
    assert mutate.Tally(killed=9, no_tests=1, not_checked=50).score == 0.9
    assert mutate.Tally(timeout=2).score is None


def test_committed_results_name_their_commit_and_add_up() -> None:
    results = json.loads((ROOT / "bench" / "mutation.json").read_text(encoding="utf-8"))
    assert re.fullmatch(r"[0-9a-f]{40}", results["commit"])
    assert set(results["modules"]) == set(mutate.MODULES)
    for module, row in results["modules"].items():
        judged = row["killed"] + row["survived"] + row["no_tests"]
        assert row["score"] == (round(row["killed"] / judged, 4) if judged else None), module
    survivors = [s for s in results["survivors"] if s["status"] == "survived"]
    assert len(survivors) == sum(row["survived"] for row in results["modules"].values())


def test_pyproject_collects_the_tests_the_runner_selects() -> None:
    mutate._check_config()  # raises SystemExit naming the setting that differs


def test_a_session_starts_with_the_evaluators_memos_empty() -> None:
    from lambdas.core import evaluate
    from models.globs import matches
    from models.policy import PolicyStatementModel
    from tests.support.memos import clear_memos

    statement = PolicyStatementModel.model_validate(
        {"Effect": "Allow", "Principal": "*", "Action": "lambda:Invoke*", "Resource": "*"}
    )  # kept alive: the compiled-statement memo forgets a statement once it is gone
    request = evaluate.Request(evaluate.Principal.root("123456789012"), "lambda:InvokeFunction")
    assert evaluate.evaluate([statement], request).answer is evaluate.Answer.ALLOW
    assert matches("a*", "ab")
    assert evaluate._like.cache_info().currsize > 0
    assert evaluate._COMPILED
    assert clear_memos() >= 5
    assert evaluate._like.cache_info().currsize == 0
    assert evaluate._action_matches.cache_info().currsize == 0
    assert not evaluate._COMPILED
