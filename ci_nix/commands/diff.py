"""`ci-nix diff`: what the change does per attribute vs the base, without building."""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from ci_nix import outputs, pipeline
from ci_nix.changes import Change
from ci_nix.ci import CiEnv
from ci_nix.commands.common import (
    Subcommands,
    add_comment,
    add_common,
    add_eval_options,
    add_nix_options,
    add_selection,
    plan_options,
    subparser,
)
from ci_nix.errors import CiNixError
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
    add_comment(parser)
    add_eval_options(parser)
    add_nix_options(parser)
    add_common(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> int:
    options = pipeline.DiffOptions(
        **plan_options(args), json=args.json, comment=args.comment)
    if args.json is not None:
        outputs.check_writable(args.json)
    comparison = pipeline.diff(options, environ)
    problem = None
    if args.json is not None:
        out = io.StringIO()
        writers.write_json(comparison, out)
        problem = outputs.write_file(args.json, out.getvalue())
    writers.write_text(comparison, sys.stdout)
    pipeline.write_ci_reports(CiEnv.detect(environ), None, comparison)
    if problem is not None:
        raise CiNixError(f"cannot write {args.json}: {problem}; free some space or choose "
                         "another path")
    return 1 if comparison.of(Change.FAILED) else 0

