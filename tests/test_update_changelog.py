"""Lock diff, compare links, health notes and markdown, on hand-written flake.lock data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import git

from ci_nix import changelog, lockfile
from ci_nix.tools.git import Git
from ci_nix.update import locks


def lock(nodes: dict[str, Any], root_inputs: dict[str, Any]) -> lockfile.Lock:
    data = {"version": 7, "root": "root",
            "nodes": {"root": {"inputs": root_inputs}, **nodes}}
    return lockfile.parse(json.dumps(data))


def gh(owner: str, repo: str, rev: str, when: int, **extra: Any) -> dict[str, Any]:
    return {"locked": {"type": "github", "owner": owner, "repo": repo, "rev": rev,
                       "lastModified": when, "narHash": "sha256-x"},
            "original": {"type": "github", "owner": owner, "repo": repo}, **extra}


OLD, NEW = "a" * 40, "b" * 40
DAY1, DAY2 = 1700000000, 1700600000  # 2023-11-14, 2023-11-21


def test_updated_github_input_has_revs_dates_and_compare_link() -> None:
    before = lock({"nixpkgs": gh("NixOS", "nixpkgs", OLD, DAY1)}, {"nixpkgs": "nixpkgs"})
    after = lock({"nixpkgs": gh("NixOS", "nixpkgs", NEW, DAY2)}, {"nixpkgs": "nixpkgs"})
    (change,) = changelog.diff(before, after)
    assert (change.name, change.kind) == ("nixpkgs", "updated")
    assert change.compare_url == f"https://github.com/NixOS/nixpkgs/compare/{OLD}...{NEW}"
    text = changelog.render((changelog.changelog("hosts", before, after),))
    assert ("| `nixpkgs` | github.com/NixOS/nixpkgs | `aaaaaaa` → `bbbbbbb` | "
            "2023-11-14 → 2023-11-21 |") in text
    assert f"[compare](https://github.com/NixOS/nixpkgs/compare/{OLD}...{NEW})" in text


def test_compare_links_for_other_hosts() -> None:
    cases = {
        "gitlab:": ({"type": "gitlab", "owner": "group%2Fsub", "repo": "lib",
                     "host": "git.corp.example"},
                    f"https://git.corp.example/group/sub/lib/-/compare/{OLD}...{NEW}"),
        "sourcehut": ({"type": "sourcehut", "owner": "~alice", "repo": "tools"},
                      f"https://git.sr.ht/~alice/tools/log/{NEW}"),
        "codeberg": ({"type": "git", "url": "https://codeberg.org/bob/pkgs.git"},
                     f"https://codeberg.org/bob/pkgs/compare/{OLD}...{NEW}"),
        "self-hosted gitlab by remote": (
            {"type": "git", "url": "https://code.example.org/infra/nix/modules.git"},
            f"https://code.example.org/infra/nix/modules/-/compare/{OLD}...{NEW}"),
        "unknown host": ({"type": "git", "url": "https://example.net/x.git"}, None),
        "local file": ({"type": "git", "url": "file:///srv/x"}, None),
    }
    hosts = {"code.example.org": "gitlab"}
    for label, (locked, expected) in cases.items():
        old = lock({"dep": {"locked": {**locked, "rev": OLD, "lastModified": DAY1},
                            "original": locked}}, {"dep": "dep"})
        new = lock({"dep": {"locked": {**locked, "rev": NEW, "lastModified": DAY2},
                            "original": locked}}, {"dep": "dep"})
        (change,) = changelog.diff(old, new, hosts)
        assert change.compare_url == expected, label


def test_known_repo_urls_give_links_to_file_remotes() -> None:
    node = {"locked": {"type": "git", "url": "file:///srv/git/modules.git", "rev": OLD},
            "original": {"type": "git", "url": "file:///srv/git/modules.git"}}
    moved = {**node, "locked": {**node["locked"], "rev": NEW}}
    (change,) = changelog.diff(lock({"m": node}, {"m": "m"}), lock({"m": moved}, {"m": "m"}),
                               {"gl.example": "gitlab"},
                               {"file:///srv/git/modules": "https://gl.example/infra/modules"})
    assert change.compare_url == f"https://gl.example/infra/modules/-/compare/{OLD}...{NEW}"


def test_added_removed_and_follows_changes() -> None:
    before = lock({"nixpkgs": gh("NixOS", "nixpkgs", OLD, DAY1),
                   "old": gh("a", "old", OLD, DAY1),
                   "hm": gh("nix-community", "home-manager", OLD, DAY1,
                            inputs={"nixpkgs": "nixpkgs_2"}),
                   "nixpkgs_2": gh("NixOS", "nixpkgs", NEW, DAY2)},
                  {"nixpkgs": "nixpkgs", "old": "old", "hm": "hm"})
    after = lock({"nixpkgs": gh("NixOS", "nixpkgs", OLD, DAY1),
                  "new": gh("a", "new", NEW, DAY2),
                  "hm": gh("nix-community", "home-manager", OLD, DAY1,
                           inputs={"nixpkgs": ["nixpkgs"]})},
                 {"nixpkgs": "nixpkgs", "new": "new", "hm": "hm"})
    changes = {c.name: c.kind for c in changelog.diff(before, after)}
    assert changes == {"new": "added", "old": "removed", "hm/nixpkgs": "follows"}
    text = changelog.render((changelog.changelog("hosts", before, after),))
    assert "added: `bbbbbbb`" in text and "removed (was `aaaaaaa`)" in text
    assert "`bbbbbbb` → `follows nixpkgs`" in text


def test_health_suggests_follows_for_extra_nixpkgs() -> None:
    after = lock({"nixpkgs": gh("NixOS", "nixpkgs", OLD, DAY1),
                  "modules": gh("acme", "modules", OLD, DAY1, inputs={"nixpkgs": "nixpkgs_2"}),
                  "nixpkgs_2": gh("NixOS", "nixpkgs", NEW, DAY2),
                  "tools": gh("acme", "tools", OLD, DAY1, inputs={"nixpkgs": ["nixpkgs"]})},
                 {"nixpkgs": "nixpkgs", "modules": "modules", "tools": "tools"})
    health = changelog.health(after)
    assert health.nixpkgs_copies == 2
    assert [n.suggestion for n in health.notes] == [
        'inputs.modules.inputs.nixpkgs.follows = "nixpkgs";']
    log = changelog.changelog("hosts", after, after)
    assert not log.changes
    text = changelog.render((log,))
    assert "locks 2 copies of NixOS/nixpkgs" in text
    assert 'inputs.modules.inputs.nixpkgs.follows' in text


def test_no_changes_renders_nothing() -> None:
    same = lock({"nixpkgs": gh("NixOS", "nixpkgs", OLD, DAY1)}, {"nixpkgs": "nixpkgs"})
    assert changelog.render((changelog.changelog("x", same, same),)) == ""


# --- real lock pairs (tests/data/locks/README.md says where each comes from) -------------------

LOCKS = Path(__file__).parent / "data" / "locks"


def pair(name: str) -> tuple[lockfile.Lock, lockfile.Lock]:
    return (lockfile.parse((LOCKS / f"{name}.before.lock").read_text()),
            lockfile.parse((LOCKS / f"{name}.after.lock").read_text()))


def locked_paths_that_differ(before: lockfile.Lock, after: lockfile.Lock) -> set[tuple[str, ...]]:
    def entries(lock: lockfile.Lock) -> dict[tuple[str, ...], object]:
        return {path: target if isinstance(target, tuple) else lock.nodes[target].locked
                for path, target in changelog._entries(lock)}
    old, new = entries(before), entries(after)
    return {path for path in set(old) | set(new) if old.get(path) != new.get(path)}


@pytest.mark.parametrize("name", ["hyprland-wlroots", "devenv-ghostty"])
def test_every_moved_input_of_a_real_pair_is_listed(name: str) -> None:
    before, after = pair(name)
    changes = changelog.diff(before, after)
    assert {c.path for c in changes} == locked_paths_that_differ(before, after)


def test_a_source_repository_change_is_old_to_new_without_a_compare_link() -> None:
    before, after = pair("hyprland-wlroots")
    (change,) = changelog.diff(before, after)
    assert (change.name, change.kind) == ("wlroots", changelog.ChangeKind.MOVED)
    assert change.compare_url is None
    text = changelog.render((changelog.changelog("hyprland", before, after),))
    assert ("| `wlroots` | gitlab.freedesktop.org/wlroots/wlroots → "
            "github.com/hyprwm/wlroots-hyprland | `50eae51` → `62eeffb` |") in text
    assert "compare" not in text.split("\n", 4)[-1]

    before, after = pair("devenv-ghostty")
    changes = {c.name: c for c in changelog.diff(before, after)}
    assert changes["ghostty"].kind is changelog.ChangeKind.MOVED
    assert changes["ghostty"].compare_url is None
    zig = changes["ghostty/zon2nix/zig"]  # git on Codeberg: a Gitea compare link
    assert zig.compare_url is not None
    assert zig.compare_url.startswith("https://codeberg.org/jcollie/zig-overlay/compare/")


def test_health_on_a_real_lock_counts_channel_tarballs_forks_and_flakehub() -> None:
    before, _ = pair("devenv-ghostty")
    health = changelog.health(before)
    # nixpkgs-src (github:NixOS/nixpkgs) and releases.nixos.org channel tarballs are NixOS/nixpkgs
    assert health.nixpkgs_copies >= 3
    assert "github.com/cachix/devenv-nixpkgs" in health.forks  # the root's own nixpkgs: a fork
    assert health.notes == ()  # the root input named nixpkgs is the fork: nothing to follow


def test_file_inputs_without_rev_are_listed_by_what_is_locked() -> None:
    """A `type = "file"` input whose URL moved: no rev, no lastModified (the #17 report)."""
    def node(url: str, nar: str) -> dict[str, Any]:
        return {"flake": False, "locked": {"type": "file", "url": url, "narHash": nar},
                "original": {"type": "file", "url": url}}
    old = "https://example.org/raw/rev/d43df18a1b2c/macOS"
    new = "https://example.org/raw/rev/ed16dea3c4d5/macOS"
    before = lock({"mac": node(old, "sha256-AAAAAAAAAAAAAAAAAAAA")}, {"mac": "mac"})
    after = lock({"mac": node(new, "sha256-BBBBBBBBBBBBBBBBBBBB")}, {"mac": "mac"})
    log = changelog.changelog("hosts", before, after)
    (change,) = log.changes
    assert change.kind is changelog.ChangeKind.UPDATED
    text = changelog.render((log,))
    assert "`sha256-AAAAAAA` → `sha256-BBBBBBB`" in text and new in text
    assert changelog.moved_names((log,)) == ["mac"]


def test_forge_archive_tarballs_give_their_repository_and_links() -> None:
    rev_a = "a6f0e59c2c21811e02d4e65b0a7c9b779d7869b3"
    rev_b = "6c95c0b6f73f831226453fc6905c216ab634c30f"

    def node(repo: str, rev: str) -> dict[str, Any]:
        # the shape Nix locks a Forgejo archive in (immutable link protocol: ?rev=)
        url = (f"https://git.lix.systems/api/v1/repos/lix-project/{repo}/archive/{rev}.tar.gz"
               f"?rev={rev}")
        return {"locked": {"type": "tarball", "url": url, "narHash": "sha256-" + rev[:8],
                           "lastModified": DAY1}, "original": {"type": "tarball", "url": url}}
    before = lock({"lix": node("lix", rev_a), "mod": node("nixos-module", rev_a)},
                  {"lix": "lix", "mod": "mod"})
    after = lock({"lix": node("lix", rev_b), "mod": node("nixos-module", rev_b)},
                 {"lix": "lix", "mod": "mod"})
    changes = {c.name: c for c in changelog.diff(before, after)}
    assert changes["lix"].compare_url == (
        f"https://git.lix.systems/lix-project/lix/compare/{rev_a}...{rev_b}")
    assert changes["mod"].compare_url == (
        f"https://git.lix.systems/lix-project/nixos-module/compare/{rev_a}...{rev_b}")
    assert changes["lix"].new is not None and changes["lix"].new.where == (
        "git.lix.systems/lix-project/lix")


def test_health_finds_nixpkgs_under_other_names_and_picks_the_most_followed_root() -> None:
    tarball = {"locked": {"type": "tarball", "narHash": "sha256-c",
                          "url": "https://github.com/NixOS/nixpkgs/archive/" + NEW + ".tar.gz"},
               "original": {"type": "tarball",
                            "url": "https://github.com/NixOS/nixpkgs/archive/" + NEW + ".tar.gz"}}
    after = lock({"unstable": gh("NixOS", "nixpkgs", OLD, DAY1),
                  "stable": gh("NixOS", "nixpkgs", NEW, DAY2),
                  "hm": gh("nix-community", "home-manager", OLD, DAY1,
                           inputs={"nixpkgs": ["unstable"]}),
                  "sops": gh("Mic92", "sops-nix", OLD, DAY1, inputs={"nixpkgs": ["unstable"]}),
                  "tool": gh("acme", "tool", OLD, DAY1, inputs={"pkgs": "pkgs_2"}),
                  "pkgs_2": tarball,
                  "fork": gh("acme", "nixpkgs", OLD, DAY1),
                  "fh": {"locked": {"type": "tarball", "narHash": "sha256-d", "url":
                                    "https://api.flakehub.com/f/pinned/NixOS/nixpkgs/0.1/x/"
                                    "source.tar.gz"}, "original": {"type": "indirect",
                                                                   "id": "nixpkgs"}}},
                 {"stable": "stable", "unstable": "unstable", "hm": "hm", "sops": "sops",
                  "tool": "tool", "fork": "fork", "fh": "fh"})
    health = changelog.health(after)
    assert health.nixpkgs_copies == 3  # stable, unstable, the archive tarball
    assert health.forks == ("github.com/acme/nixpkgs",) and health.flakehub_copies == 1
    assert health.root_input == "unstable"  # followed by hm and sops
    assert [n.suggestion for n in health.notes] == [
        'inputs.tool.inputs.pkgs.follows = "unstable";']
    text = changelog.render((changelog.changelog("hosts", after, after),))
    assert "forks of nixpkgs, counted separately: github.com/acme/nixpkgs" in text
    assert "1 FlakeHub copies" in text


@pytest.mark.parametrize("version", [1, 2, 3])
def test_old_lock_versions_are_unsupported(version: int) -> None:
    text = json.dumps({"version": version, "inputs": {}})
    with pytest.raises(lockfile.LockError, match="run nix flake lock with a current Nix"):
        lockfile.parse(text)


def test_workspace_inputs_list_commit_subjects_at_most_ten(tmp_path: Path) -> None:
    repo = tmp_path / "modules"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "commit", "-q", "--allow-empty", "-m", "start")
    old = git(repo, "rev-parse", "HEAD")
    for n in range(12):
        git(repo, "commit", "-q", "--allow-empty", "-m", f"change {n} <b>|")
    new = git(repo, "rev-parse", "HEAD")

    def node(rev: str) -> dict[str, Any]:
        return {"locked": {"type": "git", "url": f"file://{repo}", "rev": rev},
                "original": {"type": "git", "url": f"file://{repo}"}}
    log = changelog.changelog("hosts", lock({"m": node(old)}, {"m": "m"}),
                              lock({"m": node(new)}, {"m": "m"}),
                              commits=locks.local_commits(Git.from_env()))
    (change,) = log.changes
    assert change.commit_count == 12 and len(change.commits) == 10
    assert change.commits[0] == "change 11 <b>|"  # newest first
    text = changelog.render((log,))
    assert "change 11 \\<b\\>\\|<br>" in text and "and 2 more" in text
    assert "change 1 " not in text  # the oldest two are counted, not listed


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_forge_inputs_list_commit_subjects_with_a_token(kind: str) -> None:
    import forgefakes

    from ci_nix.forge import ForgeTarget, connect

    fake = forgefakes.start(kind, "acme/hosts")
    try:
        fake.compares[("acme/modules", OLD, NEW)] = [f"modules: change {n}" for n in range(13)]
        forge, _ = connect(ForgeTarget(kind, "acme/hosts", fake.url, "T"),
                           {"T": forgefakes.TOKEN})
        host = "127.0.0.1"
        locked = {"type": "git", "url": f"{fake.url}/acme/modules.git"}

        def node(rev: str) -> dict[str, Any]:
            return {"locked": {**locked, "rev": rev}, "original": locked}
        log = changelog.changelog("hosts", lock({"m": node(OLD)}, {"m": "m"}),
                                  lock({"m": node(NEW)}, {"m": "m"}), {host: kind},
                                  commits=locks.forge_commits(forge))
        (change,) = log.changes
        assert change.commit_count == 13
        assert change.commits == tuple(f"modules: change {n}" for n in range(12, 2, -1))
        assert "and 3 more" in changelog.render((log,))
    finally:
        fake.close()
