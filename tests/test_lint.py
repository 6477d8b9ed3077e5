"""The code base stays lint- and type-clean under the configuration in pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=False)


@pytest.mark.parametrize("argv", [
    pytest.param(("ruff", "check", "ci_nix", "bench", "tests", "fixtures"), id="ruff"),
    pytest.param(("mypy",), id="mypy"),  # strict, packages from [tool.mypy]
])
def test_clean(argv: tuple[str, ...]) -> None:
    result = _run(*argv)
    assert result.returncode == 0, (f"{' '.join(argv)} exited {result.returncode}:\n"
                                    f"{result.stdout}{result.stderr}")
