"""Find the workspace: its config, its repos, the primary repo and every tracked flake."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ci_nix import config as config_mod
from ci_nix import trust
from ci_nix.config import Config
from ci_nix.errors import WorkspaceError
from ci_nix.mask import withhold
from ci_nix.models import Flake, Repo
from ci_nix.tools import proc
from ci_nix.tools.git import Git

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Workspace:
    root: Path
    config: Config
    repos: tuple[Repo, ...]
    primary: Repo | None  # the repo containing PATH: --base/--head refer to it
    flakes: tuple[Flake, ...]
    # each repo's remote URLs as git has them, read once (a run resolves flake.lock inputs to
    # workspace repos more than once: change detection, overrides, input origins)
    _remotes: dict[Path, tuple[str, ...]] = field(default_factory=dict, init=False,
                                                  compare=False, repr=False)
    # each repo's state as loading read it, as Git.head_state tells it: HEAD's commit, its
    # tree, and whether tracked files differ (inputs.checkouts asks git no more); a repo with
    # nothing committed, or one git did not answer for, is not here
    states: Mapping[Path, tuple[str, str, bool]] = field(default_factory=dict, compare=False,
                                                         repr=False)

    def remote_urls(self, git: Git) -> dict[Path, tuple[str, ...]]:
        """Each repo's remote URLs (`remote.*.url`), from git the first time only (the repos'
        calls beside each other)."""
        unread = [repo.path for repo in self.repos if repo.path not in self._remotes]
        for path, urls in zip(unread, proc.each(git.remote_urls, unread), strict=True):
            self._remotes[path] = tuple(urls)
        return {repo.path: self._remotes[repo.path] for repo in self.repos}

    def flake(self, flake_id: str) -> Flake | None:
        return next((flake for flake in self.flakes if flake.id == flake_id), None)

    def repo(self, name: str) -> Repo | None:
        return next((repo for repo in self.repos if repo.name == name), None)


def load(path: Path, git: Git, config_file: Path | None = None,
         trusted: trust.Side | None = None,
         settled: Callable[[Config, tuple[Repo, ...]], None] | None = None) -> Workspace:
    """The workspace around PATH, as the README describes; its trusted settings checked
    against `trusted` (default: this process's CI environment, no --base). settled: told the
    settled config and the repos as soon as both are known and the config's token variables
    withheld (what may run Nix starts there, beside the repos' remaining git calls)."""
    path = path.resolve()
    if not path.exists():
        raise WorkspaceError(f"{path}: no such directory; pass the workspace or repo directory")
    if config_file is not None:
        if not config_file.is_file():
            raise WorkspaceError(f"{config_file}: config file not found; check --config")
        found: Path | None = config_file.resolve()
    else:
        found = config_mod.find(path)
    config = config_mod.load(found) if found else Config()
    _withhold_tokens(config)  # before the first git call (a clone the file names, rev-parse)

    if config.has_repos:
        assert config.file is not None
        root = config.file.parent
        for spec in config.repos:
            _clone_missing(spec, git)
        # each repo's git calls beside the others' (proc.each)
        probed = proc.each(lambda spec: _repo_from_spec(spec, git), config.repos)
        repos = tuple(repo for repo, _ in probed)
        heads = {repo.path: head for repo, head in probed}
    else:
        tree = git.work_tree(path if path.is_dir() else path.parent)
        if tree is None:
            raise WorkspaceError(
                f"{path} is not inside a git repository and no ci-nix.yaml with 'repos:' was "
                "found; run ci-nix in a flake repo (git init && git add flake.nix) or write a "
                "ci-nix.yaml listing the repos")
        root = tree.root
        repos = (Repo(name=root.name, path=root, shallow=tree.shallow),)
        heads = {root: tree.head}

    names = [repo.name for repo in repos]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise WorkspaceError(f"{config.file}: repo name {duplicates[0]!r} is used twice; give "
                             "each repo a distinct 'name:'")

    primary = next((repo for repo in repos if path == repo.path or repo.path in path.parents),
                   None)
    config = trust.settle(config, git, primary,
                          trusted if trusted is not None else trust.side(None, os.environ),
                          start=None if config_file is not None else path)
    _withhold_tokens(config)  # the settled file's names too
    if settled is not None:
        settled(config, repos)
    # each repo's git calls beside the others' (proc.each); its state too, while at it
    listed = proc.each(lambda repo: (_flakes(repo, git), _state(repo, heads.get(repo.path), git)),
                       repos)
    flakes = tuple(flake for found_flakes, _ in listed for flake in found_flakes)
    states = {repo.path: state for repo, (_, state) in zip(repos, listed, strict=True)
              if state is not None}
    if not flakes:
        where = ", ".join(str(repo.path) for repo in repos)
        raise WorkspaceError(f"no tracked flake.nix in {where}; add one and `git add flake.nix` "
                             "(flakes only see files git tracks)")
    return Workspace(root=root, config=config, repos=repos, primary=primary, flakes=flakes,
                     states=states)


def _withhold_tokens(config: Config) -> None:
    """No Nix, git or builder process inherits a token variable the config names."""
    for variable in (config.cache.token_env, config.forge.token_env, config.images.token_env):
        withhold(variable)


def _clone_missing(spec: config_mod.RepoSpec, git: Git) -> None:
    if not spec.path.exists():
        name = spec.name or spec.path.name
        if not spec.url:
            raise WorkspaceError(f"repo '{name}': {spec.path} does not exist; check it out there "
                                 "or give the repo a 'url:' in ci-nix.yaml to clone it")
        log.info("cloning %s into %s", name, spec.path)
        git.check(spec.path.parent, ["clone", "--depth", "1", "--", spec.url, str(spec.path)])


def _repo_from_spec(spec: config_mod.RepoSpec, git: Git
                    ) -> tuple[Repo, tuple[str, str] | None]:
    """The repo and its HEAD's commit and tree (None: nothing committed)."""
    name = spec.name or spec.path.name
    found = git.work_tree(spec.path)
    if found is None or found.root.resolve() != spec.path.resolve():
        raise WorkspaceError(f"repo '{name}': {spec.path} is not the root of a git checkout; "
                             "point 'path:' at the repository's top directory")
    return Repo(name=name, path=spec.path.resolve(), url=spec.url, shallow=found.shallow), \
        found.head


def _state(repo: Repo, head: tuple[str, str] | None, git: Git) -> tuple[str, str, bool] | None:
    """The repo's state from its HEAD as read before (head: commit and tree) and one `git
    status`, which says the commit again (HEAD moved meanwhile: None) and whether tracked files
    differ from it."""
    if head is None:
        return None
    status = git.head_status(repo.path)
    if status is None or status[0] != head[0]:
        return None
    return status[0], head[1], status[1]


def _flakes(repo: Repo, git: Git) -> list[Flake]:
    found = []
    for name in git.tracked(repo.path, "flake.nix", ":(glob)**/flake.nix"):
        if not (repo.path / name).is_file():
            continue  # deleted in the work tree but still in the index
        subdir = str(PurePosixPath(name).parent)
        found.append(Flake(repo=repo, subdir="" if subdir == "." else subdir))
    return sorted(found, key=lambda flake: flake.subdir)
