"""bots.yaml: the nightly input update over many repos, upstream flakes first."""

from __future__ import annotations

import logging
import os
import tempfile
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from ci_nix import config, lockfile, source, trust
from ci_nix.bundle import key as key_mod
from ci_nix.config import DEFAULT_TIMEOUT, ForgeType, UpdateConfig
from ci_nix.errors import CiNixError, ConfigError
from ci_nix.forge import ForgeTarget, connect, resolve
from ci_nix.mask import add_secret, withhold
from ci_nix.models import Case, Failure, FailureType, Status
from ci_nix.report import junit as junit_report
from ci_nix.schema import (
    SECONDS,
    STR,
    STRS,
    At,
    Choice,
    DictOf,
    Fields,
    ListOf,
    Located,
    Record,
    Where,
    compose,
    setting,
)
from ci_nix.tools import proc
from ci_nix.tools.git import Git
from ci_nix.tools.nix import Nix
from ci_nix.update import repo as update_repo
from ci_nix.update.credentials import credential_env
from ci_nix.update.locks import flake_dirs
from ci_nix.update.models import Outcome, UpdateTarget
from ci_nix.update.verify import Verification

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class ForgeSpec:
    """One entry of bots.yaml's `forges:`."""

    type: ForgeType = setting(Choice(ForgeType), required=True)
    url: str | None = setting(STR)
    token_env: str | None = setting(STR)
    web_url: str | None = setting(STR)
    timeout: float = setting(SECONDS, DEFAULT_TIMEOUT)  # as forge.timeout in ci-nix.yaml


@dataclass(frozen=True)
class RepoSpec:
    """One entry of bots.yaml's `repos:`."""

    name: str = setting(STR, required=True)
    forge: str = setting(STR, required=True)  # a name under `forges:`
    project: str = setting(STR, required=True)
    clone: str = setting(STR, required=True)
    branch: str | None = setting(STR)
    base: str | None = setting(STR)
    inputs: tuple[str, ...] = setting(STRS, ())
    update: dict[str, Any] = setting(Fields(config.UPDATE), factory=dict)  # over the defaults


@dataclass(frozen=True)
class BotsFile:
    forges: dict[str, ForgeSpec] = setting(
        DictOf(Record(ForgeSpec), "map a name to a forge"), factory=dict)
    update: dict[str, Any] = setting(Fields(config.UPDATE), factory=dict)
    repos: tuple[At[RepoSpec], ...] = setting(ListOf(Located(Record(RepoSpec))), ())


_BOTS_FILE = Record(BotsFile, what="expected a mapping with 'repos:'")


@dataclass(frozen=True)
class BotRepo:
    name: str
    forge: ForgeTarget
    clone: str
    base: str | None
    inputs: tuple[str, ...]
    update: UpdateConfig
    web_url: str  # the project's web page, for compare links from downstream repos


@dataclass(frozen=True)
class RepoResult:
    repo: str
    outcomes: tuple[Outcome, ...] = ()
    error: str | None = None

    @property
    def failed(self) -> bool:
        """An error, or a verified update that fails or holds inputs back."""
        return self.error is not None or any(
            outcome.verification is not None and not outcome.verification.ok
            for outcome in self.outcomes)


def _web_url(forge: ForgeSpec, project: str) -> str:
    if forge.web_url:
        return forge.web_url.rstrip("/") + "/" + project
    if not forge.url:
        return f"https://{'github.com' if forge.type == 'github' else 'gitlab.com'}/{project}"
    parts = urllib.parse.urlsplit(forge.url)
    path = parts.path.rstrip("/").removesuffix("/api/v3")  # GitHub Enterprise API root
    return f"{parts.scheme}://{parts.netloc}{path}/{project}"


def load(file: Path) -> tuple[BotRepo, ...]:
    """Read and validate bots.yaml; errors name the file, the key and the line.

    The file alone says where each repo lives: the CI job that runs the bots is no repo's
    forge, so its GITHUB_*/CI_* variables fill no gap (a forge without `url:` is the public one).
    """
    where = Where(file)
    node = compose(file)
    if node is None:
        raise ConfigError(f"{file}: expected a mapping with 'repos:'")
    spec = _BOTS_FILE.check(node, where)
    if not spec.repos:
        raise ConfigError(f"{file}: no repos; list them under 'repos:'")
    repos = []
    for located in spec.repos:
        entry = located.value
        forge = spec.forges.get(entry.forge)
        if forge is None:
            raise where.fail(located.line, f"forge {entry.forge!r} is not defined under "
                             f"'forges:' (defined: {', '.join(spec.forges) or 'none'})")
        target = resolve(forge.type, entry.project, forge.url, forge.token_env, {},
                         forge.timeout)
        values = {**spec.update, **entry.update}
        if entry.branch is not None:
            values["branch"] = entry.branch
        repos.append(BotRepo(entry.name, target, entry.clone, entry.base, entry.inputs,
                             config.UPDATE.build(values), _web_url(forge, entry.project)))
    names = [repo.name for repo in repos]
    if len(set(names)) != len(names):
        dup = next(name for name in names if names.count(name) > 1)
        raise ConfigError(f"{file}: repo name {dup!r} is used twice; names must be distinct")
    return tuple(repos)


def order(repos: tuple[BotRepo, ...], upstreams: Mapping[str, set[str]]) -> list[BotRepo]:
    """Repos with their upstreams (other repos they lock as inputs) first; else file order."""
    by_name = {repo.name: repo for repo in repos}
    done: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in done or name in visiting:
            return  # a cycle keeps file order for the rest
        visiting.add(name)
        for upstream in sorted(upstreams.get(name, ()), key=list(by_name).index):
            visit(upstream)
        visiting.discard(name)
        done.append(name)

    for repo in repos:
        visit(repo.name)
    return [by_name[name] for name in done]


def upstreams_of(repo: BotRepo, checkout: Path, repos: tuple[BotRepo, ...], git: Git
                 ) -> set[str]:
    """Names of the other repos whose clone URL this repo's lock files point at."""
    clones = {}
    for other in repos:
        found = source.parse_url(other.clone)
        if other.name != repo.name and found is not None and found.key is not None:
            clones[found.key] = other.name
    upstream = set()
    for subdir in flake_dirs(git, checkout):
        lock = lockfile.read(checkout / subdir / "flake.lock")
        for node in lock.root_inputs().values() if lock else ():
            key = source.of_ref(node.locked or node.original).key
            if key in clones:
                upstream.add(clones[key])
    return upstream


def repo_config(checkout: Path) -> config.Config:
    """The repo's own ci-nix.yaml as cloned (its default or `base:` branch, not a pull request):
    the systems, outputs, `eval:` limits and nix-options `--verify` builds with, as `run` would.

    Only the nix-options a pull request may set are taken from it: the bots runner is the
    platform's, not the repo's, so a repo's team must not decide its privileged settings
    (whose key signs, which hook runs, which substituters fill the store); those come from
    the bots job's `--option`."""
    file = checkout / config.CONFIG_NAME
    settings = config.load(file) if file.is_file() else config.Config()
    taken = [name for name, _ in settings.nix_options if trust.privileged(name)]
    if taken:
        raise ConfigError(
            f"{config.CONFIG_NAME}: nix-options.{taken[0]} is a privileged Nix setting, which a "
            "bots run does not take from a repo's own ci-nix.yaml (the runner is not the "
            "repo's); pass it with --option in the bots job if the platform allows it")
    return settings


def run(file: Path, nix: Nix, git: Git, dry_run: bool = False,
        environ: Mapping[str, str] = os.environ,
        sleep: Callable[[float], None] = proc.sleep,
        nix_options: tuple[tuple[str, str], ...] = ()) -> list[RepoResult]:
    """Clone, update and open/update MRs for every repo in bots.yaml; errors stay per repo.

    nix_options: the command line's, which `nix` has already; they win over a repo's
    nix-options as they do in `run`."""
    repos = load(file)
    # no Nix, git or builder process inherits a forge's token (as workspace.load does for
    # ci-nix.yaml's): a repo's --verify evaluation (its own nix-options, e.g. pure-eval false
    # and builtins.getEnv) ran before the next forge's token was known as a secret
    for repo in repos:
        withhold(repo.forge.token_env)
        add_secret(environ.get(repo.forge.token_env) if repo.forge.token_env else None)
    results: dict[str, RepoResult] = {}
    # ignore_cleanup_errors: a Nix that runs in its own mount namespace (a chroot store) can
    # keep a checkout busy for a moment after it exits; a leftover temp dir is harmless.
    with tempfile.TemporaryDirectory(prefix="ci-nix-bots-", ignore_cleanup_errors=True) as tmp:
        checkouts: dict[str, Path] = {}
        tokens: dict[str, str | None] = {}
        for repo in repos:
            try:
                token = environ.get(repo.forge.token_env) or None
                env = credential_env(repo.clone, repo.forge.kind, token, environ)
                dest = Path(tmp) / repo.name
                args = ["clone", "--quiet", "--no-tags"]
                if repo.base:
                    args += ["--branch", repo.base]
                git.check(Path(tmp), [*args, "--", repo.clone, str(dest)], env=env)
                checkouts[repo.name], tokens[repo.name] = dest, token
            except CiNixError as err:
                results[repo.name] = RepoResult(repo.name, error=str(err))
        upstreams = {repo.name: upstreams_of(repo, checkouts[repo.name], repos, git)
                     for repo in repos if repo.name in checkouts}
        web = tuple((repo.clone, repo.web_url) for repo in repos)
        hosts = tuple((urllib.parse.urlsplit(repo.web_url).hostname or "", repo.forge.kind)
                      for repo in repos)
        for repo in order(repos, upstreams):
            if repo.name not in checkouts:
                continue
            log.info("updating %s", repo.name)
            try:
                forge, token = (None, None) if dry_run else connect(repo.forge, environ, sleep)
                settings = repo_config(checkouts[repo.name])
                target = UpdateTarget(
                    name=repo.name, checkout=checkouts[repo.name], remote="origin",
                    remote_url=repo.clone, update=repo.update, inputs=repo.inputs,
                    base=repo.base, hosts=hosts, repo_urls=web, verify=repo.update.verify,
                    config=settings)
                # key files Nix reads itself, as `run` checks them: a repo's links (its own
                # or another clone's) must not aim the command line's at the runner's signing
                # key (the repo's own nix-options name none: repo_config refused privileged ones)
                key_mod.check_nix_settings((), nix_options, nix.eval_store,
                                           list(checkouts.values()))
                repo_nix = nix.with_options((*settings.nix_options, *nix_options))
                outcomes = update_repo.run(target, repo_nix, git, forge, token, dry_run,
                                           environ)
                results[repo.name] = RepoResult(repo.name, tuple(outcomes))
            except CiNixError as err:
                log.error("%s: %s", repo.name, err)
                results[repo.name] = RepoResult(repo.name, error=str(err))
        ordered = [repo.name for repo in order(repos, upstreams)]
        ordered += [repo.name for repo in repos if repo.name not in ordered]
    return [results[name] for name in ordered if name in results]


UPDATE_CLASSNAME = "ci-nix.update"  # a repo's test case in the update's JUnit report


def junit(results: Sequence[RepoResult], out: TextIO) -> None:
    """JUnit XML (report/junit.py's shape): one test case per repo (classname ci-nix.update),
    failed when it errored; with --verify, one per attribute built (classname: the flake) and
    one per held-back input."""
    repos, checked = [], []
    for result in results:
        if result.error is not None:
            repos.append(Case(UPDATE_CLASSNAME, result.repo, Status.FAILED,
                              failure=Failure(FailureType.OTHER, result.error)))
        else:
            repos.append(Case(UPDATE_CLASSNAME, result.repo, Status.PASSED, output="\n".join(
                f"{o.branch}: {o.operation} {o.url or ''}".rstrip() for o in result.outcomes)))
        for outcome in result.outcomes:
            if outcome.verification is not None:
                checked += _verification_cases(outcome.verification)
    suites: list[tuple[str, Sequence[Case]]] = [("ci-nix update", repos)]
    if checked:
        suites.append(("ci-nix update --verify", checked))
    junit_report.write_suites(suites, out)


def _verification_cases(verification: Verification) -> list[Case]:
    cases = list(verification.cases)
    for held in verification.held_back:
        failure = held.case.failure or Failure(FailureType.BUILD, "failed")
        cases.append(replace(
            held.case, name=f"{held.case.name} (with {held.input} updated)",
            status=Status.FAILED,
            failure=replace(failure, message=f"held back {held.input}: its update breaks "
                                             f"{held.case.flake}#{held.case.name}: "
                                             f"{failure.message}")))
    return cases
