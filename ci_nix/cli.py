"""argparse only: each subcommand lives in ci_nix/commands/<name>.py with register()/handle()."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback
from collections.abc import Sequence

from ci_nix import __version__, pipeline
from ci_nix.commands.common import EXIT_CODES
from ci_nix.errors import Cancelled, CiNixError, internal_error
from ci_nix.mask import MaskingFilter, mask, masked_output
from ci_nix.report.untrusted import LogFormatter, log_line
from ci_nix.tools import proc

# One module per subcommand, in the order `--help` lists them.
COMMANDS = ("run", "detect", "matrix", "diff", "junit", "update", "bundle")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    args = build_parser().parse_args(argv)
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
        print(f"ci-nix: error: {log_line(mask(str(err)))}", file=sys.stderr)
        # A command killed by the stop (git dying mid-way reads as "not a repository") is the
        # interruption, not a broken workspace: CI must see 130/143, not 2.
        signum = proc.cancelled()
        return err.exit_code if signum is None else 128 + signum
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # a bug: its traceback helps, but never with a secret in it
        print(mask(traceback.format_exc()).rstrip(), file=sys.stderr)
        print(f"ci-nix: error: {mask(internal_error(err))}", file=sys.stderr)
        return 2
