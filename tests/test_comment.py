"""The one PR/MR comment: created once, edited in place, skipped with a reason (local fakes)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import forgefakes
import pytest

from ci_nix import comment
from ci_nix.changes import AttrChange, Change, Comparison, PackageChanges, VersionChange
from ci_nix.config import ForgeConfig
from ci_nix.report import changes as writers

PROJECTS = {"github": "acme/hosts", "gitlab": "infra/nix/hosts"}


@pytest.fixture(params=["github", "gitlab"])
def fake(request: pytest.FixtureRequest) -> Iterator[forgefakes.FakeForge]:
    server = forgefakes.start(request.param, PROJECTS[request.param])
    server.pulls.append(_pull(request.param))
    yield server
    server.close()


def _pull(kind: str) -> dict[str, object]:
    if kind == "github":
        return {"number": 1, "state": "open", "title": "bump", "body": "", "branch": "bump",
                "base": "main", "labels": [], "assignees": [], "reviewers": []}
    return {"iid": 1, "state": "opened", "title": "bump", "description": "",
            "source_branch": "bump", "target_branch": "main", "labels": [], "assignee_ids": [],
            "reviewer_ids": [], "merge_when_pipeline_succeeds": False}


def environ(fake: forgefakes.FakeForge, tmp_path: Path, fork: bool = False,
            token: bool = True) -> dict[str, str]:
    if fake.kind == "github":
        event = tmp_path / "event.json"
        head_repo = "someone/hosts" if fork else fake.project
        event.write_text(json.dumps({"pull_request": {
            "number": 1, "base": {"sha": "1" * 40, "repo": {"full_name": fake.project}},
            "head": {"sha": "2" * 40, "repo": {"full_name": head_repo}}}}))
        env = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request",
               "GITHUB_EVENT_PATH": str(event), "GITHUB_REPOSITORY": fake.project,
               "GITHUB_API_URL": fake.url}
        return env | ({"GITHUB_TOKEN": forgefakes.TOKEN} if token else {})
    env = {"GITLAB_CI": "true", "CI_MERGE_REQUEST_IID": "1", "CI_PROJECT_PATH": fake.project,
           "CI_SERVER_URL": fake.url, "CI_MERGE_REQUEST_PROJECT_ID": "42",
           "CI_MERGE_REQUEST_SOURCE_PROJECT_ID": "77" if fork else "42"}
    return env | ({"GITLAB_TOKEN": forgefakes.TOKEN} if token else {})


def comparison(version: str) -> Comparison:
    web = AttrChange("hosts", "nixosConfigurations.web", "x86_64-linux", Change.CHANGED,
                     "/nix/store/a-web.drv", f"/nix/store/{version}-web.drv",
                     PackageChanges(changed=(VersionChange("greeting", "1.0", version),)))
    return Comparison("1" * 40, "2" * 40, (web,))


def test_created_once_then_edited_in_place(fake: forgefakes.FakeForge, tmp_path: Path) -> None:
    fake.add_comment(1, "LGTM")  # someone else's comment stays as it is
    if fake.kind == "gitlab":
        fake.add_comment(1, "added 1 commit", system=True)
    env = environ(fake, tmp_path)
    first = comment.post(comparison("1.1"), ForgeConfig(), env, sleep=lambda _: None)
    assert first.startswith("commented on"), first
    second = comment.post(comparison("1.2"), ForgeConfig(), env, sleep=lambda _: None)
    assert second.startswith("updated comment"), second
    third = comment.post(comparison("1.2"), ForgeConfig(), env, sleep=lambda _: None)
    assert "up to date" in third
    mine = [c for c in fake.comments if c["body"].startswith(writers.MARKER)]
    assert len(mine) == 1 and "greeting: 1.0 -> 1.2" in mine[0]["body"]
    assert "`hosts#nixosConfigurations.web` | changed" in mine[0]["body"]
    assert [c["body"] for c in fake.comments if c not in mine][0] == "LGTM"
    edits = [r for r in fake.writes() if r.method in ("PATCH", "PUT")]
    creates = [r for r in fake.writes() if r.method == "POST" and r.path != "/graphql"]
    assert len(edits) == 1 and len(creates) == 1


def test_fork_without_token_is_skipped_with_a_reason(fake: forgefakes.FakeForge,
                                                     tmp_path: Path) -> None:
    env = environ(fake, tmp_path, fork=True, token=False)
    said = comment.post(comparison("1.1"), ForgeConfig(), env)
    assert "from a fork" in said and "no comment posted" in said
    assert fake.requests == []


def test_github_fork_with_read_only_token_is_skipped(tmp_path: Path) -> None:
    fake = forgefakes.start("github", "acme/hosts")
    try:
        said = comment.post(comparison("1.1"), ForgeConfig(), environ(fake, tmp_path, fork=True))
        assert "read-only token" in said and fake.requests == []
    finally:
        fake.close()


def test_outside_a_pull_request_nothing_is_posted() -> None:
    said = comment.post(comparison("1.1"), ForgeConfig(), {"GITLAB_CI": "true"})
    assert "not a merge request pipeline" in said
    said = comment.post(comparison("1.1"), ForgeConfig(), {})
    assert "not running in GitHub Actions or GitLab CI" in said


def test_a_refusing_forge_is_reported_not_raised(fake: forgefakes.FakeForge,
                                                 tmp_path: Path) -> None:
    fake.fail_next("GET", 403, body={"message": "Resource not accessible by integration"})
    said = comment.post(comparison("1.1"), ForgeConfig(), environ(fake, tmp_path))
    assert "HTTP 403" in said and "no comment posted" in said


@pytest.mark.parametrize("token_user", [None, "Ci-Nix-Bot"])
def test_only_the_token_user_s_marked_comment_is_edited(fake: forgefakes.FakeForge,
                                                       tmp_path: Path,
                                                       token_user: str | None) -> None:
    # GitHub: GITHUB_TOKEN (an app token: GET /user is 403, GraphQL's viewer names the bot) or
    # a personal token (GET /user); GitLab: GET /user
    fake.token_user = token_user
    forged = fake.add_comment(1, f"{writers.MARKER}\n@org/admins see ![x](https://e.example/x)")
    env = environ(fake, tmp_path)
    first = comment.post(comparison("1.1"), ForgeConfig(), env, sleep=lambda _: None)
    assert first.startswith("commented on"), first
    second = comment.post(comparison("1.2"), ForgeConfig(), env, sleep=lambda _: None)
    assert second.startswith("updated comment"), second
    assert forged["body"].endswith("(https://e.example/x)")  # someone else's: untouched
    mine = [c for c in fake.comments if c["login"] == fake.me]
    assert len(mine) == 1 and "greeting: 1.0 -> 1.2" in mine[0]["body"]
    assert not [r for r in fake.writes() if str(forged["id"]) in r.path]
