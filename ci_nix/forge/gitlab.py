"""GitLab (gitlab.com or self-hosted) merge requests through python-gitlab."""

from __future__ import annotations

import fnmatch
import functools
import logging
import threading
import urllib.parse
from collections.abc import Callable
from typing import Any, TypeVar

import gitlab
import requests
from gitlab.v4.objects import Project as GlProject
from gitlab.v4.objects import ProjectMergeRequest, ProjectMergeRequestNote

from ci_nix.config import DEFAULT_TIMEOUT
from ci_nix.errors import ForgeError
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

log = logging.getLogger(__name__)
URL = "https://gitlab.com"
T = TypeVar("T")


class _Gitlab(gitlab.Gitlab):
    """python-gitlab without its own retry loop: forge.call (tenacity) is the one policy."""

    def http_request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["obey_rate_limit"] = False
        kwargs["retry_transient_errors"] = False
        kwargs["max_retries"] = 0
        return super().http_request(*args, **kwargs)


def _mr(mr: ProjectMergeRequest) -> MergeRequest:
    state = {"opened": "open"}.get(mr.state, mr.state)
    return MergeRequest(number=mr.iid, url=mr.web_url, title=mr.title,
                        body=mr.description or "", branch=mr.source_branch, state=state)


class GitLabForge:
    """One project on a GitLab instance (`url` is the instance root, e.g. https://gitlab.com)."""

    kind = "gitlab"

    def __init__(self, project: str, token: str, url: str | None = None,
                 sleep: Callable[[float], None] = proc.sleep,
                 budget: float = DEFAULT_TIMEOUT) -> None:
        self._last = threading.local()
        session = requests.Session()
        # python-gitlab's errors carry no headers; keep the last response's for Retry-After.
        session.hooks["response"].append(self._keep_headers)
        self._gl = _Gitlab((url or URL).rstrip("/"), private_token=token, session=session,
                           timeout=request_timeout(budget))
        self._name = project
        self._sleep, self._budget = sleep, budget
        self._mrs: dict[int, ProjectMergeRequest] = {}
        self._notes: dict[int, ProjectMergeRequestNote] = {}

    def _keep_headers(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._last.headers = dict(response.headers)

    def _classify(self, err: Exception) -> Failure | None:
        if isinstance(err, gitlab.GitlabError) and err.response_code is not None:
            headers = getattr(self._last, "headers", {})
            return Failure(err.response_code, str(err.error_message), retry_after(headers),
                           err.response_code == 429)
        if isinstance(err, requests.RequestException):
            return Failure(None, str(err) or type(err).__name__)
        return None

    def _call(self, what: str, action: Callable[[], T]) -> T:
        return call(f"GitLab {self._name}: {what}", action, self._classify, self._sleep,
                    self._budget)

    @functools.cached_property
    def _project(self) -> GlProject:
        return self._call("reading the project", lambda: self._gl.projects.get(self._name))

    def project(self) -> Project:
        project = self._project
        return Project(path=project.path_with_namespace, web_url=project.web_url,
                       default_branch=project.default_branch or "main")

    def _remember(self, mr: ProjectMergeRequest) -> MergeRequest:
        self._mrs[mr.iid] = mr
        return _mr(mr)

    def _get(self, mr: MergeRequest) -> ProjectMergeRequest:
        if mr.number not in self._mrs:
            self._mrs[mr.number] = self._call(
                f"reading merge request !{mr.number}",
                lambda: self._project.mergerequests.get(mr.number))
        return self._mrs[mr.number]

    def find_open(self, branch: str) -> MergeRequest | None:
        found = self._call("listing open merge requests", lambda: list(
            self._project.mergerequests.list(state="opened", source_branch=branch,
                                             get_all=False)))
        mine = [mr for mr in found if mr.source_branch == branch]
        return self._remember(mine[0]) if mine else None

    def protected(self, branch: str) -> bool:
        def rules() -> list[str] | None:
            try:
                return [str(rule.name) for rule in
                        self._project.protectedbranches.list(get_all=True)]
            except gitlab.GitlabError as err:
                if err.response_code == 403:  # a role that may not read them
                    return None
                raise

        found = self._call("listing protected branches", rules)
        if found is None:
            # GitLab itself refuses force-pushes to protected branches by default
            log.info("GitLab %s: this token may not list protected branches; relying on "
                     "GitLab to refuse a push to one", self._name)
            return False
        # names may be wildcards (`release/*`), where * matches anything
        return any(fnmatch.fnmatchcase(branch, name) for name in found)

    def create(self, branch: str, base: str, title: str, body: str) -> MergeRequest:
        data = {"source_branch": branch, "target_branch": base, "title": title,
                "description": body, "remove_source_branch": True}
        mr = self._call("opening a merge request",
                        lambda: self._project.mergerequests.create(data))
        return self._remember(mr)

    def edit(self, mr: MergeRequest, title: str, body: str) -> MergeRequest:
        obj = self._get(mr)
        obj.title, obj.description = title, body
        self._call(f"updating merge request !{mr.number}", obj.save)
        return self._remember(obj)

    def close(self, mr: MergeRequest) -> MergeRequest:
        obj = self._get(mr)
        obj.state_event = "close"
        self._call(f"closing merge request !{mr.number}", obj.save)
        return self._remember(obj)

    def _user_ids(self, names: tuple[str, ...]) -> list[int]:
        ids = []
        for name in names:
            users = self._call(f"looking up user {name}", functools.partial(
                self._gl.users.list, username=name, get_all=False))
            if not users:
                raise ForgeError(f"GitLab {self._name}: no user {name!r}; check "
                                 "update.assignees / update.reviewers")
            ids.append(int(users[0].id))
        return ids

    def decorate(self, mr: MergeRequest, labels: tuple[str, ...], assignees: tuple[str, ...],
                 reviewers: tuple[str, ...]) -> None:
        if not (labels or assignees or reviewers):
            return
        # Only what is missing (a rerun completes an interrupted one), keeping others' choices.
        obj = self._get(mr)
        missing = False
        labels = tuple(name for name in labels if name not in (obj.labels or []))
        if labels:
            obj.add_labels, missing = ",".join(labels), True
        for key, field, names in (("assignees", "assignee_ids", assignees),
                                  ("reviewers", "reviewer_ids", reviewers)):
            have = [int(user["id"]) for user in getattr(obj, key, None) or []]
            wanted = self._user_ids(names) if names else []
            if any(uid not in have for uid in wanted):
                setattr(obj, field, have + [uid for uid in wanted if uid not in have])
                missing = True
        if missing:
            self._call(f"labelling merge request !{mr.number}", obj.save)

    def auto_merge(self, mr: MergeRequest) -> None:
        obj = self._get(mr)
        if getattr(obj, "merge_when_pipeline_succeeds", False):  # set by an earlier run
            return
        self._call(f"setting merge request !{mr.number} to merge when the pipeline succeeds",
                   lambda: obj.merge(merge_when_pipeline_succeeds=True))

    def commits(self, project: str, old: str, new: str, limit: int
                ) -> tuple[tuple[str, ...], int]:
        encoded = urllib.parse.quote(project, safe="")
        data = self._call(f"comparing {project}", lambda: self._gl.http_get(
            f"/projects/{encoded}/repository/compare", query_data={"from": old, "to": new}))
        found = data.get("commits") or [] if isinstance(data, dict) else []
        subjects = [str(c.get("title", "")) for c in found if isinstance(c, dict)]
        return tuple(reversed(subjects[-limit:])), len(subjects)

    def _note(self, note: ProjectMergeRequestNote) -> Comment:
        self._notes[int(note.id)] = note
        return Comment(id=int(note.id), body=str(note.body or ""),
                       author=str((note.author or {}).get("username", "")))

    def _lazy(self, number: int) -> ProjectMergeRequest:
        return self._mrs.get(number) or self._project.mergerequests.get(number, lazy=True)

    @functools.cache  # noqa: B019 - one forge object per run; the user does not change
    def me(self) -> str:
        def user() -> str:
            self._gl.auth()  # GET /user
            assert self._gl.user is not None
            return str(self._gl.user.username)

        return self._call("reading the token's user", user)

    def comments(self, number: int) -> list[Comment]:
        mr = self._lazy(number)
        notes = self._call(f"listing the notes of merge request !{number}",
                           lambda: list(mr.notes.list(get_all=True)))
        # system notes ("added 1 commit") are GitLab's own, never ci-nix's
        return [self._note(n) for n in notes if not getattr(n, "system", False)]

    def add_comment(self, number: int, body: str) -> Comment:
        mr = self._lazy(number)
        return self._note(self._call(f"commenting on merge request !{number}",
                                     lambda: mr.notes.create({"body": body})))

    def edit_comment(self, number: int, comment: Comment, body: str) -> Comment:
        note = self._notes.get(comment.id)
        if note is None:
            note = self._call(f"reading note {comment.id}",
                              lambda: self._lazy(number).notes.get(comment.id))
        note.body = body
        self._call(f"editing note {comment.id} on merge request !{number}", note.save)
        return self._note(note)
