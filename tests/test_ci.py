"""CI runs style, lint and type checks before the tests, and pre-commit runs the same checks."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _commands(path: Path) -> list[str]:
    return [
        line.strip() for line in path.read_text().splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]


def test_ci_runs_the_checks_before_the_tests() -> None:
    commands = _commands(ROOT / ".ci" / "run")
    lint, tests = commands.index("bash scripts/lint.sh"), commands.index("bash scripts/test.sh")
    assert commands.index("bash scripts/setup.sh") < lint < tests


def test_lint_runs_ruff_check_ruff_format_check_and_mypy() -> None:
    script = (ROOT / "scripts" / "lint.sh").read_text()
    assert 'run "ruff check" .venv/bin/ruff check .' in script
    assert 'run "ruff format --check" .venv/bin/ruff format --check .' in script
    assert re.search(r"run \"mypy\" env DEBUG=1 \.venv/bin/mypy annotate cmi_common rm_service tests", script)


def test_pre_commit_runs_the_same_tools_as_ci() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    entries = {hook["id"]: hook["entry"] for repo in config["repos"] for hook in repo["hooks"]}
    script = (ROOT / "scripts" / "lint.sh").read_text()
    assert entries["ruff-check"].startswith(".venv/bin/ruff check")
    assert entries["ruff-format"].startswith(".venv/bin/ruff format --check")
    mypy_targets = entries["mypy"].split(".venv/bin/mypy ")[1]
    assert f".venv/bin/mypy {mypy_targets}" in script


def test_the_type_checker_knows_django_and_drf() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["tool"]["mypy"]["plugins"] == ["mypy_django_plugin.main", "mypy_drf_plugin.main"]
    dev = pyproject["project"]["optional-dependencies"]["dev"]
    assert any(re.fullmatch(r"djangorestframework-stubs==[\d.]+", requirement) for requirement in dev)
    assert "ruff==0.17.6" in dev
