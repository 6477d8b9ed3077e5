"""The package's layering, read from its imports: no cycles, and no lower layer importing a
higher one (tools < domain and stages < pipeline < commands < cli)."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "ci_nix"


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """ci_nix modules imported at module level (function-level imports load lazily, e.g. a
    forge's implementation, and cannot form an import cycle)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ci_nix"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in modules else node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("ci_nix.")}
    return {name for name in found if name in modules and name != "ci_nix"}


@functools.cache
def graph() -> dict[str, set[str]]:
    """Each ci_nix module's module-level ci_nix imports: parsed once, when a test here first
    asks (not at import, which every xdist worker does for every test module)."""
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def test_no_import_cycles() -> None:
    done: set[str] = set()

    def visit(name: str, stack: tuple[str, ...]) -> None:
        assert name not in stack, "import cycle: " + " -> ".join((*stack, name))
        if name in done:
            return
        for imported in sorted(graph()[name]):
            visit(imported, (*stack, name))
        done.add(name)

    for name in sorted(graph()):
        visit(name, ())


def _importers(target: str) -> set[str]:
    return {name for name, imported in graph().items()
            if any(i == target or i.startswith(target + ".") for i in imported)}


def test_no_back_arrows() -> None:
    # adapters (external programs) know nothing of ci-nix's domain
    for name, imported in graph().items():
        if name.startswith("ci_nix.tools"):
            assert imported <= {"ci_nix.errors", "ci_nix.mask"} | {
                i for i in imported if i.startswith("ci_nix.tools")}, (name, imported)
    # report writers are pure: they never drive the run or write files themselves
    for name in _importers("ci_nix.pipeline") | _importers("ci_nix.outputs"):
        assert not name.startswith("ci_nix.report"), name
    # the CLI sits on top: only it (and python -m) reach the command modules
    assert _importers("ci_nix.commands") <= {"ci_nix.cli", "ci_nix.__main__"} | {
        name for name in graph() if name.startswith("ci_nix.commands")}
    assert _importers("ci_nix.cli") <= {"ci_nix.__main__"}
    # the pipeline is used by the commands, and by update --verify, which builds with its stages
    assert _importers("ci_nix.pipeline") <= {"ci_nix.cli", "ci_nix.update.verify"} | {
        name for name in graph() if name.startswith("ci_nix.commands")}


def test_the_failure_classifier_loads_only_where_a_failure_is_read() -> None:
    """diagnose and logshape compile a few hundred regular expressions: a fifth of ci-nix's
    start. The modules every command loads import them in the functions that read a failure
    (a run without one never loads them; ci_nix.logtext shows Nix's lines)."""
    loaded: set[str] = set()
    todo = ["ci_nix.cli"]
    while todo:
        name = todo.pop()
        if name not in loaded:
            loaded.add(name)
            todo += graph()[name]
    assert not loaded & {"ci_nix.diagnose", "ci_nix.logshape"}, sorted(
        name for name in loaded if "ci_nix.diagnose" in graph()[name]
        or "ci_nix.logshape" in graph()[name])
