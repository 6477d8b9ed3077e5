"""Update flake inputs, commit the new lock files to a branch, and open/update/close its MR."""

from __future__ import annotations

import base64
import enum
import logging
import os
import re
import shutil
import tempfile
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

import tenacity

from ci_nix import changelog, lockfile
from ci_nix.changelog import FlakeChangelog
from ci_nix.config import Config, UpdateConfig
from ci_nix.errors import ConfigError, ForgeError
from ci_nix.forge import Forge
from ci_nix.mask import add_secret
from ci_nix.models import Status
from ci_nix.report import changes as changes_report
from ci_nix.source import Repository
from ci_nix.tools import proc
from ci_nix.tools.git import Git, GitError
from ci_nix.tools.nix import Nix
from ci_nix.verify import Dependent, Verification, Verifier, verify

log = logging.getLogger(__name__)

MARKER = "<!-- ci-nix update -->"


class Operation(enum.StrEnum):
    """What happened to an update branch's merge request."""

    CREATED = "created"
    UPDATED = "updated"
    CLOSED = "closed"
    UNCHANGED = "unchanged"
    DRY_RUN = "dry-run"


@dataclass(frozen=True)
class UpdateTarget:
    """One repository to update: its checkout, where to push, and how to name things."""

    name: str
    checkout: Path
    remote: str  # remote name or URL the branch is pushed to
    remote_url: str  # that remote's URL (scopes the credential header)
    update: UpdateConfig
    inputs: tuple[str, ...] = ()  # empty: update.inputs, else every input
    base: str | None = None  # target branch; default: the forge's default branch
    hosts: tuple[tuple[str, str], ...] = ()  # extra host -> web flavour, for compare links
    repo_urls: tuple[tuple[str, str], ...] = ()  # clone URL -> web page of known repos
    verify: bool = False  # --verify / update.verify: build with the new locks first
    config: Config = Config()  # systems, outputs, include/exclude for --verify's builds
    dependents: tuple[Dependent, ...] = ()  # other workspace flakes that lock this repo


@dataclass(frozen=True)
class Outcome:
    """What happened to one update branch and its merge request."""

    repo: str
    branch: str
    operation: Operation
    number: int | None = None
    url: str | None = None
    title: str = ""
    body: str = ""
    moved: tuple[str, ...] = ()
    verification: Verification | None = None


@dataclass(frozen=True)
class LockUpdate:
    """The lock files one update produced (path relative to the repo -> text) and what moved."""

    files: tuple[tuple[str, str], ...]
    logs: tuple[FlakeChangelog, ...]

    @property
    def moved(self) -> tuple[str, ...]:
        return tuple(changelog.moved_names(self.logs))


# --- credentials ---------------------------------------------------------------------------------

def credential_env(remote_url: str, kind: str, token: str | None,
                   environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Environment for git so it authenticates to an HTTPS remote with the token.

    The header goes through GIT_CONFIG_COUNT/KEY/VALUE: never in argv (visible in `ps`), the
    remote URL, or .git/config, and it is scoped to the remote's host.
    """
    env = {"GIT_TERMINAL_PROMPT": "0"}
    parts = urllib.parse.urlsplit(remote_url)
    if not token or parts.scheme not in ("https", "http") or not parts.hostname:
        return env
    user = "oauth2" if kind == "gitlab" else "x-access-token"
    basic = base64.b64encode(f"{user}:{token}".encode()).decode()
    add_secret(token)
    add_secret(basic)
    host = parts.netloc.rsplit("@", 1)[-1]
    count = int(environ.get("GIT_CONFIG_COUNT", "0") or 0)  # keep settings already passed
    env.update({
        "GIT_CONFIG_COUNT": str(count + 1),
        f"GIT_CONFIG_KEY_{count}": f"http.{parts.scheme}://{host}/.extraHeader",
        f"GIT_CONFIG_VALUE_{count}": f"Authorization: Basic {basic}",
    })
    return env


def author_env(author: str) -> dict[str, str]:
    """GIT_AUTHOR_*/GIT_COMMITTER_* from `Name <email>`."""
    name, _, rest = author.partition("<")
    email = rest.rstrip().rstrip(">").strip()
    if not name.strip() or not email:
        raise ConfigError(f"update.author is {author!r}; write it as 'Name <email>'")
    return {"GIT_AUTHOR_NAME": name.strip(), "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name.strip(), "GIT_COMMITTER_EMAIL": email}


# --- the lock update itself ---------------------------------------------------------------------

def flake_dirs(git: Git, repo: Path) -> list[str]:
    """Directories (relative, "" for the root) of tracked flakes that have a flake.lock."""
    dirs = []
    for name in git.tracked(repo, "flake.nix", ":(glob)**/flake.nix"):
        subdir = str(PurePosixPath(name).parent)
        subdir = "" if subdir == "." else subdir
        if (repo / subdir / "flake.lock").is_file():
            dirs.append(subdir)
        else:
            log.debug("%s: no flake.lock next to %s; skipped (run `nix flake lock` and commit it)",
                     repo.name, name)
    return sorted(dirs)


def input_names(repo: Path, dirs: list[str]) -> list[str]:
    """Every direct input of the repo's flakes, in first-seen order."""
    names: list[str] = []
    for subdir in dirs:
        lock = lockfile.read(repo / subdir / "flake.lock")
        for name in lock.nodes[lock.root].inputs if lock else ():
            if name not in names:
                names.append(name)
    return names


@contextmanager
def private_checkout(git: Git, repo: Path) -> Iterator[tuple[Path, str]]:
    """A detached worktree of the repo's HEAD in a temporary directory: (its path, HEAD).

    Nix updates the locks there, so the user's tree is never written and two runs on one
    checkout cannot read each other's half-updated flake.lock.
    """
    head = git.check(repo, ["rev-parse", "--verify", "HEAD^{commit}"]).strip()
    # ignore_cleanup_errors: a Nix that runs in its own mount namespace (a chroot store) can
    # keep the directory busy for a moment after it exits; a leftover temp dir is harmless.
    with tempfile.TemporaryDirectory(prefix="ci-nix-update-", ignore_cleanup_errors=True) as tmp:
        work = Path(tmp) / "checkout"
        git.check(repo, ["worktree", "add", "--quiet", "--detach", str(work), head])
        try:
            yield work, head
        finally:
            if not git.run(repo, ["worktree", "remove", "--force", str(work)]).ok:
                shutil.rmtree(work, ignore_errors=True)
                git.run(repo, ["worktree", "prune"])


def local_commits(git: Git) -> changelog.CommitLister:
    """Commit subjects between two revisions of a repository on this machine (git+file)."""

    def subjects(repo: Repository, old: str, new: str) -> tuple[tuple[str, ...], int] | None:
        path = Path(repo.path)
        if not repo.local or not path.is_dir():
            return None
        count = git.run(path, ["rev-list", "--count", f"{old}..{new}"])
        listed = git.run(path, ["log", f"--max-count={changelog.MAX_COMMITS}", "--format=%s",
                                f"{old}..{new}"])
        if not (count.ok and listed.ok):
            return None  # a revision this clone does not have
        return tuple(listed.stdout.splitlines()), int(count.stdout.strip() or 0)

    return subjects


def forge_commits(forge: Forge) -> changelog.CommitLister:
    """Commit subjects from the forge's compare API, for repositories on that forge's host."""
    host: list[str] = []

    def subjects(repo: Repository, old: str, new: str) -> tuple[tuple[str, ...], int] | None:
        if repo.local:
            return None
        try:
            if not host:
                host.append(urllib.parse.urlsplit(forge.project().web_url).hostname or "")
            if repo.host != host[0]:
                return None
            return forge.commits(repo.path, old, new, changelog.MAX_COMMITS)
        except ForgeError as err:  # a table cell, not worth failing the update for
            log.info("no commit list for %s: %s", repo, err)
            return None

    return subjects


def _first_of(*listers: changelog.CommitLister | None) -> changelog.CommitLister:
    def subjects(repo: Repository, old: str, new: str) -> tuple[tuple[str, ...], int] | None:
        for lister in listers:
            found = lister(repo, old, new) if lister is not None else None
            if found is not None:
                return found
        return None

    return subjects


def update_locks(nix: Nix, git: Git, target: UpdateTarget, work: Path, dirs: list[str],
                 inputs: tuple[str, ...], forge: Forge | None = None) -> LockUpdate:
    """Run the Nix update in each flake of the private worktree, read the new locks, and put
    the old ones back there (the next branch starts from HEAD again).

    The result travels as file contents to a commit.
    """
    files, logs = [], []
    hosts, repo_urls = dict(target.hosts), dict(target.repo_urls)
    for subdir in dirs:
        flake_dir = work / subdir if subdir else work
        lock_path = flake_dir / "flake.lock"
        before_text = lock_path.read_text(encoding="utf-8")
        before = lockfile.parse(before_text, str(lock_path))
        names = [name for name in inputs if name in before.nodes[before.root].inputs]
        if inputs and not names:
            continue
        flake_id = target.name if not subdir else f"{target.name}/{subdir}"
        try:
            nix.flake_update(flake_dir, names)
            after_text = lock_path.read_text(encoding="utf-8")
        finally:
            lock_path.write_text(before_text, encoding="utf-8")
        after = lockfile.parse(after_text, str(lock_path))
        commits = _first_of(local_commits(git), forge_commits(forge) if forge else None)
        logs.append(changelog.changelog(flake_id, before, after, hosts, repo_urls, commits))
        if after_text != before_text:
            rel = str(PurePosixPath(subdir) / "flake.lock") if subdir else "flake.lock"
            files.append((rel, after_text))
    return LockUpdate(tuple(files), tuple(logs))


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


def _one_line(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


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
                result = f"failed ({case.failure.type}): {_one_line(case.failure.message)}"
            elif case.status is Status.SKIPPED:
                result = f"skipped: {_one_line(case.skip_reason or '')}"
            else:
                result = str(case.status)
            out.append(f"| `{case.flake}#{case.name}` | {result} |")
        out.append("")
    if verification.held_back:
        out.append("**Held back**: these inputs are not updated here, because their update "
                   "breaks attributes that pass on the current lock:\n")
        for held in verification.held_back:
            failure = held.case.failure
            why = f"{failure.type}: {_one_line(failure.message)}" if failure else "failed"
            out.append(f"- `{held.input}` breaks `{held.case.flake}#{held.case.name}` ({why})")
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


# --- one repo, end to end ----------------------------------------------------------------------

def plans(git: Git, target: UpdateTarget, work: Path) -> list[tuple[str, tuple[str, ...]]]:
    """(branch, inputs) pairs: one branch for everything, or one per input (update.group false)."""
    dirs = flake_dirs(git, work)
    inputs = target.inputs or target.update.inputs
    known = input_names(work, dirs)
    unknown = [name for name in inputs if name not in known]
    if unknown:
        raise ConfigError(f"{target.name}: no flake has an input named {unknown[0]!r} "
                          f"(inputs: {', '.join(known) or 'none'}); check --input / update.inputs")
    branch = target.update.branch
    if target.update.group:
        return [(branch, tuple(inputs))]
    return [(f"{branch}-{name}", (name,)) for name in (inputs or tuple(known))]


def run(target: UpdateTarget, nix: Nix, git: Git, forge: Forge | None, token: str | None,
        dry_run: bool = False) -> list[Outcome]:
    """Update one repo's inputs and bring its merge request(s) in line with the result."""
    outcomes = []
    with private_checkout(git, target.checkout) as (work, head):
        dirs = flake_dirs(git, work)
        if not dirs:
            log.info("%s: no flake with a committed flake.lock; nothing to update", target.name)
        for branch, inputs in plans(git, target, work):
            result = update_locks(nix, git, target, work, dirs, inputs, forge)
            verification = None
            if target.verify and result.files:
                verification = _verify(nix, git, target, work, dirs, result)
                if verification.held_back:
                    log.warning("%s: held back %s: their update breaks attributes that pass on "
                                "the current lock", target.name,
                                ", ".join(sorted({h.input for h in verification.held_back})))
                    result = (update_locks(nix, git, target, work, dirs, verification.kept,
                                           forge) if verification.kept else LockUpdate((), ()))
            title, body = title_for(result.moved), body_for(result, verification)
            if dry_run:
                outcomes.append(Outcome(target.name, branch, Operation.DRY_RUN, title=title,
                                        body=body, moved=result.moved,
                                        verification=verification))
                continue
            if forge is None:
                raise ForgeError(f"{target.name}: no forge to open a merge request on; "
                                 "configure 'forge:' or use --dry-run")
            outcome = _publish(target, git, forge, token, branch, head, result, title, body)
            outcomes.append(replace(outcome, verification=verification))
    return outcomes


def _verify(nix: Nix, git: Git, target: UpdateTarget, work: Path, dirs: list[str],
            result: LockUpdate) -> Verification:
    """Build the update in the private worktree, holding back inputs that break attributes."""
    originals = {subdir: (work / subdir / "flake.lock").read_text(encoding="utf-8")
                 for subdir in dirs}

    def apply(inputs: tuple[str, ...]) -> list[str]:
        moved = []
        for subdir, text in originals.items():
            lock_path = work / subdir / "flake.lock"
            lock_path.write_text(text, encoding="utf-8")
            lock = lockfile.parse(text, str(lock_path))
            names = [name for name in inputs if name in lock.nodes[lock.root].inputs]
            if names:
                nix.flake_update(lock_path.parent, names)
                if lock_path.read_text(encoding="utf-8") != text:
                    moved.append(subdir)
        return moved

    head = git.check(work, ["rev-parse", "HEAD"]).strip()
    verifier = Verifier(nix, git, target.name, work, target.config, head, target.dependents)
    try:
        return verify(verifier, result.moved, apply)
    finally:
        for subdir, text in originals.items():
            (work / subdir / "flake.lock").write_text(text, encoding="utf-8")


PUSH_ATTEMPTS = 3
# The ref changed under us, or the network failed: worth another try. Anything else (a hook or
# branch protection saying no, a bad token) will say the same again.
_RETRY_PUSH = re.compile(r"stale info|failed to update ref|cannot lock ref|fetch first|"
                         r"non-fast-forward|unable to access|could not resolve|connection|"
                         r"timed out|early EOF|HTTP 5\d\d|remote end hung up", re.IGNORECASE)


def _push_branch(target: UpdateTarget, git: Git, branch: str, commit: str,
                 env: Mapping[str, str]) -> bool:
    """Put commit on the update branch; False when the branch already has the same change.

    The push is leased on the tip just read, so a concurrent push to the branch is noticed;
    then the tip is read again and the push retried.
    """
    repo = target.checkout

    def attempt() -> bool:
        remote_sha = git.remote_branch(repo, target.remote, branch, env)
        if remote_sha is not None:
            git.fetch_refs(repo, target.remote, [f"refs/heads/{branch}"], env)
            # Same tree on the same base: pushing again would only churn CI and notifications.
            if git.tree_and_parents(repo, remote_sha) == git.tree_and_parents(repo, commit):
                return False
        git.push_refs(repo, target.remote, [f"{commit}:refs/heads/{branch}"], env,
                      lease=(f"refs/heads/{branch}", remote_sha))
        return True

    def log_retry(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning("%s: push of %s rejected (%s); retrying (attempt %d of %d)", target.name,
                    branch, error, state.attempt_number + 1, PUSH_ATTEMPTS)

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(
            lambda err: isinstance(err, GitError) and bool(_RETRY_PUSH.search(err.stderr))),
        wait=tenacity.wait_random_exponential(multiplier=0.5, max=10),
        stop=tenacity.stop_after_attempt(PUSH_ATTEMPTS), before_sleep=log_retry,
        sleep=proc.sleep, reraise=True)  # a cancelled run stops waiting at once
    return retrying(attempt)


def _publish(target: UpdateTarget, git: Git, forge: Forge, token: str | None, branch: str,
             base_rev: str, result: LockUpdate, title: str, body: str) -> Outcome:
    repo = target.checkout
    env = credential_env(target.remote_url, forge.kind, token)
    existing = forge.find_open(branch)
    if not result.files:
        if existing is None:
            return Outcome(target.name, branch, Operation.UNCHANGED)
        closed = forge.close(existing)
        if git.remote_branch(repo, target.remote, branch, env):
            git.push_refs(repo, target.remote, [f":refs/heads/{branch}"], env)
        log.info("%s: nothing to update; closed %s", target.name, closed.url)
        return Outcome(target.name, branch, Operation.CLOSED, closed.number, closed.url)

    commit = git.commit_files(repo, base_rev, dict(result.files), commit_message(result),
                              author_env(target.update.author))
    pushed = _push_branch(target, git, branch, commit, env)

    if existing is None:
        base = target.base or forge.project().default_branch
        mr = forge.create(branch, base, title, body)
        update = target.update
        forge.decorate(mr, update.labels, update.assignees, update.reviewers)
        if update.auto_merge:
            try:
                forge.auto_merge(mr)
            except ForgeError as err:  # the MR is still useful without it
                log.warning("%s: auto-merge not enabled: %s", target.name, err)
        operation = Operation.CREATED
    elif (existing.title, existing.body.strip()) != (title, body.strip()):
        mr = forge.edit(existing, title, body)
        operation = Operation.UPDATED
    else:
        mr, operation = existing, Operation.UPDATED if pushed else Operation.UNCHANGED
    return Outcome(target.name, branch, operation, mr.number, mr.url, title, body, result.moved)
