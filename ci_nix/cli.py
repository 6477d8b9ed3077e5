"""argparse only: each subcommand lives in ci_nix/commands/<name>.py with register()/handle()."""

from __future__ import annotations

import argparse
import importlib
import io
import logging
import os
import sys
import traceback
import typing
from collections.abc import Sequence
from pathlib import Path

from ci_nix import __version__, outputs, pipeline
from ci_nix.commands.common import EXIT_CODES
from ci_nix.errors import Cancelled, CiNixError, internal_error
from ci_nix.mask import MaskingFilter, mask, masked_output
from ci_nix.models import RunReport
from ci_nix.report import junit
from ci_nix.report.untrusted import LogFormatter, log_line
from ci_nix.tools import proc

# One module per subcommand, in the order `--help` lists them.
COMMANDS = ("run", "detect", "matrix", "diff", "junit", "update", "bundle")


class UsageError(Exception):
    """A command line argparse rejects (exit 2); its message is argparse's own."""


class _Parser(argparse.ArgumentParser):
    # argparse exits on a bad command line; ci-nix must still write the --junit report first.
    def error(self, message: str) -> typing.NoReturn:
        self.print_usage(sys.stderr)
        raise UsageError(f"{self.prog}: error: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ci-nix",
        description="CI for Nix flake repositories: find the flakes a change affects (across "
        "repos), evaluate and build them, push to a binary cache, and report as JUnit.",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"ci-nix {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    for name in COMMANDS:
        importlib.import_module(f"ci_nix.commands.{name}").register(commands)
    return parser


def _setup_logging(verbosity: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogFormatter("ci-nix: %(message)s"))
    handler.addFilter(MaskingFilter())
    root = logging.getLogger("ci_nix")
    root.handlers[:] = [handler]
    root.propagate = False
    root.setLevel(logging.INFO if verbosity == 0 else logging.DEBUG)
    # `$ command` lines: shown with -v
    logging.getLogger("ci_nix.proc").setLevel(logging.DEBUG if verbosity else logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    # Started with stdout or stderr closed (`>&-`), Python sets them to None: a finished run
    # must not turn into a crash while printing its summary.
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w"))  # kept open for the whole process
    # Whatever a command prints (summaries, JSON, errors, builder output) passes the masking.
    with masked_output():
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except UsageError as err:
        print(mask(str(err)), file=sys.stderr)
        _usage_report(argv, str(err))
        return 2
    _setup_logging(getattr(args, "verbose", 0))
    try:
        # Every command: SIGINT/SIGTERM stop the Nix processes it started (they run in their own
        # process groups, so no signal reaches them otherwise) and exit 130/143.
        with pipeline.Cancellation().installed():
            code = int(args.handler(args))
        signum = proc.cancelled()
        return code if signum is None else 128 + signum
    except Cancelled as err:
        return err.exit_code
    except CiNixError as err:
        # A command killed by the stop (git dying mid-way reads as "not a repository") is the
        # interruption, not a broken workspace: CI must see 130/143, not 2, and the stop first.
        signum = proc.cancelled()
        said = log_line(mask(str(err)))
        print(f"ci-nix: error: {said}" if signum is None else
              f"ci-nix: cancelled by signal {signum} (the step it stopped then failed: {said})",
              file=sys.stderr)
        return err.exit_code if signum is None else 128 + signum
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # a bug: its traceback helps, but never with a secret in it
        print(mask(traceback.format_exc()).rstrip(), file=sys.stderr)
        print(f"ci-nix: error: {mask(internal_error(err))}", file=sys.stderr)
        return 2


def _usage_report(argv: Sequence[str], message: str) -> None:
    """A rejected command line still writes the JUnit report it names (`--junit FILE`), with the
    usage error as its one failure, so CI shows why the step failed."""
    path: str | None = None
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg.startswith("--junit="):
            path = arg.removeprefix("--junit=")
        elif arg == "--junit" and i + 1 < len(argv):
            path = argv[i + 1]
    if not path:
        return
    out = io.StringIO()
    junit.write(RunReport(suites=(), cases=(), error=f"bad command line: {message}"), out)
    for problem in outputs.write_files([("JUnit report", Path(path), out.getvalue())],
                                       sys.stdout):
        print(f"ci-nix: {problem}", file=sys.stderr)
