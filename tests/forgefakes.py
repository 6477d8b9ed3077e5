"""Local HTTP fakes of the GitHub and GitLab REST endpoints ci-nix uses, on 127.0.0.1.

Payloads follow the real APIs' shapes (GitHub REST v3 pulls/issues/issue comments, GraphQL
enablePullRequestAutoMerge; GitLab v4 projects/merge_requests/notes/users) so the real PyGithub and
python-gitlab clients can be pointed at them. `fail_next` injects error answers.
"""

from __future__ import annotations

import fnmatch
import json
import re
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = "fake-token-0123456789"


@dataclass
class Recorded:
    method: str
    path: str
    body: Any


@dataclass
class FakeForge:
    """A running fake: `url` is the base to give the client; `pulls` the PRs/MRs it holds."""

    kind: str
    project: str
    server: ThreadingHTTPServer | None = None
    others: list[str] = field(default_factory=list)  # GitLab: more projects, without MRs
    pulls: list[dict[str, Any]] = field(default_factory=list)
    # PR conversation comments (GitHub) / MR notes (GitLab): {"id", "number", "body", "system"}
    comments: list[dict[str, Any]] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    failures: list[tuple[str, int, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # (project, old, new) -> commit subjects, oldest first, for the compare endpoints
    compares: dict[tuple[str, str, str], list[str]] = field(default_factory=dict)
    # branch protection: names or GitLab wildcards (`release/*`)
    protected: list[str] = field(default_factory=list)
    # GitHub: the login of a personal token's user; None: an app installation token (as
    # GITHUB_TOKEN), for which GET /user is 403 and GraphQL's viewer is the app's bot
    token_user: str | None = None

    @property
    def me(self) -> str:
        """Who the token writes comments as."""
        if self.kind == "gitlab":
            return "project_42_bot"
        return self.token_user or "github-actions[bot]"

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        assert isinstance(host, str), f"the fake listens on a host name, not {host!r}"
        return f"http://{host}:{port}"

    def fail_next(self, method: str, status: int, headers: dict[str, str] | None = None,
                  body: dict[str, Any] | None = None) -> None:
        """The next request with this method gets this error answer instead."""
        self.failures.append((method, status, headers or {}, body or {"message": "injected"}))

    def add_comment(self, number: int, body: str, system: bool = False,
                    login: str = "alice") -> dict[str, Any]:
        """A comment someone else wrote (or, GitLab, a system note) on PR/MR `number`."""
        comment = {"id": 900 + len(self.comments), "number": number, "body": body,
                   "system": system, "login": login}
        self.comments.append(comment)
        return comment

    def writes(self) -> list[Recorded]:
        return [r for r in self.requests if r.method != "GET"]

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def _user(login: str, uid: int) -> dict[str, Any]:
    return {"login": login, "id": uid, "node_id": f"U_{uid}",
            "type": "Bot" if login.endswith("[bot]") else "User",
            "avatar_url": "", "url": f"/users/{login}", "html_url": f"/{login}"}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeForge
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # quiet test output
        pass

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = dict(urllib.parse.parse_qsl(raw.decode()))
        fake = self.fake
        with fake.lock:
            fake.requests.append(Recorded(self.command, self.path, body))
            for index, (method, status, headers, payload) in enumerate(fake.failures):
                if method == self.command:
                    del fake.failures[index]
                    return self._send(status, payload, headers)
            if not self._authorized():
                return self._send(401, {"message": "Bad credentials"})
            parts = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(parts.query))
            try:
                status, payload = self.route(self.command, parts.path, query, body)
            except KeyError:
                status, payload = 404, {"message": "Not Found"}
        self._send(status, payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def _authorized(self) -> bool:
        raise NotImplementedError

    def route(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        raise NotImplementedError


class _GitHub(_Handler):
    def _authorized(self) -> bool:
        return self.headers.get("Authorization", "") in (f"token {TOKEN}", f"Bearer {TOKEN}")

    def _repo(self) -> dict[str, Any]:
        owner, name = self.fake.project.split("/")
        base = self.fake.url
        return {"id": 1296269, "node_id": "R_1", "name": name, "full_name": self.fake.project,
                "owner": _user(owner, 1), "private": False, "default_branch": "main",
                "html_url": f"{base}/{self.fake.project}",
                "url": f"{base}/repos/{self.fake.project}"}

    def _pull(self, pr: dict[str, Any]) -> dict[str, Any]:
        base = self.fake.url
        api = f"{base}/repos/{self.fake.project}"
        return {**pr, "id": 1000 + pr["number"], "node_id": f"PR_{pr['number']}",
                "url": f"{api}/pulls/{pr['number']}",
                "html_url": f"{base}/{self.fake.project}/pull/{pr['number']}",
                "issue_url": f"{api}/issues/{pr['number']}", "user": _user("ci-bot", 7),
                "merged": False, "locked": False, "draft": False,
                "head": {"label": f"{self.fake.project.split('/')[0]}:{pr['branch']}",
                         "ref": pr["branch"], "sha": "0" * 40, "repo": self._repo()},
                "base": {"label": f"{self.fake.project.split('/')[0]}:{pr['base']}",
                         "ref": pr["base"], "sha": "1" * 40, "repo": self._repo()},
                "labels": [{"name": name, "id": i, "color": "ededed"}
                           for i, name in enumerate(pr["labels"])],
                "assignees": [_user(name, 20 + i) for i, name in enumerate(pr["assignees"])],
                "requested_reviewers": [_user(n, 40 + i) for i, n in enumerate(pr["reviewers"])],
                "requested_teams": [],
                "auto_merge": {"enabled_by": _user("ci-bot", 7), "merge_method":
                               str(pr["auto_merge"]).lower(), "commit_title": "",
                               "commit_message": ""} if pr.get("auto_merge") else None}

    def _issue(self, pr: dict[str, Any]) -> dict[str, Any]:
        pull = self._pull(pr)
        api = f"{self.fake.url}/repos/{self.fake.project}"
        return {key: pull[key] for key in ("number", "title", "body", "state", "user", "labels",
                                           "assignees", "locked")} | {
            "id": 2000 + pr["number"], "node_id": f"I_{pr['number']}",
            "url": pull["issue_url"], "html_url": pull["html_url"],
            "comments_url": f"{pull['issue_url']}/comments",
            "repository_url": api,
            "comments": sum(c["number"] == pr["number"] for c in self.fake.comments),
            "pull_request": {"url": pull["url"], "html_url": pull["html_url"]}}

    def _comment(self, comment: dict[str, Any]) -> dict[str, Any]:
        api = f"{self.fake.url}/repos/{self.fake.project}"
        return {"id": comment["id"], "node_id": f"IC_{comment['id']}",
                "url": f"{api}/issues/comments/{comment['id']}",
                "html_url": f"{self.fake.url}/{self.fake.project}/pull/{comment['number']}"
                            f"#issuecomment-{comment['id']}",
                "issue_url": f"{api}/issues/{comment['number']}", "body": comment["body"],
                "user": _user(comment.get("login", "github-actions[bot]"), 41898282),
                "created_at": "2026-11-26T10:00:00Z", "updated_at": "2026-11-26T10:00:00Z",
                "author_association": "NONE"}

    def route(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        fake, prefix = self.fake, f"/repos/{self.fake.project}"
        by_number = {pr["number"]: pr for pr in fake.pulls}
        if method == "GET" and path == "/user":
            if fake.token_user is None:
                return 403, {"message": "Resource not accessible by integration",
                             "documentation_url": "https://docs.github.com/rest/users/users"
                                                  "#get-the-authenticated-user", "status": "403"}
            return 200, _user(fake.token_user, 77) | {"name": None, "site_admin": False}
        if method == "POST" and path in ("/graphql", "/api/graphql") and \
                "viewer" in body["query"]:
            return 200, {"data": {"viewer": {"login": fake.me}}}
        if method == "POST" and path in ("/graphql", "/api/graphql"):
            if "enablePullRequestAutoMerge" not in body["query"]:
                return 400, {"message": "unsupported query"}
            node = body["variables"]["input"]["pullRequestId"]
            pr = next(p for p in fake.pulls if f"PR_{p['number']}" == node)
            pr["auto_merge"] = body["variables"]["input"].get("mergeMethod", "MERGE")
            return 200, {"data": {"enablePullRequestAutoMerge": {
                "actor": {"login": "ci-bot"}, "clientMutationId": None}}}
        compare = re.fullmatch(r"/repos/([^/]+/[^/]+)/compare/(\w+)\.\.\.(\w+)", path)
        if method == "GET" and compare:
            subjects = fake.compares[(compare[1], compare[2], compare[3])]
            per_page, page = int(query.get("per_page", 250)), int(query.get("page", 1))
            shown = subjects[(page - 1) * per_page:page * per_page]
            return 200, {"total_commits": len(subjects), "commits": [
                {"sha": f"{i:040x}", "commit": {"message": f"{subject}\n\nbody"}}
                for i, subject in enumerate(shown)]}
        if not path.startswith(prefix):
            raise KeyError(path)
        rest = path[len(prefix):]
        if method == "GET" and rest == "":
            return 200, self._repo()
        branch = re.fullmatch(r"/branches/(.+)", rest)
        if method == "GET" and branch:
            name = urllib.parse.unquote(branch[1])
            return 200, {"name": name, "commit": {"sha": "1" * 40, "url": ""},
                         "protected": any(fnmatch.fnmatchcase(name, p) for p in fake.protected)}
        if rest == "/pulls" and method == "GET":
            found = [pr for pr in fake.pulls
                     if query.get("state", "open") in ("all", pr["state"])
                     and ("head" not in query or query["head"].split(":", 1)[-1] == pr["branch"])]
            return 200, [self._pull(pr) for pr in found]
        if rest == "/pulls" and method == "POST":
            if any(p["branch"] == body["head"] and p["state"] == "open" for p in fake.pulls):
                return 422, {"message": "Validation Failed", "errors": [
                    {"message": f"A pull request already exists for {body['head']}."}]}
            pr = {"number": len(fake.pulls) + 1, "state": "open", "title": body["title"],
                  "body": body.get("body"), "branch": body["head"], "base": body["base"],
                  "labels": [], "assignees": [], "reviewers": []}
            fake.pulls.append(pr)
            return 201, self._pull(pr)
        edit = re.fullmatch(r"/issues/comments/(\d+)", rest)
        if edit:
            comment = next(c for c in fake.comments if c["id"] == int(edit[1]))
            if method == "PATCH":
                comment["body"] = body["body"]
            return 200, self._comment(comment)
        match = re.fullmatch(r"/(pulls|issues)/(\d+)(/\w+)?", rest)
        if not match:
            raise KeyError(path)
        pr = by_number[int(match[2])]
        sub = match[3]
        if match[1] == "issues" and sub is None and method == "GET":
            return 200, self._issue(pr)
        if match[1] == "issues" and sub == "/comments" and method == "GET":
            return 200, [self._comment(c) for c in fake.comments if c["number"] == pr["number"]]
        if match[1] == "issues" and sub == "/comments" and method == "POST":
            comment = {"id": 900 + len(fake.comments), "number": pr["number"],
                       "body": body["body"], "system": False, "login": fake.me}
            fake.comments.append(comment)
            return 201, self._comment(comment)
        if match[1] == "pulls" and sub is None and method == "GET":
            return 200, self._pull(pr)
        if match[1] == "pulls" and sub is None and method == "PATCH":
            for key in ("title", "body", "state"):
                if key in body:
                    pr[key] = body[key]
            return 200, self._pull(pr)
        if sub == "/labels" and method == "POST":
            labels = body if isinstance(body, list) else body["labels"]
            pr["labels"] += [name for name in labels if name not in pr["labels"]]
            return 200, self._pull(pr)["labels"]
        if sub == "/assignees" and method == "POST":
            pr["assignees"] += body["assignees"]
            return 201, self._pull(pr)
        if sub == "/requested_reviewers" and method == "POST":
            pr["reviewers"] += body.get("reviewers", [])
            return 201, self._pull(pr)
        if sub == "/reviews" and method == "GET":  # `reviewed`: who has reviewed it
            return 200, [{"id": 7000 + i, "node_id": f"RV_{i}", "user": _user(name, 60 + i),
                          "body": "", "state": "APPROVED", "commit_id": "0" * 40,
                          "html_url": "", "pull_request_url": ""}
                         for i, name in enumerate(pr.get("reviewed", []))]
        raise KeyError(path)


class _GitLab(_Handler):
    def _authorized(self) -> bool:
        return self.headers.get("PRIVATE-TOKEN") == TOKEN

    def _project(self) -> dict[str, Any]:
        name = self.fake.project.rsplit("/", 1)[-1]
        return {"id": 42, "name": name, "path": name,
                "path_with_namespace": self.fake.project, "default_branch": "main",
                "web_url": f"{self.fake.url}/{self.fake.project}",
                "namespace": {"id": 3, "full_path": self.fake.project.rsplit("/", 1)[0]}}

    def _other(self, encoded: str) -> dict[str, Any]:
        path = urllib.parse.unquote(encoded)
        name = path.rsplit("/", 1)[-1]
        return {"id": 43 + self.fake.others.index(path), "name": name, "path": name,
                "path_with_namespace": path, "default_branch": "main",
                "web_url": f"{self.fake.url}/{path}",
                "namespace": {"id": 3, "full_path": path.rsplit("/", 1)[0]}}

    def _mr(self, mr: dict[str, Any]) -> dict[str, Any]:
        return {**mr, "id": 5000 + mr["iid"], "project_id": 42, "source_project_id": 42,
                "target_project_id": 42, "author": {"id": 7, "username": "ci-bot"},
                "web_url": f"{self.fake.url}/{self.fake.project}/-/merge_requests/{mr['iid']}",
                "assignees": [{"id": i, "username": f"user{i}"} for i in mr["assignee_ids"]],
                "reviewers": [{"id": i, "username": f"user{i}"} for i in mr["reviewer_ids"]],
                "draft": False, "work_in_progress": False, "merge_status": "can_be_merged"}

    def _note(self, note: dict[str, Any]) -> dict[str, Any]:
        login = note.get("login", "project_42_bot")
        return {"id": note["id"], "type": None, "body": note["body"], "attachment": None,
                "author": {"id": 7, "username": login, "name": login, "state": "active"},
                "created_at": "2026-11-26T10:00:00.000Z", "updated_at": "2026-11-26T10:00:00.000Z",
                "system": note["system"], "noteable_id": 5000 + note["number"],
                "noteable_type": "MergeRequest", "project_id": 42,
                "noteable_iid": note["number"], "resolvable": False, "confidential": False,
                "internal": False}

    def _notes(self, method: str, iid: int, note_id: str | None, body: Any) -> tuple[int, Any]:
        fake = self.fake
        if not any(m["iid"] == iid for m in fake.pulls):
            raise KeyError(iid)
        if note_id is None and method == "GET":
            return 200, [self._note(n) for n in fake.comments if n["number"] == iid]
        if note_id is None and method == "POST":
            note = {"id": 900 + len(fake.comments), "number": iid, "body": body["body"],
                    "system": False, "login": fake.me}
            fake.comments.append(note)
            return 201, self._note(note)
        note = next(n for n in fake.comments if n["id"] == int(note_id or 0))
        if method == "PUT":
            note["body"] = body["body"]
        return 200, self._note(note)

    def route(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        fake = self.fake
        encoded = urllib.parse.quote(fake.project, safe="")
        if method == "GET" and path == "/api/v4/user":
            return 200, {"id": 7, "username": fake.me, "name": "ci-nix bot", "state": "active",
                         "locked": False, "bot": True, "avatar_url": "",
                         "web_url": f"{fake.url}/{fake.me}"}
        if method == "GET" and path == "/api/v4/users":
            name = query["username"]
            return 200, ([{"id": 100 + len(name), "username": name, "state": "active"}]
                         if name != "nobody" else [])
        compare = re.fullmatch(r"/api/v4/projects/([^/]+)/repository/compare", path)
        if method == "GET" and compare:
            subjects = fake.compares[(urllib.parse.unquote(compare[1]), query["from"],
                                      query["to"])]
            return 200, {"commits": [{"id": f"{i:040x}", "title": subject}
                                     for i, subject in enumerate(subjects)],
                         "diffs": [], "compare_timeout": False}
        if method == "GET" and re.fullmatch(r"/api/v4/projects/[^/]+/protected_branches", path):
            return 200, [{"id": i, "name": name, "push_access_levels": [],
                          "merge_access_levels": [], "allow_force_push": False}
                         for i, name in enumerate(fake.protected, 1)]
        notes = re.fullmatch(r"/api/v4/projects/([^/]+)/merge_requests/(\d+)/notes(?:/(\d+))?",
                             path)
        if notes:
            if notes[1] not in (encoded, "42"):
                raise KeyError(path)
            return self._notes(method, int(notes[2]), notes[3], body)
        match = re.fullmatch(r"/api/v4/projects/([^/]+)(/merge_requests(?:/(\d+))?(/merge)?)?",
                             path)
        ids = {str(43 + i): name for i, name in enumerate(fake.others)}
        if match and (urllib.parse.unquote(match[1]) in fake.others or match[1] in ids):
            if match[2] is None and method == "GET":  # other projects: read-only, no MRs
                return 200, self._other(ids.get(match[1], match[1]))
            if match[3] is None and method == "GET":
                return 200, []
        if not match or match[1] not in (encoded, "42"):
            raise KeyError(path)
        if match[2] is None and method == "GET":
            return 200, self._project()
        if match[3] is None and method == "GET":
            found = [mr for mr in fake.pulls
                     if query.get("state", "all") in ("all", mr["state"])
                     and query.get("source_branch", mr["source_branch"]) == mr["source_branch"]]
            return 200, [self._mr(mr) for mr in found]
        if match[3] is None and method == "POST":
            if any(m["source_branch"] == body["source_branch"] and m["state"] == "opened"
                   for m in fake.pulls):
                message = "Another open merge request already exists for this source branch"
                return 409, {"message": [message]}
            mr = {"iid": len(fake.pulls) + 1, "state": "opened", "title": body["title"],
                  "description": body.get("description"),
                  "source_branch": body["source_branch"], "target_branch": body["target_branch"],
                  "labels": [], "assignee_ids": [], "reviewer_ids": [],
                  "merge_when_pipeline_succeeds": False,
                  "should_remove_source_branch": body.get("remove_source_branch")}
            fake.pulls.append(mr)
            return 201, self._mr(mr)
        mr = next(m for m in fake.pulls if m["iid"] == int(match[3] or 0))
        if match[4] and method == "PUT":
            mr["merge_when_pipeline_succeeds"] = bool(body.get("merge_when_pipeline_succeeds"))
            return 200, self._mr(mr)
        if method == "GET":
            return 200, self._mr(mr)
        if method == "PUT":
            for key in ("title", "description", "assignee_ids", "reviewer_ids"):
                if key in body:
                    mr[key] = body[key]
            if "add_labels" in body:
                mr["labels"] += [n for n in body["add_labels"].split(",") if n not in mr["labels"]]
            if body.get("state_event") == "close":
                mr["state"] = "closed"
            return 200, self._mr(mr)
        raise KeyError(path)


def start(kind: str, project: str, *others: str) -> FakeForge:
    """Start a fake GitHub ("github") or GitLab ("gitlab") serving one project (and others)."""
    fake = FakeForge(kind, project, others=list(others))
    handler = type("Handler", (_GitHub if kind == "github" else _GitLab,), {"fake": fake})
    fake.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=fake.server.serve_forever, daemon=True).start()
    return fake
