"""GitHub (and GitHub Enterprise) pull requests through PyGithub."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import github
from github import Auth, Github, GithubException
from github.Issue import Issue
from github.IssueComment import IssueComment
from github.PullRequest import PullRequest
from github.Repository import Repository

from ci_nix.config import DEFAULT_TIMEOUT
from ci_nix.forge import (
    Comment,
    Failure,
    MergeRequest,
    Project,
    call,
    request_timeout,
    retry_after,
)
from ci_nix.tools import proc

API_URL = "https://api.github.com"
T = TypeVar("T")


def _classify(err: Exception) -> Failure | None:
    if isinstance(err, GithubException):
        data = err.data if isinstance(err.data, dict) else {}
        message = str(data.get("message") or err.message or f"HTTP {err.status}")
        headers = dict(err.headers or {})
        limited = (isinstance(err, github.RateLimitExceededException)
                   or "rate limit" in message.lower() or "retry-after" in
                   {key.lower() for key in headers})
        return Failure(err.status, message, retry_after(headers), limited)
    if isinstance(err, (ConnectionError, OSError)) or type(err).__module__.startswith("requests"):
        return Failure(None, str(err) or type(err).__name__)
    return None


def _mr(pr: PullRequest) -> MergeRequest:
    state = "merged" if pr.merged else str(pr.state)
    return MergeRequest(number=pr.number, url=pr.html_url, title=pr.title, body=pr.body or "",
                        branch=pr.head.ref, state=state)

# seconds between requests, and between writes (GitHub's secondary rate limits)
PACE = (0.25, 1.0)


class GitHubForge:
    """One repository on a GitHub instance (`url` is the API root, e.g. https://api.github.com)."""

    kind = "github"

    def __init__(self, project: str, token: str, url: str | None = None,
                 sleep: Callable[[float], None] = proc.sleep,
                 pace: tuple[float, float] | None = None, budget: float = DEFAULT_TIMEOUT
                 ) -> None:
        # pace: PyGithub's spacing between requests / writes (default PACE), which keeps bots
        # clear of the secondary rate limits. retry=None: tenacity in forge.call is the one
        # retry policy for both forges.
        pace = PACE if pace is None else pace
        self._gh = Github(auth=Auth.Token(token), base_url=(url or API_URL).rstrip("/"),
                          retry=None, timeout=round(request_timeout(budget)),
                          seconds_between_requests=pace[0],
                          seconds_between_writes=pace[1])
        self._name = project
        self._sleep, self._budget = sleep, budget
        self._pulls: dict[int, PullRequest] = {}
        self._issues: dict[int, Issue] = {}
        self._comments: dict[int, IssueComment] = {}

    def _call(self, what: str, action: Callable[[], T]) -> T:
        return call(f"GitHub {self._name}: {what}", action, _classify, self._sleep, self._budget)

    @functools.cached_property
    def _repo(self) -> Repository:
        return self._call("reading the repository", lambda: self._gh.get_repo(self._name))

    def project(self) -> Project:
        repo = self._repo
        return Project(path=repo.full_name, web_url=repo.html_url,
                       default_branch=repo.default_branch)

    def _remember(self, pr: PullRequest) -> MergeRequest:
        self._pulls[pr.number] = pr
        return _mr(pr)

    def _pull(self, mr: MergeRequest) -> PullRequest:
        if mr.number not in self._pulls:
            self._pulls[mr.number] = self._call(
                f"reading pull request #{mr.number}", lambda: self._repo.get_pull(mr.number))
        return self._pulls[mr.number]

    def find_open(self, branch: str) -> MergeRequest | None:
        owner = self._name.split("/")[0]
        pulls = self._call("listing open pull requests", lambda: list(
            self._repo.get_pulls(state="open", head=f"{owner}:{branch}")))
        mine = [pr for pr in pulls if pr.head.ref == branch]
        return self._remember(mine[0]) if mine else None

    def protected(self, branch: str) -> bool:
        def ask() -> bool:
            try:
                return bool(self._repo.get_branch(branch).protected)
            except GithubException as err:
                if err.status == 404:  # no such branch yet: rules by pattern are not shown
                    return False
                raise

        return self._call(f"reading branch {branch}", ask)

    def create(self, branch: str, base: str, title: str, body: str) -> MergeRequest:
        pr = self._call("opening a pull request", lambda: self._repo.create_pull(
            base=base, head=branch, title=title, body=body, maintainer_can_modify=True))
        return self._remember(pr)

    def edit(self, mr: MergeRequest, title: str, body: str) -> MergeRequest:
        pr = self._pull(mr)
        self._call(f"updating pull request #{mr.number}", lambda: pr.edit(title=title, body=body))
        return self._remember(pr)

    def close(self, mr: MergeRequest) -> MergeRequest:
        pr = self._pull(mr)
        self._call(f"closing pull request #{mr.number}", lambda: pr.edit(state="closed"))
        return self._remember(pr)

    def decorate(self, mr: MergeRequest, labels: tuple[str, ...], assignees: tuple[str, ...],
                 reviewers: tuple[str, ...]) -> None:
        # Only what is missing: a rerun completes what an interrupted one left, and nobody who
        # already reviewed is asked again.
        pr = self._pull(mr)
        labels = tuple(n for n in labels if n not in {label.name for label in pr.labels})
        if labels:
            self._call("adding labels", lambda: pr.add_to_labels(*labels))
        assignees = tuple(n for n in assignees if n not in {u.login for u in pr.assignees})
        if assignees:
            self._call("adding assignees", lambda: pr.add_to_assignees(*assignees))
        if reviewers:
            asked = {u.login for u in pr.requested_reviewers}
            asked |= {f"{t.organization.login}/{t.slug}" if t.organization else t.slug
                      for t in pr.requested_teams}
            if any("/" not in name for name in reviewers if name not in asked):
                asked |= {review.user.login for review in self._call(
                    f"listing the reviews of #{mr.number}", lambda: list(pr.get_reviews()))
                    if review.user is not None}
            wanted = [name for name in reviewers if name not in asked
                      and name.split("/", 1)[-1] not in asked]
            users = [name for name in wanted if "/" not in name]
            teams = [name.split("/", 1)[1] for name in wanted if "/" in name]  # org/team
            kwargs: dict[str, Any] = {"reviewers": users}
            if teams:
                kwargs["team_reviewers"] = teams
            if wanted:
                self._call("requesting reviews", lambda: pr.create_review_request(**kwargs))

    def auto_merge(self, mr: MergeRequest) -> None:
        # REST has no auto-merge switch; GraphQL enablePullRequestAutoMerge does (the repository
        # must allow auto-merge, and branch protection must require a check).
        pr = self._pull(mr)
        if pr.auto_merge is not None:  # enabled by an earlier run
            return
        self._call("enabling auto-merge", lambda: pr.enable_automerge(merge_method="SQUASH"))

    # A pull request's conversation comments are its issue's comments in the REST API.
    def commits(self, project: str, old: str, new: str, limit: int
                ) -> tuple[tuple[str, ...], int]:
        # The compare API lists oldest first; its last page holds the newest commits.
        def page(number: int) -> dict[str, Any]:
            _, data = self._gh.requester.requestJsonAndCheck(
                "GET", f"/repos/{project}/compare/{old}...{new}",
                parameters={"per_page": limit, "page": number})
            return data if isinstance(data, dict) else {}

        first = self._call(f"comparing {project}", lambda: page(1))
        total = int(first.get("total_commits") or 0)
        found = list(first.get("commits") or [])
        if total > limit:
            last = -(-total // limit)
            found = [commit for number in (last - 1, last)
                     for commit in self._call(f"comparing {project}",
                                              functools.partial(page, number)).get("commits")
                     or []]
        subjects = [str(c.get("commit", {}).get("message", "")).split("\n", 1)[0]
                    for c in found if isinstance(c, dict)]
        return tuple(reversed(subjects[-limit:])), total

    def _issue(self, number: int) -> Issue:
        if number not in self._issues:
            self._issues[number] = self._call(f"reading pull request #{number}",
                                              lambda: self._repo.get_issue(number))
        return self._issues[number]

    def _comment(self, found: IssueComment) -> Comment:
        self._comments[found.id] = found
        return Comment(id=found.id, body=found.body or "", author=found.user.login)

    @functools.cache  # noqa: B019 - one forge object per run; the login does not change
    def me(self) -> str:
        def login() -> str | None:
            try:
                return str(self._gh.get_user().login)  # GET /user: a personal or OAuth token
            except GithubException as err:
                if err.status == 403:  # an app installation token such as GITHUB_TOKEN
                    return None
                raise

        found = self._call("reading the token's user", login)
        if found is not None:
            return found
        # GraphQL's viewer is the app's bot user (github-actions[bot] for GITHUB_TOKEN)
        _, data = self._call("reading the token's user", lambda: self._gh.requester.graphql_query(
            "query { viewer { login } }", {}))
        return str(data["data"]["viewer"]["login"])

    def comments(self, number: int) -> list[Comment]:
        issue = self._issue(number)
        found = self._call(f"listing the comments of #{number}",
                           lambda: list(issue.get_comments()))
        return [self._comment(c) for c in found]

    def add_comment(self, number: int, body: str) -> Comment:
        issue = self._issue(number)
        return self._comment(self._call(f"commenting on #{number}",
                                        lambda: issue.create_comment(body)))

    def edit_comment(self, number: int, comment: Comment, body: str) -> Comment:
        found = self._comments.get(comment.id)
        if found is None:
            found = self._call(f"reading comment {comment.id}",
                               lambda: self._repo.get_issue(number).get_comment(comment.id))
        self._call(f"editing comment {comment.id} on #{number}", lambda: found.edit(body))
        return self._comment(found)
