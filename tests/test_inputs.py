"""Workspace inputs (ci_nix/inputs.py) on real git repos: which inputs come from checkouts,
--locked and --pin (no Nix needed: flake.lock files are written by hand)."""

from __future__ import annotations

import io
import json
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import commit, git

from ci_nix import inputs as inputs_mod
from ci_nix import pipeline
from ci_nix import workspace as workspace_mod
from ci_nix.errors import SelectionError
from ci_nix.models import (
    Case,
    FailureType,
    Flake,
    FlakeEval,
    Job,
    Override,
    Repo,
    RunReport,
    Status,
    Target,
)
from ci_nix.report import github, json_report, junit, text
from ci_nix.tools.git import Git

FLAKE = "{ outputs = { self }: { }; }\n"


def git_lock(**revs: tuple[Path, str]) -> str:
    nodes: dict[str, object] = {"root": {"inputs": {name: name for name in revs}}}
    for name, (path, rev) in revs.items():
        ref = {"type": "git", "url": f"file://{path}"}
        nodes[name] = {"locked": {**ref, "rev": rev, "narHash": "sha256-AAAA"}, "original": ref}
    return json.dumps({"nodes": nodes, "root": "root", "version": 7})


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """modules and hosts; hosts' flake.lock has modules at its current commit."""
    root = tmp_path / "ws"
    for name in ("modules", "hosts"):
        (root / name).mkdir(parents=True)
        git(root / name, "init", "-q", "-b", "main")
    (root / "ci-nix.yaml").write_text("repos:\n  - path: modules\n  - path: hosts\n")
    rev = commit(root / "modules", files={"flake.nix": FLAKE})
    commit(root / "hosts", files={"flake.nix": FLAKE,
                                  "flake.lock": git_lock(modules=(root / "modules", rev))})
    return root


def hosts_inputs(root: Path, *, locked: bool = False,
                 pins: tuple[tuple[str, str], ...] = ()) -> tuple[Override, ...]:
    tool = Git.from_env()
    workspace = inputs_mod.pinned(workspace_mod.load(root, tool), tool, pins)
    hosts = workspace.flake("hosts")
    assert hosts is not None
    [target] = inputs_mod.with_workspace_inputs(
        workspace, tool, [Target(hosts)], inputs_mod.checkouts(workspace, tool), locked=locked)
    return target.overrides


def test_a_checkout_at_the_locked_commit_is_not_overridden(ws: Path) -> None:
    assert hosts_inputs(ws) == ()


def test_another_commit_or_uncommitted_changes_are_what_is_built(ws: Path) -> None:
    modules = ws / "modules"
    old = git(modules, "rev-parse", "HEAD")
    (modules / "flake.nix").write_text(FLAKE + "# edited\n")
    [dirty] = hosts_inputs(ws)
    assert dirty == Override("modules", f"git+file://{modules}", source="modules", rev=old,
                             dirty=True, locked=old)
    assert dirty.describe() == (f"modules: the workspace's modules at {old[:12]} with "
                                f"uncommitted changes (flake.lock: {old[:12]})")
    new = commit(modules, files={})
    [moved] = hosts_inputs(ws)
    assert (moved.rev, moved.dirty, moved.locked) == (new, False, old)
    assert hosts_inputs(ws, locked=True) == ()  # --locked: flake.lock, whatever is checked out


def test_a_pin_reads_that_commit_and_is_checked(ws: Path) -> None:
    modules = ws / "modules"
    old = git(modules, "rev-parse", "HEAD")
    new = commit(modules, files={"flake.nix": FLAKE + "# new\n"})
    assert hosts_inputs(ws, pins=(("modules", old[:10]),)) == ()  # pinned to the locked commit
    (modules / "flake.nix").write_text("dirty")  # a pinned repo's work tree is not read
    [pinned] = hosts_inputs(ws, pins=(("modules", new),))
    assert pinned.ref == f"git+file://{modules}?rev={new}" and not pinned.dirty
    with pytest.raises(SelectionError, match="--pin nope=1: no repo 'nope'.*modules, hosts"):
        hosts_inputs(ws, pins=(("nope", "1"),))
    with pytest.raises(SelectionError, match=f"--pin modules=f00: no such commit in {modules}"):
        hosts_inputs(ws, pins=(("modules", "f00"),))
    with pytest.raises(SelectionError, match="expected REPO=COMMIT"):
        inputs_mod.parse_pins(["modules"])


def test_head_is_the_revision_evaluated(ws: Path) -> None:
    """--head REV pins the repo it refers to: the work tree is not what is under test."""
    modules = ws / "modules"
    old = git(modules, "rev-parse", "HEAD")
    commit(modules, files={"flake.nix": FLAKE + "# new\n"})
    (modules / "flake.nix").write_text("uncommitted")
    tool = Git.from_env()
    loaded = workspace_mod.load(modules, tool)
    evaluated = inputs_mod.as_evaluated(loaded, tool, "HEAD~1", ())
    flake = evaluated.flake("modules")
    assert flake is not None and flake.ref == f"git+file://{modules}?rev={old}"
    hosts = evaluated.flake("hosts")
    assert hosts is not None and hosts.repo.rev is None  # not the primary repo: as checked out
    # an explicit --pin wins over --head's
    pinned = inputs_mod.as_evaluated(loaded, tool, "HEAD~1", (("modules", "HEAD"),))
    repo = pinned.repo("modules")
    assert repo is not None and repo.rev == git(modules, "rev-parse", "HEAD")
    assert inputs_mod.as_evaluated(loaded, tool, "no-such-rev", ()) == loaded


def report_with_inputs() -> RunReport:
    override = Override("pkgs", "git+file:///ws/pkgs", source="pkgs", rev="1" * 40,
                        locked="2" * 40)
    return RunReport(suites=("pkgs", "hosts"),
                     cases=(Case("hosts", "nixosConfigurations.db1", Status.PASSED),),
                     inputs=(("hosts", (override,)),))


def test_every_report_names_the_workspace_inputs() -> None:
    report = report_with_inputs()
    said = "pkgs: the workspace's pkgs at 111111111111 (flake.lock: 222222222222)"
    out = io.StringIO()
    text.write(report, out)
    assert f"inputs of hosts from the workspace: {said}\n" in out.getvalue()
    out = io.StringIO()
    github.write_summary(report, out)
    assert f"### Inputs from the workspace\n\n- **hosts**: {said}\n" in out.getvalue()
    out = io.StringIO()
    junit.write(report, out)
    suites = {s.get("name"): s for s in ET.fromstring(out.getvalue()).iter("testsuite")}
    assert [(p.get("name"), p.get("value")) for p in suites["hosts"].iter("property")][0] == (
        "override", said)
    assert not list(suites["pkgs"].iter("property"))
    out = io.StringIO()
    json_report.write(replace(report, inputs=(), locked=True), out)
    data = json.loads(out.getvalue())
    assert data["locked"] is True and data["inputs"] == {}
    out = io.StringIO()
    text.write(replace(report, inputs=(), locked=True), out)
    assert "inputs as flake.lock has them (--locked)" in out.getvalue()


def test_a_pinned_commit_a_shallow_clone_lacks_is_fetched(ws: Path, tmp_path: Path) -> None:
    """A matrix job's clone of a workspace repo is shallow, and its branch moved on (or the plan
    read another branch): the pinned commit is fetched from the remote."""
    modules = ws / "modules"
    git(modules, "checkout", "-q", "-b", "feature")
    planned = commit(modules, files={"flake.nix": FLAKE + "# feature\n"})
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(modules), str(origin))
    subprocess.run(["rm", "-rf", str(modules)], check=True)
    git(tmp_path, "clone", "-q", "--depth", "1", "--branch", "main", f"file://{origin}",
        str(modules))
    assert git(modules, "rev-parse", "--is-shallow-repository") == "true"
    [override] = hosts_inputs(ws, pins=(("modules", planned),))
    assert override.rev == planned and override.ref.startswith(f"git+file://{modules}?rev=")
    assert git(modules, "rev-parse", "--is-shallow-repository") == "true"  # still shallow
    for missing in ("0" * 40, "--upload-pack=touch /tmp/pwned", "feature"):
        with pytest.raises(SelectionError, match="nor on its remote"):
            hosts_inputs(ws, pins=(("modules", missing),))


def test_a_planned_drv_that_differs_fails_naming_both_and_is_not_built() -> None:
    drv = "/nix/store/" + "a" * 32 + "-nixos-system-db1.drv"
    other = "/nix/store/" + "b" * 32 + "-nixos-system-db1.drv"
    job = Job("hosts", ("nixosConfigurations", "db1"), "x86_64-linux", other, ())
    evals = [FlakeEval(Target(Flake(Repo("hosts", Path("/ws/hosts")), "")), (job,), (), 1, 0.0)]
    key = ("hosts", "nixosConfigurations.db1")
    assert pipeline.check_planned(evals, {key: other}) == evals  # as planned: built
    [checked] = pipeline.check_planned(evals, {key: drv})
    assert checked.jobs == ()
    [case] = checked.cases
    assert case.status is Status.FAILED and case.failure is not None
    assert case.failure.type is FailureType.OTHER
    assert case.failure.message == f"evaluated {other}, but the plan has {drv}"
    with pytest.raises(SelectionError, match="--expect-drv hosts#nixosConfigurations.web: not "
                       "evaluated; select it with --only hosts#nixosConfigurations.web"):
        pipeline.check_planned(evals, {("hosts", "nixosConfigurations.web"): drv})
    with pytest.raises(SelectionError, match="expected FLAKE#ATTR=DRVPATH"):
        pipeline.parse_expect(("hosts#nixosConfigurations.db1",))
