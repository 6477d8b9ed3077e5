"""flake.lock before/after -> typed input changes, compare links, health notes, and markdown."""

from __future__ import annotations

import datetime
import re
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from ci_nix.lockfile import Lock, Node

# Web UI flavours we can build compare links for.
GITHUB, GITLAB, GITEA, SOURCEHUT = "github", "gitlab", "gitea", "sourcehut"
_KNOWN_HOSTS = {"github.com": GITHUB, "gitlab.com": GITLAB, "codeberg.org": GITEA,
                "git.sr.ht": SOURCEHUT}


@dataclass(frozen=True)
class InputState:
    """Where one input of a flake points: a locked node, or a follows path."""

    rev: str | None = None
    last_modified: int | None = None
    follows: tuple[str, ...] | None = None
    web: str | None = None  # the repository's web page, when the host is known
    web_kind: str | None = None
    ref: str = ""  # the lock's `original`, as a flake reference

    @property
    def short_rev(self) -> str:
        if self.follows is not None:
            return "follows " + "/".join(self.follows)
        return self.rev[:7] if self.rev else "—"

    @property
    def date(self) -> str:
        if self.last_modified is None:
            return "—"
        stamp = datetime.datetime.fromtimestamp(self.last_modified, datetime.UTC)
        return stamp.strftime("%Y-%m-%d")


@dataclass(frozen=True)
class InputChange:
    """One input path (`nixpkgs`, `home-manager/nixpkgs`) whose lock entry changed."""

    path: tuple[str, ...]
    kind: str  # updated | added | removed | follows
    old: InputState | None
    new: InputState | None

    @property
    def name(self) -> str:
        return "/".join(self.path)

    @property
    def compare_url(self) -> str | None:
        old, new = self.old, self.new
        if not (old and new and old.rev and new.rev and new.web and old.web == new.web):
            return None
        if new.web_kind == GITHUB:
            return f"{new.web}/compare/{old.rev}...{new.rev}"
        if new.web_kind == GITLAB:
            return f"{new.web}/-/compare/{old.rev}...{new.rev}"
        if new.web_kind == GITEA:
            return f"{new.web}/compare/{old.rev}...{new.rev}"
        if new.web_kind == SOURCEHUT:  # no compare view: the log up to the new revision
            return f"{new.web}/log/{new.rev}"
        return None


@dataclass(frozen=True)
class HealthNote:
    """A nixpkgs copy that a follows line would unify with the root's nixpkgs."""

    path: tuple[str, ...]
    suggestion: str


@dataclass(frozen=True)
class FlakeChangelog:
    flake: str  # flake id
    changes: tuple[InputChange, ...]
    nixpkgs_copies: int
    health: tuple[HealthNote, ...]


# --- where an input lives on the web ---------------------------------------------------------

def web_location(locked: Mapping[str, object], hosts: Mapping[str, str] = {},
                 repo_urls: Mapping[str, str] = {}) -> tuple[str | None, str | None]:
    """(web page of the repository, its flavour) for a lock node, or (None, None).

    `hosts` maps extra host names to a flavour (self-hosted GitLab/Gitea from the forge config
    or remote URL); `repo_urls` maps clone URLs of known repos to their web pages.
    """
    kind = str(locked.get("type", ""))
    owner, repo = str(locked.get("owner", "")), str(locked.get("repo", ""))
    if kind in (GITHUB, GITLAB, SOURCEHUT) and owner and repo:
        default = {GITHUB: "github.com", GITLAB: "gitlab.com", SOURCEHUT: "git.sr.ht"}[kind]
        host = str(locked.get("host") or default)
        # gitlab:group%2Fsub/repo: subgroups are %2F-quoted in the owner
        owner = urllib.parse.unquote(owner)
        if kind == SOURCEHUT and not owner.startswith("~"):
            owner = "~" + owner
        return f"https://{host}/{owner}/{repo}", kind
    url = str(locked.get("url", ""))
    if not url:
        return None, None
    key = normalize_url(url)
    for clone, web in repo_urls.items():
        if normalize_url(clone) == key:
            return web, hosts.get(urllib.parse.urlsplit(web).hostname or "")
    parts = urllib.parse.urlsplit(url.removeprefix("git+"))
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return None, None
    flavour = _flavour(parts.hostname, hosts)
    if flavour is None:
        return None, None
    path = re.sub(r"\.git$", "", parts.path.rstrip("/"))
    if flavour == GITLAB:
        path = path.split("/-/")[0]
    elif flavour in (GITHUB, GITEA):
        path = "/".join(path.split("/")[:3])  # /owner/repo (tarball URLs go deeper)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}{path}", flavour


def _flavour(host: str, hosts: Mapping[str, str]) -> str | None:
    if host in hosts:
        return hosts[host]
    if host in _KNOWN_HOSTS:
        return _KNOWN_HOSTS[host]
    for word, kind in (("gitlab", GITLAB), ("github", GITHUB), ("gitea", GITEA),
                       ("forgejo", GITEA), ("codeberg", GITEA)):
        if word in host.split(".")[0]:
            return kind
    return None


def normalize_url(url: str) -> str:
    """A clone URL reduced to host/path, so git+https://h/a/b.git and https://h/a/b match."""
    url = url.removeprefix("git+")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme in ("github", "gitlab", "sourcehut"):
        hosts = {"github": "github.com", "gitlab": "gitlab.com", "sourcehut": "git.sr.ht"}
        return f"{hosts[parts.scheme]}/{parts.path.strip('/')}".lower()
    if parts.scheme == "file" or not parts.scheme:
        return "file:" + parts.path.rstrip("/").removesuffix(".git")
    host = (parts.hostname or "").lower()
    return f"{host}/{parts.path.strip('/').removesuffix('.git')}".lower()


def node_url(node: Node) -> str | None:
    """The clone URL a lock node was fetched from (for matching inputs to known repos)."""
    locked = node.locked
    kind = locked.get("type")
    if kind in ("github", "gitlab", "sourcehut") and locked.get("owner"):
        return f"{kind}:{locked['owner']}/{locked.get('repo', '')}"
    url = locked.get("url") or node.original.get("url")
    return str(url) if url else None


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
    node = lock.nodes[target]
    web, kind = web_location(node.locked, hosts, repo_urls)
    return InputState(rev=node.rev, last_modified=node.last_modified, web=web, web_kind=kind,
                      ref=str(node.original.get("url") or node.original.get("type", "")))


def diff(before: Lock | None, after: Lock, hosts: Mapping[str, str] = {},
         repo_urls: Mapping[str, str] = {}) -> tuple[InputChange, ...]:
    """What moved between two lock files: updated, added, removed inputs and follows changes."""
    old = dict(_entries(before)) if before else {}
    new = dict(_entries(after))
    changes = []
    for path in sorted(set(old) | set(new), key=lambda p: (len(p), p)):
        a = _state(before, old[path], hosts, repo_urls) if before and path in old else None
        b = _state(after, new[path], hosts, repo_urls) if path in new else None
        if a is None and b is not None:
            changes.append(InputChange(path, "added", None, b))
        elif b is None and a is not None:
            changes.append(InputChange(path, "removed", a, None))
        elif a is not None and b is not None:
            if a.follows != b.follows:
                changes.append(InputChange(path, "follows", a, b))
            elif a.follows is None and (a.rev, a.last_modified) != (b.rev, b.last_modified):
                changes.append(InputChange(path, "updated", a, b))
    return tuple(changes)


# --- health ------------------------------------------------------------------------------------

def _is_nixpkgs(node: Node) -> bool:
    return (re.fullmatch(r"nixpkgs(_\d+)?", node.key) is not None
            or node.locked.get("repo") == "nixpkgs" or node.original.get("repo") == "nixpkgs")


def health(lock: Lock) -> tuple[int, tuple[HealthNote, ...]]:
    """How many nixpkgs nodes the lock holds, and follows lines that would unify them."""
    copies = {node.key for node in lock.nodes.values() if _is_nixpkgs(node)}
    root_inputs = lock.nodes[lock.root].inputs
    root_nixpkgs = lock.resolve(root_inputs["nixpkgs"]) if "nixpkgs" in root_inputs else None
    if len(copies) < 2 or root_nixpkgs is None:
        return len(copies), ()
    notes = []
    for path, target in _entries(lock):
        if len(path) < 2 or path[-1] != "nixpkgs" or not isinstance(target, str):
            continue
        if target != root_nixpkgs.key and target in copies:
            line = "".join(f"inputs.{name}." for name in path) + 'follows = "nixpkgs";'
            notes.append(HealthNote(path, line))
    return len(copies), tuple(notes)


def changelog(flake_id: str, before: Lock | None, after: Lock, hosts: Mapping[str, str] = {},
              repo_urls: Mapping[str, str] = {}) -> FlakeChangelog:
    copies, notes = health(after)
    return FlakeChangelog(flake_id, diff(before, after, hosts, repo_urls), copies, notes)


# --- markdown ----------------------------------------------------------------------------------

def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(logs: tuple[FlakeChangelog, ...]) -> str:
    """The merge request body: a table per flake, then the lock health section."""
    out: list[str] = []
    for log in logs:
        if not log.changes:
            continue
        out.append(f"### `{log.flake}`\n")
        out.append("| input | revision | date | changes |")
        out.append("|---|---|---|---|")
        for change in log.changes:
            old, new = change.old, change.new
            if change.kind == "added" and new is not None:
                revs, dates = f"added: `{new.short_rev}`", new.date
            elif change.kind == "removed" and old is not None:
                revs, dates = f"removed (was `{old.short_rev}`)", old.date
            else:
                assert old is not None and new is not None
                revs = f"`{old.short_rev}` → `{new.short_rev}`"
                dates = f"{old.date} → {new.date}"
            link = change.compare_url
            out.append(f"| `{_cell(change.name)}` | {_cell(revs)} | {dates} | "
                       f"{f'[compare]({link})' if link else '—'} |")
        out.append("")
    notes = [log for log in logs if log.health]
    if notes:
        out.append("### flake.lock health\n")
        for log in notes:
            out.append(f"`{log.flake}` locks {log.nixpkgs_copies} copies of nixpkgs; these "
                       "lines in its flake.nix would make them follow the root's:\n")
            out.append("```nix")
            out.extend(note.suggestion for note in log.health)
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
