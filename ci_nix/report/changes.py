"""What a change does (changes.Comparison) as JSON, terminal text, markdown (step summary and
PR comment) and a GitLab job-log section. Pure writers."""

from __future__ import annotations

import json
from typing import Any, TextIO

from ci_nix import closure
from ci_nix.changes import WORKTREE, Change, Comparison, PackageChanges
from ci_nix.report.untrusted import (
    gitlab_section_end,
    gitlab_section_start,
    log_line,
    md_code,
    md_fence,
    md_html,
)
from ci_nix.report.untrusted import md_text as _md

MARKER = "<!-- ci-nix: what changes -->"  # finds ci-nix's own PR/MR comment again
MAX_LISTED = 50  # packages listed per attribute and kind before "... and N more"


def head_label(comparison: Comparison) -> str:
    return comparison.head or WORKTREE


def _repo_lines(comparison: Comparison) -> list[str]:
    """In a multi-repo workspace, what each repo was compared at (the header names only the
    primary repo's base and head)."""
    if len(comparison.repos) < 2:
        return []
    return [f"{r.repo}: as checked out ({r.head[:12]}) on both sides" if r.as_checked_out
            else f"{r.repo}: {r.base[:12]} -> {r.head[:12]}" for r in comparison.repos]


def to_json(comparison: Comparison) -> dict[str, Any]:
    """The `diff --json` document."""

    def packages(p: PackageChanges | None) -> dict[str, Any]:
        p = p or PackageChanges()
        return {"changed": [{"name": c.name, "from": c.before, "to": c.after} for c in p.changed],
                "added": [{"name": a.name, "version": a.version} for a in p.added],
                "removed": [{"name": r.name, "version": r.version} for r in p.removed]}

    document: dict[str, Any] = {"base": comparison.base, "head": head_label(comparison)}
    if len(comparison.repos) > 1:  # multi-repo: base/head above are the primary repo's
        document["repos"] = {r.repo: {"base": r.base, "head": r.head} for r in comparison.repos}
    document["attributes"] = [{"flake": a.flake, "attr": a.attr, "system": a.system,
                               "status": a.status.value, "baseDrv": a.base_drv,
                               "headDrv": a.head_drv, "packages": packages(a.packages),
                               **_closure_size(a.packages)}
                              for a in comparison.attributes]
    return document


def _closure_size(p: PackageChanges | None) -> dict[str, Any]:
    """`closureSize`: the runtime closure in bytes at the base and the head, where both are
    known (their outputs are in the store or a binary cache)."""
    if p is None or p.sizes is None:
        return {}
    return {"closureSize": {"base": p.sizes[0], "head": p.sizes[1]}}


def write_json(comparison: Comparison, out: TextIO) -> None:
    # one string, then one write: json.dump writes each of its ~10,000 pieces on its own
    out.write(json.dumps(to_json(comparison), indent=2) + "\n")


def _counts(comparison: Comparison) -> str:
    parts = [f"{len(comparison.of(status))} {status.value}" for status in Change
             if comparison.of(status)]
    return ", ".join(parts) or "nothing evaluated"


def _package_lines(p: PackageChanges) -> list[str]:
    lines = [f"{c.name}: {c.before} -> {c.after}" for c in p.changed[:MAX_LISTED]]
    lines += [f"+ {a.name} {a.version}".rstrip() for a in p.added[:MAX_LISTED]]
    lines += [f"- {r.name} {r.version}".rstrip() for r in p.removed[:MAX_LISTED]]
    hidden = sum(max(0, len(x) - MAX_LISTED) for x in (p.changed, p.added, p.removed))
    if hidden:
        lines.append(f"... and {hidden} more")
    return lines


def _cost(p: PackageChanges) -> str:
    text = f"{p.rebuilds} derivation{'s' if p.rebuilds != 1 else ''} to rebuild"
    if p.size_delta is not None:
        assert p.sizes is not None
        text += (f", closure {closure.human(p.sizes[0])} -> {closure.human(p.sizes[1])} "
                 f"({closure.signed(p.size_delta)})")
    return text


def write_text(comparison: Comparison, out: TextIO) -> None:
    """For terminals: one line per attribute that is not unchanged, packages indented."""
    out.write(f"What changes: {comparison.base[:12]} -> {head_label(comparison)[:12]}: "
              f"{_counts(comparison)}\n")
    for line in _repo_lines(comparison):
        out.write(f"  {log_line(line)}\n")
    _write_attributes(comparison, out)


def _write_attributes(comparison: Comparison, out: TextIO) -> None:
    for attr in comparison.attributes:
        if attr.status is Change.UNCHANGED:
            continue
        # names, errors and package names are the flake's text: lines that stay text
        cost = f" ({_cost(attr.packages)})" if attr.packages is not None else ""
        out.write(f"  {attr.status.value:<9} {log_line(f'{attr.flake}#{attr.attr}')}{cost}\n")
        if attr.error:
            out.write(f"            {log_line(attr.error)}\n")
        if attr.packages is not None:
            for line in _package_lines(attr.packages):
                out.write(f"            {log_line(line)}\n")
    for note in comparison.notes:
        out.write(f"note: {log_line(note)}\n")


def markdown(comparison: Comparison, heading: str = "##") -> str:
    """The "What changes" section: what was compared, hosts changed/unchanged, package version
    changes collapsible per attribute. Also the body of the PR/MR comment."""
    lines = [f"{heading} What changes", ""]
    head = comparison.head[:12] if comparison.head else "the work tree"
    source = f", the merge-base with {_md(comparison.base_source)}" if comparison.base_source \
        else ""
    lines.append(f"Compared {md_code(comparison.base[:12])} (base{source}) with {md_code(head)} "
                 "(head): "
                 f"{_counts(comparison)}.")
    lines.append("")
    if len(comparison.repos) > 1:
        lines += [f"- {_md(r.repo)}: as checked out ({md_code(r.head[:12])}) on both sides"
                  if r.as_checked_out else
                  f"- {_md(r.repo)}: {md_code(r.base[:12])} → {md_code(r.head[:12])}"
                  for r in comparison.repos] + [""]
    if comparison.flakes:
        lines.append("<details><summary>Why these flakes</summary>\n")
        for flake in comparison.flakes:
            why = "; ".join(flake.reasons) or "selected"
            lines.append(f"- **{_md(flake.flake)}**: {_md(why)}")
        lines += ["", "</details>", ""]
    changed = [a for a in comparison.attributes if a.status is not Change.UNCHANGED]
    if changed:
        lines += ["| attribute | status | packages |", "|---|---|---|"]
        for attr in changed:
            summary = ""
            if attr.packages is not None:
                p = attr.packages
                summary = (f"{len(p.changed)} updated, {len(p.added)} added, {len(p.removed)} "
                           f"removed; {_cost(p)}")
            elif attr.error:
                summary = _md(attr.error[:200])
            lines.append(f"| {md_code(f'{attr.flake}#{attr.attr}', table=True)} | "
                         f"{attr.status.value} | {summary} |")
        lines.append("")
        for attr in changed:
            if attr.packages is None or not _package_lines(attr.packages):
                continue
            lines.append(f"<details><summary>{md_html(f'{attr.flake}#{attr.attr}')}</summary>\n")
            lines.append(md_fence("\n".join(_package_lines(attr.packages)), "diff"))
            lines += ["</details>", ""]
    unchanged = comparison.of(Change.UNCHANGED)
    if unchanged:
        names = ", ".join(md_code(f"{a.flake}#{a.attr}") for a in unchanged[:MAX_LISTED])
        more = f" and {len(unchanged) - MAX_LISTED} more" if len(unchanged) > MAX_LISTED else ""
        lines += [f"Unchanged: {names}{more}.", ""]
    for note in comparison.notes:
        lines += [f"> {_md(note)}", ""]
    return "\n".join(lines)


def comment(comparison: Comparison) -> str:
    """The body of ci-nix's one PR/MR comment (the marker lets later runs find and edit it)."""
    return f"{MARKER}\n{markdown(comparison)}"


def write_gitlab(comparison: Comparison, out: TextIO, now: int) -> None:
    """The text output inside a collapsed GitLab job-log section."""
    name = "ci_nix_what_changes"
    out.write(gitlab_section_start(name, f"What changes: {comparison.base[:12]} -> "
                                   f"{head_label(comparison)[:12]}: {_counts(comparison)}", now)
              + "\n")
    for line in _repo_lines(comparison):
        out.write(f"  {log_line(line)}\n")
    for flake in comparison.flakes:
        out.write(f"  {log_line(f'{flake.flake}: ' + ('; '.join(flake.reasons) or 'selected'))}\n")
    _write_attributes(comparison, out)
    out.write(gitlab_section_end(name, now) + "\n")
