"""tests/tools/nix-modern, the suite's way into the Nix 2.26 chroot, when a mount outlived its
source: CI clones the tree to the same path outside the chroot's fixed binds on every run and
deletes it afterwards, so the chroot held the last run's deleted tree at that path and every Nix
call from the new tree failed "cannot get current path"."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import NIX_MODERN_QUICK, NIXES

ROOT = Path(os.environ.get("NIX_MODERN_ROOT", "/var/lib/nix-modern"))

pytestmark = pytest.mark.skipif(
    "nix-modern" not in dict(NIXES) or os.geteuid() != 0,
    reason="needs nix-modern (../shared/tools/nix-modern setup) and root")


@pytest.fixture
def outside() -> Iterator[Path]:
    """A fresh directory outside every directory the chroot binds whole (/tmp, /work, ...),
    as CI's clone is; its mounts in the chroot and itself are removed afterwards."""
    base = Path("/var/lib") / f"ci-nix-wrapper-{uuid.uuid4().hex[:12]}"
    base.mkdir(parents=True)
    try:
        yield base
    finally:
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
        for mount in sorted((m for m in mounts if m.startswith(f"{ROOT}{base}")), reverse=True):
            subprocess.run(["umount", "-l", mount], check=False)
        shutil.rmtree(f"{ROOT}{base}", ignore_errors=True)
        shutil.rmtree(base, ignore_errors=True)


def cat(cwd: Path, name: str, wrapper: Path = NIX_MODERN_QUICK) -> subprocess.CompletedProcess[str]:
    """`cat NAME` run inside the chroot from CWD, through WRAPPER."""
    return subprocess.run([str(wrapper), name], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "NIX_MODERN_TOOL": "cat"}, timeout=60)


def test_a_mount_left_by_a_deleted_tree_is_replaced(outside: Path) -> None:
    tree = outside / "work" / "main"
    old = outside / "old"
    old.mkdir()
    (old / "marker").write_text("old run\n")
    # What the last CI run left: its tree bound at this path in the chroot, then deleted.
    (ROOT / str(tree).lstrip("/")).mkdir(parents=True)
    subprocess.run(["mount", "--bind", str(old), f"{ROOT}{tree}"], check=True)
    shutil.rmtree(old)
    assert "//deleted" in Path("/proc/self/mountinfo").read_text()

    tree.mkdir(parents=True)
    (tree / "marker").write_text("this run\n")
    result = cat(tree, "marker")
    assert (result.returncode, result.stdout) == (0, "this run\n"), result.stderr
    # and from a directory inside it, with the mount now the host's
    (tree / "sub").mkdir()
    (tree / "sub" / "marker").write_text("inside\n")
    assert cat(tree / "sub", "marker").stdout == "inside\n"


def test_the_tree_is_reachable_from_any_working_directory(outside: Path, tmp_path: Path) -> None:
    """A Nix call from /tmp may name files of the tree (fixtures, the flake under test)."""
    tree = outside / "clone"
    shutil.copytree(NIX_MODERN_QUICK.parent, tree / "tests" / "tools")
    (tree / "marker").write_text("tree\n")
    result = cat(tmp_path, str(tree / "marker"), wrapper=tree / "tests" / "tools" / "nix-modern")
    assert (result.returncode, result.stdout) == (0, "tree\n"), result.stderr


def test_a_mount_of_another_directory_is_replaced(outside: Path) -> None:
    """Not only deleted sources: a mount of anything but the host's directory is wrong."""
    here, other = outside / "here", outside / "other"
    for directory, text in ((here, "here\n"), (other, "other\n")):
        directory.mkdir()
        (directory / "marker").write_text(text)
    (ROOT / str(here).lstrip("/")).mkdir(parents=True)
    subprocess.run(["mount", "--bind", str(other), f"{ROOT}{here}"], check=True)
    assert cat(here, "marker").stdout == "here\n"
