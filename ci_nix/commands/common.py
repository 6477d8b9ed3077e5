"""Flags shared by several subcommands (selection, config, verbosity; see the README)."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path
from typing import TypeAlias, TypedDict

from ci_nix.config import DEFAULT_EVAL_MEMORY_MIB
from ci_nix.evaluate import EvalFlags
from ci_nix.inputs import parse_pins

EXIT_CODES = """exit codes:
  0    every attribute passed (or there was nothing to do)
  1    at least one attribute failed
  2    ci-nix could not do its job (bad config or input, not a workspace, tool missing)
  130  interrupted (SIGINT), 143 terminated (SIGTERM); the report is still written"""

TOOL_ERROR = "ci-nix could not do its job (bad config or input, not a workspace, tool missing)"
INTERRUPTED = "interrupted (SIGINT), 143 terminated (SIGTERM)"


def exit_codes(*codes: tuple[int, str]) -> str:
    """An epilog listing the exit codes one command can really return."""
    return "exit codes:\n" + "\n".join(
        textwrap.fill(meaning, 79, initial_indent=f"  {code:<4} ", subsequent_indent=" " * 7)
        for code, meaning in codes)


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="ci-nix.yaml to use "
                             "(default: PATH or its nearest parent that has one)")
    add_verbose(parser)


def add_verbose(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more output: every command ci-nix runs, and debug details")


def add_path(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", type=Path, default=Path("."), metavar="PATH",
                        help="workspace directory or a directory inside a repo (default: .)")


def add_selection(parser: argparse.ArgumentParser, *, system_help: str | None = None,
                  only_help: str | None = None) -> None:
    add_path(parser)
    parser.add_argument("--all", action="store_true",
                        help="every flake, ignoring change detection")
    parser.add_argument("--base", metavar="REV",
                        help="compare against REV (default: from the CI environment)")
    parser.add_argument("--head", metavar="REV",
                        help="the revision under test (default: the work tree, as Nix "
                        "evaluates it, uncommitted changes to tracked files included): compared "
                        "with the base, and what is evaluated and built")
    parser.add_argument("--system", action="append", default=[], metavar="SYS",
                        dest="systems", help=system_help or "system to evaluate for (repeatable; "
                        "default: 'systems:' in ci-nix.yaml, else this machine's)")
    parser.add_argument("--only", action="append", default=[], metavar="FLAKE#ATTR",
                        help=only_help or "only this attribute, e.g. "
                        "hosts#nixosConfigurations.web (repeatable; what one matrix job runs)")
    parser.add_argument("--locked", action="store_true",
                        help="evaluate every input as flake.lock has it (default: an input that "
                        "is a workspace repo comes from its checkout where that differs from "
                        "the lock; also 'locked: true' in ci-nix.yaml)")
    parser.add_argument("--pin", action="append", default=[], metavar="REPO=COMMIT",
                        dest="pins", help="read COMMIT of workspace repo REPO instead of its "
                        "work tree (repeatable; matrix entries carry the commits they planned)")


# argparse has no public name for what add_subparsers() returns; this is the one place that
# spells it.
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def subparser(commands: Subcommands, name: str, help: str, description: str,
              epilog: str = EXIT_CODES) -> argparse.ArgumentParser:
    return commands.add_parser(name, help=help, description=description, epilog=epilog,
                               formatter_class=argparse.RawDescriptionHelpFormatter)


def add_nix_options(parser: argparse.ArgumentParser) -> None:
    """Flags that reach every Nix command ci-nix runs (after 'nix-options:' in ci-nix.yaml)."""
    group = parser.add_argument_group("Nix settings (for every Nix command ci-nix runs)")
    group.add_argument("--option", nargs=2, action="append", default=[], dest="nix_options",
                       metavar=("NAME", "VALUE"),
                       help="a Nix setting, e.g. --option max-jobs 4 (repeatable; overrides "
                       "'nix-options:' in ci-nix.yaml)")
    group.add_argument("--builders", metavar="SPEC",
                       help="remote builders, as Nix's 'builders' setting: "
                       "'ssh-ng://host aarch64-linux' or '@/etc/nix/machines'")
    group.add_argument("--store", metavar="URL",
                       help="build in this store, e.g. ssh-ng://bigbox (Nix's 'store' setting)")
    group.add_argument("--eval-store", metavar="URL",
                       help="evaluate (instantiate derivations) in this store, e.g. auto "
                       "(the local one) with --store on a remote")


def nix_options(args: argparse.Namespace) -> tuple[tuple[str, str], ...]:
    """--option, --builders and --store as `--option NAME VALUE` pairs, in the order given."""
    options = [(name, value) for name, value in args.nix_options]
    if args.builders is not None:
        options.append(("builders", args.builders))
    if args.store is not None:
        options.append(("store", args.store))
    return tuple(options)


def add_eval_options(parser: argparse.ArgumentParser) -> None:
    """The evaluation worker pool's flags (after 'eval:' in ci-nix.yaml)."""
    group = parser.add_argument_group("evaluation (a pool of Nix processes across all flakes)")
    group.add_argument("--workers", type=int, metavar="N",
                       help="Nix evaluation processes in all, not per flake (default: "
                       "'eval.workers', else the number of CPUs)")
    group.add_argument("--eval-memory", type=int, metavar="MIB",
                       help="a worker grown past MIB MiB is replaced before its next attribute; "
                       "an attribute that alone needs more fails (default: 'eval.memory', "
                       f"else {DEFAULT_EVAL_MEMORY_MIB})")
    group.add_argument("--eval-memory-total", type=int, metavar="MIB",
                       help="MiB all workers together may use: fewer workers start, and they "
                       "are replaced sooner, rather than the kernel killing one (default: "
                       "'eval.memory-total', else half the machine's memory)")
    group.add_argument("--eval-timeout", type=float, metavar="SECONDS",
                       help="seconds one attribute may take to evaluate; past it, it fails as "
                       "`timeout` (default: 'eval.timeout', else 0 = no limit)")
    group.add_argument("--no-eval-cache", action="store_false", dest="eval_cache", default=None,
                       help="neither read nor write the evaluation cache (default: "
                       "'eval.cache', else $XDG_CACHE_HOME/ci-nix/eval)")
    group.add_argument("--verify-eval-cache", action="store_true",
                       help="evaluate again up to 3 randomly chosen flakes the evaluation cache "
                       "answered, and fail when an entry differs")


class PlanFlags(TypedDict):
    """The command line's pipeline.PlanOptions fields (all but run's --expect-drv)."""

    path: Path
    config_file: Path | None
    all: bool
    base: str | None
    head: str | None
    systems: tuple[str, ...]
    only: tuple[str, ...]
    locked: bool
    pins: tuple[tuple[str, str], ...]
    eval: EvalFlags
    nix_options: tuple[tuple[str, str], ...]
    eval_store: str | None


def plan_options(args: argparse.Namespace) -> PlanFlags:
    """PATH, --config, the selection, evaluation and Nix flags: what `run`, `diff` and `matrix`
    plan with (add_selection, add_eval_options and add_nix_options registered them)."""
    return {"path": args.path, "config_file": args.config, "all": args.all, "base": args.base,
            "head": args.head, "systems": tuple(args.systems), "only": tuple(args.only),
            "locked": args.locked, "pins": parse_pins(args.pins),
            "eval": EvalFlags(args.workers, args.eval_memory, args.eval_timeout, args.eval_cache,
                              args.verify_eval_cache, args.eval_memory_total),
            "nix_options": nix_options(args), "eval_store": args.eval_store}


def add_comment(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--comment", action="store_true",
                        help="post the comparison as ci-nix's one pull-request comment (GitHub) "
                        "or merge-request note (GitLab), edited in place on later runs; forge "
                        "settings as for `update` ('forge:' in ci-nix.yaml, else the CI "
                        "environment)")
