"""`ci-nix detect`: the flakes a change affects, with reasons."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TextIO

from ci_nix import detect as detect_mod
from ci_nix import inputs as inputs_mod
from ci_nix import trust
from ci_nix import workspace as workspace_mod
from ci_nix.commands.common import (
    INTERRUPTED,
    TOOL_ERROR,
    Subcommands,
    add_common,
    add_selection,
    exit_codes,
    subparser,
)
from ci_nix.errors import SelectionError
from ci_nix.inputs import parse_pins
from ci_nix.models import Flake, Target, split_flake_attr
from ci_nix.report.json_report import override_json
from ci_nix.report.untrusted import json_for_log, log_line
from ci_nix.tools.git import Git
from ci_nix.workspace import Workspace


def register(commands: Subcommands) -> None:
    parser = subparser(
        commands, "detect", "list the flakes a change affects, and why",
        "List the flakes the change from --base to --head affects (base and head default to the "
        "CI environment's), including flakes in other workspace repos that lock a changed one "
        "in flake.lock. Without --head the work tree is compared, as Nix evaluates it.",
        exit_codes((0, "the affected flakes were listed (also when none is)"), (2, TOOL_ERROR),
                   (130, INTERRUPTED)))
    add_selection(
        parser,
        system_help="accepted so `run`, `matrix` and `detect` take the same flags; which flakes "
        "a change affects does not depend on the system (repeatable)",
        only_help="list only the flake FLAKE, even when the change does not affect it; the "
        "attribute part is checked by `run` and `matrix`, not here (repeatable)")
    parser.add_argument("--json", action="store_true",
                        help='print {"flakes": [{"flake", "path", "reasons"}], "pruned": [...]} '
                        'instead of text')
    add_common(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    git = Git.from_env()
    ws = inputs_mod.as_evaluated(workspace_mod.load(args.path, git, args.config,
                                                    trust.side(args.base, os.environ)),
                                 git, args.head, parse_pins(args.pins))
    ids = {flake.id for flake in ws.flakes}
    wanted = {_flake_of(value, ids) for value in args.only}
    unknown = sorted(wanted - {flake.id for flake in ws.flakes})
    if unknown:
        raise SelectionError(f"--only: no flake {unknown[0]!r} in the workspace; flakes: "
                             + ", ".join(flake.id for flake in ws.flakes))
    detection = detect_mod.select(ws, git, all=args.all, base=args.base, head=args.head,
                                  only=wanted, environ=os.environ)
    states = inputs_mod.checkouts(ws, git)
    locked = args.locked or ws.config.locked
    detection = replace(
        detection,
        targets=inputs_mod.with_workspace_inputs(ws, git, detection.targets, states,
                                                 locked=locked),
        pruned=inputs_mod.with_workspace_inputs(ws, git, detection.pruned, states, locked=locked))
    if args.json:
        sys.stdout.write(json_for_log(json.dumps(as_json(ws, detection), indent=2)))
        sys.stdout.write("\n")
    else:
        write_text(ws, detection, sys.stdout)
    return 0


def _flake_of(value: str, ids: set[str]) -> str:
    """The flake of an --only value: FLAKE or FLAKE#ATTR (a flake id may hold a `#`)."""
    found = split_flake_attr(value, ids)
    return value if found is None or value in ids else found[0]


def _rel(ws: Workspace, flake: Flake) -> str:
    try:
        return flake.path.relative_to(ws.root).as_posix()
    except ValueError:  # a repo outside the workspace directory
        return str(flake.path)


def as_json(ws: Workspace, detection: detect_mod.Detection) -> dict[str, Any]:
    """`flakes` is the contract; the other keys say what was compared and what was left out."""
    def target(t: Target) -> dict[str, Any]:
        return {"flake": t.flake.id, "path": _rel(ws, t.flake), "reasons": list(t.reasons),
                "overrides": [override_json(o) for o in t.overrides]}

    return {
        "flakes": [target(t) for t in detection.targets],
        # `run` evaluates these at head and base and builds the attributes that differ
        "pruned": [target(t) for t in detection.pruned],
        "unaffected": [{"flake": flake.id, "path": _rel(ws, flake), "reason": why}
                       for flake, why in detection.unaffected],
        "base": detection.base,
        "head": detection.head,
        "notes": list(detection.notes),
    }


def write_text(ws: Workspace, detection: detect_mod.Detection, out: TextIO) -> None:
    # file names, flake ids and reasons are the change's: each line stays text
    def line(text: str) -> None:
        out.write(log_line(text) + "\n")

    for note in detection.notes:
        line(f"note: {note}")
    if detection.base is not None:
        line(f"changes from {detection.base} to {detection.head or 'the work tree'}")
    if not detection.targets:
        line("no flake is affected")
    for target in detection.targets:
        _write_target(ws, target, line)
    if detection.pruned:
        line("left out by path rules, but a changed file is in their source (`run` "
             "evaluates them at head and base and builds what differs):")
    for target in detection.pruned:
        _write_target(ws, target, line)
    if detection.unaffected:
        line("unaffected: " + ", ".join(f.id for f, _ in detection.unaffected))


def _write_target(ws: Workspace, target: Target, line: Callable[[str], None]) -> None:
    line(f"{target.flake.id} ({_rel(ws, target.flake)})")
    for reason in target.reasons:
        line(f"  - {reason}")
    for override in target.overrides:
        line(f"  = input {override.describe()}")
