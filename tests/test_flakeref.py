"""Flake reference syntax: the URLs ci-nix writes for Nix."""

from __future__ import annotations

from pathlib import Path

from ci_nix.flakeref import FlakeRef, checkout, query_dir, typed_url, with_query


def test_typed_url_prefixes_only_a_bare_transport() -> None:
    assert typed_url("git", "https://h/o/r") == "git+https://h/o/r"
    assert typed_url("git", "git+https://h/o/r") == "git+https://h/o/r"  # not git+git+
    assert typed_url("git", "git@h:o/r.git") == "git@h:o/r.git"  # scp-form as it is
    assert typed_url("tarball", "https://h/x.tar.gz") == "tarball+https://h/x.tar.gz"


def test_locked_url_pins_the_revision() -> None:
    github = FlakeRef(type="github", owner="o", repo="r", rev="abc", host="ghe.example")
    assert github.locked_url() == "github:o/r/abc?host=ghe.example"
    git = FlakeRef(type="git", url="git+https://h/o/r", rev="abc", dir="sub")
    assert git.locked_url() == "git+https://h/o/r?rev=abc&dir=sub"
    assert FlakeRef(type="indirect", id="nixpkgs").locked_url() is None


def test_query_helpers() -> None:
    assert with_query("git+file:///r?ref=HEAD", {"dir": "a", "rev": None}) == \
        "git+file:///r?ref=HEAD&dir=a"
    assert query_dir("ref=x&dir=/nested/") == "nested"


def test_checkout_names_head_for_a_quoted_path(tmp_path: Path) -> None:
    plain = tmp_path / "repo"
    assert checkout(plain, "") == f"git+file://{plain.resolve()}"
    odd = tmp_path / "my repo"
    assert checkout(odd, "sub dir").endswith("my%20repo?ref=HEAD&dir=sub%20dir")
