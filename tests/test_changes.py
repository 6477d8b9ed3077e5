"""changes.py: comparing two evaluations, package changes from closures, parseDrvName."""

from __future__ import annotations

import io
import json
import shlex
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ci_nix.changes import (
    Change,
    Comparison,
    Package,
    RepoRevisions,
    VersionChange,
    compare,
    package_changes,
    parse_drv_name,
    store_name,
)
from ci_nix.models import (
    FLAKE_CASE,
    Case,
    Failure,
    FailureType,
    Flake,
    FlakeEval,
    Job,
    Repo,
    Status,
    Target,
)
from ci_nix.report import changes as writers

# --- parseDrvName ------------------------------------------------------------------------------

CORPUS = ["hello-2.12.1", "hello", "nixos-system-web-24.05", "a-b-c", "foo-", "-1.0", "-", "",
          "python3.11-requests-2.31.0", "gcc-wrapper-13.2.0", "x--1", "source", "perl5.38.2-URI-5",
          "linux-6.6.1-modules", "é-1", "a-é", "a-_b", "name-.9", "glibc-2.38-44-bin", "a-1-b-2"]


def test_parse_drv_name_examples() -> None:
    assert parse_drv_name("hello-2.12.1") == ("hello", "2.12.1")
    assert parse_drv_name("nixos-system-web-24.05") == ("nixos-system-web", "24.05")
    assert parse_drv_name("hello") == ("hello", "")
    assert parse_drv_name("foo-") == ("foo-", "")  # a trailing dash is part of the name
    assert parse_drv_name("-1.0") == ("", "1.0")
    assert store_name("/nix/store/0123abcd-hello-2.12.drv") == "hello-2.12"


@settings(deadline=None)
@given(st.text())
def test_parse_drv_name_splits_at_the_first_dash_before_a_non_letter(text: str) -> None:
    name, version = parse_drv_name(text)
    if version:
        assert text == f"{name}-{version}"
        assert not (version[0].isascii() and version[0].isalpha())
        # no earlier split point in the name
        assert parse_drv_name(name + "-")[1] == ""
    else:
        assert name == text


PKG = st.builds(lambda n, v: n + v, st.text(alphabet="abc", min_size=1, max_size=5),
                st.sampled_from(["", "-1", "-1.0", "-2.31"]))


@settings(deadline=None)  # the machine is shared: no wall-clock limit per example
@given(st.lists(PKG, max_size=8), st.lists(PKG, max_size=8))
def test_package_changes_accounts_for_every_name(before: list[str], after: list[str]) -> None:
    base = [f"/nix/store/{'a' * 32}-{n}.drv" for n in before]
    head = [f"/nix/store/{'b' * 32}-{n}.drv" for n in after]
    result = package_changes(base, head)
    names_before = {parse_drv_name(n)[0] for n in before}
    names_after = {parse_drv_name(n)[0] for n in after}
    assert {p.name for p in result.added} == names_after - names_before
    assert {p.name for p in result.removed} == names_before - names_after
    assert {c.name for c in result.changed} <= names_before & names_after
    assert result.rebuilds == len(set(head))


@pytest.mark.nix
def test_parse_drv_name_agrees_with_nix(nix_bin: str) -> None:
    expr = "map builtins.parseDrvName (builtins.fromJSON ''" + json.dumps(CORPUS) + "'')"
    out = subprocess.run([*shlex.split(nix_bin), "--extra-experimental-features",
                          "nix-command flakes", "eval", "--json", "--expr", expr],
                         capture_output=True, text=True, check=True).stdout
    expected = [(entry["name"], entry["version"]) for entry in json.loads(out)]
    assert [parse_drv_name(text) for text in CORPUS] == expected


# --- package changes ---------------------------------------------------------------------------

def drv(name: str, hash_char: str = "a") -> str:
    return f"/nix/store/{hash_char * 32}-{name}.drv"


def test_package_changes_lists_versions_and_counts_rebuilds() -> None:
    base = [drv("libfoo-1.0"), drv("web-1", "w"), drv("bash-5.2"), drv("old-tool-3"),
            "/nix/store/" + "s" * 32 + "-patch.diff"]
    head = [drv("libfoo-1.1"), drv("web-1", "x"), drv("bash-5.2"), drv("tool-2.0")]
    result = package_changes(base, head)
    assert result.changed == (VersionChange("libfoo", "1.0", "1.1"),)
    assert result.added == (Package("tool", "2.0"),)
    assert result.removed == (Package("old-tool", "3"),)
    # libfoo, the rebuilt web (same name and version: counted, not listed) and tool
    assert result.rebuilds == 3


# --- comparing evaluations ---------------------------------------------------------------------

FLAKE = Flake(Repo("hosts", __import__("pathlib").Path("/x")), "")


def evaluation(jobs: dict[str, str], failed: tuple[str, ...] = ()) -> FlakeEval:
    return FlakeEval(
        Target(FLAKE, ("changed flake.nix",)),
        tuple(Job("hosts", tuple(name.split(".")), "x86_64-linux", path, ())
              for name, path in jobs.items()),
        tuple(Case("hosts", name, Status.FAILED, failure=Failure(FailureType.EVAL, "boom"))
              for name in failed), 1, 0.1)


def test_compare_gives_every_status() -> None:
    base = evaluation({"a.same": drv("same"), "a.moved": drv("m-1"), "a.gone": drv("g"),
                       "a.broke": drv("b")})
    head = evaluation({"a.same": drv("same"), "a.moved": drv("m-2"), "a.new": drv("n")},
                      failed=("a.broke",))
    result = compare([base], [head], "b" * 40, None)
    statuses = {a.attr: a.status for a in result.attributes}
    assert statuses == {"a.same": Change.UNCHANGED, "a.moved": Change.CHANGED,
                        "a.gone": Change.REMOVED, "a.new": Change.ADDED, "a.broke": Change.FAILED}
    assert result.unchanged_keys == {("hosts", "a.same")}


def test_a_base_that_does_not_evaluate_makes_everything_added() -> None:
    base = FlakeEval(Target(FLAKE), (), (Case("hosts", FLAKE_CASE, Status.FAILED,
                                              failure=Failure(FailureType.EVAL, "syntax")),),
                     1, 0.1)
    head = evaluation({"a.web": drv("web")}, failed=("a.db",))
    result = compare([base], [head], "b" * 40, "c" * 40)
    assert {a.attr: a.status for a in result.attributes} == {"a.web": Change.ADDED,
                                                            "a.db": Change.FAILED}
    web = result.attributes[1] if result.attributes[1].attr == "a.web" else result.attributes[0]
    assert web.error is not None and "syntax" in web.error


def broken(message: str) -> FlakeEval:
    """A flake whose attributes could not even be listed (flake.nix does not parse)."""
    return FlakeEval(Target(FLAKE), (), (Case("hosts", FLAKE_CASE, Status.FAILED,
                                              failure=Failure(FailureType.EVAL, message)),),
                     1, 0.1)


def test_a_head_that_does_not_evaluate_fails_every_attribute_not_removes_it() -> None:
    base = evaluation({"a.web": drv("web"), "a.db": drv("db")})
    result = compare([base], [broken("syntax error, unexpected ';'")], "b" * 40, None)
    assert [(a.attr, a.status) for a in result.attributes] == [
        (FLAKE_CASE, Change.FAILED), ("a.db", Change.FAILED), ("a.web", Change.FAILED)]
    assert result.attributes[0].error == "syntax error, unexpected ';'"
    assert result.attributes[1].base_drv == drv("db") and result.attributes[1].head_drv is None
    assert not result.of(Change.REMOVED)
    # a new flake that does not evaluate, and one broken on both sides: still a failure
    for base_side in ([], [broken("old")]):
        again = compare(base_side, [broken("new")], "b" * 40, None)
        assert [(a.attr, a.status, a.error) for a in again.attributes] == [
            (FLAKE_CASE, Change.FAILED, "new")]


def test_an_attribute_set_that_fails_at_head_fails_what_the_base_had_under_it() -> None:
    base = evaluation({"packages.x86_64-linux.hello": drv("hello"), "checks.x.fmt": drv("fmt")})
    head = evaluation({"checks.x.fmt": drv("fmt")}, failed=("packages.x86_64-linux",))
    statuses = {a.attr: (a.status, a.error) for a in compare([base], [head], "b" * 40,
                                                             None).attributes}
    assert statuses == {
        "packages.x86_64-linux": (Change.FAILED, "boom"),
        "packages.x86_64-linux.hello": (
            Change.FAILED, "not evaluated: packages.x86_64-linux does not evaluate at head"),
        "checks.x.fmt": (Change.UNCHANGED, None)}


def test_a_stale_lock_at_head_is_a_failed_flake_entry() -> None:
    head = evaluation({"a.web": drv("web")})
    stale = Case("hosts", FLAKE_CASE, Status.FAILED,
                 failure=Failure(FailureType.EVAL, "flake.lock is out of date"))
    head = FlakeEval(head.target, head.jobs, (stale,), 1, 0.1)
    result = compare([evaluation({"a.web": drv("web")})], [head], "b" * 40, None)
    assert {a.attr: a.status for a in result.attributes} == {FLAKE_CASE: Change.FAILED,
                                                            "a.web": Change.UNCHANGED}


def test_json_shape_and_markdown() -> None:
    base = evaluation({"a.web": drv("web-1", "a"), "a.db": drv("db")})
    head = evaluation({"a.web": drv("web-1", "b"), "a.db": drv("db")})
    result = compare([base], [head], "b" * 40, None)
    data = writers.to_json(result)
    assert data["base"] == "b" * 40 and data["head"] == "worktree"
    assert set(data["attributes"][0]) == {"flake", "attr", "system", "status", "baseDrv",
                                          "headDrv", "packages"}
    assert set(data["attributes"][0]["packages"]) == {"changed", "added", "removed"}
    text = writers.markdown(result)
    assert "## What changes" in text and "`hosts#a.web` | changed" in text
    assert "Unchanged: `hosts#a.db`" in text and "changed flake.nix" in text
    out = io.StringIO()
    writers.write_text(result, out)
    assert "changed   hosts#a.web" in out.getvalue() and "a.db" not in out.getvalue()


def test_each_repo_says_what_it_was_compared_at() -> None:
    """#23: base/head are the primary repo's; a multi-repo workspace names every repo's."""
    base, head, hosts = "a" * 40, "b" * 40, "c" * 40
    result = Comparison(base, None, (), repos=(RepoRevisions("modules", base, "worktree"),
                                               RepoRevisions("hosts", hosts, hosts)))
    data = writers.to_json(result)
    assert (data["base"], data["head"]) == (base, "worktree")
    assert data["repos"] == {"modules": {"base": base, "head": "worktree"},
                             "hosts": {"base": hosts, "head": hosts}}
    assert list(data) == ["base", "head", "repos", "attributes"]
    out = io.StringIO()
    writers.write_text(result, out)
    assert out.getvalue().splitlines()[1:3] == [
        f"  modules: {base[:12]} -> worktree", f"  hosts: as checked out ({hosts[:12]}) on both "
        "sides"]
    assert f"- modules: `{base[:12]}` → `worktree`" in writers.markdown(result)
    lab = io.StringIO()
    writers.write_gitlab(result, lab, now=1)
    assert f"  hosts: as checked out ({hosts[:12]}) on both sides" in lab.getvalue()
    # one repo: nothing more than base and head
    alone = Comparison(base, head, (), repos=(RepoRevisions("modules", base, head),))
    assert "repos" not in writers.to_json(alone)
    assert head[:12] in writers.markdown(alone) and "- modules" not in writers.markdown(alone)


def test_run_summary_says_what_was_compared_and_why() -> None:
    from ci_nix.models import RunReport
    from ci_nix.report import github

    report = RunReport(("modules", "hosts"), (), compared="changes from the merge-base with "
                       "origin/main to the work tree",
                       selected=(("modules", ("changed flake.nix",)),
                                 ("hosts", ("depends on modules (input 'modules')",))))
    out = io.StringIO()
    github.write_summary(report, out)
    text = out.getvalue()
    assert "<summary>What was compared</summary>" in text
    assert "merge-base with origin/main to the work tree" in text
    assert "- **hosts**: depends on modules (input 'modules')" in text
    from ci_nix.report import text as text_report

    terminal = io.StringIO()  # also the GitLab job log
    text_report.write(report, terminal)
    assert ("compared: changes from the merge-base with origin/main to the work tree\n"
            in terminal.getvalue())


# --- Nix's JSON for derivations and store paths ------------------------------------------------

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=12)


@settings(deadline=None)
@given(JSON)
def test_nix_json_parsers_take_anything(data: object) -> None:
    from ci_nix.tools.nix import Derivation, PathInfo

    assert isinstance(Derivation.parse_all(data), dict)
    assert isinstance(PathInfo.parse_all(data), dict)


NAME = st.builds(lambda h, n, v: f"{h}-{n}{v}",
                 st.text(alphabet="abcd0123", min_size=32, max_size=32),
                 st.text(alphabet="xyz", min_size=1, max_size=6),
                 st.sampled_from(["", "-1.0", "-2.3"]))


@settings(deadline=None)
@given(st.dictionaries(NAME, st.lists(NAME, max_size=3), max_size=5), st.booleans(),
       st.booleans())
def test_derivations_parse_in_every_nix_format(graph: dict[str, list[str]], new_inputs: bool,
                                               base_names: bool) -> None:
    from ci_nix.tools.nix import Derivation

    def name(n: str) -> str:
        return n if base_names else f"/nix/store/{n}"

    data = {name(f"{drv}.drv"): {
        "outputs": {"out": {"path": name(drv)}},
        # 2.8: {drv: [outputs]}; newer: {drv: {"outputs": [...], "dynamicOutputs": {}}}
        "inputDrvs": {name(f"{i}.drv"): ({"outputs": ["out"], "dynamicOutputs": {}}
                                         if new_inputs else ["out"]) for i in inputs}}
        for drv, inputs in graph.items()}
    parsed = Derivation.parse_all(data)
    assert parsed == {f"/nix/store/{drv}.drv": Derivation(
        tuple(sorted({f"/nix/store/{i}.drv" for i in inputs})), (f"/nix/store/{drv}",),
        name=drv.split("-", 1)[1])  # no env: the name is read off the store path
        for drv, inputs in graph.items()}


def test_path_info_in_both_formats() -> None:
    from ci_nix.tools.nix import PathInfo

    old = [{"path": "/nix/store/a-x", "narSize": 5, "references": ["/nix/store/b-y"]},
           {"path": "/nix/store/c-z", "valid": False}]
    new = {"/nix/store/a-x": {"narSize": 5, "references": ["/nix/store/b-y"]},
           "/nix/store/c-z": None}
    expected = {"/nix/store/a-x": PathInfo(5, ("/nix/store/b-y",))}
    assert PathInfo.parse_all(old) == expected == PathInfo.parse_all(new)


def test_base_targets_read_from_the_worktree_and_repoint_overrides(tmp_path: Path) -> None:
    from ci_nix.diff import base_targets
    from ci_nix.models import Override
    from ci_nix.workspace import Workspace

    modules, hosts, tree = tmp_path / "modules", tmp_path / "hosts", tmp_path / "base"
    for path in (modules, hosts, tree, tree / "lib"):
        path.mkdir()
        (path / "flake.nix").write_text("{ }")
    repo_m, repo_h = Repo("modules", modules), Repo("hosts", hosts)
    (modules / "new").mkdir()
    (modules / "new" / "flake.nix").write_text("{ }")  # not at the base
    flakes = (Flake(repo_m, ""), Flake(repo_m, "lib"), Flake(repo_m, "new"), Flake(repo_h, ""))
    from ci_nix.config import Config

    ws = Workspace(tmp_path, Config(), (repo_m, repo_h), repo_m, flakes)
    targets = [Target(flakes[0], ("changed x",)), Target(flakes[2], ("changed y",)),
               Target(flakes[3], ("depends on modules",),
                      (Override("modules", flakes[0].ref), Override("lib", flakes[1].ref)))]
    moved = base_targets(ws, targets, {repo_m: tree})
    assert [t.flake.id for t in moved] == ["modules", "hosts"]  # modules/new: every attr added
    assert moved[0].flake.path == tree and moved[0].reasons == ("changed x",)
    assert moved[1].flake.path == hosts  # hosts is taken as checked out
    assert [o.ref for o in moved[1].overrides] == [Flake(Repo("modules", tree), "").ref,
                                                   Flake(Repo("modules", tree), "lib").ref]


def test_a_base_override_at_the_locked_commit_is_left_to_the_lock(tmp_path: Path) -> None:
    """At the base, a workspace input at the very commit flake.lock pins needs no override:
    the base is evaluated as it was on its own (and its evaluation cache entry is found)."""
    from ci_nix.config import Config
    from ci_nix.diff import base_targets
    from ci_nix.models import Override
    from ci_nix.workspace import Workspace

    modules, hosts, tree = tmp_path / "modules", tmp_path / "hosts", tmp_path / "base"
    for path in (modules, hosts, tree):
        path.mkdir()
        (path / "flake.nix").write_text("{ }")
    repo_m, repo_h = Repo("modules", modules), Repo("hosts", hosts)
    flakes = (Flake(repo_m, ""), Flake(repo_h, ""))
    ws = Workspace(tmp_path, Config(), (repo_m, repo_h), repo_m, flakes)
    override = Override("modules", flakes[0].ref, source="modules", rev="b" * 40,
                        locked="a" * 40)
    target = Target(flakes[1], ("depends on modules",), (override,))
    (at_lock,) = base_targets(ws, [target], {repo_m: tree}, {repo_m: "a" * 40})
    assert at_lock.overrides == ()
    (elsewhere,) = base_targets(ws, [target], {repo_m: tree}, {repo_m: "c" * 40})
    assert [o.ref for o in elsewhere.overrides] == [Flake(Repo("modules", tree), "").ref]
