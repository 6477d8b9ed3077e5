"""One identity for a repository, whatever flake reference or lock node names it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ci_nix import changelog, detect, lockfile, source
from ci_nix.flakeref import FlakeRef
from ci_nix.source import Flavour, Kind

# (flake URL, expected kind, identity key, subdir)
URLS = [
    ("github:NixOS/nixpkgs/nixos-unstable", Kind.GITHUB, "github.com/nixos/nixpkgs", ""),
    ("github:Org/Repo?dir=sub/flake", Kind.GITHUB, "github.com/org/repo", "sub/flake"),
    ("github:org/repo?host=ghe.corp.example", Kind.GITHUB, "ghe.corp.example/org/repo", ""),
    ("gitlab:group%2Fsub/lib", Kind.GITLAB, "gitlab.com/group/sub/lib", ""),
    ("gitlab:grp/mono?dir=a/b", Kind.GITLAB, "gitlab.com/grp/mono", "a/b"),
    ("sourcehut:~alice/tools", Kind.SOURCEHUT, "git.sr.ht/~alice/tools", ""),
    ("sourcehut:alice/tools", Kind.SOURCEHUT, "git.sr.ht/~alice/tools", ""),
    ("git+https://github.com/Org/Repo.GIT", Kind.GIT, "github.com/org/repo", ""),
    ("git+https://gitlab.example.com/grp/sub/mono.git?dir=lib&ref=main", Kind.GIT,
     "gitlab.example.com/grp/sub/mono", "lib"),
    ("git+https://codeberg.org/bob/pkgs.git", Kind.GIT, "codeberg.org/bob/pkgs", ""),
    ("git+ssh://git@github.com/org/repo", Kind.GIT, "github.com/org/repo", ""),
    ("ssh://git@github.com:22/Org/Repo.git", Kind.GIT, "github.com/org/repo", ""),
    ("git@github.com:Org/Repo.git", Kind.GIT, "github.com/org/repo", ""),
    ("https://github.com/org/repo/", Kind.GIT, "github.com/org/repo", ""),
    ("https://git.example.net/x/y.git", Kind.GIT, "git.example.net/x/y", ""),
    ("hg+https://hg.example.org/repo", Kind.MERCURIAL, "hg.example.org/repo", ""),
    ("https://github.com/o/r/archive/0123456789abcdef0123456789abcdef01234567.tar.gz",
     Kind.TARBALL, "github.com/o/r", ""),
    ("https://codeberg.org/api/v1/repos/Alice/dots/archive/main.tar.gz", Kind.TARBALL,
     "codeberg.org/alice/dots", ""),
    ("https://git.example.org/api/v1/repos/a/b/archive/v1.tar.gz", Kind.TARBALL,
     "git.example.org/a/b", ""),
    ("https://gitlab.com/g/sub/proj/-/archive/v1.2/proj-v1.2.tar.gz", Kind.TARBALL,
     "gitlab.com/g/sub/proj", ""),
    ("https://api.github.com/repos/NixOS/nixpkgs/tarball/abc1234", Kind.TARBALL,
     "github.com/nixos/nixpkgs", ""),
    ("https://channels.nixos.org/nixos-24.05/nixexprs.tar.xz", Kind.TARBALL,
     "github.com/nixos/nixpkgs", ""),
    ("https://api.flakehub.com/f/pinned/NixOS/nixpkgs/0.2405.1/018f/source.tar.gz",
     Kind.FLAKEHUB, "flakehub.com/nixos/nixpkgs", ""),
    ("https://example.com/some/file.tar.gz", Kind.TARBALL, None, ""),
    ("file+https://example.com/raw/macOS", Kind.FILE, None, ""),
    ("git+file:///srv/git/modules.git", Kind.GIT, "file:/srv/git/modules", ""),
    ("file:///srv/git/modules", Kind.GIT, "file:/srv/git/modules", ""),
    ("path:/srv/flakes/a", Kind.PATH, "file:/srv/flakes/a", ""),
    ("path:./sub", Kind.PATH, None, ""),
    ("/srv/flakes/b", Kind.PATH, "file:/srv/flakes/b", ""),
    ("flake:nixpkgs", Kind.INDIRECT, None, ""),
    ("nixpkgs", Kind.INDIRECT, None, ""),
]


@pytest.mark.parametrize("url, kind, key, subdir", URLS, ids=[u for u, *_ in URLS])
def test_every_reference_type_has_one_identity(url: str, kind: Kind, key: str | None,
                                               subdir: str) -> None:
    found = source.parse_url(url)
    assert found is not None
    assert (found.kind, found.key, found.subdir) == (kind, key, subdir)


def test_archive_urls_name_their_revision_and_forge() -> None:
    rev = "0123456789abcdef0123456789abcdef01234567"
    gitea = source.parse_url(f"https://codeberg.org/api/v1/repos/alice/dots/archive/{rev}.tar.gz")
    assert gitea is not None and gitea.repository is not None and gitea.rev == rev
    assert gitea.repository.web == "https://codeberg.org/alice/dots"
    assert source.compare_url(gitea.repository, "a" * 7, rev) == (
        f"https://codeberg.org/alice/dots/compare/aaaaaaa...{rev}")
    # a self-hosted Forgejo the host table does not know: the URL shape says Gitea's API
    forgejo = source.parse_url("https://git.example.org/api/v1/repos/a/b/archive/v1.tar.gz")
    assert forgejo is not None and forgejo.repository is not None
    assert forgejo.repository.flavour is Flavour.GITEA and forgejo.rev == "v1"
    gitlab = source.parse_url("https://gitlab.com/g/proj/-/archive/v1.2/proj-v1.2.tar.gz")
    assert gitlab is not None and gitlab.rev == "v1.2"
    channel = source.parse_url(
        "https://releases.nixos.org/nixos/unstable/nixos-24.05pre588222.e2dd4e18cc1c/"
        "nixexprs.tar.xz")
    assert channel is not None and channel.rev == "e2dd4e18cc1c"


def test_lock_nodes_of_every_type() -> None:
    cases = [
        ({"type": "github", "owner": "NixOS", "repo": "nixpkgs", "rev": "a" * 40},
         "github.com/nixos/nixpkgs"),
        ({"type": "gitlab", "owner": "group%2Fsub", "repo": "lib", "host": "git.corp.example"},
         "git.corp.example/group/sub/lib"),
        ({"type": "sourcehut", "owner": "~alice", "repo": "tools"}, "git.sr.ht/~alice/tools"),
        ({"type": "git", "url": "https://github.com/Org/Repo.git"}, "github.com/org/repo"),
        ({"type": "git", "url": "ssh://git@github.com/Org/Repo"}, "github.com/org/repo"),
        ({"type": "git", "url": "git@github.com:Org/Repo.git"}, "github.com/org/repo"),
        ({"type": "git", "url": "file:///srv/git/m.git"}, "file:/srv/git/m"),
        ({"type": "tarball", "url": "https://codeberg.org/api/v1/repos/a/b/archive/x.tar.gz"},
         "codeberg.org/a/b"),
        ({"type": "file", "url": "https://example.com/rev/d43df18/macOS"}, None),
        ({"type": "path", "path": "/srv/x"}, "file:/srv/x"),
        ({"type": "indirect", "id": "nixpkgs"}, None),
        ({"type": "weird"}, None),
    ]
    for data, key in cases:
        assert source.of_ref(FlakeRef.from_json(data)).key == key, data


def test_the_two_old_normalisers_agree_now(tmp_path: Path) -> None:
    """The #20 bug: `git@github.com:Org/Repo.git` became `file:git@github.com:Org/Repo` in the
    changelog's normaliser but `github.com/org/repo` in detection's, so bots ordered repos by one
    identity while detection linked them by another."""
    scp = "git@github.com:Org/Repo.GIT"
    assert detect.normalise_url(scp) == ("github.com/org/repo", "")
    node = lockfile.parse(json.dumps({"version": 7, "root": "root", "nodes": {
        "root": {"inputs": {"r": "r"}},
        "r": {"locked": {"type": "github", "owner": "org", "repo": "repo", "rev": "a" * 40},
              "original": {"type": "github", "owner": "org", "repo": "repo"}}}})).nodes["r"]
    parsed = source.parse_url(scp)
    assert parsed is not None, f"{scp} names a repository"
    assert source.of_ref(node.locked).key == parsed.key
    # a bots.yaml clone URL in scp form now links to its web page for compare links
    found = source.of_ref(FlakeRef.from_json({"type": "git", "url": scp}))
    web = changelog.web_repository(found, {}, {scp: "https://github.com/Org/Repo"})
    assert web is not None and web.web == "https://github.com/Org/Repo"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
# a bracket left open: urlsplit's "Invalid IPv6 URL" (a lock's URL is a pull request's)
@example("http://[::1/x")
@example("git+https://[x/y?dir=a")
@example("ssh://[::1")
# a NUL byte: realpath's "embedded null byte" (Hypothesis drew '/\x00' in a suite run)
@example("/\x00")
def test_any_text_gives_a_source_or_none(text: str) -> None:
    found = source.parse_url(text)
    assert found is None or isinstance(found.kind, Kind)


@pytest.mark.parametrize("url", ["/a\x00b", "path:/a\x00b", "path:/a%00b", "git+file:///r%00.git",
                                 "file:///r\x00"])
def test_a_path_holding_a_nul_byte_names_no_repository(url: str) -> None:
    # no file system path holds NUL: a lock saying one is a pull request's data, never a crash
    found = source.parse_url(url)
    assert found is not None and found.repository is None


@pytest.mark.parametrize("path", ["/a\x00b", "/a%00b"])
def test_a_locked_path_holding_a_nul_byte_names_no_repository(path: str) -> None:
    found = source.of_ref(FlakeRef.from_json({"type": "path", "path": path}))
    assert found.kind is Kind.PATH and found.repository is None


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["type", "owner", "repo", "host", "url", "path", "id",
                                        "rev", "dir", "lastModified", "narHash"]),
                       st.one_of(st.text(max_size=30), st.integers(), st.none(),
                                 st.sampled_from(["github", "git", "tarball", "file", "path"]))))
@example({"type": "git", "url": "http://[::1/x"})
@example({"type": "tarball", "url": "https://[x"})
def test_any_locked_attrs_give_a_source(data: dict[str, object]) -> None:
    assert isinstance(source.of_ref(FlakeRef.from_json(data)).kind, Kind)
