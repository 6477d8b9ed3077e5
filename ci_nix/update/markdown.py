"""The merge request's title and body (with what `--verify` built) and the commit message."""

from __future__ import annotations

from ci_nix import changelog
from ci_nix.models import Status
from ci_nix.report import changes as changes_report
from ci_nix.report.untrusted import md_code, md_text
from ci_nix.update.locks import LockUpdate
from ci_nix.update.verify import Verification

MARKER = "<!-- ci-nix update -->"


def title_for(moved: tuple[str, ...]) -> str:
    if not moved:
        return ""
    if len(moved) <= 3:
        return "flake.lock: update " + ", ".join(moved)
    return f"flake.lock: update {len(moved)} inputs"


def body_for(result: LockUpdate, verification: Verification | None = None) -> str:
    checked = render_verification(verification) if verification is not None else ""
    return (f"{MARKER}\nInputs updated by `ci-nix update`.\n\n{changelog.render(result.logs)}"
            f"{checked}"
            "\n---\nThis merge request is kept current by ci-nix: it is updated when inputs move "
            "again and closed when there is nothing left to update.\n")


def render_verification(verification: Verification) -> str:
    """The body's section on what `--verify` built, and the inputs it held back."""
    cases = verification.cases
    counts = {status: sum(case.status is status for case in cases) for status in Status}
    out = ["\n### Verification\n",
           f"Built with the updated locks (`ci-nix update --verify`): "
           f"{counts[Status.PASSED]} passed, {counts[Status.FAILED]} failed, "
           f"{counts[Status.SKIPPED]} skipped.\n"]
    if cases:
        out += ["| attribute | result |", "|---|---|"]
        for case in cases:
            if case.status is Status.FAILED and case.failure is not None:
                result = f"failed ({case.failure.type}): {md_text(case.failure.message)}"
            elif case.status is Status.SKIPPED:
                result = f"skipped: {md_text(case.skip_reason or '')}"
            else:
                result = str(case.status)
            out.append(f"| {md_code(f'{case.flake}#{case.name}', table=True)} | {result} |")
        out.append("")
    if verification.held_back:
        out.append("**Held back**: these inputs are not updated here, because their update "
                   "breaks attributes that pass on the current lock:\n")
        for held in verification.held_back:
            failure = held.case.failure
            why = f"{failure.type}: {md_text(failure.message)}" if failure else "failed"
            out.append(f"- {md_code(held.input)} breaks "
                       f"{md_code(f'{held.case.flake}#{held.case.name}')} ({why})")
        out.append("")
    if verification.comparison is not None:
        out.append(changes_report.markdown(verification.comparison, heading="###"))
    return "\n".join(out) + "\n"


def commit_message(result: LockUpdate) -> str:
    lines = [title_for(result.moved), ""]
    for log_ in result.logs:
        for change in log_.changes:
            old = change.old.short_rev if change.old else "(new)"
            new = change.new.short_rev if change.new else "(removed)"
            lines.append(f"- {log_.flake}: {change.name}: {old} -> {new}")
    return "\n".join(lines) + "\n"
