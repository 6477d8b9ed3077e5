"""`ci-nix matrix`: the jobs `run` would build, as a GitHub matrix, a GitLab child pipeline or
JSON."""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from ci_nix import matrix, outputs, pipeline
from ci_nix.ci import CiEnv
from ci_nix.commands.common import (
    INTERRUPTED,
    TOOL_ERROR,
    Subcommands,
    add_common,
    add_eval_options,
    add_nix_options,
    add_selection,
    exit_codes,
    nix_options,
    plan_options,
    subparser,
)
from ci_nix.errors import CiNixError
from ci_nix.report import matrix as writers
from ci_nix.report.untrusted import json_for_log
from ci_nix.words import count


def register(commands: Subcommands) -> None:
    parser = subparser(
        commands, "matrix", "the jobs `run` would build, for fan-out over CI runners",
        "Evaluate the affected flakes (every flake with --all) and print one entry per "
        "derivation to build, each runnable as `ci-nix run ARGS`: a GitHub Actions matrix "
        f"(at most {matrix.GITHUB_CAP} entries, grouped per flake and system beyond that), a "
        "GitLab child pipeline, or JSON. Runners come from 'runners:' in ci-nix.yaml. In GitHub "
        "Actions, --format github also writes `matrix=<json>` to $GITHUB_OUTPUT.",
        exit_codes((0, "the matrix was written (attributes that fail to evaluate get an entry "
                    "too, whose job reports the error)"), (2, TOOL_ERROR), (130, INTERRUPTED)))
    add_selection(parser)
    parser.add_argument("--format", choices=("github", "gitlab", "json"), default="json",
                        help="output format (default: json)")
    parser.add_argument("--output", type=Path, metavar="FILE",
                        help="write to FILE instead of stdout")
    parser.add_argument("--max-jobs", type=int, default=matrix.GITHUB_CAP, metavar="N",
                        help=f"group entries to stay at N or fewer (default {matrix.GITHUB_CAP})")
    parser.add_argument("--image", metavar="IMAGE",
                        help="gitlab: the image every generated job runs in")
    parser.add_argument("--before-script", action="append", default=[], metavar="CMD",
                        help="gitlab: a command every generated job runs first, e.g. one "
                        "that installs ci-nix (repeatable)")
    # A GitLab child pipeline does not get the merge request's variables, so its jobs cannot
    # tell a fork's merge request: the parent decides and hands the decision down.
    push = parser.add_mutually_exclusive_group()
    push.add_argument("--push", dest="push", action="store_true", default=None,
                      help="every entry's `ci-nix run` gets --push")
    push.add_argument("--no-push", dest="push", action="store_false",
                      help="every entry's `ci-nix run` gets --no-push (e.g. a merge request "
                      "from a fork)")
    add_eval_options(parser)
    add_nix_options(parser)
    add_common(parser)
    parser.set_defaults(handler=handle)


# Nix settings a matrix job must not be handed in its (logged, published) command line.
_SECRET_OPTIONS = frozenset({"access-tokens"})


def _prefix(args: argparse.Namespace) -> list[str]:
    """PATH, --config, the Nix settings and --push/--no-push as given, so the matrix job finds
    the same workspace from the same cwd, builds with the same builders and pushes as decided."""
    prefix = [] if args.path == Path(".") else [str(args.path)]
    if args.config is not None:
        prefix += ["--config", str(args.config)]
    for name, value in nix_options(args):
        if name not in _SECRET_OPTIONS:
            prefix += ["--option", name, value]
    if args.eval_store is not None:
        prefix += ["--eval-store", args.eval_store]
    if args.push is not None:
        prefix.append("--push" if args.push else "--no-push")
    return prefix


def handle(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> int:
    if args.max_jobs < 1:
        raise CiNixError(f"--max-jobs {args.max_jobs}: give at least 1")
    options = pipeline.PlanOptions(
        **plan_options(args))
    planned = pipeline.plan(options, environ)
    runners = planned.workspace.config.runners
    github = args.format == "github"
    entries = matrix.entries(planned, runners, matrix.GITHUB_RUNNERS if github else {},
                             args.max_jobs, require_runner=github)
    for repo in matrix.unpinned_repos(planned):
        print(f"ci-nix: note: {repo} has uncommitted changes: matrix jobs cannot be pinned to "
              "them and evaluate their own checkout of it (a different drvPath fails)",
              file=sys.stderr)
    prefix = _prefix(args)
    text = io.StringIO()
    if github:
        writers.write_github(entries, text, prefix)
    elif args.format == "gitlab":
        job = writers.GitLabJob(image=args.image, before_script=tuple(args.before_script))
        writers.write_gitlab(entries, text, prefix, job)
    else:
        writers.write_json(planned, entries, text, prefix)
    if args.output is not None:
        problem = outputs.write_file(args.output, text.getvalue())
        if problem is not None:
            raise CiNixError(f"cannot write {args.output}: {problem}; choose a writable path")
    elif args.format == "gitlab":
        sys.stdout.write(text.getvalue())
    else:  # JSON, maybe into a GitHub log
        sys.stdout.write(json_for_log(text.getvalue()))
    if github:
        outputs.step_outputs(CiEnv.detect(environ),
                             {"matrix": writers.github_output_value(entries, prefix)})
    print(f"ci-nix: {count(len(entries), 'matrix entry')}, {count(len(planned.jobs), 'job')}, "
          f"{count(len(planned.failures), 'evaluation failure')}, "
          f"{count(planned.evaluations, 'Nix evaluation')}", file=sys.stderr)
    return 0
