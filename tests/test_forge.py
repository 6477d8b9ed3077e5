"""The forge clients (real PyGithub / python-gitlab) against local HTTP fakes."""

from __future__ import annotations

from collections.abc import Iterator

import forgefakes
import pytest

from ci_nix.errors import ForgeError
from ci_nix.forge import Forge
from ci_nix.forge.github import GitHubForge
from ci_nix.forge.gitlab import GitLabForge

PROJECTS = {"github": "acme/hosts", "gitlab": "infra/nix/hosts"}


@pytest.fixture(params=["github", "gitlab"])
def fake(request: pytest.FixtureRequest) -> Iterator[forgefakes.FakeForge]:
    server = forgefakes.start(request.param, PROJECTS[request.param])
    yield server
    server.close()


def client(fake: forgefakes.FakeForge, sleeps: list[float], token: str = forgefakes.TOKEN
           ) -> Forge:
    if fake.kind == "github":
        return GitHubForge(fake.project, token, fake.url, sleep=sleeps.append, pace=(0, 0))
    return GitLabForge(fake.project, token, fake.url, sleep=sleeps.append)


def test_create_find_edit_close(fake: forgefakes.FakeForge) -> None:
    forge = client(fake, [])
    assert forge.project().default_branch == "main"
    assert forge.find_open("ci-nix/flake-update") is None
    mr = forge.create("ci-nix/flake-update", "main", "flake.lock: update a", "body one")
    assert (mr.number, mr.state, mr.branch) == (1, "open", "ci-nix/flake-update")
    assert mr.url.startswith(fake.url) and mr.url.endswith("1")

    again = client(fake, []).find_open("ci-nix/flake-update")
    assert again is not None and again.number == 1 and again.body == "body one"
    assert client(fake, []).find_open("other-branch") is None

    forge2 = client(fake, [])
    found = forge2.find_open("ci-nix/flake-update")
    assert found is not None
    edited = forge2.edit(found, "flake.lock: update a, b", "body two")
    assert (edited.title, edited.body) == ("flake.lock: update a, b", "body two")
    closed = forge2.close(edited)
    assert closed.state == "closed"
    assert client(fake, []).find_open("ci-nix/flake-update") is None


def test_labels_assignees_reviewers_and_auto_merge(fake: forgefakes.FakeForge) -> None:
    forge = client(fake, [])
    mr = forge.create("b", "main", "t", "x")
    forge.decorate(mr, ("dependencies", "nix"), ("alice",), ("bob",))
    forge.auto_merge(mr)
    stored = fake.pulls[0]
    assert stored["labels"] == ["dependencies", "nix"]
    if fake.kind == "github":
        assert stored["assignees"] == ["alice"] and stored["reviewers"] == ["bob"]
        assert stored["auto_merge"] == "SQUASH"
        assert any(r.path.endswith("/graphql") for r in fake.requests)
    else:
        # user names are looked up to ids: the fake gives id 100 + len(name)
        assert stored["assignee_ids"] == [105] and stored["reviewer_ids"] == [103]
        assert stored["merge_when_pipeline_succeeds"] is True


def test_unknown_gitlab_user_is_a_clear_error() -> None:
    fake = forgefakes.start("gitlab", "g/p")
    try:
        forge = client(fake, [])
        mr = forge.create("b", "main", "t", "x")
        with pytest.raises(ForgeError, match="no user 'nobody'"):
            forge.decorate(mr, (), ("nobody",), ())
    finally:
        fake.close()


def test_server_errors_are_retried(fake: forgefakes.FakeForge) -> None:
    sleeps: list[float] = []
    fake.fail_next("GET", 502)
    fake.fail_next("GET", 503)
    assert client(fake, sleeps).project().default_branch == "main"
    assert len(sleeps) == 2  # two retries, exponential backoff without Retry-After
    assert sleeps == [1.0, 2.0]


def test_rate_limit_waits_for_retry_after(fake: forgefakes.FakeForge) -> None:
    sleeps: list[float] = []
    fake.fail_next("POST", 429, {"Retry-After": "7"}, {"message": "Too Many Requests"})
    forge = client(fake, sleeps)
    forge.project()
    mr = forge.create("b", "main", "t", "x")
    assert mr.number == 1 and len(fake.pulls) == 1
    assert sleeps == [7.0]


def test_github_secondary_rate_limit_is_retried() -> None:
    fake = forgefakes.start("github", "acme/hosts")
    try:
        sleeps: list[float] = []
        fake.fail_next("GET", 403, {"Retry-After": "3"},
                       {"message": "You have exceeded a secondary rate limit."})
        assert client(fake, sleeps).project().path == "acme/hosts"
        assert sleeps == [3.0]
    finally:
        fake.close()


def test_bad_token_fails_at_once(fake: forgefakes.FakeForge) -> None:
    sleeps: list[float] = []
    with pytest.raises(ForgeError, match="token invalid or lacks scope") as err:
        client(fake, sleeps, token="wrong-token-xyz").project()
    assert sleeps == [] and len(fake.requests) == 1
    assert "wrong-token-xyz" not in str(err.value)


def test_forbidden_is_not_retried(fake: forgefakes.FakeForge) -> None:
    sleeps: list[float] = []
    fake.fail_next("GET", 403, {}, {"message": "Resource not accessible by integration"})
    with pytest.raises(ForgeError, match="HTTP 403: token invalid or lacks scope"):
        client(fake, sleeps).project()
    assert sleeps == []


def test_persistent_outage_gives_up() -> None:
    fake = forgefakes.start("gitlab", "g/p")
    try:
        sleeps: list[float] = []
        for _ in range(5):
            fake.fail_next("GET", 500)
        with pytest.raises(ForgeError, match="gave up after 5 attempts"):
            client(fake, sleeps).project()
        assert len(sleeps) == 4
    finally:
        fake.close()
