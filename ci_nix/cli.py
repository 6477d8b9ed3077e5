"""argparse only: build options, call one library function, return an exit code."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from ci_nix import __version__, pipeline
from ci_nix.errors import Cancelled, CiNixError
from ci_nix.mask import MaskingFilter

log = logging.getLogger("ci_nix")

EXIT_CODES = """exit codes:
  0    every attribute passed (or there was nothing to do)
  1    at least one attribute failed
  2    ci-nix could not do its job (bad config or input, not a workspace, tool missing)
  130  interrupted (SIGINT), 143 terminated (SIGTERM); the report is still written"""


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="ci-nix.yaml to use (default: PATH or its nearest parent that has one)")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more output: -v shows every command run, -vv everything")


def _selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", type=Path, default=Path("."), metavar="PATH",
                        help="workspace directory or a directory inside a repo (default: .)")
    parser.add_argument("--all", action="store_true",
                        help="every flake, ignoring change detection")
    parser.add_argument("--base", metavar="REV",
                        help="compare against REV (default: from the CI environment)")
    parser.add_argument("--head", metavar="REV", help="the revision under test (default: HEAD)")
    parser.add_argument("--system", action="append", default=[], metavar="SYS",
                        dest="systems", help="system to evaluate for (repeatable; default: "
                        "'systems:' in ci-nix.yaml, else this machine's)")
    parser.add_argument("--only", action="append", default=[], metavar="FLAKE#ATTR",
                        help="only this attribute, e.g. hosts#nixosConfigurations.web "
                        "(repeatable; what one matrix job runs)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ci-nix",
        description="CI for Nix flake repositories: find the flakes a change affects (across "
        "repos), evaluate and build them, push to a binary cache, and report as JUnit.",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"ci-nix {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    run = commands.add_parser(
        "run", help="detect, evaluate, skip cached, build, push, report",
        description="Evaluate and build the affected flakes of a workspace (every flake with "
        "--all) in one `nix build --keep-going`, and report one JUnit test case per attribute.",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _selection(run)
    run.add_argument("--junit", type=Path, metavar="FILE", help="write a JUnit XML report")
    run.add_argument("--json", type=Path, metavar="FILE", help="write the results as JSON")
    push = run.add_mutually_exclusive_group()
    push.add_argument("--push", dest="push", action="store_true", default=None,
                      help="push built outputs to the cache even where config says not to")
    push.add_argument("--no-push", dest="push", action="store_false",
                      help="build, but push nothing to the binary cache")
    run.add_argument("--workers", type=int, metavar="N",
                     help="flakes evaluated at once (default: number of CPUs, at most 8)")
    _common(run)
    run.set_defaults(handler=_run)
    return parser


def _run(args: argparse.Namespace) -> int:
    options = pipeline.Options(
        path=args.path, config_file=args.config, all=args.all, base=args.base, head=args.head,
        systems=tuple(args.systems), only=tuple(args.only), push=args.push, junit=args.junit,
        json=args.json, workers=args.workers)
    report = pipeline.run(options)
    if report.error is not None:
        print(f"ci-nix: error: {report.error}", file=sys.stderr)
    return report.exit_code


def _setup_logging(verbosity: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("ci-nix: %(message)s"))
    handler.addFilter(MaskingFilter())
    root = logging.getLogger("ci_nix")
    root.handlers[:] = [handler]
    root.propagate = False
    root.setLevel(logging.INFO if verbosity == 0 else logging.DEBUG)
    logging.getLogger("ci_nix.proc").setLevel(logging.DEBUG if verbosity else logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(getattr(args, "verbose", 0))
    try:
        return int(args.handler(args))
    except Cancelled as err:
        return err.exit_code
    except CiNixError as err:
        print(f"ci-nix: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        return 130
