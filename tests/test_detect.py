"""Change detection on real git repos (no Nix needed: flake.lock files are written by hand)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import Cli
from fakeproc import FakeProc
from helpers import commit, git

from ci_nix import detect as detect_mod
from ci_nix import inputs as inputs_mod
from ci_nix import workspace as workspace_mod
from ci_nix.errors import SelectionError
from ci_nix.models import Target
from ci_nix.tools.git import Git, WorkTree

FLAKE = "{ outputs = { self }: { }; }\n"
NO_CI: dict[str, str] = {}


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def make_repo(path: Path, files: dict[str, str]) -> str:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    write(path, files)
    return commit(path, "initial")


def lock(**inputs: dict[str, object]) -> str:
    """A version 7 flake.lock whose root has the given inputs (name -> locked attrs)."""
    nodes: dict[str, object] = {"root": {"inputs": {name: name for name in inputs}}}
    for name, locked in inputs.items():
        nodes[name] = {"locked": {**locked, "narHash": "sha256-AAAA"}, "original": dict(locked)}
    return json.dumps({"nodes": nodes, "root": "root", "version": 7}, indent=2)


def run_detect(path: Path, base: str | None = None, head: str | None = None,
               environ: dict[str, str] | None = None) -> detect_mod.Detection:
    """Detection with each target's workspace inputs, as `ci-nix detect` shows them."""
    git_tool = Git.from_env()
    ws = workspace_mod.load(path, git_tool)
    detection = detect_mod.detect(ws, git_tool, base, head,
                                  NO_CI if environ is None else environ)
    return with_inputs(ws, git_tool, detection)


def with_inputs(ws: workspace_mod.Workspace, git_tool: Git,
                detection: detect_mod.Detection) -> detect_mod.Detection:
    targets = inputs_mod.with_workspace_inputs(ws, git_tool, detection.targets,
                                               inputs_mod.checkouts(ws, git_tool), locked=False)
    return replace(detection, targets=targets)


def overrides(target: Target) -> list[tuple[str, str]]:
    return [(o.input, o.ref) for o in target.overrides]


def picked(detection: detect_mod.Detection) -> dict[str, list[str]]:
    return {t.flake.id: list(t.reasons) for t in detection.targets}


def pruned(detection: detect_mod.Detection) -> dict[str, list[str]]:
    return {t.flake.id: list(t.reasons) for t in detection.pruned}


# --- pure pieces ------------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "github:Example/Modules", "git+https://github.com/example/modules.git",
    "https://github.com/Example/modules", "git@github.com:example/modules.git",
    "ssh://git@github.com:22/example/Modules.git", "git+ssh://git@github.com/example/modules",
    "https://github.com/example/modules/",
])
def test_remote_urls_normalise_to_one_key(url: str) -> None:
    assert detect_mod.normalise_url(url) == ("github.com/example/modules", "")


def test_normalise_keeps_subdir_and_hosts_apart() -> None:
    assert detect_mod.normalise_url("git+https://gitlab.example.com/grp/mono.git?dir=lib") == (
        "gitlab.example.com/grp/mono", "lib")
    assert detect_mod.normalise_url("gitlab:grp/mono?dir=a/b") == ("gitlab.com/grp/mono", "a/b")
    sourcehut = detect_mod.normalise_url("sourcehut:~me/repo")
    assert sourcehut is not None and sourcehut[0] == "git.sr.ht/~me/repo"
    assert detect_mod.normalise_url("https://github.com/example/other") != (
        "github.com/example/modules", "")


def test_ignore_globs_match_like_gitignore() -> None:
    default = ("**/*.md", "docs/**", "LICENSE*")
    for name in ("README.md", "a/b/NOTES.md", "docs/guide/x.nix", "LICENSE", "sub/LICENSE-MIT"):
        assert detect_mod.ignored(name, default), name
    for name in ("flake.nix", "a/docs/x.nix", "md", "README.md.nix", "docsx/y"):
        assert not detect_mod.ignored(name, default), name


# --- one repo ---------------------------------------------------------------------------------

@pytest.fixture
def monorepo(tmp_path: Path) -> tuple[Path, str]:
    """Root flake, lib/, lib/nested/ and app/ (app locks lib by relative path)."""
    repo = tmp_path / "mono"
    base = make_repo(repo, {
        "flake.nix": FLAKE, "README.md": "# mono\n", "docs/index.txt": "docs\n",
        "lib/flake.nix": FLAKE, "lib/default.nix": "1\n",
        "lib/nested/flake.nix": FLAKE, "lib/nested/x.nix": "2\n",
        "app/flake.nix": FLAKE, "app/flake.lock": lock(lib={"type": "path", "path": "../lib"}),
    })
    return repo, base


def test_file_belongs_to_innermost_flake(monorepo: tuple[Path, str]) -> None:
    repo, base = monorepo
    write(repo, {"lib/nested/x.nix": "3\n"})
    assert picked(run_detect(repo, base)) == {"mono/lib/nested": ["changed lib/nested/x.nix"]}


def test_dependent_in_same_repo_gets_override(monorepo: tuple[Path, str]) -> None:
    repo, base = monorepo
    write(repo, {"lib/default.nix": "5\n"})
    head = commit(repo)
    detection = run_detect(repo, base, head)
    assert picked(detection) == {
        "mono/lib": ["changed lib/default.nix"],
        "mono/app": ["depends on mono/lib (input 'lib')"],
    }
    app = next(t for t in detection.targets if t.flake.id == "mono/app")
    assert overrides(app) == [("lib", f"git+file://{repo}?dir=lib")]
    # the other flakes' source is the whole repo: path rules prune them, evaluation decides
    assert pruned(detection) == {
        "mono": ["changed lib/default.nix (in another flake's directory, but in its source)"],
        "mono/lib/nested": ["changed lib/default.nix (in another flake's directory, but in "
                            "its source)"]}
    assert detection.unaffected == ()
    assert detection.head == head


def test_flake_in_a_subdirectory_can_read_the_whole_repo(tmp_path: Path) -> None:
    """app/flake.nix may import ../common/lib.nix: a change there must reach app (#23)."""
    repo = tmp_path / "r"
    base = make_repo(repo, {"flake.nix": FLAKE, "common/lib.nix": "1",
                            "app/flake.nix": "{ outputs = { self }: import ../common/lib.nix; }"})
    write(repo, {"common/lib.nix": "throw \"broken\""})
    detection = run_detect(repo, base)
    assert picked(detection) == {"r": ["changed common/lib.nix"]}
    assert pruned(detection) == {
        "r/app": ["changed common/lib.nix (in another flake's directory, but in its source)"]}
    assert detection.unaffected == ()


def test_docs_only_change_affects_nothing(monorepo: tuple[Path, str]) -> None:
    repo, base = monorepo
    write(repo, {"README.md": "# changed\n", "docs/index.txt": "new\n", "lib/NOTES.md": "n\n"})
    commit(repo)
    detection = run_detect(repo, base, "HEAD")
    assert detection.targets == ()
    # ignored files are still in every flake's source: evaluation at both sides decides
    assert pruned(detection)["mono/app"] == [
        f"changed {name} (matches 'ignore:', but is in its source)"
        for name in ("README.md", "docs/index.txt", "lib/NOTES.md")] + [
        "depends on mono/lib (input 'lib')"]
    assert len(detection.pruned) == 4 and detection.unaffected == ()
    # the user learns why nothing is built, file by file
    assert detection.notes == ("mono: ignored 3 changed files matching 'ignore:': README.md, "
                               "docs/index.txt, lib/NOTES.md",)


def test_change_outside_flake_dirs_affects_every_flake_of_the_repo(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    base = make_repo(repo, {"a/flake.nix": FLAKE, "b/flake.nix": FLAKE, "common/x.nix": "1"})
    write(repo, {"common/x.nix": "2"})
    assert picked(run_detect(repo, base)) == {
        "r/a": ["changed common/x.nix (outside every flake directory)"],
        "r/b": ["changed common/x.nix (outside every flake directory)"],
    }


def test_lock_only_change(monorepo: tuple[Path, str]) -> None:
    repo, base = monorepo
    write(repo, {"app/flake.lock": lock(lib={"type": "path", "path": "../lib"}) + "\n"})
    assert picked(run_detect(repo, base)) == {"mono/app": ["flake.lock changed"]}


def test_merge_base_ignores_what_main_did_meanwhile(monorepo: tuple[Path, str]) -> None:
    repo, _ = monorepo
    git(repo, "checkout", "-q", "-b", "feature")
    write(repo, {"app/main.nix": "x"})
    commit(repo)
    git(repo, "checkout", "-q", "main")
    write(repo, {"lib/nested/x.nix": "main moved on"})
    commit(repo)
    git(repo, "checkout", "-q", "feature")
    assert picked(run_detect(repo, "main", "HEAD")) == {"mono/app": ["changed app/main.nix"]}


def test_unknown_explicit_base_is_an_error(monorepo: tuple[Path, str]) -> None:
    repo, _ = monorepo
    with pytest.raises(SelectionError, match="--base nope: no such revision"):
        run_detect(repo, "nope")


def test_no_base_outside_ci_builds_everything(monorepo: tuple[Path, str]) -> None:
    repo, _ = monorepo
    detection = run_detect(repo)
    assert len(detection.targets) == 4 and "no base revision" in detection.targets[0].reasons[0]


# --- across repos -----------------------------------------------------------------------------

def make_workspace(tmp_path: Path, hosts_lock: str, modules_files: dict[str, str] | None = None
                   ) -> tuple[Path, str]:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "ci-nix.yaml").write_text("repos:\n  - path: modules\n  - path: hosts\n")
    base = make_repo(ws / "modules", modules_files or {"flake.nix": FLAKE, "lib.nix": "1"})
    make_repo(ws / "hosts", {"flake.nix": FLAKE, "flake.lock": hosts_lock, "web.nix": "w"})
    return ws, base


def test_cross_repo_dependent_via_git_file_url(tmp_path: Path) -> None:
    ws, base = make_workspace(tmp_path, lock(modules={
        "type": "git", "url": f"file://{tmp_path}/ws/modules", "rev": "0" * 40}))
    write(ws / "modules", {"lib.nix": "2"})
    detection = run_detect(ws / "modules", base)
    assert picked(detection) == {"modules": ["changed lib.nix"],
                                 "hosts": ["depends on modules (input 'modules')"]}
    hosts = next(t for t in detection.targets if t.flake.id == "hosts")
    assert overrides(hosts) == [("modules", f"git+file://{ws}/modules")]


def test_cross_repo_dependent_via_matching_remote(tmp_path: Path) -> None:
    ws, base = make_workspace(
        tmp_path,
        lock(modules={"type": "github", "owner": "Example", "repo": "modules", "rev": "0" * 40},
             lib={"type": "git", "url": "https://github.com/example/modules.git", "dir": "lib",
                  "rev": "0" * 40}),
        {"flake.nix": FLAKE, "lib/flake.nix": FLAKE, "lib/x.nix": "1"})
    git(ws / "modules", "remote", "add", "origin", "git@github.com:example/Modules.git")
    write(ws / "modules", {"lib/x.nix": "2"})
    detection = run_detect(ws / "modules", base)
    assert picked(detection) == {"modules/lib": ["changed lib/x.nix"],
                                 "hosts": ["depends on modules/lib (input 'lib')"]}
    # the root flake of modules can read lib/x.nix too: hosts reads it as checked out as well
    assert pruned(detection) == {"modules": [
        "changed lib/x.nix (in another flake's directory, but in its source)"]}
    hosts = next(t for t in detection.targets if t.flake.id == "hosts")
    # modules is not what the lock has either: the workspace as checked out, changed or not
    assert overrides(hosts) == [("lib", f"git+file://{ws}/modules?dir=lib"),
                                ("modules", f"git+file://{ws}/modules")]


def test_dependents_are_affected_transitively(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "ci-nix.yaml").write_text("repos:\n  - path: base\n  - path: modules\n"
                                    "  - path: hosts\n  - path: other\n")
    base_rev = make_repo(ws / "base", {"flake.nix": FLAKE})
    make_repo(ws / "modules", {"flake.nix": FLAKE, "flake.lock": lock(
        base={"type": "path", "path": str(ws / "base")})})
    hosts_lock = json.loads(lock(modules={"type": "path", "path": str(ws / "modules")}))
    # what Nix writes: the input's own inputs are nodes of the dependent's lock too
    hosts_lock["nodes"]["modules"]["inputs"] = {"base": "base"}
    hosts_lock["nodes"]["base"] = {"locked": {"type": "git", "url": f"file://{ws}/base"},
                                   "original": {"type": "git", "url": f"file://{ws}/base"}}
    make_repo(ws / "hosts", {"flake.nix": FLAKE, "flake.lock": json.dumps(hosts_lock)})
    make_repo(ws / "other", {"flake.nix": FLAKE})
    write(ws / "base", {"flake.nix": FLAKE + "# changed\n"})
    detection = run_detect(ws / "base", base_rev)
    assert picked(detection) == {"base": ["changed flake.nix"],
                                 "modules": ["depends on base (input 'base')"],
                                 "hosts": ["depends on modules (input 'modules')",
                                           "depends on base (input 'modules/base')"]}
    assert [f.id for f, _ in detection.unaffected] == ["other"]
    hosts = next(t for t in detection.targets if t.flake.id == "hosts")
    # Nix takes modules' inputs from modules' own lock: base needs its own override
    assert overrides(hosts) == [("modules", f"git+file://{ws}/modules"),
                                ("modules/base", f"git+file://{ws}/base")]


def test_skip_reasons_and_summary_name_each_repo_compared(tmp_path: Path) -> None:
    """#23: in a multi-repo workspace, say which repo was compared from where."""
    ws, _ = make_workspace(tmp_path, lock(modules={"type": "path", "path": "../modules"}))
    make_repo(ws / "other", {"flake.nix": FLAKE})
    (ws / "ci-nix.yaml").write_text("repos:\n  - path: modules\n  - path: hosts\n"
                                    "  - path: other\n")
    write(ws / "hosts", {"web.nix": "changed"})
    git_tool = Git.from_env()
    workspace = workspace_mod.load(ws / "hosts", git_tool)
    hosts_base = git(ws / "hosts", "rev-parse", "HEAD")
    detection = detect_mod.detect(workspace, git_tool, "HEAD", None, NO_CI)
    assert {flake.id: why for flake, why in detection.unaffected} == {
        "modules": f"no change in hosts since {hosts_base[:12]} can reach it",
        "other": f"no change in hosts since {hosts_base[:12]} can reach it"}
    assert detection.compared(workspace) == (
        f"hosts: changes from {hosts_base[:12]} (merge-base with HEAD) to the work tree; "
        "modules, other: as checked out")


def test_workspace_root_diffs_every_repo_with_the_base(tmp_path: Path) -> None:
    ws, _ = make_workspace(tmp_path, lock(modules={"type": "path", "path": "../modules"}))
    write(ws / "hosts", {"web.nix": "changed"})
    assert picked(run_detect(ws, "HEAD")) == {"hosts": ["changed web.nix"]}
    write(ws / "modules", {"lib.nix": "changed"})
    assert set(picked(run_detect(ws, "HEAD"))) == {"hosts", "modules"}


# --- base and head from CI --------------------------------------------------------------------

def test_github_pull_request_event_gives_the_base(monorepo: tuple[Path, str],
                                                  tmp_path: Path) -> None:
    repo, base = monorepo
    write(repo, {"app/x.nix": "1"})
    commit(repo)
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 1, "base": {"sha": base}}}))
    env = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request",
           "GITHUB_EVENT_PATH": str(event)}
    detection = run_detect(repo, environ=env)
    assert picked(detection) == {"mono/app": ["changed app/x.nix"]} and detection.base == base


def test_github_push_of_new_branch_builds_everything(monorepo: tuple[Path, str],
                                                     tmp_path: Path) -> None:
    repo, _ = monorepo
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"before": "0" * 40, "after": "abc"}))
    env = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "push", "GITHUB_EVENT_PATH": str(event)}
    detection = run_detect(repo, environ=env)
    assert len(detection.targets) == 4
    assert "new branch" in detection.targets[0].reasons[0]


def test_gitlab_merge_request_base_wins_over_before_sha(monorepo: tuple[Path, str]) -> None:
    repo, base = monorepo
    write(repo, {"lib/nested/x.nix": "a"})
    middle = commit(repo)
    write(repo, {"app/x.nix": "b"})
    commit(repo)
    env = {"GITLAB_CI": "true", "CI_COMMIT_BEFORE_SHA": middle}
    assert picked(run_detect(repo, environ=env)) == {"mono/app": ["changed app/x.nix"]}
    env["CI_MERGE_REQUEST_DIFF_BASE_SHA"] = base
    assert set(picked(run_detect(repo, environ=env))) == {"mono/app", "mono/lib/nested"}
    # --base beats the environment
    assert set(picked(run_detect(repo, base=middle, environ=env))) == {"mono/app"}


# --- shallow clones ---------------------------------------------------------------------------

def shallow_clone(tmp_path: Path) -> tuple[Path, str]:
    """A depth-1 clone whose base lies three commits back, only on the remote."""
    src = tmp_path / "src"
    base = make_repo(src, {"a/flake.nix": FLAKE, "b/flake.nix": FLAKE})
    for i in range(3):
        write(src, {f"b/{i}.nix": str(i)})
        commit(src)
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(src), str(bare)], check=True)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{bare}", str(clone)],
                   check=True)
    assert git(clone, "rev-parse", "--is-shallow-repository") == "true"
    return clone, base


def test_a_workspace_repo_says_its_root_shallowness_and_head_in_one_git_call(
        tmp_path: Path) -> None:
    clone, _ = shallow_clone(tmp_path)
    tool = Git.from_env({})
    head = (git(clone, "rev-parse", "HEAD"), git(clone, "rev-parse", "HEAD^{tree}"))
    assert tool.work_tree(clone / "b") == WorkTree(clone, True, head)  # from a subdirectory too
    src = tool.work_tree(tmp_path / "src")
    assert src is not None and (src.root, src.shallow) == (tmp_path / "src", False)
    assert tool.work_tree(tmp_path / "remote.git") is None  # bare: no work tree
    assert tool.work_tree(tmp_path) is None
    git(tmp_path, "init", "-q", str(tmp_path / "empty"))
    assert tool.work_tree(tmp_path / "empty") == WorkTree(tmp_path / "empty", False, None)
    for odd in ("spaced ", " lead", "cr\r"):  # the root as git says it, nothing stripped
        git(tmp_path, "init", "-q", str(tmp_path / odd))
        assert tool.work_tree(tmp_path / odd) == WorkTree(tmp_path / odd, False, None)
    ws = workspace_mod.load(clone, tool)
    (repo,) = ws.repos
    assert repo.path == clone and repo.shallow and ws.states == {clone: (*head, False)}


def test_loading_reads_each_repo_s_state_in_two_git_calls(
        tmp_path: Path, fake_proc: FakeProc, monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading a workspace reads each repo's state as Nix reads it (HEAD's commit and tree,
    whether tracked files differ) beside its flakes: `rev-parse` (root, shallowness, HEAD)
    and, with `ls-files`, one `git status`, which says HEAD again (moved meanwhile: not known,
    read afresh). The run's checkouts then ask git nothing."""
    root = tmp_path / "ws"
    for name in ("a", "b", "c"):
        make_repo(root / name, {"flake.nix": FLAKE})
    (root / "ci-nix.yaml").write_text("repos:\n  - path: a\n  - path: b\n  - path: c\n")
    write(root / "a", {"flake.nix": FLAKE + "# changed\n"})
    write(root / "c", {"flake.nix": FLAKE + "# staged\n"})
    git(root / "c", "add", "flake.nix")  # staged, then undone in the work tree: differs too
    write(root / "c", {"flake.nix": FLAKE})
    tool = Git.from_env({})
    real = Git.head_status

    def moving(self: Git, repo: Path) -> tuple[str, bool] | None:
        if repo.name == "b":  # HEAD moves between rev-parse and status
            commit(repo, files={"x.nix": "1\n"})
        return real(self, repo)

    monkeypatch.setattr(Git, "head_status", moving)
    ws = workspace_mod.load(root, tool)
    per_repo = {name: [c.argv[3] for c in fake_proc.ran("git") if c.argv[2] == str(root / name)]
                for name in ("a", "b", "c")}
    assert per_repo["a"] == ["rev-parse", "ls-files", "--no-optional-locks"], per_repo
    fake_proc.calls.clear()
    states = inputs_mod.checkouts(ws, tool)
    tree = {name: git(root / name, "rev-parse", "HEAD^{tree}") for name in ("a", "b", "c")}
    head = {name: git(root / name, "rev-parse", "HEAD") for name in ("a", "b", "c")}
    assert states["a"] == inputs_mod.Checkout("a", head["a"], True, tree["a"])
    assert states["b"] == inputs_mod.Checkout("b", head["b"], False, tree["b"])  # read afresh
    assert states["c"] == inputs_mod.Checkout("c", head["c"], True, tree["c"])
    assert {c.argv[2] for c in fake_proc.ran("git")} == {str(root / "b")}


def test_a_lock_naming_only_checkouts_asks_git_for_no_remote(monorepo: tuple[Path, str],
                                                             fake_proc: FakeProc) -> None:
    """Lock inputs are matched to workspace repos by remote URL only where a node names no
    checkout of the workspace: app locks lib by relative path."""
    repo, base = monorepo
    git_tool = Git.from_env({})
    ws = workspace_mod.load(repo, git_tool)
    detect_mod.detect(ws, git_tool, base, None, NO_CI)
    edges = detect_mod.lock_edges(ws, git_tool)
    assert [(e.dependent.id, e.dependency.id) for e in edges] == [("mono/app", "mono/lib")]
    assert not fake_proc.ran("git", "config", "--get-regexp")


def test_a_run_asks_git_for_each_repo_s_remotes_once(tmp_path: Path,
                                                    fake_proc: FakeProc) -> None:
    """A lock naming a repository by its forge URL is matched to the workspace repo with that
    remote: one `git config` per repo in detection, the overrides and input origins, not one
    per use."""
    root = tmp_path / "ws"
    make_repo(root / "lib", {"flake.nix": FLAKE})
    git(root / "lib", "remote", "add", "origin", "https://github.com/acme/lib.git")
    rev = git(root / "lib", "rev-parse", "HEAD")
    make_repo(root / "app", {"flake.nix": FLAKE, "flake.lock": lock(
        lib={"type": "github", "owner": "acme", "repo": "lib", "rev": rev})})
    (root / "ci-nix.yaml").write_text("repos:\n  - path: lib\n  - path: app\n")
    git_tool = Git.from_env({})
    ws = workspace_mod.load(root, git_tool)
    edges = detect_mod.lock_edges(ws, git_tool)
    detect_mod.lock_edges(ws, git_tool)
    detect_mod.workspace_flake_of(ws, git_tool)  # input origins build one resolver more
    assert [(e.dependent.id, e.dependency.id) for e in edges] == [("app", "lib")]
    asked = fake_proc.ran("git", "config", "--get-regexp")
    assert sorted(c.argv[2] for c in asked) == sorted(str(r.path) for r in ws.repos)


def test_shallow_clone_fetches_the_base(tmp_path: Path) -> None:
    clone, base = shallow_clone(tmp_path)
    detection = run_detect(clone, base, "HEAD")
    assert set(picked(detection)) == {"clone/b"}
    assert detection.notes == ()


def test_shallow_clone_without_reachable_base_builds_everything(tmp_path: Path) -> None:
    clone, base = shallow_clone(tmp_path)
    git(clone, "remote", "set-url", "origin", f"file://{tmp_path}/gone.git")
    detection = run_detect(clone, base, "HEAD")
    assert {t.flake.id for t in detection.targets} == {"clone/a", "clone/b"}
    assert "shallow clone of clone" in detection.notes[0]
    assert "shallow clone" in detection.targets[0].reasons[0]


# --- the command ------------------------------------------------------------------------------

def test_detect_json_and_text(monorepo: tuple[Path, str], cli: Cli) -> None:
    repo, base = monorepo
    write(repo, {"lib/default.nix": "9\n"})
    result = cli("detect", repo, "--base", base, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [(f["flake"], f["path"], f["reasons"]) for f in data["flakes"]] == [
        ("mono/app", "app", ["depends on mono/lib (input 'lib')"]),
        ("mono/lib", "lib", ["changed lib/default.nix"]),
    ]
    text = cli("detect", repo, "--base", base)
    assert text.returncode == 0 and "mono/lib (lib)\n  - changed lib/default.nix" in text.stdout
    bad = cli("detect", repo, "--base", "no-such-branch")
    assert bad.returncode == 2 and "ci-nix: error: --base no-such-branch" in bad.stderr


def test_only_keeps_the_overrides_of_a_dependent(monorepo: tuple[Path, str]) -> None:
    repo, base = monorepo
    write(repo, {"lib/default.nix": "7\n"})
    git_tool = Git.from_env()
    ws = workspace_mod.load(repo, git_tool)
    detection = with_inputs(ws, git_tool, detect_mod.select(
        ws, git_tool, all=False, base=base, head=None, only={"mono/app", "mono"}, environ=NO_CI))
    assert [(t.flake.id, t.reasons, overrides(t)) for t in detection.targets] == [
        ("mono", ("changed lib/default.nix (in another flake's directory, but in its "
                  "source)",), []),
        ("mono/app", ("depends on mono/lib (input 'lib')",),
         [("lib", f"git+file://{repo}?dir=lib")]),
    ]
