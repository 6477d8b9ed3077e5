"""`ci-nix diff`: what the change does per attribute vs the base, without building."""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from ci_nix import pipeline
from ci_nix.changes import Change, Comparison
from ci_nix.commands.common import (
    Subcommands,
    add_common,
    add_eval_options,
    add_nix_options,
    add_selection,
    eval_flags,
    nix_options,
    selection_options,
    subparser,
)
from ci_nix.errors import CiNixError
from ci_nix.mask import mask
from ci_nix.report import changes as writers

log = logging.getLogger(__name__)


def register(commands: Subcommands) -> None:
    parser = subparser(
        commands, "diff", "what the change does per attribute vs the base, without building",
        "Evaluate the affected attributes at the head and at the base (the merge-base of "
        "--base and the head, checked out in a temporary git worktree; dependent flakes in "
        "other repos use it too) and report each as changed, added, removed, unchanged or "
        "failed, with the package version changes of each changed one, read from the two "
        "derivation closures. Nothing is built.")
    add_selection(parser)
    parser.add_argument("--json", type=Path, metavar="FILE",
                        help="write the comparison as JSON")
    parser.add_argument("--comment", action="store_true",
                        help="post the comparison as ci-nix's one pull-request comment (GitHub) "
                        "or merge-request note (GitLab), edited in place on later runs; forge "
                        "settings as for `update` ('forge:' in ci-nix.yaml, else the CI "
                        "environment)")
    add_eval_options(parser)
    add_nix_options(parser)
    add_common(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> int:
    options = pipeline.Options(
        **selection_options(args), json=args.json,
        eval=eval_flags(args), nix_options=nix_options(args), eval_store=args.eval_store,
        comment=args.comment)
    if args.json is not None:
        try:
            with open(args.json, "a"):
                pass
        except OSError as err:
            raise CiNixError(f"cannot write {args.json}: {err.strerror}; choose a writable "
                             "path") from None
    comparison = pipeline.diff(options, environ)
    if args.json is not None:
        out = io.StringIO()
        writers.write_json(comparison, out)
        with open(args.json, "w", encoding="utf-8") as file:
            file.write(mask(out.getvalue()))
    writers.write_text(comparison, sys.stdout)
    write_ci(comparison, environ)
    return 1 if comparison.of(Change.FAILED) else 0


def write_ci(comparison: Comparison, environ: Mapping[str, str]) -> None:
    """The "What changes" section in the GitHub step summary or the GitLab job log."""
    if environ.get("GITHUB_ACTIONS") == "true":
        summary = environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            try:
                with open(summary, "a", encoding="utf-8") as out:
                    out.write(mask(writers.markdown(comparison)) + "\n")
            except OSError as err:
                log.warning("cannot write the step summary %s: %s", summary, err.strerror)
    if environ.get("GITLAB_CI") == "true":
        writers.write_gitlab(comparison, sys.stdout, now=int(time.time()))
