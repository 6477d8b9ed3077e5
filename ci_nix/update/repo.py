"""One repository end to end: plan the branches, update the locks, verify, publish."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from ci_nix import lockfile
from ci_nix.errors import ConfigError, ForgeError
from ci_nix.forge import Forge
from ci_nix.mask import mask
from ci_nix.tools.git import Git
from ci_nix.tools.nix import Nix
from ci_nix.update.locks import (
    LockUpdate,
    flake_dirs,
    input_names,
    private_checkout,
    update_locks,
)
from ci_nix.update.markdown import body_for, title_for
from ci_nix.update.models import Operation, Outcome, UpdateTarget
from ci_nix.update.publish import publish
from ci_nix.update.verify import Verification, Verifier, verify

log = logging.getLogger(__name__)


def plans(git: Git, target: UpdateTarget, work: Path) -> list[tuple[str, tuple[str, ...]]]:
    """(branch, inputs) pairs: one branch for everything, or one per input (update.group false)."""
    dirs = flake_dirs(git, work)
    inputs = target.inputs or target.update.inputs
    known = input_names(work, dirs)
    unknown = [name for name in inputs if name not in known]
    if unknown:
        raise ConfigError(f"{target.name}: no flake has an input named {unknown[0]!r} "
                          f"(inputs: {', '.join(known) or 'none'}); check --input / update.inputs")
    branch = target.update.branch
    if target.update.group:
        return [(branch, tuple(inputs))]
    return [(f"{branch}-{name}", (name,)) for name in (inputs or tuple(known))]


def run(target: UpdateTarget, nix: Nix, git: Git, forge: Forge | None, token: str | None,
        dry_run: bool = False, environ: Mapping[str, str] = os.environ) -> list[Outcome]:
    """Update one repo's inputs and bring its merge request(s) in line with the result;
    environ: the command's (--verify's progress display and CI detection read it)."""
    outcomes = []
    with private_checkout(git, target.checkout, nix) as (work, head):
        dirs = flake_dirs(git, work)
        if not dirs:
            log.info("%s: no flake with a committed flake.lock; nothing to update", target.name)
        for branch, inputs in plans(git, target, work):
            result = update_locks(nix, git, target, work, dirs, inputs, forge)
            verification = None
            if target.verify and result.files:
                verification = _verify(nix, git, target, work, dirs, result, environ)
                if verification.held_back:
                    log.warning("%s: held back %s: their update breaks attributes that pass on "
                                "the current lock", target.name,
                                ", ".join(sorted({h.input for h in verification.held_back})))
                    result = (update_locks(nix, git, target, work, dirs, verification.kept,
                                           forge) if verification.kept else LockUpdate((), ()))
            # the body lists input URLs, which may carry credentials (`https://user:TOKEN@…`)
            title, body = mask(title_for(result.moved)), mask(body_for(result, verification))
            if dry_run:
                outcomes.append(Outcome(target.name, branch, Operation.DRY_RUN, title=title,
                                        body=body, moved=result.moved,
                                        verification=verification))
                continue
            if forge is None:
                raise ForgeError(f"{target.name}: no forge to open a merge request on; "
                                 "configure 'forge:' or use --dry-run")
            outcome = publish(target, git, forge, token, branch, head, result, title, body)
            outcomes.append(replace(outcome, verification=verification))
    return outcomes


def _verify(nix: Nix, git: Git, target: UpdateTarget, work: Path, dirs: list[str],
            result: LockUpdate, environ: Mapping[str, str]) -> Verification:
    """Build the update in the private worktree, holding back inputs that break attributes."""
    originals = {subdir: lockfile.read_text(work / subdir / "flake.lock")
                 for subdir in dirs}

    def apply(inputs: tuple[str, ...]) -> list[str]:
        moved = []
        for subdir, text in originals.items():
            lock_path = work / subdir / "flake.lock"
            lock_path.write_text(text, encoding="utf-8")
            lock = lockfile.parse(text, str(lock_path))
            names = [name for name in inputs if name in lock.nodes[lock.root].inputs]
            if names:
                nix.flake_update(lock_path.parent, names)
                if lockfile.read_text(lock_path) != text:
                    moved.append(subdir)
        return moved

    head = git.check(work, ["rev-parse", "HEAD"]).strip()
    verifier = Verifier(nix, git, target.name, work, target.config, head, target.dependents,
                        environ)
    try:
        return verify(verifier, result.moved, apply)
    finally:
        for subdir, text in originals.items():
            (work / subdir / "flake.lock").write_text(text, encoding="utf-8")
