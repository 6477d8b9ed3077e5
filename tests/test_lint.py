"""The code base stays lint- and type-clean under the configuration in pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=False)


@pytest.mark.parametrize("argv", [
    pytest.param(("ruff", "check", "ci_nix", "bench", "tests", "fixtures"), id="ruff"),
    # strict, over the files in [tool.mypy]; slow: with a fresh clone's cold cache it is one
    # of the longest tests, so it starts first, not last beside an idle worker
    pytest.param(("mypy",), id="mypy", marks=pytest.mark.slow),
])
def test_clean(argv: tuple[str, ...]) -> None:
    result = _run(*argv)
    assert result.returncode == 0, (f"{' '.join(argv)} exited {result.returncode}:\n"
                                    f"{result.stdout}{result.stderr}")


def test_mypy_checks_the_tests_too() -> None:
    """Tests, bench and fixtures are held to the same strict typing as the package: a narrowed
    [tool.mypy] files list would let them rot unnoticed."""
    mypy = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert mypy["strict"] is True
    assert {"ci_nix", "tests", "bench", "fixtures"} <= set(mypy["files"]), mypy["files"]
    assert "exclude" not in mypy, mypy["exclude"]


def test_the_suites_xdist_groups_take_effect(request: pytest.FixtureRequest) -> None:
    """Under scripts/test.sh (`--dist loadgroup`) each test goes out with its group
    (tests/conftest.py: a file on one worker, its module fixtures and caches built once), its id
    ending in it. pytest 9.2's structured ids made pytest-xdist 3.8 drop every group without a
    word (pytest-dev/pytest-xdist#1386), so pyproject keeps pytest below 9.2 until xdist reads
    them; a serial run (-n0) has no groups to check."""
    if getattr(request.config.option, "loadgroup", False):
        assert "@" in request.node.nodeid, (
            f"{request.node.nodeid}: xdist's loadgroup lost tests/conftest.py's group "
            "(pytest-dev/pytest-xdist#1386: use pytest below 9.2)")
