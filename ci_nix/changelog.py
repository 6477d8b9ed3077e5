"""flake.lock before/after -> typed input changes, compare links, health notes, and markdown."""

from __future__ import annotations

import datetime
import enum
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from ci_nix import source
from ci_nix.lockfile import Lock, Node
from ci_nix.report.untrusted import md_code, md_text
from ci_nix.source import Repository, Source

MAX_COMMITS = 10  # commit subjects listed per input; the rest is "and N more"

# (subjects from old to new, newest first, at most MAX_COMMITS; how many there are in all), or
# None when the commits cannot be listed (no local clone, no token).
CommitLister = Callable[[Repository, str, str], "tuple[tuple[str, ...], int] | None"]


class ChangeKind(enum.StrEnum):
    UPDATED = "updated"
    ADDED = "added"
    REMOVED = "removed"
    FOLLOWS = "follows"
    MOVED = "moved"  # another source repository


@dataclass(frozen=True)
class InputState:
    """Where one input of a flake points: a locked node, or a follows path."""

    rev: str | None = None
    last_modified: int | None = None
    nar_hash: str | None = None
    url: str = ""  # the locked reference, as a flake URL
    follows: tuple[str, ...] | None = None
    source: Source | None = None
    web: Repository | None = None  # where to link to: the source's repository or its web page

    @property
    def revision(self) -> str | None:
        """The commit (or archive revision) locked, if the lock says one."""
        return self.rev or (self.source.rev if self.source else None)

    @property
    def short_rev(self) -> str:
        if self.follows is not None:
            return "follows " + "/".join(self.follows)
        rev = self.revision
        if rev:
            return rev[:7] if re.fullmatch(r"[0-9a-f]{40}", rev) else rev
        if self.nar_hash:  # a file or tarball without a revision: its content hash
            return self.nar_hash[:14]
        return "—"

    @property
    def date(self) -> str:
        if self.last_modified is None:
            return "—"
        stamp = datetime.datetime.fromtimestamp(self.last_modified, datetime.UTC)
        return stamp.strftime("%Y-%m-%d")

    @property
    def where(self) -> str:
        """The source for the reader: `host/owner/repo`, a local path, or the URL itself when
        the repository alone would not say what is locked (a file or tarball without a rev)."""
        repo = self.source.repository if self.source else None
        if repo is None:
            return self.url
        bare = self.source is not None and self.source.kind in (source.Kind.FILE,
                                                                  source.Kind.TARBALL)
        return self.url if bare and not self.revision else str(repo)

    @property
    def identity(self) -> str | None:
        return self.source.key if self.source else None

    def locked_same(self, other: InputState) -> bool:
        return ((self.rev, self.last_modified, self.nar_hash, self.url)
                == (other.rev, other.last_modified, other.nar_hash, other.url))


@dataclass(frozen=True)
class InputChange:
    """One input path (`nixpkgs`, `home-manager/nixpkgs`) whose lock entry changed."""

    path: tuple[str, ...]
    kind: ChangeKind
    old: InputState | None
    new: InputState | None
    commits: tuple[str, ...] = ()
    commit_count: int = 0

    @property
    def name(self) -> str:
        return "/".join(self.path)

    @property
    def compare_url(self) -> str | None:
        old, new = self.old, self.new
        if self.kind is not ChangeKind.UPDATED or not (old and new and new.web):
            return None
        if not (old.revision and new.revision and old.web == new.web):
            return None
        return source.compare_url(new.web, old.revision, new.revision)


@dataclass(frozen=True)
class HealthNote:
    """A nixpkgs copy that a follows line would unify with the root's nixpkgs."""

    path: tuple[str, ...]
    suggestion: str


@dataclass(frozen=True)
class Health:
    """The nixpkgs copies a lock holds (NixOS/nixpkgs by what is locked, whatever the name)."""

    nixpkgs_copies: int = 0
    forks: tuple[str, ...] = ()  # other repositories named nixpkgs
    flakehub_copies: int = 0
    root_input: str | None = None  # the root input the notes point at
    notes: tuple[HealthNote, ...] = ()


@dataclass(frozen=True)
class FlakeChangelog:
    flake: str  # flake id
    changes: tuple[InputChange, ...]
    health: Health = Health()

    @property
    def nixpkgs_copies(self) -> int:
        return self.health.nixpkgs_copies


# --- where an input lives on the web ---------------------------------------------------------

def web_repository(found: Source, hosts: Mapping[str, str] = {},
                   repo_urls: Mapping[str, str] = {}) -> Repository | None:
    """The repository to link to: a known repo's web page (by clone URL), else the source's own.

    `hosts` maps extra host names to a flavour (self-hosted GitLab/Gitea from the forge config
    or remote URL); `repo_urls` maps clone URLs of known repos to their web pages.
    """
    if found.repository is None:
        return None
    for clone, web in repo_urls.items():
        known = source.parse_url(clone)
        if known is not None and known.key == found.key:
            page = source.parse_url(web, hosts)
            if page is not None and page.repository is not None:
                return page.repository
    return found.repository if found.repository.flavour is not None else None


def node_url(node: Node) -> str | None:
    """The clone URL a lock node was fetched from (for matching inputs to known repos)."""
    ref = node.locked or node.original
    return ref.display or None


# --- lock diff ---------------------------------------------------------------------------------

def _entries(lock: Lock) -> Iterator[tuple[tuple[str, ...], str | tuple[str, ...]]]:
    """Every (input path, node key or follows path), without descending through follows."""
    seen: set[str] = set()
    stack: list[tuple[tuple[str, ...], str]] = [((), lock.root)]
    while stack:
        path, key = stack.pop()
        if key in seen or key not in lock.nodes:
            continue
        seen.add(key)
        for name, target in sorted(lock.nodes[key].inputs.items(), reverse=True):
            yield (*path, name), target
            if isinstance(target, str):
                stack.append(((*path, name), target))


def _state(lock: Lock, target: str | tuple[str, ...], hosts: Mapping[str, str],
           repo_urls: Mapping[str, str]) -> InputState:
    if isinstance(target, tuple):
        return InputState(follows=target)
    node = lock.nodes.get(target)
    if node is None:
        return InputState()
    found = source.of_ref(node.locked, hosts)
    return InputState(rev=node.rev, last_modified=node.last_modified,
                      nar_hash=node.locked.nar_hash, url=node.locked.display, source=found,
                      web=web_repository(found, hosts, repo_urls))


def _kind(a: InputState, b: InputState) -> ChangeKind | None:
    if a.follows != b.follows:
        return ChangeKind.FOLLOWS
    if a.follows is not None or a.locked_same(b):
        return None
    if a.identity is not None and b.identity is not None and a.identity != b.identity:
        return ChangeKind.MOVED
    if (a.identity is None) != (b.identity is None):
        return ChangeKind.MOVED  # e.g. a tarball URL replaced by a git repository
    return ChangeKind.UPDATED


def diff(before: Lock | None, after: Lock, hosts: Mapping[str, str] = {},
         repo_urls: Mapping[str, str] = {},
         commits: CommitLister | None = None) -> tuple[InputChange, ...]:
    """What moved between two lock files: every input whose locked reference (rev, date,
    narHash, url) changed, added and removed inputs, follows changes, and sources that moved."""
    old = dict(_entries(before)) if before else {}
    new = dict(_entries(after))
    changes = []
    for path in sorted(set(old) | set(new), key=lambda p: (len(p), p)):
        a = _state(before, old[path], hosts, repo_urls) if before and path in old else None
        b = _state(after, new[path], hosts, repo_urls) if path in new else None
        if a is None and b is not None:
            changes.append(InputChange(path, ChangeKind.ADDED, None, b))
        elif b is None and a is not None:
            changes.append(InputChange(path, ChangeKind.REMOVED, a, None))
        elif a is not None and b is not None:
            kind = _kind(a, b)
            if kind is None:
                continue
            listed: tuple[tuple[str, ...], int] | None = None
            if (kind is ChangeKind.UPDATED and commits is not None and a.rev and b.rev
                    and b.source is not None and b.source.repository is not None):
                listed = commits(b.source.repository, a.rev, b.rev)
            subjects, count = listed if listed is not None else ((), 0)
            changes.append(InputChange(path, kind, a, b, subjects, count))
    return tuple(changes)


# --- health ------------------------------------------------------------------------------------

NIXPKGS = "github.com/nixos/nixpkgs"


def _nixpkgs_kind(node: Node) -> str | None:
    """"nixpkgs" for NixOS/nixpkgs however fetched, "flakehub" for a FlakeHub copy, "fork" for
    another repository called nixpkgs, None for anything else."""
    found = source.of_ref(node.locked)
    repo = found.repository
    if repo is None:
        return None
    if found.kind is source.Kind.FLAKEHUB:
        return "flakehub" if repo.name.lower() == "nixpkgs" else None
    if repo.key == NIXPKGS:
        return "nixpkgs"
    name = repo.name.lower()
    return "fork" if name == "nixpkgs" or name.endswith("-nixpkgs") else None


def health(lock: Lock) -> Health:
    """The nixpkgs copies in a lock and the follows lines that would unify them.

    nixpkgs is recognised by what is locked, not by the input's name. The root input that the
    most other inputs already follow (or lock) is the one the suggestions point at.
    """
    kinds = {key: _nixpkgs_kind(node) for key, node in lock.nodes.items() if key != lock.root}
    copies = sorted(key for key, kind in kinds.items() if kind == "nixpkgs")
    forks = sorted({str(source.of_ref(lock.nodes[key].locked).repository)
                    for key, kind in kinds.items() if kind == "fork"})
    flakehub = sum(kind == "flakehub" for kind in kinds.values())
    root_inputs = lock.nodes[lock.root].inputs
    candidates = {}
    for name, target in root_inputs.items():
        node = lock.resolve(target)
        if node is not None and kinds.get(node.key) == "nixpkgs":
            candidates[name] = node.key
    if len(copies) < 2 or not candidates:
        return Health(len(copies), tuple(forks), flakehub)
    entries = [(path, target) for path, target in _entries(lock) if len(path) >= 2]
    users: dict[str, int] = {}
    for _, target in entries:
        node = lock.resolve(target)
        if node is not None:
            users[node.key] = users.get(node.key, 0) + 1
    root_name = max(candidates, key=lambda name: (users.get(candidates[name], 0),
                                                  name == "nixpkgs", -list(candidates).index(name)))
    root_key = candidates[root_name]
    notes = []
    for path, target in entries:
        if isinstance(target, str) and target != root_key and kinds.get(target) == "nixpkgs":
            line = "".join(f"inputs.{name}." for name in path) + f'follows = "{root_name}";'
            notes.append(HealthNote(path, line))
    return Health(len(copies), tuple(forks), flakehub, root_name, tuple(notes))


def changelog(flake_id: str, before: Lock | None, after: Lock, hosts: Mapping[str, str] = {},
              repo_urls: Mapping[str, str] = {},
              commits: CommitLister | None = None) -> FlakeChangelog:
    return FlakeChangelog(flake_id, diff(before, after, hosts, repo_urls, commits), health(after))


# --- markdown ----------------------------------------------------------------------------------

def _changes_cell(change: InputChange) -> str:
    parts = []
    link = change.compare_url
    if link:
        parts.append(f"[compare]({link})")
    if change.commits:
        # upstream's commit subjects: shown as text, their @mentions ping nobody
        lines = [md_text(subject) for subject in change.commits]
        if change.commit_count > len(change.commits):
            lines.append(f"and {change.commit_count - len(change.commits)} more")
        parts.append("<br>".join(lines))
    return "<br>".join(parts) or "—"


def render(logs: tuple[FlakeChangelog, ...]) -> str:
    """The merge request body: a table per flake, then the lock health section."""
    out: list[str] = []
    for log in logs:
        if not log.changes:
            continue
        out.append(f"### {md_code(log.flake)}\n")
        out.append("| input | source | revision | date | changes |")
        out.append("|---|---|---|---|---|")
        for change in log.changes:
            old, new = change.old, change.new
            if change.kind is ChangeKind.ADDED and new is not None:
                where, revs, dates = new.where, f"added: `{new.short_rev}`", new.date
            elif change.kind is ChangeKind.REMOVED and old is not None:
                where, revs, dates = old.where, f"removed (was `{old.short_rev}`)", old.date
            else:
                assert old is not None and new is not None
                where = new.where or old.where
                if change.kind is ChangeKind.MOVED:
                    where = f"{old.where} → {new.where}"
                revs = f"`{old.short_rev}` → `{new.short_rev}`"
                dates = f"{old.date} → {new.date}"
            out.append(f"| {md_code(change.name, table=True)} | {md_text(where) or '—'} | "
                       f"{revs} | {dates} | {_changes_cell(change)} |")
        out.append("")
    notes = [log for log in logs if log.health.notes]
    if notes:
        out.append("### flake.lock health\n")
        for log in notes:
            health = log.health
            extra = []
            if health.forks:
                extra.append(f"forks of nixpkgs, counted separately: {', '.join(health.forks)}")
            if health.flakehub_copies:
                extra.append(f"{health.flakehub_copies} FlakeHub copies of nixpkgs, counted "
                             "separately")
            also = f" (also {'; '.join(extra)})" if extra else ""
            out.append(f"`{log.flake}` locks {health.nixpkgs_copies} copies of NixOS/nixpkgs"
                       f"{also}; these lines in its flake.nix would make them follow the root "
                       f"input `{health.root_input}`:\n")
            out.append("```nix")
            out.extend(note.suggestion for note in health.notes)
            out.append("```\n")
    return "\n".join(out).strip() + "\n" if out else ""


def moved_names(logs: tuple[FlakeChangelog, ...]) -> list[str]:
    """Top-level input names that changed, in order, for titles and commit messages."""
    names: list[str] = []
    for log in logs:
        for change in log.changes:
            if change.path[0] not in names:
                names.append(change.path[0])
    return names
