"""`ci-nix update`: update flake inputs and open/update/close the merge request that carries
them."""

from __future__ import annotations

import argparse
import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ci_nix import detect, outputs, workspace
from ci_nix.bundle import key as key_mod
from ci_nix.ci import CiEnv
from ci_nix.commands.common import (
    INTERRUPTED,
    TOOL_ERROR,
    Subcommands,
    add_nix_options,
    add_path,
    add_verbose,
    exit_codes,
    nix_options,
    subparser,
)
from ci_nix.errors import CiNixError, ConfigError, WorkspaceError
from ci_nix.mask import mask
from ci_nix.models import Repo
from ci_nix.tools.git import Git
from ci_nix.tools.nix import Nix
from ci_nix.words import count

# The update machinery (forges, the bots, the verifier) loads when `update` runs: every other
# command's start-up (a no-op `run` is mostly start-up) would pay for it.
if TYPE_CHECKING:
    from ci_nix import bots
    from ci_nix.update.models import Outcome
    from ci_nix.update.verify import Dependent


def register(commands: Subcommands) -> None:
    cmd = subparser(
        commands, "update", "update flake inputs, open/update the MR/PR",
        "Update the flake inputs of this repo (all, or those named with --input), commit the "
        "new flake.lock files to the update branch, and open or update one merge request whose "
        "body lists what moved. With nothing left to update, the merge request is closed. "
        "--config bots.yaml runs this for many repos, upstream flakes first.",
        exit_codes((0, "the merge request is up to date (opened, updated or closed), or the "
                    "dry run printed what would move"),
                   (1, "with a bots.yaml: at least one repo failed (the others were updated); "
                       "with --verify: an input was held back or an attribute fails"),
                   (2, TOOL_ERROR + "; a forge or git push that fails"),
                   (130, INTERRUPTED)))
    add_path(cmd)
    cmd.add_argument("--input", action="append", default=[], metavar="NAME", dest="inputs",
                     help="update only this input (repeatable; default: update.inputs, else all)")
    cmd.add_argument("--dry-run", action="store_true",
                     help="print the changelog; no commit, no push, no forge call")
    cmd.add_argument("--verify", action="store_true", default=None,
                     help="build what the update touches first (flakes whose lock moved and "
                     "their dependents); inputs whose update breaks an attribute that passes "
                     "today are held back (default: update.verify)")
    cmd.add_argument("--config", type=Path, metavar="FILE",
                     help="ci-nix.yaml to use, or a bots.yaml (a file with 'repos:' entries "
                     "that have 'clone:') for the nightly many-repo run")
    cmd.add_argument("--junit", type=Path, metavar="FILE",
                     help="write a JUnit report: one test case per repo")
    add_verbose(cmd)
    add_nix_options(cmd)
    cmd.set_defaults(handler=handle)


def _is_bots_file(path: Path) -> bool:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, ValueError, yaml.YAMLError, RecursionError):
        return False  # not readable as YAML: loading it as ci-nix.yaml says what is wrong
    repos = data.get("repos") if isinstance(data, dict) else None
    return isinstance(repos, list) and any(isinstance(r, dict) and "clone" in r for r in repos)


def handle(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> int:
    """Run the update; with --junit the report is written whatever happens, like `run`'s."""
    from ci_nix import bots

    if args.junit is not None:
        outputs.check_writable(args.junit)
    git = Git.from_env(environ)
    nix = Nix.from_env(environ).with_options(nix_options(args), args.eval_store)
    bots_file = args.config is not None and _is_bots_file(args.config)
    what = [args.config.name if bots_file else args.path.resolve().name or "update"]
    try:
        results = (_bots(args, nix, git, environ) if bots_file
                   else [_single(args, nix, git, what, environ)])
    except CiNixError as err:
        if args.junit is not None:
            _write_junit(args.junit, [bots.RepoResult(what[0], error=str(err))])
        raise
    if args.junit is not None:
        _write_junit(args.junit, results)
    return 1 if any(result.failed for result in results) else 0


def _write_junit(path: Path, results: list[bots.RepoResult]) -> None:
    from ci_nix import bots

    out = io.StringIO()
    bots.junit(results, out)
    problem = outputs.write_file(path, out.getvalue())
    if problem is not None:
        raise CiNixError(f"cannot write report {path}: {problem}; free some space or choose "
                         "another path")


def _bots(args: argparse.Namespace, nix: Nix, git: Git,
          environ: Mapping[str, str]) -> list[bots.RepoResult]:
    from ci_nix import bots

    if args.inputs:
        raise ConfigError("--input does not apply to a bots.yaml run; set 'inputs:' per repo")
    results = bots.run(args.config, nix, git, dry_run=args.dry_run, environ=environ,
                       nix_options=nix_options(args))
    for result in results:
        if result.error is not None:
            print(f"{result.repo}: error: {result.error}")
        for outcome in result.outcomes:
            _print(outcome, args.dry_run)
    failed = sum(result.error is not None for result in results)
    print(f"{count(len(results), 'repo')}: {len(results) - failed} ok, {failed} failed")
    return results


def _single(args: argparse.Namespace, nix: Nix, git: Git, what: list[str],
            environ: Mapping[str, str]) -> bots.RepoResult:
    """Update the repo at PATH; `what` gets its name as soon as it is known (for the report)."""
    from ci_nix import bots
    from ci_nix.forge import connect, resolve
    from ci_nix.update import repo as update_repo
    from ci_nix.update.models import UpdateTarget

    ws = workspace.load(args.path, git, args.config)
    repo = ws.primary or (ws.repos[0] if len(ws.repos) == 1 else None)
    if repo is None:
        raise WorkspaceError(f"{args.path} is not inside one of the workspace's repos; run "
                             "`ci-nix update` in the repo to update (or use a bots.yaml)")
    what[0] = repo.name
    key_mod.check_nix_settings(ws.config.nix_options, nix_options(args), nix.eval_store,
                               [r.path for r in ws.repos])
    # ci-nix.yaml's nix-options first, so the command line's --option overrides them
    nix = nix.with_options((*ws.config.nix_options, *nix_options(args)))
    remote = _remote_name(git, repo.path)
    remote_url = git.run(repo.path, ["remote", "get-url", remote]).stdout.strip()
    forge = token = None
    kind: str | None = ws.config.forge.type
    if not args.dry_run:
        target = resolve(ws.config.forge.type, ws.config.forge.project, ws.config.forge.url,
                         ws.config.forge.token_env, environ, ws.config.forge.timeout)
        forge, token = connect(target, environ)
        kind = target.kind
    hosts = _hosts(ws.config.forge.url, remote_url, kind)
    verifying = bool(args.verify or ws.config.update.verify)
    target_ = UpdateTarget(name=repo.name, checkout=repo.path, remote=remote,
                                  remote_url=remote_url, update=ws.config.update,
                                  inputs=tuple(args.inputs), hosts=hosts,
                                  verify=verifying, config=ws.config,
                                  dependents=_dependents(ws, repo, git) if verifying else ())
    outcomes = update_repo.run(target_, nix, git, forge, token, args.dry_run, environ)
    for outcome in outcomes:
        _print(outcome, args.dry_run)
    if not args.dry_run and outcomes:
        _github_output(CiEnv.detect(environ), outcomes[0])
    return bots.RepoResult(repo.name, tuple(outcomes))


def _dependents(ws: workspace.Workspace, repo: Repo, git: Git) -> tuple[Dependent, ...]:
    """Flakes of the workspace's other repos that lock one of this repo's flakes."""
    from ci_nix.update.verify import Dependent

    return tuple(Dependent(edge.dependent, edge.input_name, edge.dependency.subdir)
                 for edge in detect.lock_edges(ws, git)
                 if edge.dependency.repo == repo and edge.dependent.repo != repo)


def _remote_name(git: Git, repo: Path) -> str:
    remotes = git.run(repo, ["remote"]).stdout.split()
    return "origin" if "origin" in remotes or not remotes else remotes[0]


def _hosts(forge_url: str | None, remote_url: str, kind: str | None) -> tuple[tuple[str, str], ...]:
    """Hosts that serve this forge's web UI, so self-hosted compare links work."""
    import urllib.parse

    if kind is None:
        return ()
    hosts = []
    for url in (forge_url, remote_url):
        host = urllib.parse.urlsplit(url or "").hostname
        if host:
            hosts.append((host, kind))
    return tuple(hosts)


def _print(outcome: Outcome, dry_run: bool) -> None:
    if dry_run:
        print(f"# {outcome.repo}: {outcome.title or 'nothing to update'} "
              f"(branch {outcome.branch}, dry run)\n")
        if outcome.moved or outcome.verification is not None:
            print(outcome.body)
        return
    where = f" #{outcome.number} {outcome.url}" if outcome.number is not None else ""
    print(mask(f"{outcome.repo}: {outcome.branch}: {outcome.operation}{where}"))


def _github_output(ci: CiEnv, outcome: Outcome) -> None:
    outputs.step_outputs(ci, {
        "pull-request-number": str(outcome.number) if outcome.number is not None else "",
        "pull-request-url": outcome.url or "",
        "pull-request-operation": str(outcome.operation)})
