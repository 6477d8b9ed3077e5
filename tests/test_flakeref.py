"""Flake reference syntax: the URLs ci-nix writes for Nix."""

from __future__ import annotations

import string
import tempfile
from pathlib import Path
from urllib.parse import quote

import pytest
from fakeproc import FakeProc
from hypothesis import given, settings
from hypothesis import strategies as st

from ci_nix import flakeref, source
from ci_nix.flakeref import (
    FlakeRef,
    checkout,
    query_dir,
    typed_url,
    with_query,
)
from ci_nix.tools.nix import Nix, for_old_nix, needs_encoding


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


def test_a_quoted_path_names_head_for_old_nix_only(tmp_path: Path) -> None:
    """A checkout's reference is its work tree however its path is written (Nix 2.10+ reads
    it so); Nix before 2.10 is given ref=HEAD for a percent-encoded path, which it would take
    for a remote's `master` branch otherwise."""
    plain = tmp_path / "repo"
    assert checkout(plain, "") == f"git+file://{plain.resolve()}"
    assert for_old_nix(checkout(plain, "")) == checkout(plain, "")
    odd = tmp_path / "my repo"
    assert not needs_encoding(plain) and needs_encoding(odd) and needs_encoding(tmp_path / "ö")
    assert checkout(odd, "sub dir").endswith("my%20repo?dir=sub%20dir")
    assert for_old_nix(checkout(odd, "sub dir")).endswith("my%20repo?ref=HEAD&dir=sub%20dir")
    assert for_old_nix(checkout(odd, "")) == f"git+file://{quote(str(odd.resolve()))}?ref=HEAD"
    pinned = checkout(odd, "", rev="a" * 40)
    assert for_old_nix(pinned).endswith(f"?ref=HEAD&rev={'a' * 40}")
    assert for_old_nix(for_old_nix(pinned)) == for_old_nix(pinned)  # a ref= is kept as it is
    assert for_old_nix("github:o/r%20x") == "github:o/r%20x"


NAME = st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=1, max_size=12)
REV = st.text(alphabet="0123456789abcdef", min_size=40, max_size=40)


@settings(max_examples=200, deadline=None)
@given(kind=st.sampled_from(["github", "gitlab", "sourcehut", "git"]), owner=NAME, repo=NAME,
       rev=REV, subdir=st.one_of(st.none(), NAME))
def test_a_locked_url_names_the_repository_its_lock_node_does(kind: str, owner: str, repo: str,
                                                              rev: str, subdir: str | None
                                                              ) -> None:
    """What ci-nix writes for --override-input reads back (source.parse_url) as the same
    repository, revision-pinned, as the lock node it came from (source.of_ref)."""
    if kind == "git":
        ref = FlakeRef(type="git", url=f"https://git.example.com/{owner}/{repo}.git", rev=rev,
                       dir=subdir)
    else:
        ref = FlakeRef(type=kind, owner=owner, repo=repo, rev=rev, dir=subdir)
    url = ref.locked_url()
    assert url is not None and rev in url
    parsed = source.parse_url(url)
    assert parsed is not None, url
    assert parsed.key == source.of_ref(ref).key, url
    assert parsed.subdir == (subdir or ""), url


@pytest.mark.parametrize(("name", "old_nix_reads_a_flake"), [
    ("tmp+dir@host", True), ("tmp dir", False), ("tmpö", False), ("tmp%41", False)])
def test_the_temporary_directory_as_each_nix_reads_a_flake_there(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_proc: FakeProc, name: str,
        old_nix_reads_a_flake: bool) -> None:
    """ci-nix's helper flake lies under TMPDIR. Nix 2.10+ decodes a `path:` URL: the path is
    encoded (a space was read as a relative path there). Nix 2.8 takes it as it is: a `+` or
    `@` is fine (the first check refused them: every run on such a TMPDIR was exit 2), a space
    or unicode is exit 2 with the fix. A checkout there (update's, with uncommitted locks)
    is refused on 2.8 for a `+` too: its encoded flake URL is read at the last commit."""
    from ci_nix.errors import ToolError
    from ci_nix.tools import nix as nix_mod

    place = tmp_path / name
    place.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(place))
    nix_mod._helper_flake.cache_clear()
    fake_proc.on("nix", "eval", stdout="")
    try:
        for text, decodes in (("nix (Nix) 2.8.0", False), ("nix (Nix) 2.26.3", True)):
            nix = Nix(("nix",))
            nix.__dict__["version"] = nix_mod.parse_version(text)
            if not decodes and not old_nix_reads_a_flake:
                with pytest.raises(ToolError, match="set TMPDIR to a plain directory"):
                    nix.eval_worker("git+file:///w/hosts", {})
                continue
            nix.eval_worker("git+file:///w/hosts", {}).wait()
            helper = str(nix_mod._helper_flake())
            assert f"path:{quote(helper) if decodes else helper}#lib.ciNix" in (
                fake_proc.ran("nix", "eval")[-1].argv)
            if not decodes:
                with pytest.raises(ToolError, match=r"\+, @"):
                    nix.check_temp_dir("a checkout goes", work_tree=True)
    finally:
        nix_mod._helper_flake.cache_clear()


def test_a_checkout_reference_reads_back_as_written(tmp_path: Path) -> None:
    where = tmp_path / "a b"
    read = flakeref.read_checkout(flakeref.checkout(where, "sub dir"))
    assert read is not None and read.path == str(where.resolve())
    assert read.rev is None and read.work_tree and read.query["dir"] == ["sub dir"]
    pinned = flakeref.read_checkout(flakeref.checkout(where, "", rev="c" * 40))
    assert pinned is not None and pinned.rev == "c" * 40 and not pinned.work_tree
    head = flakeref.read_checkout(f"git+file://{where}?ref=HEAD")
    assert head is not None and head.rev is None and not head.work_tree
    assert flakeref.read_checkout("github:o/r") is None
    assert flakeref.pinned("github:o/r?rev=" + "c" * 40) and flakeref.pinned(
        "https://x/y.tar.gz?narHash=sha256-x") and not flakeref.pinned("github:o/r")
