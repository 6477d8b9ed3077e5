"""Which repository a flake URL or a flake.lock node names, and where it lives on the web.

Reads flake references (`github:o/r`, `git+https://…`, scp-form `git@host:o/r.git`, forge
archive tarballs, `path:`, `flake:` ids) with flakeref.py's syntax, and keeps the forge host table.
Change detection links workspace flakes by `Repository.key`; the update changelog and the bots'
ordering use the same key and this module's links.
"""

from __future__ import annotations

import enum
import os
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from ci_nix.flakeref import FlakeRef, query_dir, typed_url


class Flavour(enum.StrEnum):
    """A forge web UI ci-nix can link to."""

    GITHUB = "github"
    GITLAB = "gitlab"
    GITEA = "gitea"  # also Forgejo and Codeberg
    SOURCEHUT = "sourcehut"


class Kind(enum.StrEnum):
    """What sort of reference a source is (the lock's `type`, or what a URL says)."""

    GITHUB = "github"
    GITLAB = "gitlab"
    SOURCEHUT = "sourcehut"
    GIT = "git"
    MERCURIAL = "hg"
    TARBALL = "tarball"
    FILE = "file"
    PATH = "path"
    INDIRECT = "indirect"
    FLAKEHUB = "flakehub"  # a tarball from FlakeHub: a copy, not the repository itself
    OTHER = "other"


# Flake shorthands and their default hosts.
SHORTHANDS: dict[str, tuple[str, Flavour]] = {
    "github": ("github.com", Flavour.GITHUB),
    "gitlab": ("gitlab.com", Flavour.GITLAB),
    "sourcehut": ("git.sr.ht", Flavour.SOURCEHUT),
}
KNOWN_HOSTS: dict[str, Flavour] = {
    "github.com": Flavour.GITHUB, "gitlab.com": Flavour.GITLAB, "codeberg.org": Flavour.GITEA,
    "git.sr.ht": Flavour.SOURCEHUT,
}
# Hosts that serve NixOS channel tarballs of nixpkgs (nixexprs.tar.xz).
NIXOS_CHANNEL_HOSTS = ("channels.nixos.org", "releases.nixos.org", "nixos.org")
FLAKEHUB_HOSTS = ("api.flakehub.com", "flakehub.com")

_SCP = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/]+):(?P<path>(?!//).+)$")
_ARCHIVE_EXT = r"(?:\.tar\.gz|\.tar\.bz2|\.tar\.xz|\.tar\.zst|\.tgz|\.zip|\.tar)?"
# (flavour the pattern implies or None, regex on the URL path) for forge archive URLs.
_ARCHIVES: tuple[tuple[Flavour | None, re.Pattern[str]], ...] = (
    (Flavour.GITEA, re.compile(rf"^/api/v1/repos/(?P<repo>[^/]+/[^/]+)/archive/(?P<rev>[^/]+?)"
                               rf"{_ARCHIVE_EXT}$")),
    (Flavour.GITLAB, re.compile(r"^/(?P<repo>.+?)/-/archive/(?P<rev>[^/]+)(?:/[^/]*)?$")),
    (Flavour.GITLAB, re.compile(r"^/api/v4/projects/(?P<repo>[^/]+)/repository/archive"
                                rf"{_ARCHIVE_EXT}$")),
    (None, re.compile(rf"^/(?P<repo>[^/]+/[^/]+)/archive/(?P<rev>.+?){_ARCHIVE_EXT}$")),
    (None, re.compile(r"^/(?P<repo>[^/]+/[^/]+)/releases/download/")),
)


@dataclass(frozen=True)
class Repository:
    """A repository: on a host (`host` + `path`, case kept) or a local directory (`host` "")."""

    host: str
    path: str  # "Owner/Repo", "group/sub/repo", "~user/repo", or an absolute directory
    flavour: Flavour | None = None
    root: str | None = None  # web root when not https://host (http, a port), from an http URL

    @property
    def local(self) -> bool:
        return not self.host

    @property
    def key(self) -> str:
        """The identity: `host/path` lowercased without `.git`, or `file:<absolute path>`."""
        return f"file:{self.path}" if self.local else f"{self.host}/{self.path}".lower()

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    @property
    def owner(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[0] if "/" in self.path else ""

    @property
    def web(self) -> str | None:
        """The repository's web page, when its forge is known."""
        if self.local or self.flavour is None:
            return None
        return f"{self.root or 'https://' + self.host}/{self.path}"

    def __str__(self) -> str:
        return self.path if self.local else f"{self.host}/{self.path}"


@dataclass(frozen=True)
class Source:
    """Where a flake reference points: its kind, repository (when one can be named), the
    subdirectory of the flake in it, and the revision an archive URL names."""

    kind: Kind
    repository: Repository | None = None
    subdir: str = ""
    rev: str | None = None  # from an archive URL (a lock's own `rev` wins over this)
    id: str | None = None  # the registry name of an indirect reference

    @property
    def key(self) -> str | None:
        return self.repository.key if self.repository else None


# --- URLs --------------------------------------------------------------------------------------

def flavour_of(host: str, hosts: Mapping[str, str] = {}) -> Flavour | None:
    """The web UI a host serves: configured hosts first, then known ones, then its name."""
    host = host.lower()
    if host in hosts:
        try:
            return Flavour(hosts[host])
        except ValueError:
            return None
    if host in KNOWN_HOSTS:
        return KNOWN_HOSTS[host]
    first = host.split(".")[0]
    for word, flavour in (("gitlab", Flavour.GITLAB), ("github", Flavour.GITHUB),
                          ("gitea", Flavour.GITEA), ("forgejo", Flavour.GITEA),
                          ("codeberg", Flavour.GITEA)):
        if word in first:
            return flavour
    return None


def _strip_git(path: str) -> str:
    path = path.strip("/")
    return path[:-4] if path.lower().endswith(".git") else path


def local(path: str) -> Repository:
    """A local directory as a Repository (symlinks resolved, `.git` dropped)."""
    # realpath: a checkout reached through a symlink is the same repository
    return Repository("", _strip_git_local(os.path.realpath(urllib.parse.unquote(path))))


def _local_named(path: str) -> Repository | None:
    """`local(path)` for a path a flake reference names; None where it can name no directory.

    A NUL byte (raw or %00) is the one thing no file system path holds: realpath raises on it,
    and a lock file or flake.nix saying so is a pull request's data, not ci-nix's crash.
    """
    return None if "\0" in urllib.parse.unquote(path) else local(path)


def _strip_git_local(path: str) -> str:
    path = path.rstrip("/") or "/"
    return path[:-4] if path.lower().endswith(".git") and len(path) > 4 else path


def _hosted(host: str, path: str, hosts: Mapping[str, str],
            root: str | None = None) -> Repository | None:
    host = host.lower()
    flavour = flavour_of(host, hosts)
    path = _strip_git(path)
    if flavour is Flavour.GITLAB:
        path = _strip_git(path.split("/-/")[0])
    elif flavour in (Flavour.GITHUB, Flavour.GITEA, Flavour.SOURCEHUT):
        path = "/".join(path.split("/")[:2])  # /owner/repo; deeper paths are pages within it
    return Repository(host, path, flavour, root) if host and path else None


def _archive(host: str, path: str, query: str, hosts: Mapping[str, str]) -> Source | None:
    """A forge archive, FlakeHub or NixOS channel tarball URL, or None."""
    host = host.lower()
    if host in FLAKEHUB_HOSTS:
        match = re.match(r"^/f/(?:pinned/)?(?P<owner>[^/]+)/(?P<repo>[^/]+)/", path)
        if match:
            repo = Repository("flakehub.com", f"{match['owner']}/{match['repo']}")
            return Source(Kind.FLAKEHUB, repo)
    if host in NIXOS_CHANNEL_HOSTS and path.endswith("nixexprs.tar.xz"):
        # …/nixos-24.05pre588222.e2dd4e18cc1c/nixexprs.tar.xz names the nixpkgs commit
        release = re.search(r"\.(?P<rev>[0-9a-f]{7,40})/nixexprs\.tar\.xz$", path)
        return Source(Kind.TARBALL, Repository("github.com", "NixOS/nixpkgs", Flavour.GITHUB),
                      rev=release["rev"] if release else None)
    if host == "api.github.com":
        match = re.match(r"^/repos/(?P<repo>[^/]+/[^/]+)/(?:tarball|zipball)/(?P<rev>.+)$", path)
        if match:
            return Source(Kind.TARBALL, Repository("github.com", match["repo"], Flavour.GITHUB),
                          rev=match["rev"])
    if host == "codeload.github.com":
        match = re.match(r"^/(?P<repo>[^/]+/[^/]+)/(?:tar\.gz|zip|legacy\.tar\.gz)/(?P<rev>.+)$",
                         path)
        if match:
            return Source(Kind.TARBALL, Repository("github.com", match["repo"], Flavour.GITHUB),
                          rev=match["rev"])
    for implied, pattern in _ARCHIVES:
        match = pattern.match(path)
        if not match:
            continue
        flavour = flavour_of(host, hosts) or implied
        if implied is not None and flavour is not implied and host not in hosts:
            flavour = implied  # the URL shape says which forge this is
        repo_path = urllib.parse.unquote(match["repo"])
        groups = match.groupdict()
        rev = groups.get("rev") or urllib.parse.parse_qs(query).get("sha", [None])[0]
        return Source(Kind.TARBALL, Repository(host, _strip_git(repo_path), flavour), rev=rev)
    return None


def parse_url(url: str, hosts: Mapping[str, str] = {}) -> Source | None:
    """A flake reference or clone URL as a Source; None for what names nothing we can read.

    `hosts` maps extra host names to a flavour (self-hosted forges from config or remotes).
    """
    url = url.strip()
    if not url:
        return None
    base, _, query = url.partition("?")
    subdir = query_dir(query)
    scheme, sep, rest = base.partition(":")
    scheme = scheme.lower()
    if sep and scheme in SHORTHANDS and not rest.startswith("//"):
        parts = [part for part in rest.split("/") if part]
        if len(parts) < 2:
            return None
        default_host, flavour = SHORTHANDS[scheme]
        host = urllib.parse.parse_qs(query).get("host", [default_host])[0]
        owner = urllib.parse.unquote(parts[0])
        if flavour is Flavour.SOURCEHUT and not owner.startswith("~"):
            owner = "~" + owner
        return Source(Kind(scheme), Repository(host.lower(), f"{owner}/{_strip_git(parts[1])}",
                                               flavour), subdir)
    if sep and scheme == "flake" or (not sep and re.fullmatch(r"[A-Za-z][\w-]*", base)):
        return Source(Kind.INDIRECT, id=rest if sep else base)
    if sep and scheme == "path":
        return Source(Kind.PATH, _local_named(rest) if rest.startswith("/") else None, subdir)
    if base.startswith("/"):
        return Source(Kind.PATH, _local_named(base), subdir)
    kind, transport = Kind.OTHER, scheme
    if sep and "+" in scheme:
        prefix, transport = scheme.split("+", 1)
        kind = {"git": Kind.GIT, "hg": Kind.MERCURIAL, "tarball": Kind.TARBALL,
                "file": Kind.FILE}.get(prefix, Kind.OTHER)
        base = base.split("+", 1)[1]
    try:
        parsed = urllib.parse.urlsplit(base)
    except ValueError:  # "Invalid IPv6 URL": a bracket left open (a lock's URL is a PR's)
        return None
    if transport == "file":
        return Source(Kind.GIT if kind is Kind.OTHER else kind, _local_named(parsed.path),
                      subdir)
    if transport in ("http", "https", "ssh", "git") and parsed.netloc:
        host = parsed.hostname or ""
        if kind in (Kind.TARBALL, Kind.FILE, Kind.OTHER) and transport in ("http", "https"):
            archive = _archive(host, parsed.path, query, hosts)
            if archive is not None:
                if kind is Kind.FILE and archive.kind is Kind.TARBALL:
                    return Source(Kind.FILE, archive.repository, subdir, archive.rev)
                return Source(archive.kind, archive.repository, subdir, archive.rev)
            if kind is not Kind.OTHER or re.search(r"\.(tar(\.\w+)?|tgz|zip)$", parsed.path):
                return Source(Kind.TARBALL if kind is Kind.OTHER else kind, None, subdir)
        root = None
        if transport in ("http", "https") and parsed.netloc.rsplit("@", 1)[-1].lower() != host:
            root = f"{transport}://{parsed.netloc.rsplit('@', 1)[-1]}"
        elif transport == "http":
            root = f"http://{host}"
        repo = _hosted(host, parsed.path, hosts, root)
        return Source(Kind.GIT if kind is Kind.OTHER else kind, repo, subdir) if repo else None
    scp = _SCP.match(base) if not sep or "@" in scheme or "." in scheme else None
    if scp:
        repo = _hosted(scp["host"], scp["path"], hosts)
        return Source(Kind.GIT, repo, subdir) if repo else None
    return None


# --- lock nodes --------------------------------------------------------------------------------

_URL_KINDS = {"git": Kind.GIT, "hg": Kind.MERCURIAL, "tarball": Kind.TARBALL, "file": Kind.FILE}


def of_ref(ref: FlakeRef, hosts: Mapping[str, str] = {}) -> Source:
    """The Source of a lock node's `locked` (or `original`) reference."""
    subdir = (ref.dir or "").strip("/")
    kind = ref.type
    if kind in SHORTHANDS:
        if not (ref.owner and ref.repo):
            return Source(Kind(kind), subdir=subdir)
        default_host, flavour = SHORTHANDS[kind]
        owner = urllib.parse.unquote(ref.owner)  # gitlab:group%2Fsub/repo
        if flavour is Flavour.SOURCEHUT and not owner.startswith("~"):
            owner = "~" + owner
        host = (ref.host or default_host).lower()
        return Source(Kind(kind), Repository(host, f"{owner}/{_strip_git(ref.repo)}", flavour),
                      subdir)
    if kind == "indirect":
        return Source(Kind.INDIRECT, id=ref.id)
    if kind == "path":
        path = ref.path or ""
        return Source(Kind.PATH, _local_named(path) if path.startswith("/") else None, subdir)
    own = _URL_KINDS.get(kind)
    if own is not None:
        found = parse_url(typed_url(kind, ref.url), hosts) if ref.url else None
        if found is None:
            return Source(own, subdir=subdir)
        return Source(Kind.FLAKEHUB if found.kind is Kind.FLAKEHUB else own, found.repository,
                      subdir or found.subdir, found.rev)
    try:
        return Source(Kind(kind), subdir=subdir)
    except ValueError:
        return Source(Kind.OTHER, subdir=subdir)


# --- links -------------------------------------------------------------------------------------

def compare_url(repo: Repository, old: str, new: str) -> str | None:
    """A link showing the commits from old to new on the repository's forge."""
    web = repo.web
    if web is None:
        return None
    if repo.flavour is Flavour.GITLAB:
        return f"{web}/-/compare/{old}...{new}"
    if repo.flavour in (Flavour.GITHUB, Flavour.GITEA):
        return f"{web}/compare/{old}...{new}"
    if repo.flavour is Flavour.SOURCEHUT:  # no compare view: the log up to the new revision
        return f"{web}/log/{new}"
    return None


def commit_url(repo: Repository, rev: str) -> str | None:
    web = repo.web
    if web is None:
        return None
    if repo.flavour is Flavour.GITLAB:
        return f"{web}/-/commit/{rev}"
    return f"{web}/commit/{rev}"
