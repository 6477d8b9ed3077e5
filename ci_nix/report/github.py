"""GitHub Actions: `::error` annotations, `::group::` log groups, the step summary (markdown)."""

from __future__ import annotations

import posixpath
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TextIO

from ci_nix import closure
from ci_nix.models import Case, RunReport, Status
from ci_nix.report import failures, untrusted
from ci_nix.report.untrusted import md_text as _md
from ci_nix.words import count

SUMMARY_CLOSURES = 50  # closure sizes listed in the step summary (the JSON report has all)
SUMMARY_LOG_CHARS = 4000  # GitHub caps a step summary at 1 MiB; keep room for many failures
SLOWEST = 5  # attributes in the summary's "Slowest evaluations"


def annotation(case: Case, checkout: str | None = None,
               places: Mapping[str, str] | None = None) -> str:
    """One `::error` line for a failed case, with file/line/col where its file can be placed.

    places: each workspace repo's directory relative to GITHUB_WORKSPACE (repos outside it
    absent), which is what GitHub resolves `file=` against; a multi-repo job checks repos out
    into subdirectories (actions/checkout `path:`). Without it, only a file of the repo CI
    checked out is placed (relative to that repo); a file of another workspace repo is named
    in the message only: GitHub would pin it on the same path in this one."""
    assert case.failure is not None
    failure = case.failure
    props: dict[str, str] = {}
    repo = failure.repo or case.flake.split("/", 1)[0]
    file: str | None = None
    if failure.file and places is not None:
        if repo in places:
            file = posixpath.normpath(posixpath.join(places[repo], failure.file))
    elif failure.file and (failure.repo is None or failure.repo == (checkout or repo)):
        file = failure.file
    if file is not None and failure.line is not None:
        props |= {"file": file, "line": str(failure.line)}
        if failure.column is not None:
            props["col"] = str(failure.column)
    elif file is not None and failure.type.value == "eval":
        props["file"] = file
    props["title"] = f"{failure.type.value}: {case.flake}#{case.name}"
    message = failure.message + (f"\n\nhint: {failure.hint}" if failure.hint else "")
    return untrusted.github_command("error", message, **props)


def places(repo_dirs: Iterable[tuple[str, str]], root: str) -> dict[str, str]:
    """{repo name: its directory relative to root} for the repos inside root (both absolute)."""
    found = {}
    for name, directory in repo_dirs:
        rel = posixpath.relpath(directory, root)
        if rel != ".." and not rel.startswith("../"):
            found[name] = rel
    return found


def write_annotations(report: RunReport, out: TextIO, root: str | None = None) -> None:
    """Annotations (files relative to root, GITHUB_WORKSPACE, when given), then each failure's
    log tail in a collapsed `::group::`."""
    where = places(report.repo_dirs, root) if root and report.repo_dirs else None
    for case in report.failed:
        out.write(annotation(case, report.checkout, where) + "\n")
    for group in failures.groups(report.cases):
        case = group.lead  # a root failure's log once, not again for each dependent
        assert case.failure is not None
        if not case.failure.log:
            continue
        title = untrusted.log_line(f"{case.flake}#{case.name}: {case.failure.message}")
        out.write(untrusted.github_command("group", title) + "\n")
        # builder output: no line of it may run as a workflow command
        out.write(untrusted.github_block(case.failure.log.splitlines()))
        out.write("::endgroup::\n")
    if report.error is not None:
        out.write(untrusted.github_command("error", report.error, title="ci-nix") + "\n")


def _position(case: Case) -> tuple[str, str]:
    """(message, where): the position once, as a place in a named repo, not repeated after the
    message that already ends with it."""
    failure = case.failure
    assert failure is not None
    if not failure.file or failure.line is None:
        return failure.message, ""
    place = f"{failure.file}:{failure.line}"
    if failure.column is not None:
        place += f":{failure.column}"
    own = case.flake.split("/", 1)[0]
    repo = failure.repo or own
    # the message names a file of another workspace repo with that repo's name
    message = failure.message.removesuffix(f" at {place}" if repo == own else f" at {repo}/{place}")
    return message, f" at {untrusted.md_code(place)} in repo {_md(repo)}"


def _write_delivered(report: RunReport, out: TextIO) -> None:
    """Images delivered (digest, references) and runtime closure sizes, largest first."""
    delivered = [c for c in report.cases if c.digest]
    if delivered:
        out.write("\n### Images\n\n| attribute | digest | pushed as |\n|---|---|---|\n")
        for case in delivered:
            assert case.digest is not None
            out.write(f"| {untrusted.md_code(f'{case.flake}#{case.name}', table=True)} | "
                      f"{untrusted.md_code(case.digest, table=True)} | "
                      + ", ".join(untrusted.md_code(ref, table=True) for ref in case.images)
                      + " |\n")
    sized = sorted((c for c in report.cases if c.closure_size is not None),
                   key=lambda c: -(c.closure_size or 0))
    if sized:
        out.write("\n<details><summary>Runtime closure sizes</summary>\n\n"
                  "| attribute | closure |\n|---|---:|\n")
        for case in sized[:SUMMARY_CLOSURES]:
            assert case.closure_size is not None
            out.write(f"| {untrusted.md_code(f'{case.flake}#{case.name}', table=True)} | "
                      f"{closure.human(case.closure_size)} |\n")
        if len(sized) > SUMMARY_CLOSURES:
            out.write(f"\n{len(sized) - SUMMARY_CLOSURES} more in the JSON report "
                      "(`closureSize`).\n")
        out.write("\n</details>\n")


def write_summary(report: RunReport, out: TextIO) -> None:
    """The markdown for $GITHUB_STEP_SUMMARY: totals, failures with collapsible logs, skips."""
    attributes = failures.attributes(report.cases)
    counts = Counter(case.status for case in attributes)
    icon = "✅" if report.exit_code == 0 else "❌"
    out.write(f"## {icon} ci-nix: {counts[Status.FAILED]} failed, {counts[Status.PASSED]} "
              f"passed, {counts[Status.SKIPPED]} skipped\n\n")
    if report.error is not None:
        out.write(f"**ci-nix could not finish:** {_md(report.error)}\n\n")
    # "built on": only when something was built on a remote builder
    remote = any(case.machine for case in report.cases)
    out.write("| flake | passed | failed | skipped |" + (" built on |" if remote else "")
              + "\n|---|---:|---:|---:|" + ("---|" if remote else "") + "\n")
    for flake in report.suites:
        mine = Counter(c.status for c in attributes if c.flake == flake)
        out.write(f"| {_md(flake)} | {mine[Status.PASSED]} | {mine[Status.FAILED]} | "
                  f"{mine[Status.SKIPPED]} |")
        if remote:
            built = Counter(c.machine or "this machine" for c in report.cases
                            if c.flake == flake and c.status is not Status.SKIPPED
                            and c.drv_path)
            out.write(" " + ", ".join(f"{_md(m)} ({n})" for m, n in sorted(built.items()))
                      + " |")
        out.write("\n")
    if report.failed:
        out.write("\n### Failed attributes\n\n")
        for group in failures.groups(report.cases):
            case = group.lead
            assert case.failure is not None
            failure = case.failure
            message, where = _position(case)
            out.write(f"- **{_md(f'{case.flake}#{case.name}')}** `{failure.type.value}`: "
                      f"{_md(message)}{where}\n")
            if failure.hint:
                out.write(f"  - hint: {_md(failure.hint)}\n")
            if group.dependents:
                out.write("  - failed because of it: "
                          + ", ".join(f"**{_md(failures.label(d))}**" for d in group.dependents)
                          + "\n")
            if failure.log:
                # Indented to the list item's content, so the block renders inside the item.
                block = untrusted.md_fence(failure.log[-SUMMARY_LOG_CHARS:])
                body = "".join(f"  {line}\n" for line in block.splitlines())
                out.write(f"\n  <details><summary>log tail</summary>\n\n{body}\n"
                          "  </details>\n\n")
    _write_delivered(report, out)
    if report.inputs or report.locked:
        out.write("\n### Inputs from the workspace\n\n")
        if report.locked:
            out.write("Every input as flake.lock has it (`--locked`).\n")
        for flake, overrides in report.inputs:
            out.write(f"- **{_md(flake)}**: "
                      + "; ".join(_md(o.describe()) for o in overrides) + "\n")
    if report.selected:
        out.write("\n<details><summary>What was compared</summary>\n\n")
        if report.compared:
            out.write(f"{_md(report.compared)}\n\n")
        for flake, reasons in report.selected:
            out.write(f"- **{_md(flake)}**: {_md('; '.join(reasons) or 'selected')}\n")
        out.write("\n</details>\n")
    skipped, whole = failures.skip_counts(report.cases)
    if skipped or whole:
        out.write("\n### Skipped\n\n")
        for reason, n in sorted(skipped.items()):
            out.write(f"- {_md(reason)}: {count(n, 'attribute')}\n")
        for reason, n in sorted(whole.items()):
            out.write(f"- {_md(reason)}: {count(n, 'flake')} (not evaluated)\n")
    costs = sorted(((c.eval_cost, c) for c in report.cases if c.eval_cost is not None),
                   key=lambda pair: -pair[0].seconds)[:SLOWEST]
    if costs:
        out.write("\n### Slowest evaluations\n\n| attribute | seconds | worker memory growth |"
                  "\n|---|---:|---:|\n")
        for cost, case in costs:
            out.write(f"| {_md(f'{case.flake}#{case.name}')} | {cost.seconds:.1f} | "
                      f"{cost.memory_mib:.0f} MiB |\n")
    for note in report.notes:
        out.write(f"\n> {_md(note)}\n")
