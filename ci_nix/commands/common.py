"""Flags shared by several subcommands (CONTRACT.md: selection, config, verbosity)."""

from __future__ import annotations

import argparse
from pathlib import Path

EXIT_CODES = """exit codes:
  0    every attribute passed (or there was nothing to do)
  1    at least one attribute failed
  2    ci-nix could not do its job (bad config or input, not a workspace, tool missing)
  130  interrupted (SIGINT), 143 terminated (SIGTERM); the report is still written"""


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="ci-nix.yaml to use "
                             "(default: PATH or its nearest parent that has one)")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more output: every command ci-nix runs, and debug details")


def add_path(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", type=Path, default=Path("."), metavar="PATH",
                        help="workspace directory or a directory inside a repo (default: .)")


def add_selection(parser: argparse.ArgumentParser) -> None:
    add_path(parser)
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


def subparser(commands: argparse._SubParsersAction,  # type: ignore[type-arg]
              name: str, help: str, description: str) -> argparse.ArgumentParser:
    return commands.add_parser(name, help=help, description=description, epilog=EXIT_CODES,  # type: ignore[no-any-return]
                               formatter_class=argparse.RawDescriptionHelpFormatter)
