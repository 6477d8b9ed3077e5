"""`ci-nix junit LOG... [--output FILE]`: JUnit from logs of Nix runs ci-nix did not make."""

from __future__ import annotations

import argparse
import io
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from ci_nix import logtext, outputs
from ci_nix.commands.common import INTERRUPTED, Subcommands, exit_codes, subparser
from ci_nix.errors import Cancelled, CiNixError
from ci_nix.models import Case, Failure, FailureType, RunReport, Status
from ci_nix.report import junit, text
from ci_nix.report.untrusted import xml_for_log
from ci_nix.tools import proc


def register(commands: Subcommands) -> None:
    parser = subparser(
        commands, "junit", "JUnit XML from a captured Nix log",
        "Read logs of `nix build ... 2>&1` (plain text or --log-format internal-json, any Nix "
        "version or Lix) and write one JUnit test case per failing derivation or evaluation "
        "error, with the same types, messages and hints as `ci-nix run`. Exit 1 when a log "
        "reports failures, 0 when none do, 2 when a log cannot be read.",
        exit_codes((0, "no log reports a failure"), (1, "at least one log reports a failure"),
                   (2, "a log cannot be read, or the report cannot be written"),
                   (130, INTERRUPTED)))
    parser.add_argument("logs", nargs="+", type=Path, metavar="LOG", help="captured Nix log")
    parser.add_argument("--output", "-o", type=Path, metavar="FILE",
                        help="write the JUnit XML here (default: standard output)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help=argparse.SUPPRESS)
    parser.set_defaults(handler=handle)


def log_cases(suite: str, lines: Sequence[str]) -> list[Case]:
    """One failed case per failure the log reports, named by derivation where it has one."""
    from ci_nix import diagnose  # the classifier: loaded by this command, not at every start

    cases: list[Case] = []
    seen: dict[str, int] = {}
    for found in diagnose.parse_log(lines):
        if found.drv is not None:
            name = logtext.drv_name(found.drv)
        elif found.output is not None:  # Hydra names a timed-out build by its output path
            name = logtext.drv_name(found.output)
        else:
            name = "evaluation" if found.type is FailureType.EVAL else found.kind
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name} #{seen[name]}"
        failure = found.failure()
        if found.log_line is not None:
            # where to look in the log the user has (timestamps, wrappers and all)
            failure = replace(failure, log=f"{failure.log}\n(reported at line {found.log_line} "
                                           f"of {suite})".lstrip("\n"))
        cases.append(Case(suite, name, Status.FAILED, drv_path=found.drv, failure=failure))
    return cases


def _cases_of(path: Path) -> list[Case]:
    from ci_nix import diagnose  # the classifier: loaded by this command, not at every start

    try:
        lines = diagnose.read_log(path)
    except OSError as err:
        raise CiNixError(f"cannot read log {path}: {err.strerror}; pass the file "
                         "`nix build ... 2>&1 | tee` wrote") from None
    except ValueError as err:
        raise CiNixError(f"cannot read log {path}: {err} (ci-nix junit reads a file or a "
                         f"pipe of at most {diagnose.MAX_LOG_BYTES // (1024 * 1024)} MiB); "
                         "pass the file `nix build ... 2>&1 | tee` wrote, or its end "
                         "(`tail -c 100M`)") from None
    return log_cases(str(path), lines)


def _interrupted(suite: str, signum: int, *, started: bool) -> Case:
    """A log a signal kept ci-nix from reading whole: a failure, never a pass (its own
    failures are unknown), so a report cut short never looks green."""
    said = signal.Signals(signum).name
    message = (f"not read whole: {said} stopped ci-nix while it read this log; the failures "
               "it reports are not in this report" if started else
               f"not read: {said} stopped ci-nix before it read this log")
    return Case(suite, "interrupted", Status.FAILED,
                failure=Failure(FailureType.OTHER, message,
                                hint="run `ci-nix junit` on it again, to its end"))


def handle(args: argparse.Namespace) -> int:
    # (the classifier loaded before a signal can stop the read: no import is cut midway)
    from ci_nix import diagnose  # noqa: F401

    suites: list[str] = []
    cases: list[Case] = []
    for at, path in enumerate(args.logs):
        try:
            # SIGINT/SIGTERM end the read at once (a huge log takes minutes): the report is
            # still written, with what was read and the logs not read as failures
            with proc.pure_work():
                found = _cases_of(path)
        except Cancelled as stop:
            suites += [str(log) for log in args.logs[at:]]
            cases += [_interrupted(str(log), stop.signum, started=not later)
                      for later, log in enumerate(args.logs[at:])]
            break
        suites.append(str(path))
        cases += found
    report = RunReport(suites=tuple(suites), cases=tuple(cases))
    if args.output is None:  # maybe into a CI log: the log's lines run no command
        xml = io.StringIO()
        junit.write(report, xml)
        sys.stdout.write(xml_for_log(xml.getvalue()))
        text.write(report, sys.stderr)
    else:
        xml = io.StringIO()
        junit.write(report, xml)
        text.write(report, sys.stdout)
        problems = outputs.write_files([("JUnit report", args.output, xml.getvalue())],
                                       sys.stdout)
        if problems:
            raise CiNixError(f"{problems[0]}; choose a writable path")
    return report.exit_code
