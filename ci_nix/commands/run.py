"""`ci-nix run`: detect -> evaluate -> skip cached -> build -> push -> report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ci_nix import pipeline
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
from ci_nix.mask import mask
from ci_nix.report.untrusted import log_line


def register(commands: Subcommands) -> None:
    run = subparser(
        commands, "run", "detect, evaluate, skip cached, build, push, report",
        "Evaluate and build the affected flakes of a workspace (every flake with --all) in one "
        "`nix build --keep-going`, and report one JUnit test case per attribute.")
    add_selection(run)
    run.add_argument("--junit", type=Path, metavar="FILE", help="write a JUnit XML report")
    run.add_argument("--json", type=Path, metavar="FILE", help="write the results as JSON")
    push = run.add_mutually_exclusive_group()
    push.add_argument("--push", dest="push", action="store_true", default=None,
                      help="push built outputs to the cache even where config says not to")
    push.add_argument("--no-push", dest="push", action="store_false",
                      help="build, but push nothing to the binary cache")
    images = run.add_mutually_exclusive_group()
    images.add_argument("--push-images", dest="push_images", action="store_true", default=None,
                        help="push the images `images:` names, whatever images.push says")
    images.add_argument("--no-push-images", dest="push_images", action="store_false",
                        help="build images, but push none to the registry")
    run.add_argument("--max-closure-growth", metavar="LIMIT",
                     help="fail an attribute whose runtime closure grew past LIMIT against the "
                     "base (10%% or 50MiB; also max-closure-growth: in ci-nix.yaml)")
    run.add_argument("--skip-unchanged", action="store_true",
                     help="compare with the base (evaluated in a temporary worktree) and do "
                     "not build attributes whose derivation is the same there: they are "
                     "reported skipped 'unchanged'")
    run.add_argument("--sbom", type=Path, metavar="DIR",
                     help="write a CycloneDX SBOM of each built attribute's runtime closure "
                     "to DIR/<flake>#<attr>.cdx.json")
    add_comment(run)
    run.add_argument("--expect-drv", action="append", default=[], metavar="FLAKE#ATTR=DRV",
                     help="fail the attribute, naming both paths, unless it evaluates to the "
                     "derivation DRV (repeatable; matrix entries carry what they planned)")
    add_eval_options(run)
    run.add_argument("-L", "--print-build-logs", action="store_true",
                     help="print builder output as it comes, each line prefixed with its "
                     "attribute (in GitHub Actions/GitLab CI: a collapsed group per derivation)")
    add_nix_options(run)
    add_common(run)
    run.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    options = pipeline.RunOptions(
        **plan_options(args), push=args.push, junit=args.junit,
        json=args.json, skip_unchanged=args.skip_unchanged,
        comment=args.comment, print_build_logs=args.print_build_logs, sbom=args.sbom,
        expect=tuple(args.expect_drv), push_images=args.push_images,
        max_closure_growth=args.max_closure_growth)
    report = pipeline.run(options)
    if report.error is not None:
        print(f"ci-nix: error: {log_line(mask(report.error))}", file=sys.stderr)
    return report.exit_code
