"""Lock diff, compare links, health notes and markdown, on hand-written flake.lock data."""

from __future__ import annotations

import json
from typing import Any

from ci_nix import changelog, lockfile


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
