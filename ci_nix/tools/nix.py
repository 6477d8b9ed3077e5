"""The `nix` wrapper: which binary, which version, and the version-dependent flags."""

from __future__ import annotations

import atexit
import functools
import json
import logging
import os
import re
import secrets
import shlex
import shutil
import tempfile
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from ci_nix.errors import ToolError
from ci_nix.mask import add_secret
from ci_nix.tools import machines, nixconf, proc
from ci_nix.tools.files import read_regular

log = logging.getLogger(__name__)

MIN_VERSION = (2, 4)
_TOOL_HINT = "install Nix (e.g. `apt-get install -y nix-bin`) or set CI_NIX_NIX to the nix binary"
# seconds Nix may take to say its version or its settings (it builds nothing, fetches nothing):
# one that never answers (a wrapper waiting on a lock) is an error naming it, not a run that
# never ends; every command waits on these answers
QUERY_TIMEOUT = 120.0


def for_old_nix(ref: str) -> str:
    """A checkout's reference as Nix before 2.10 must be given it: one whose path is
    percent-encoded names `ref=HEAD` (such a Nix takes the path for a remote and fetches its
    branch `master`, whatever is checked out), so Nix reads the checkout's last commit."""
    parsed = urllib.parse.urlsplit(ref)
    if (parsed.scheme != "git+file" or "%" not in parsed.path
            or "ref" in urllib.parse.parse_qs(parsed.query)):
        return ref
    base, _, query = ref.partition("?")
    return f"{base}?ref=HEAD" + (f"&{query}" if query else "")


def _encoded(path: Path, safe: str = "/") -> bool:
    """Whether percent-encoding changes the resolved path, `safe` left as it is."""
    resolved = str(path.resolve())
    return urllib.parse.quote(resolved, safe=safe) != resolved


def _not_url_path(path: Path) -> bool:
    """Whether a path holds a character a URL's path may not hold as it is (RFC 3986: besides
    letters, digits and `-._~`, only `/!$&'()*+,;=:@`): a space, a non-ASCII character, `%`,
    `#`, `?`, ... which Nix before 2.10 cannot read in a `path:` flake."""
    return _encoded(path, safe="/!$&'()*+,;=:@~")


def needs_encoding(path: Path) -> bool:
    """Whether a path is percent-encoded in a flake URL (a space, a non-ASCII character): Nix
    before 2.10 (NixOS/nix#6614) reads a checkout there at its last commit, never its work
    tree, and takes a `path:` flake there for no URL (unencoded) or another path (encoded)."""
    return _encoded(path)


@dataclass(frozen=True)
class NixVersion:
    major: int
    minor: int
    patch: int
    flavor: str  # "nix" or "lix"
    text: str

    def at_least(self, major: int, minor: int) -> bool:
        return (self.major, self.minor) >= (major, minor)

    def __str__(self) -> str:
        return self.text


def parse_version(output: str) -> NixVersion:
    """Parse `nix --version` output: `nix (Nix) 2.8.0`, `nix (Lix, like Nix) 2.91.1`. Only
    its first line: `nix -v --version` (and Lix's `--version` since 2.92) go on with the
    installation's details, paths that may hold any word (a user named felix)."""
    line = output.strip().partition("\n")[0].strip()
    # the Nix version follows the distribution's name in parentheses, which may hold a
    # version of its own: `nix (Determinate Nix 3.8.2) 2.30.0`
    named = re.match(r"\S+ \(([^()]*)\)", line)
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", line[named.end():] if named else line)
    if not match:
        raise ToolError(f"nix --version printed {line!r}; is CI_NIX_NIX a nix binary?")
    flavor = "lix" if "lix" in (named[1] if named else line).lower() else "nix"
    major, minor, patch = int(match[1]), int(match[2]), int(match[3] or 0)
    return NixVersion(major, minor, patch, flavor, line)


class NixCommandError(ToolError):
    """A nix command failed; `stderr` holds Nix's own text for diagnosis."""

    def __init__(self, message: str, stderr: str, returncode: int) -> None:
        super().__init__(message)
        self.stderr = stderr
        self.returncode = returncode


def nix_string(value: str) -> str:
    """A Nix string literal for value (for the --apply expression; nothing goes through a shell)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${")
    return f'"{escaped}"'


@functools.cache
def _helper_flake() -> Path:
    # A private copy under the temp dir: the installed package may live where a chrooted Nix
    # (nix-modern) cannot see it, and Nix wants to own the directory it reads a flake from.
    target = Path(tempfile.mkdtemp(prefix="ci-nix-helper-"))
    atexit.register(shutil.rmtree, target, True)
    source = resources.files("ci_nix") / "nix"
    for name in ("flake.nix", "eval.nix"):
        (target / name).write_text((source / name).read_text())
    return target


AttrPath = tuple[str, ...]


@dataclass(frozen=True)
class HelperResult:
    """One attribute as eval.nix answered it; `stderr` is set by the caller for an attribute
    whose evaluation aborted its worker (Nix's error text, with --show-trace positions)."""

    path: AttrPath
    drv_path: str | None = None
    system: str | None = None
    outputs: tuple[tuple[str, str], ...] = ()
    error: str | None = None  # evaluated, but not buildable (not a derivation)
    stderr: str | None = None

    @property
    def failed(self) -> bool:
        return self.stderr is not None

    @classmethod
    def parse(cls, entry: Any) -> HelperResult:
        return cls(path=tuple(str(name) for name in entry["path"]),
                   drv_path=entry.get("drvPath"), system=entry.get("system"),
                   outputs=tuple(sorted((str(k), str(v))
                                        for k, v in (entry.get("outputs") or {}).items())),
                   error=entry.get("error"))


# What an evaluation worker (eval.nix) says on stderr, one `trace: ci-nix:<tag>:<json>` line each.

@dataclass(frozen=True)
class Listed:
    """An attribute to evaluate, in listing order."""

    path: AttrPath


@dataclass(frozen=True)
class ListingDone:
    group_errors: tuple[AttrPath, ...]  # attribute sets that threw while being listed
    input_names: tuple[str, ...]  # the inputs flake.nix declares


@dataclass(frozen=True)
class Begin:
    index: int  # into the worker's task list


@dataclass(frozen=True)
class Done:
    index: int
    result: HelperResult


@dataclass(frozen=True)
class CommitRead:
    """The evaluation read what the flake's source says about its commit (`name`: rev,
    lastModified, ...; `?` when ci-nix cannot tell): it may differ at another commit of the
    same tree."""

    name: str


@dataclass(frozen=True)
class SourceRead:
    """The commit the worker's Nix read the flake's source at (None: no commit, e.g. a work
    tree with uncommitted changes), said before anything else."""

    rev: str | None


WorkerEvent = Listed | ListingDone | Begin | Done | CommitRead | SourceRead
# A flake's own `builtins.trace "ci-nix:{...}"` must not pass for an answer (a forged "done"
# made an attribute that throws pass): eval.nix tags its lines with this run's secret, which a
# pure evaluation cannot read (it is in the worker's argv only).
WORKER_TAG = secrets.token_hex(16)
WORKER_LINE = f"trace: ci-nix:{WORKER_TAG}:"


def parse_worker_line(line: str) -> WorkerEvent | None:
    """The event on one stderr line of a worker; None for anything else (Nix's own output)."""
    if not line.startswith(WORKER_LINE):
        return None
    try:
        data = json.loads(line[len(WORKER_LINE):])
        if "begin" in data:
            return Begin(int(data["begin"]))
        if "done" in data:
            return Done(int(data["done"]), HelperResult.parse(data["result"]))
        if "attr" in data:
            return Listed(tuple(str(name) for name in data["attr"]))
        if "listed" in data:
            listed = data["listed"]
            return ListingDone(tuple(tuple(str(n) for n in g) for g in listed["groupErrors"]),
                               tuple(str(n) for n in listed["inputNames"]))
        if set(data) == {"commit"}:
            return CommitRead(str(data["commit"]))
        if set(data) == {"source"}:
            rev = data["source"]
            return SourceRead(rev if isinstance(rev, str) else None)
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    return None  # cut off: leave it in the text


NixOptions = tuple[tuple[str, str], ...]

# Subcommands that take `--eval-store` (it is a flag of the evaluating commands, not a setting,
# so it goes after the subcommand); groups such as `flake update` are two words long.
_EVAL_STORE_COMMANDS = frozenset({"eval", "build", "path-info", "copy", "flake", "store", "log",
                                  "derivation", "why-depends", "develop", "run", "shell"})
_GROUPS = frozenset({"flake", "store", "derivation", "profile", "registry", "config", "nar",
                     "hash", "key", "realisation"})


@dataclass(frozen=True)
class Nix:
    """A nix binary (CI_NIX_NIX, default `nix`) with the flags every call needs.

    `options` (`--option NAME VALUE`, from ci-nix.yaml's `nix-options:` and the command line;
    `--store` and `--builders` are options too) and `eval_store` reach every Nix command ci-nix
    runs: build argv through `argv()`, never by hand.
    """

    argv0: tuple[str, ...]
    extra_env: tuple[tuple[str, str], ...] = ()
    options: NixOptions = ()
    eval_store: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Nix:
        return cls(proc.command_from_env(environ, "CI_NIX_NIX", "nix"))

    def with_options(self, options: Iterable[tuple[str, str]],
                     eval_store: str | None = None) -> Nix:
        """This Nix with more options (later ones win, as on Nix's command line)."""
        merged = dict(self.options)
        for name, value in options:
            merged.pop(name, None)
            merged[name] = value
        for token in merged.get("access-tokens", "").split():
            add_secret(token.partition("=")[2])  # never in -v's command lines
        if tuple(merged.items()) == self.options and eval_store in (None, self.eval_store):
            return self  # the same Nix: what it said (its settings too) holds
        new = replace(self, options=tuple(merged.items()),
                      eval_store=eval_store or self.eval_store)
        for known in ("_about", "version"):  # the binary is the same: keep what it said
            if known in self.__dict__:
                new.__dict__[known] = self.__dict__[known]
        return new

    def option(self, name: str) -> str | None:
        """The value this Nix is given for a setting on the command line, if any."""
        return dict(self.options).get(name)

    @property
    def remote_store(self) -> str | None:
        """The `store` URL when it is another machine's store (`ssh-ng://box`): builds run there."""
        store = self.option("store")
        if not store or store.startswith(("/", "auto", "local", "daemon", "unix://", "file://")):
            return None
        return store

    def argv(self, args: Sequence[str]) -> list[str]:
        """The full argv of `nix ARGS` with the options every call gets."""
        args = list(args)
        if self.eval_store and args and args[0] in _EVAL_STORE_COMMANDS:
            at = 2 if args[0] in _GROUPS and len(args) > 1 else 1
            args[at:at] = ["--eval-store", self.eval_store]
        options = [arg for name, value in self.options for arg in ("--option", name, value)]
        return [*self.argv0, "--extra-experimental-features", "nix-command flakes", *options,
                *args]

    def run(self, args: Sequence[str], *, cwd: Path | None = None,
            essential: bool = False, timeout: float | None = None) -> proc.Result:
        return proc.run(self.argv(args), cwd=cwd, env=dict(self.extra_env) or None,
                        tool_hint=_TOOL_HINT, essential=essential, timeout=timeout)

    def check(self, args: Sequence[str], what: str, *, cwd: Path | None = None,
              essential: bool = False, timeout: float | None = None) -> str:
        """Run and return stdout; raise NixCommandError (with Nix's stderr) on failure."""
        result = self.run(args, cwd=cwd, essential=essential, timeout=timeout)
        if not result.ok:
            raise NixCommandError(f"{what} failed: {last_error_line(result.stderr)}",
                                  result.stderr, result.returncode)
        return result.stdout

    @functools.cached_property
    def _about(self) -> str:
        """`nix -v --version`: the version on its first line (as `nix --version` prints it),
        then, verbose, the configuration files Nix reads (nixconf.files): one Nix start for
        both. Lix >= 2.92 prints those lines without -v too."""
        result = proc.run([*self.argv0, "-v", "--version"], env=dict(self.extra_env) or None,
                          tool_hint=_TOOL_HINT, timeout=QUERY_TIMEOUT)
        if not result.ok:
            raise ToolError(f"`{shlex.join(self.argv0)} -v --version` failed: "
                            f"{last_error_line(result.stderr)}; {_TOOL_HINT}")
        return result.stdout

    @functools.cached_property
    def version(self) -> NixVersion:
        version = parse_version(self._about)
        if not version.at_least(*MIN_VERSION):
            raise ToolError(f"{version} is too old: ci-nix needs Nix >= 2.4 (flakes); "
                            "upgrade Nix or set CI_NIX_NIX to a newer one")
        return version

    @functools.cached_property
    def current_system(self) -> str:
        """`builtins.currentSystem`: the `eval-system` setting (Nix 2.19+) when set, else
        `system`, read from the settings ci-nix reads anyway (one Nix process less per run)."""
        for name in ("eval-system", "system"):
            value = self._setting(name, None)
            if isinstance(value, str) and value:
                return value
        return self.check(["eval", "--impure", "--raw", "--expr", "builtins.currentSystem"],
                          "asking Nix for the current system").strip()

    @functools.cached_property
    def _settings(self) -> dict[str, Any]:
        # `show-config` became `config show` in 2.20 (the old name still works, with a warning).
        args = ["config", "show"] if self.version.at_least(2, 20) else ["show-config"]
        # essential: a build that was cancelled still reports which builder failed
        said = self.check([*args, "--json"], "reading Nix's settings", essential=True,
                          timeout=QUERY_TIMEOUT)
        try:
            settings = json.loads(said)
        except (ValueError, RecursionError):
            raise ToolError(f"`{shlex.join([*self.argv0, *args])} --json` printed no JSON "
                            f"({said.strip()[:80]!r}); is CI_NIX_NIX a nix binary?") from None
        return settings if isinstance(settings, dict) else {}

    def setting_values(self) -> dict[str, Any]:
        """Every Nix setting's value as this Nix (with its options) has it."""
        return {name: entry.get("value") for name, entry in self._settings.items()
                if isinstance(entry, dict)}

    def _setting(self, name: str, default: Any) -> Any:
        entry = self._settings.get(name)
        return entry.get("value", default) if isinstance(entry, dict) else default

    @functools.cached_property
    def platforms(self) -> frozenset[str]:
        """Systems this machine builds: the `system` setting plus `extra-platforms`."""
        extra = self._setting("extra-platforms", [])
        system = self._setting("system", None) or self.current_system
        return frozenset([system, *extra])

    @functools.cached_property
    def substituters(self) -> tuple[str, ...]:
        """The binary caches Nix substitutes from (`substituters` + `extra-substituters`)."""
        return self._words("substituters")

    @property
    def require_sigs(self) -> bool:
        """Whether Nix substitutes only paths signed by a trusted key (`require-sigs`)."""
        return self._setting("require-sigs", True) is not False

    @property
    def trusted_public_keys(self) -> tuple[str, ...]:
        """`trusted-public-keys` (with `extra-trusted-public-keys`), as Nix has them."""
        return self._words("trusted-public-keys")

    @property
    def secret_key_files(self) -> tuple[str, ...]:
        """`secret-key-files`: Nix trusts their public halves too."""
        return self._words("secret-key-files")

    def _words(self, name: str) -> tuple[str, ...]:
        value = self._setting(name, [])
        words = value.split() if isinstance(value, str) else value if isinstance(value, list) \
            else []
        return tuple(word for word in words if isinstance(word, str) and word)

    @property
    def buildable(self) -> frozenset[str]:
        """Systems a build can be run for: this machine's and its remote builders'."""
        return self.platforms | {self.current_system} | machines.systems(self.builders)

    @functools.cached_property
    def builders(self) -> tuple[machines.Machine, ...]:
        """The remote build machines Nix is configured with (`builders`, incl. `@file`s)."""
        value = self._setting("builders", "")
        system = self._setting("system", None) or self.current_system
        return machines.parse(value if isinstance(value, str) else "", system)

    @functools.cached_property
    def build_max_jobs(self) -> str | None:
        """`auto` (one build per CPU) when ci-nix's builds set max-jobs themselves: Nix's
        configuration leaves it at Nix's built-in 1 and the builds run on this machine (README
        "Parallel builds"). None: the max-jobs Nix is configured with applies, because a
        nix.conf, NIX_CONFIG or `--option`/`nix-options:` sets it (to 1 too), or the store is
        another machine's, or what the configuration sets cannot be read."""
        try:
            entry = self._settings.get("max-jobs")
        except NixCommandError:  # then Nix fails the build too, and says why
            return None
        if (self.remote_store is not None or not isinstance(entry, dict)
                or "defaultValue" not in entry or entry.get("value") != entry["defaultValue"]):
            return None
        aliases = entry.get("aliases")
        named = {"max-jobs", *(aliases if isinstance(aliases, list) else ())}
        if any(name.removeprefix("extra-") in named for name, _ in self.options):
            return None
        files = nixconf.files(self._about)
        environ = {**os.environ, **dict(self.extra_env)}
        try:
            if files is None or nixconf.names(files, environ.get("NIX_CONFIG")) & named:
                return None
        except nixconf.Unknown as err:
            log.debug("keeping Nix's max-jobs: %s", err)
            return None
        log.info("building with max-jobs = auto (%s CPUs): Nix's configuration does not set "
                 "max-jobs (Nix's own default is 1 build at a time)", os.cpu_count() or 1)
        return "auto"

    def drv_installable(self, drv_path: str) -> str:
        """How `nix build` names all outputs of a derivation on this Nix version."""
        self.version  # noqa: B018 - fail early on a missing/old nix
        return f"{drv_path}^*" if self.version.at_least(2, 13) else drv_path

    def check_temp_dir(self, what: str, *, work_tree: bool = False) -> None:
        """ToolError where this Nix cannot read a flake under the temporary directory: before
        2.10, a path with a space, a non-ASCII character or another one a URL's path may not
        hold as it is; with work_tree (a checkout whose uncommitted changes must be read),
        any a checkout's flake URL encodes (for_old_nix: Nix would read its last commit).
        `what`: what ci-nix puts there."""
        place = Path(tempfile.gettempdir())
        unreadable = needs_encoding if work_tree else _not_url_path
        if not self.version.at_least(2, 10) and unreadable(place):
            raise ToolError(f"temporary directory {place}: Nix {self.version.major}."
                            f"{self.version.minor} cannot read a flake there ({what} there), "
                            "as its path holds a character a flake URL encodes (a space, "
                            "unicode, +, @, ...); set TMPDIR to a plain directory (e.g. "
                            "TMPDIR=/tmp), or use Nix 2.10 or later")

    def flake_ref(self, ref: str) -> str:
        """A flake reference as this Nix reads it: before 2.10, a checkout at a path that is
        percent-encoded names its HEAD (for_old_nix)."""
        return ref if self.version.at_least(2, 10) else for_old_nix(ref)

    def eval_worker(self, flake_ref: str, args: Mapping[str, Any],
                    overrides: Sequence[tuple[str, str]] = ()) -> proc.Running:
        """Start ci-nix's eval.nix against a flake; its answers stream on stderr.

        Always with --show-trace: a task that aborts the worker is reported from that very
        error, so it must carry its position (newer Nix cuts it off otherwise).
        """
        override_args: list[str] = []
        for name, ref in [("flake", flake_ref), *((f"flake/{n}", r) for n, r in overrides)]:
            override_args += ["--override-input", name, self.flake_ref(ref)]
        apply = f"f: f (builtins.fromJSON {nix_string(json.dumps({**args, 'tag': WORKER_TAG}))})"
        self.check_temp_dir("ci-nix's evaluation helper is copied")
        # encoded where Nix decodes it (2.10+): a TMPDIR with a space was 'path:/tmp/a b/…',
        # which Nix 2.26 read as a relative path (every flake failed to evaluate, on both
        # sides of update --verify); older Nix takes a `path:` URL's path as it is
        helper = str(_helper_flake())
        helper = urllib.parse.quote(helper) if self.version.at_least(2, 10) else helper
        return proc.start(
            self.argv(["eval", "--json", "--no-write-lock-file", "--show-trace",
                        *override_args, f"path:{helper}#lib.ciNix", "--apply", apply]),
            env=dict(self.extra_env) or None, tool_hint=_TOOL_HINT)

    def build(self, installables: Sequence[str], on_line: Callable[[str], None]) -> proc.Result:
        """One `nix build --keep-going` over all installables, streaming internal-json events."""
        store = self.option("store")
        if self.eval_store and store:
            # The derivations were written to the eval store; before 2.13 (at least) `nix build`
            # looks for a .drv installable in the build store only. Copy them there first.
            drvs = [i.removesuffix("^*") for i in installables if ".drv" in i]
            copied = self.run(["copy", "--from", self.eval_store, "--to", store, "--derivation",
                               *drvs])
            for line in copied.stderr.splitlines():
                on_line(line)
        jobs = ["--option", "max-jobs", self.build_max_jobs] if self.build_max_jobs else []
        return proc.stream(
            self.argv(["build", *jobs, "--keep-going", "--no-link", "--log-format",
                       "internal-json", *installables]),
            on_line, env=dict(self.extra_env) or None, tool_hint=_TOOL_HINT,
        )

    def valid_paths(self, paths: Iterable[str], store: str | None = None, *,
                    derivations: bool = False) -> set[str]:
        """Which of these store paths are valid in the local store (or in `store`, e.g. a
        binary cache URL). derivations: the paths are .drv files, asked about themselves (Nix
        2.8 would ask about their outputs). Before 2.9 (at least) Nix fails on an invalid
        path rather than saying so: NixCommandError."""
        paths = sorted(set(paths))
        if not paths:
            return set()
        where = ["--store", store] if store is not None else []
        derivation = ["--derivation"] if derivations else []
        out = self.check(["path-info", "--json", *derivation, *where, *paths],
                         "checking store paths", essential=True)
        return {entry["path"] for entry in _path_info_entries(json.loads(out))
                if entry.get("valid", True)}

    def closure(self, path: str) -> list[str]:
        """The closure of a store path (for a .drv: every input derivation and source)."""
        return self.check(["path-info", "--derivation", "--recursive", path],
                          f"listing the closure of {path}", essential=True).split()

    def derivations(self, drvs: Iterable[str], *,
                    recursive: bool = False) -> dict[str, Derivation]:
        """Derivations read from the store, with every input derivation when recursive."""
        drvs = sorted(set(drvs))
        if not drvs:
            return {}
        command = ["derivation", "show"] if self.version.at_least(2, 15) else ["show-derivation"]
        out = self.check([*command, *(["--recursive"] if recursive else []), *drvs],
                         "reading derivations", essential=True)
        return Derivation.parse_all(json.loads(out))

    def path_infos(self, paths: Iterable[str], *, recursive: bool = False,
                   store: str | None = None) -> dict[str, PathInfo]:
        """Size and references of valid store paths (and of their closure when recursive), in
        the local store or in `store`."""
        paths = sorted(set(paths))
        if not paths:
            return {}
        where = ["--store", store] if store is not None else []
        out = self.check(["path-info", "--json", *(["--recursive"] if recursive else []),
                          *where, *paths], "reading store path information", essential=True)
        return PathInfo.parse_all(json.loads(out))

    def copy_to(self, paths: Iterable[str], store: str, *, recursive: bool = True) -> None:
        """`nix copy` these store paths (with their closures when recursive) to a store URL."""
        paths = sorted(set(paths))
        if paths:
            self.check(["copy", *([] if recursive else ["--no-recursive"]), "--to", store,
                        *paths], f"copying {len(paths)} store paths to {store.split('?')[0]}")

    def local_copy(self, path: str, dest: Path) -> Path:
        """A store path as a file or directory this machine can read: itself where this
        machine's /nix/store has it, else copied to `dest` through `nix store ls`/`cat` (a
        chroot or remote store; paths are content-addressed by name, so either is the same)."""
        if os.path.lexists(path):
            return Path(path)
        listing = json.loads(self.check(["store", "ls", "--json", "--recursive", path],
                                        f"listing {path}"))
        for rel, entry in _entries(listing, ""):
            target = dest / rel if rel else dest
            kind = entry.get("type")
            if kind == "directory":
                target.mkdir(parents=True, exist_ok=True)
            elif kind == "symlink" and isinstance(entry.get("target"), str):
                target.symlink_to(entry["target"])
            elif kind == "regular":
                result = proc.run(self.argv(["store", "cat", f"{path}/{rel}" if rel else path]),
                                  env=dict(self.extra_env) or None, tool_hint=_TOOL_HINT,
                                  output=target)
                if not result.ok:
                    raise NixCommandError(f"copying {path} out of the store failed: "
                                          f"{last_error_line(result.stderr)}",
                                          result.stderr, result.returncode)
                if entry.get("executable"):
                    target.chmod(0o755)
        return dest

    def flake_update(self, flake_dir: Path, inputs: Sequence[str] = ()) -> None:
        """Update the flake.lock in flake_dir: every input, or only those named."""
        # The flake by path, not as the working directory: a chroot'ed Nix (nix-modern) bind-mounts
        # its working directory, and a temporary one can vanish under it.
        flake = str(flake_dir.resolve())
        if self.version.at_least(2, 19):
            args = ["flake", "update", *inputs, "--flake", flake]
        elif inputs:
            # Before 2.19 `nix flake update` takes no input names and updates everything.
            args = ["flake", "lock", flake,
                    *(arg for name in inputs for arg in ("--update-input", name))]
        else:
            args = ["flake", "update", flake]
        self.check(args, f"updating the inputs of {flake_dir}")


def _entries(entry: Any, rel: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """`nix store ls --json --recursive` as (relative path, entry), parents first; names that
    would leave the copy (`..`, `/`) are skipped."""
    if not isinstance(entry, dict):
        return
    yield rel, entry
    children = entry.get("entries")
    for name, child in (children.items() if isinstance(children, dict) else ()):
        if name in ("", ".", "..") or "/" in name:
            continue
        yield from _entries(child, f"{rel}/{name}" if rel else name)


def _store_path(name: str) -> str:
    # newer Nix names store paths in JSON by their base name
    return name if name.startswith("/") else f"/nix/store/{name}"


@dataclass(frozen=True)
class FixedOutput:
    """What a fixed-output derivation (a download) promises: its hash, and where it fetches."""

    algo: str  # sha256, sha1, sha512, md5
    hash: str  # as the derivation has it (hex in `derivation show`; SRI or base32 in env)
    recursive: bool  # a NAR hash of a tree (fetchzip, fetchgit), not of a file
    urls: tuple[str, ...] = ()


@dataclass(frozen=True)
class Derivation:
    """A store derivation, as far as comparing closures and an SBOM need it."""

    inputs: tuple[str, ...]  # input derivations
    outputs: tuple[str, ...]  # output paths (none for floating content-addressed outputs)
    name: str = ""  # the derivation's `name` (as builtins.parseDrvName splits it)
    fixed: FixedOutput | None = None  # set for a fixed-output derivation

    @classmethod
    def parse_all(cls, data: Any) -> dict[str, Derivation]:
        """`nix show-derivation` / `nix derivation show` JSON, any version."""
        found: dict[str, Derivation] = {}
        for key, drv in (data.items() if isinstance(data, dict) else ()):
            if not isinstance(drv, dict):
                continue
            outputs = drv.get("outputs")
            outputs = outputs if isinstance(outputs, dict) else {}
            inputs = drv.get("inputDrvs")
            inputs = inputs if isinstance(inputs, dict) else {}
            env = drv.get("env")
            env = env if isinstance(env, dict) else {}
            name = env.get("name", drv.get("name"))
            found[_store_path(str(key))] = cls(
                inputs=tuple(sorted(_store_path(str(name)) for name in inputs)),
                outputs=tuple(sorted(_store_path(out["path"]) for out in outputs.values()
                                     if isinstance(out, dict)
                                     and isinstance(out.get("path"), str))),
                name=name if isinstance(name, str) else
                _store_path(str(key)).split("-", 1)[-1].removesuffix(".drv"),
                fixed=_fixed_output(outputs, env))
        return found


def _fixed_output(outputs: dict[str, Any], env: dict[str, Any]) -> FixedOutput | None:
    """A fixed-output derivation's hash (its one output's `hash`/`hashAlgo`, as every Nix
    version prints them; `r:` marks a recursive hash) and the URLs its `url`/`urls` env names."""
    out = outputs.get("out")
    if len(outputs) != 1 or not isinstance(out, dict) or not isinstance(out.get("hash"), str):
        return None
    algo = str(out.get("hashAlgo", env.get("outputHashAlgo", "")))
    # before 2.2x: hashAlgo `r:sha256`; since: `method` nar (or git) beside a bare algorithm
    recursive = algo.startswith("r:") or out.get("method") in ("nar", "git")
    urls = [str(env.get("url", "")), *str(env.get("urls", "")).split()]
    return FixedOutput(algo.removeprefix("r:"), out["hash"], recursive,
                       tuple(dict.fromkeys(url for url in urls if url)))


def drv_closure(graph: Mapping[str, Derivation], root: str) -> set[str]:
    """root and every derivation it depends on, in a graph from Nix.derivations(recursive)."""
    return closure([root], lambda name: graph[name].inputs if name in graph else ())


# A store derivation's file: /nix/store/<32 chars of Nix's base32>-<name>.drv
_STORE_DRV = re.compile(r"/nix/store/[0-9a-df-np-sv-z]{32}-[^/]+\.drv", re.ASCII)
# ATerm's tokens: a string (backslash escapes), a bracket or comma, a constructor's name
_ATERM = re.compile(r'"(?:[^"\\]|\\.)*"|[][(),]|[A-Za-z]+', re.DOTALL)
_NESTING = {"[": 1, "(": 1, "]": -1, ")": -1}


def input_drvs(text: str) -> tuple[str, ...]:
    """The input derivations a .drv file names: the second field of its ATerm
    `Derive([outputs], [("/nix/store/….drv", [outputs]), …], …)` (`DrvWithVersion("v", …)`
    for newer Nix's experimental kinds). ValueError when the text is no derivation (or cut)."""
    at = 0

    def tokens() -> Iterator[str]:
        nonlocal at
        for match in _ATERM.finditer(text):
            if match.start() != at:
                raise ValueError(f"not ATerm at offset {at}")
            at = match.end()
            yield match.group()

    read = tokens()

    def expect(*wanted: str) -> str:
        token = next(read, None)
        if token is None or wanted and token not in wanted:
            raise ValueError(f"expected {' or '.join(wanted) or 'more'} at offset {at}")
        return token

    if expect("Derive", "DrvWithVersion") == "DrvWithVersion":
        expect("(")
        if not expect().startswith('"'):
            raise ValueError("DrvWithVersion without its version")
        expect(",")
    else:
        expect("(")
    expect("[")
    depth = 1
    for token in read:  # the outputs: skipped
        depth += _NESTING.get(token, 0)
        if depth == 0:
            break
    expect(",")
    expect("[")
    inputs, depth, after_open = [], 1, False
    for token in read:
        if after_open and depth == 2 and token.startswith('"'):
            inputs.append(token[1:-1])
        after_open = token == "("
        depth += _NESTING.get(token, 0)
        if depth == 0:
            if not all(_STORE_DRV.fullmatch(drv) for drv in inputs):
                raise ValueError("an input derivation that is no store derivation path")
            return tuple(inputs)
    raise ValueError("the input derivations are cut off")


def read_input_drvs(drv: str) -> tuple[str, ...] | None:
    """A store derivation's input derivations read from its file in /nix/store: no Nix process
    (a .drv's path is the hash of its text, so a file there is that derivation). None where
    there is no such file (the run's store is elsewhere) or it is no derivation."""
    if not _STORE_DRV.fullmatch(drv):
        return None
    try:
        return input_drvs(read_regular(drv).decode("utf-8", "surrogateescape"))
    except (OSError, ValueError):
        return None


def read_input_graph(nix: Nix, roots: Iterable[str], inputs: dict[str, tuple[str, ...]]) -> None:
    """Fills `inputs` (derivation -> its input derivations) for roots and everything they
    reach: each .drv file in /nix/store read directly, no Nix process; what is not there (the
    run's store is elsewhere) is asked of Nix in one call. What was read stays in `inputs`
    when Nix then fails (NixCommandError)."""
    todo, elsewhere = [r for r in roots if r not in inputs], []
    while todo:
        drv = todo.pop()
        if drv in inputs:
            continue
        found = read_input_drvs(drv)
        if found is None:
            elsewhere.append(drv)
            continue
        inputs[drv] = found
        todo += [i for i in found if i not in inputs]
    if elsewhere:
        for drv, derivation in nix.derivations(elsewhere, recursive=True).items():
            inputs.setdefault(drv, derivation.inputs)


def closure(roots: Iterable[str], edges: Callable[[str], Iterable[str]]) -> set[str]:
    """The roots and everything reachable from them (a derivation's inputs, a path's
    references); what a graph does not know ends a branch."""
    seen = set(roots)
    todo = list(seen)
    while todo:
        for name in edges(todo.pop()):
            if name not in seen:
                seen.add(name)
                todo.append(name)
    return seen


@dataclass(frozen=True)
class PathInfo:
    nar_size: int
    references: tuple[str, ...]
    nar_hash: str = ""  # as Nix prints it (sha256:base32 before 2.19, SRI after)
    deriver: str | None = None

    @classmethod
    def parse_all(cls, data: Any) -> dict[str, PathInfo]:
        """`nix path-info --json` of any version: the valid paths, each with its info."""
        found: dict[str, PathInfo] = {}
        # Nix < 2.19: a list of objects; newer: {path: info, or null when not valid}
        entries = data if isinstance(data, list) else [
            {**info, "path": path} if isinstance(info, dict) else {"path": path, "valid": False}
            for path, info in data.items()] if isinstance(data, dict) else []
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) \
                    or entry.get("valid", True) is False:
                continue
            size = entry.get("narSize")
            refs = entry.get("references")
            nar_hash, deriver = entry.get("narHash"), entry.get("deriver")
            found[_store_path(entry["path"])] = cls(
                size if isinstance(size, int) else 0,
                tuple(_store_path(r) for r in refs if isinstance(r, str))
                if isinstance(refs, list) else (),
                nar_hash if isinstance(nar_hash, str) else "",
                _store_path(deriver) if isinstance(deriver, str) else None)
        return found


def _path_info_entries(data: Any) -> list[dict[str, Any]]:
    # Nix < 2.19 prints a list of objects; newer Nix prints {path: info-or-null}.
    if isinstance(data, list):
        return data
    return [{"path": path, **(info or {}), "valid": info is not None}
            for path, info in data.items()]


# CSI (colours, cursor moves, erase: ESC [ … final), OSC (hyperlinks: ESC ] … BEL or ESC \\),
# the other string commands (DCS, SOS, PM, APC: Buildkite's raw log starts every line with
# "ESC _bk;t=<ms> BEL") up to their terminator, the two-byte escapes (ESC M, ESC 7, …) that
# terminals and progress bars use, and a character set's designation (`tput sgr0`'s "ESC ( B"
# before its "ESC [ m": "error: boom(B" otherwise)
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|"
                   r"[P^_X][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\^_]|[0-9=>]|[()*+][0-~])")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def last_error_line(stderr: str) -> str:
    """The most telling line of a Nix error, for one-line messages."""
    lines = [strip_ansi(line).strip() for line in stderr.splitlines()]
    for line in lines:
        if line.startswith("error:") and line != "error:":
            return line[len("error:"):].strip()
    errors = [line for line in lines if line and not line.startswith("warning:")]
    return errors[-1] if errors else "no error text"
