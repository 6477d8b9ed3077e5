"""Code-level guarantees: one module starts processes, and nothing goes through a shell."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "ci_nix"


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_only_proc_imports_subprocess() -> None:
    importers = []
    for path in modules():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(name.split(".")[0] in ("subprocess", "pty") for name in names):
                importers.append(path.relative_to(PACKAGE).as_posix())
    assert importers == ["tools/proc.py"]


def test_no_shell_anywhere() -> None:
    offenders = []
    for path in modules():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg == "shell":
                offenders.append(f"{path.name}:{node.value.lineno} shell=")
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id == "os" and node.attr in ("system", "popen", "execvp")):
                offenders.append(f"{path.name}:{node.lineno} os.{node.attr}")
    assert offenders == []
