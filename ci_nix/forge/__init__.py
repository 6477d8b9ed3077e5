"""GitHub and GitLab behind one small protocol: find, open, update and close a merge request."""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar

import tenacity

from ci_nix.ci import CiEnv
from ci_nix.config import DEFAULT_TIMEOUT
from ci_nix.errors import ForgeError
from ci_nix.tools import proc

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class MergeRequest:
    """A pull request (GitHub) or merge request (GitLab), as far as ci-nix cares."""

    number: int
    url: str
    title: str
    body: str
    branch: str
    state: str  # open | closed | merged


@dataclass(frozen=True)
class Comment:
    """A comment on a pull request (GitHub issue comment) or merge request (GitLab note)."""

    id: int
    body: str
    author: str  # login (GitHub) / username (GitLab) of who wrote it


@dataclass(frozen=True)
class Project:
    path: str  # owner/name or group/sub/name
    web_url: str
    default_branch: str


class Forge(Protocol):
    kind: str

    def project(self) -> Project: ...

    def find_open(self, branch: str) -> MergeRequest | None: ...

    def protected(self, branch: str) -> bool:
        """Whether branch protection covers this branch (ci-nix never force-pushes one)."""
        ...

    def create(self, branch: str, base: str, title: str, body: str) -> MergeRequest: ...

    def edit(self, mr: MergeRequest, title: str, body: str) -> MergeRequest: ...

    def close(self, mr: MergeRequest) -> MergeRequest: ...

    def decorate(self, mr: MergeRequest, labels: tuple[str, ...], assignees: tuple[str, ...],
                 reviewers: tuple[str, ...]) -> None: ...

    def auto_merge(self, mr: MergeRequest) -> None: ...

    def commits(self, project: str, old: str, new: str, limit: int
                ) -> tuple[tuple[str, ...], int]:
        """Subjects of the commits from old to new in a project on this forge (newest first,
        at most limit) and how many there are in all."""
        ...

    def me(self) -> str:
        """The login of the token's user: who ci-nix's own comments are by."""
        ...

    def comments(self, number: int) -> list[Comment]: ...

    def add_comment(self, number: int, body: str) -> Comment: ...

    def edit_comment(self, number: int, comment: Comment, body: str) -> Comment: ...


# --- retries -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Failure:
    """What a failed forge call tells the retry policy."""

    status: int | None  # None: no HTTP answer (connection error)
    message: str
    retry_after: float | None = None
    rate_limited: bool = False


MAX_ATTEMPTS = 5
MAX_WAIT = 120.0
REQUEST_TIMEOUT = 30.0  # one HTTP request (at most the budget)


def request_timeout(budget: float) -> float:
    """The HTTP client's timeout for one request under a budget for the whole operation."""
    return max(1.0, min(REQUEST_TIMEOUT, budget))


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from Retry-After (seconds or an HTTP date) or x-ratelimit-reset."""
    if not headers:
        return None
    lower = {key.lower(): value for key, value in headers.items()}
    value = lower.get("retry-after")
    if value is not None:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            parsed = email.utils.parsedate_to_datetime(value)
            return max(0.0, parsed.timestamp() - time.time())
        except (ValueError, TypeError, OverflowError):  # not a date either: use the backoff
            return None
    if lower.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in lower:
        try:
            return max(0.0, float(lower["x-ratelimit-reset"]) - time.time())
        except ValueError:
            return None
    return None


def transient(failure: Failure) -> bool:
    """5xx, 429, GitHub's secondary rate limit (a 403 that says so), or no answer at all."""
    if failure.status is None or failure.status == 429 or failure.status >= 500:
        return True
    return failure.status == 403 and failure.rate_limited


class _Transient(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class _OverBudget(Exception):
    def __init__(self, failure: Failure, wait: float) -> None:
        super().__init__(failure.message)
        self.failure, self.wait = failure, wait


def call(what: str, action: Callable[[], T], classify: Callable[[Exception], Failure | None],
         sleep: Callable[[float], None] = proc.sleep, budget: float = DEFAULT_TIMEOUT) -> T:
    """Run one forge call with retries on transient failures; ForgeError for the rest, and
    when the next wait would end past `budget` seconds (attempts and waits counted)."""
    spent = [0.0]  # time in attempts plus the waits asked for: not the wall clock, so a test's
    # recording sleep counts the same as a real one

    def attempt() -> T:
        started = time.monotonic()
        try:
            return action()
        except Exception as err:  # classify() decides which are forge errors; others re-raise
            failure = classify(err)
            if failure is None:
                raise
            if transient(failure):
                raise _Transient(failure) from err
            raise _final(what, failure) from None
        finally:
            spent[0] += time.monotonic() - started

    def wait(state: tenacity.RetryCallState) -> float:
        outcome = state.outcome
        err = outcome.exception() if outcome is not None else None
        hint = err.failure.retry_after if isinstance(err, _Transient) else None
        backoff = min(MAX_WAIT, 2.0 ** (state.attempt_number - 1))
        delay = min(MAX_WAIT, hint) if hint is not None else backoff
        if isinstance(err, _Transient) and spent[0] + delay > budget:
            raise _OverBudget(err.failure, hint if hint is not None else delay)
        spent[0] += delay
        return delay

    def log_retry(state: tenacity.RetryCallState) -> None:
        # before_sleep, not in wait(): tenacity asks for the wait before it checks the stop, so
        # logging there would announce a retry right before giving up.
        outcome = state.outcome
        err = outcome.exception() if outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        log.info("%s: %s; retrying in %.0fs (attempt %d of %d)", what,
                 _described(err.failure) if isinstance(err, _Transient) else "failed", delay,
                 state.attempt_number + 1, MAX_ATTEMPTS)

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(_Transient), wait=wait,
        stop=tenacity.stop_after_attempt(MAX_ATTEMPTS), sleep=sleep, before_sleep=log_retry,
        reraise=True)
    try:
        return retrying(attempt)
    except _Transient as err:
        raise ForgeError(f"{what}: {_described(err.failure)} (gave up after {MAX_ATTEMPTS} "
                         "attempts); try again later") from None
    except _OverBudget as err:
        raise ForgeError(f"{what}: {_described(err.failure)}; gave up rather than wait "
                         f"{err.wait:.0f}s more, past forge.timeout ({budget:g}s in all); try "
                         "again later or raise forge.timeout") from None


def _described(failure: Failure) -> str:
    """The failure with its HTTP status, which the server's message may not repeat."""
    if failure.status is None or f"HTTP {failure.status}" in failure.message:
        return failure.message
    return f"HTTP {failure.status}: {failure.message}"


def _final(what: str, failure: Failure) -> ForgeError:
    if failure.status in (401, 403):
        return ForgeError(f"{what}: HTTP {failure.status}: token invalid or lacks scope "
                          f"({failure.message}); check the token in forge.token-env")
    if failure.status == 404:
        return ForgeError(f"{what}: HTTP 404: not found ({failure.message}); check forge.url "
                          "and forge.project (a token without access also sees 404)")
    return ForgeError(f"{what}: HTTP {failure.status}: {failure.message}")


# --- choosing a forge ----------------------------------------------------------------------------

@dataclass(frozen=True)
class ForgeTarget:
    """Which forge, project and token a repo's merge requests go to (config + CI environment)."""

    kind: str
    project: str
    url: str | None
    token_env: str
    timeout: float = DEFAULT_TIMEOUT  # forge.timeout: one operation, retries included


def resolve(kind: str | None, project: str | None, url: str | None, token_env: str | None,
            environ: Mapping[str, str], timeout: float = DEFAULT_TIMEOUT) -> ForgeTarget:
    """Fill the gaps of a forge: config from GitHub Actions / GitLab CI variables."""
    if kind is None:
        ci = CiEnv.detect(environ).kind
        kind = str(ci) if ci is not None else None
    if kind is None:
        raise ForgeError("no forge configured: set forge.type (github or gitlab) and "
                         "forge.project in ci-nix.yaml, or use --dry-run")
    variables = (("GITHUB_REPOSITORY", "GITHUB_API_URL", "GITHUB_TOKEN") if kind == "github"
                 else ("CI_PROJECT_PATH", "CI_SERVER_URL", "GITLAB_TOKEN"))
    for key, value, variable in (("project", project, variables[0]), ("url", url, variables[1])):
        if value is None and environ.get(variable):
            log.debug("trusted setting forge.%s: from the CI variable %s", key, variable)
    project = project or environ.get(variables[0])
    url = url or environ.get(variables[1])
    token_env = token_env or variables[2]
    if not project:
        raise ForgeError(f"no {kind} project: set forge.project (owner/name) in ci-nix.yaml")
    return ForgeTarget(kind, project, url, token_env, timeout)


def connect(target: ForgeTarget, environ: Mapping[str, str],
            sleep: Callable[[float], None] = proc.sleep) -> tuple[Forge, str]:
    """(forge client, token) for a target; the token comes from the environment only."""
    from ci_nix.mask import add_secret

    token = environ.get(target.token_env, "")
    if not token:
        raise ForgeError(f"{target.token_env} is not set: export a {target.kind} token with "
                         "permission to push branches and open merge requests")
    add_secret(token)
    if target.kind == "github":
        from ci_nix.forge.github import GitHubForge
        return GitHubForge(target.project, token, target.url, sleep,
                           budget=target.timeout), token
    from ci_nix.forge.gitlab import GitLabForge
    return GitLabForge(target.project, token, target.url, sleep, budget=target.timeout), token
