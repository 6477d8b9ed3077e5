"""Shared test fixtures: the Nix implementations to run against, fixture workspaces, the CLI."""

from __future__ import annotations

import importlib
import io
import itertools
import logging
import os
import shutil
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest
from hypothesis import settings

# No per-example time limit in any property test: the suite shares 2 cores with other work (a
# third xdist worker, CI's neighbours), and Hypothesis' default 200 ms deadline is a wall-clock
# assert that failed test_diagnose's unknown-words property under load, not a slow parser (6000
# examples alone: none above 50 ms). Slowness is bench/'s and test_log_adversary's (bounded
# cost) business.
settings.register_profile("ci-nix", deadline=None)
settings.load_profile("ci-nix")

ROOT = Path(__file__).resolve().parent.parent
# No test module lives in tests/data (the corpus: 9,100 files and growing by every held-out
# round), which pytest walked in every process that collects, each xdist worker of a run
# (~0.4 CPU-s each, the files' names matched against test_*.py one by one)
collect_ignore = ["data"]
sys.path.insert(0, str(ROOT / "fixtures"))

import fakeproc  # noqa: E402
import make_workspace  # noqa: E402
from fakeproc import FakeProc  # noqa: E402

NIX_MODERN = ROOT.parent / "shared" / "tools" / "nix-modern"
# What tests run as CI_NIX_NIX for Nix 2.26: the same chroot entered without NIX_MODERN's
# per-call mount checks (tests/tools/nix-modern says how; it hands over to NIX_MODERN for them)
NIX_MODERN_QUICK = ROOT / "tests" / "tools" / "nix-modern"
NIX_CONFIG = "substituters =\nsandbox = false\nbuild-users-group =\n"


def available_nixes() -> list[tuple[str, str]]:
    """(label, CI_NIX_NIX value) for every Nix on this machine; CI_NIX_TEST_NIX narrows it."""
    found = []
    if shutil.which("nix"):
        found.append(("nix-system", "nix"))
    modern_root = Path(os.environ.get("NIX_MODERN_ROOT", "/var/lib/nix-modern"))
    if NIX_MODERN.exists() and (modern_root / "usr/bin/nix").exists():
        found.append(("nix-modern", str(NIX_MODERN_QUICK)))
    wanted = os.environ.get("CI_NIX_TEST_NIX")
    if wanted:
        found = [entry for entry in found if entry[0] == wanted]
    return found


NIXES = available_nixes()
NIX_PARAMS: list[str | None] = [value for _, value in NIXES] or [None]  # None: skip, no Nix
# A test whose point does not depend on the Nix version runs on the first Nix only (the comment
# above it says which tests prove the version's part, on both): `@ONE_NIX` with a nix_bin argument
ONE_NIX = pytest.mark.parametrize("nix_bin", NIX_PARAMS[:1],
                                  ids=[label for label, _ in NIXES[:1]] or ["no-nix"],
                                  indirect=True)
# The same for one case of a parametrised test (`pytest.param(..., marks=FIRST_NIX)`), where
# another case proves each Nix version's part on both: that case runs on the first Nix only,
# and its copies on the other Nixes are deselected before they are set up (a skip inside the
# test paid for its fixtures: a workspace, a flake's lock)
FIRST_NIX = pytest.mark.first_nix


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "first_nix: run this case on the first Nix only "
                            "(conftest.FIRST_NIX)")


def _on_other_nixes(item: pytest.Item) -> bool:
    """A FIRST_NIX case's copy for a Nix other than the first."""
    callspec = getattr(item, "callspec", None)
    return (item.get_closest_marker("first_nix") is not None and callspec is not None
            and callspec.params.get("nix_bin", NIX_PARAMS[0]) != NIX_PARAMS[0])


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """How scripts/test.sh spreads the suite over its workers (`--dist loadgroup`): a test file
    stays on one worker, in order (files that share a fake server or a module fixture), except
    tests marked `slow`, each of which is a unit of its own; slow tests are handed out first and
    then the files, biggest first, so no long test starts last while the other worker idles.
    A test that uses a module-scoped fixture stays with the others using it (built once).
    FIRST_NIX cases' copies for the other Nixes are deselected first."""
    others = [item for item in items if _on_other_nixes(item)]
    if others:
        config.hook.pytest_deselected(items=others)
        items[:] = [item for item in items if not _on_other_nixes(item)]
    files: dict[str, int] = {}  # tests per file
    slow: dict[str, int] = {}  # slow tests per file
    for index, item in enumerate(items):
        files[item.path.name] = files.get(item.path.name, 0) + 1
        if item.get_closest_marker("slow") is not None:
            slow[item.path.name] = slow.get(item.path.name, 0) + 1
        if item.get_closest_marker("xdist_group") is None:
            shared = _module_fixtures(item)
            if shared is not None:  # built once per worker: keep its users together
                group = f"{item.path.stem}-{shared}"
            elif item.get_closest_marker("slow") is not None:
                group = f"{item.path.stem}-slow-{index}"
            else:
                group = item.path.name
            item.add_marker(pytest.mark.xdist_group(group))
    order = {id(item): index for index, item in enumerate(items)}
    items.sort(key=lambda item: (item.get_closest_marker("slow") is None,
                                 -slow.get(item.path.name, 0), -files[item.path.name],
                                 item.path.name, order[id(item)]))


@pytest.hookimpl(tryfirst=True)
def pytest_collection(session: pytest.Session) -> None:
    """Each xdist worker of a whole-suite run first imports the test modules starting from its
    own part of them (a fresh clone, as CI's: pytest rewrites every test module's asserts and
    writes the result beside it, ~3 CPU-s for the suite's modules): the workers, collecting the
    same modules in the same order, each rewrote nearly all of them; now each rewrites about its
    share and finds the others' written. The collection that follows is pytest's own, in its
    order (an import that fails here is imported again there, and reported)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    here = Path(__file__).resolve().parent
    if not worker.startswith("gw") or count < 2 or here not in {
            Path(arg.split("::")[0]).resolve() for arg in session.config.args}:
        return
    modules = sorted(path.stem for path in here.glob("test_*.py"))
    start = len(modules) * int(worker.removeprefix("gw")) // count
    for name in modules[start:] + modules[:start]:
        try:
            importlib.import_module(name)
        except (Exception, pytest.skip.Exception, pytest.fail.Exception):
            pass  # (a module-level skip or fail too: pytest's import reports it)


def _module_fixtures(item: pytest.Item) -> str | None:
    """The module-scoped fixtures a test uses, with their parameters ("" for none), or None."""
    info = getattr(item, "_fixtureinfo", None)
    callspec = getattr(item, "callspec", None)
    names = sorted(name for name, defs in (info.name2fixturedefs.items() if info else ())
                   if defs and defs[-1].scope == "module")
    if not names:
        return None
    params = callspec.params if callspec is not None else {}
    return "-".join(f"{name}={params.get(name, '')}" for name in names)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """nix-modern bind-mounts each working directory it runs in under its chroot; unmount the
    ones under /tmp so temp dirs can be removed (they pin pytest's basetemp otherwise).
    Only once every worker is done (xdist's controller): a worker finishing first would pull
    the directory out from under the other worker's running Nix ("cannot get cwd")."""
    if hasattr(session.config, "workerinput"):
        return
    root = Path(os.environ.get("NIX_MODERN_ROOT", "/var/lib/nix-modern"))
    prefix = f"{root}/tmp/"
    try:
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return
    for mount in sorted((m for m in mounts if m.startswith(prefix)), reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True)


@pytest.fixture(autouse=True)
def _ci_nix_loggers() -> Iterator[None]:
    """The ci_nix loggers as each test found them: main() (in-process runs, tests that set up
    its logging) configures them process-wide, and a later test's caplog must still see
    ci-nix's `$ command` records."""
    loggers = [logging.getLogger(name) for name in ("ci_nix", "ci_nix.proc")]
    saved = [(logger.handlers[:], logger.propagate, logger.level) for logger in loggers]
    yield
    for logger, (handlers, propagate, level) in zip(loggers, saved, strict=True):
        logger.handlers[:], logger.propagate = handlers, propagate
        logger.setLevel(level)


_XDG_CACHES = itertools.count()


@pytest.fixture(autouse=True)
def _nix_config(monkeypatch: pytest.MonkeyPatch,
                tmp_path_factory: pytest.TempPathFactory) -> None:
    # No test reaches the internet: no substituters, no sandbox (root, single-user).
    monkeypatch.setenv("NIX_CONFIG", NIX_CONFIG)
    # Each test its own evaluation cache (ci_nix/evalcache.py): no test answers another's. Made
    # by a count of this process's own (each xdist worker has its own base directory), not by
    # mktemp, which lists the whole base directory for the next free number: for every test,
    # so the hundreds a worker runs made it quadratic (~0.3 CPU-s a thousand tests)
    cache = tmp_path_factory.getbasetemp() / "xdg-cache" / str(next(_XDG_CACHES))
    cache.mkdir(parents=True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))


@pytest.fixture(autouse=True)
def _github_unpaced(monkeypatch: pytest.MonkeyPatch) -> None:
    # PyGithub spaces requests (0.25 s) and writes (1 s) for GitHub's secondary rate limits;
    # the local fakes have none, and the suite would sleep through it (in-process runs only).
    from ci_nix.forge import github

    monkeypatch.setattr(github, "PACE", (0.0, 0.0))


@pytest.fixture(scope="session")
def offline_pip(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """pip settings for act/gitlab-ci-local jobs (tests/test_ci_definitions.py's harness):
    ci-nix's dependencies (and its build backend) as wheels in a local directory, no index.
    Every job still pip-installs ci-nix from the checkout as the action and the template do;
    it just no longer asks PyPI about each dependency again. scripts/setup.sh's wheelhouse
    where there is one (.venv/wheelhouse), else made here."""
    # A job's venv lives for one or two ci-nix runs: Python compiles what they import, not
    # every module of every dependency up front (pip reads "0" here as --no-compile).
    settings = {"PIP_NO_INDEX": "1", "PIP_NO_COMPILE": "0"}
    kept = ROOT / ".venv" / "wheelhouse"
    if (kept / "complete").exists():
        return {"PIP_FIND_LINKS": str(kept.resolve()), **settings}
    wheels = tmp_path_factory.mktemp("wheels")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q",
                           "--disable-pip-version-check", "--wheel-dir", str(wheels), str(ROOT),
                           "setuptools>=68", "wheel"], capture_output=True, timeout=600)
    if done.returncode != 0:  # no wheels: the jobs ask the index as a user's runner would
        return {}
    return {"PIP_FIND_LINKS": str(wheels), **settings}


@pytest.fixture(params=NIX_PARAMS,
                ids=[label for label, _ in NIXES] or ["no-nix"])
def nix_bin(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """CI_NIX_NIX for each available Nix (2.8 from Debian, 2.26 via nix-modern)."""
    if request.param is None:
        pytest.skip("no Nix on this machine")
    monkeypatch.setenv("CI_NIX_NIX", request.param)
    return str(request.param)


@pytest.fixture
def fixture_ws(tmp_path: Path, nix_bin: str) -> Path:
    """A fresh copy of fixtures/workspace as git repos, with its own store paths."""
    return make_workspace.make(tmp_path / "ws", nonce=uuid.uuid4().hex[:12])


def flake_repo(path: Path, flake_text: str) -> Path:
    """A git repo at path holding one committed flake.nix."""
    path.mkdir(parents=True)
    (path / "flake.nix").write_text(flake_text)
    make_workspace.init_repo(path, "flake")
    return path


def xml_find(element: ET.Element | ET.ElementTree[ET.Element], path: str) -> ET.Element:
    """`element.find(path)` for a report element the test needs: fails naming what is missing."""
    found = element.find(path)
    assert found is not None, f"no {path!r} in the report: {_xml(element)}"
    return found


def xml_attr(element: ET.Element, name: str) -> str:
    """An attribute the report must have."""
    value = element.get(name)
    assert value is not None, f"<{element.tag}> has no {name!r} attribute: {_xml(element)}"
    return value


def xml_text(element: ET.Element) -> str:
    """The text the report element must have."""
    assert element.text is not None, f"<{element.tag}> has no text: {_xml(element)}"
    return element.text


def _xml(element: ET.Element | ET.ElementTree[ET.Element]) -> str:
    root = element.getroot() if isinstance(element, ET.ElementTree) else element
    return ET.tostring(root, encoding="unicode")[:2000] if root is not None else "(empty)"


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 600) -> CliResult:
    """Run `python -m ci_nix ARGS` as a separate process, as CI would."""
    proc = subprocess.run([sys.executable, "-m", "ci_nix", *map(str, args)], cwd=cwd,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def run_main(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None,
             timeout: float = 600) -> CliResult:
    """Run the CLI's `main(argv)` in this process, as `python -m ci_nix ARGS` would run it:
    cwd and env set for the call only, stdout and stderr captured, the exit code returned.

    What a run leaves in the process is reset first: known secrets (masked, announced once),
    a cancellation, the ci_nix logger. `timeout` is accepted for run_cli's signature only.
    """
    from ci_nix import cli, mask
    from ci_nix.tools import proc

    out, err = io.StringIO(), io.StringIO()
    logger, commands = logging.getLogger("ci_nix"), logging.getLogger("ci_nix.proc")
    saved = (set(mask._secrets), logger.handlers[:], logger.propagate, logger.level,
             commands.level)
    with pytest.MonkeyPatch.context() as patch:
        if cwd is not None:
            patch.chdir(cwd)
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        patch.setattr(sys, "stdout", out)
        patch.setattr(sys, "stderr", err)
        mask._secrets.clear()
        proc.reset_cancellation()
        try:
            code = cli.main([str(arg) for arg in args])
        except SystemExit as exit_:  # argparse: --help, --version, usage errors
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)
            if isinstance(exit_.code, str):
                err.write(exit_.code + "\n")
        finally:
            mask._secrets.clear()
            mask._secrets.update(saved[0])
            proc.reset_cancellation()
            logger.handlers[:], logger.propagate = saved[1], saved[2]
            logger.setLevel(saved[3])
            commands.setLevel(saved[4])  # main() sets it; caplog tests rely on the default
    return CliResult(code, out.getvalue(), err.getvalue())


class Cli(Protocol):
    """The `cli` and `cli_process` fixtures: run_main's and run_cli's signature."""

    def __call__(self, *args: str | Path, cwd: Path | None = None,
                 env: dict[str, str] | None = None, timeout: float = 600) -> CliResult: ...


@pytest.fixture
def cli() -> Cli:
    """The CLI run in-process (`main(argv)`), the fast tier: use it for every CLI test that does
    not need a process of its own. Combine with `fake_proc` to answer commands without running
    them."""
    return run_main


@pytest.fixture
def cli_process() -> Cli:
    """The CLI as a separate `python -m ci_nix` process: for what only a process shows (the entry
    point, signals, closed stdout, a terminal)."""
    return run_cli


@pytest.fixture
def fake_proc(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProc]:
    """The fake at proc.py's spawn point (tests/fakeproc.py): `fake_proc.on("nix", "eval",
    stdout=...)` answers matching commands, the rest run for real; `fake_proc.calls` records
    all. `fake_proc.strict = True` fails on a command nothing answers."""
    fake = fakeproc.install(FakeProc(), monkeypatch)
    yield fake
    assert not fake.unexpected, f"commands nothing answered: {fake.unexpected}"
