"""The trust boundary: settings that decide where secrets go or what runs with privileges come
from the base revision's ci-nix.yaml (or CI variables), never from a pull request's head."""

from __future__ import annotations

import http.server
import json
import logging
import subprocess
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import forgefakes
import make_workspace
import pytest
from conftest import NIX_CONFIG, ONE_NIX, Cli, flake_repo
from httpcache import BinaryCache
from test_faults import SHALLOW_FLAKE

from ci_nix import trust
from ci_nix import workspace as workspace_mod
from ci_nix.errors import ConfigError
from ci_nix.tools.git import Git

FLAKE = """{
  outputs = { self }: {
    packages.x86_64-linux.hello = derivation {
      name = "hello"; system = "x86_64-linux"; builder = "/bin/sh";
      args = [ "-c" "echo hi > $out" ];
    };
  };
}
"""
BASE_YAML = """\
cache:
  type: attic
  server: https://cache.corp.example
  name: infra
  token-env: CACHE_TOKEN
  substituter: https://cache.corp.example/infra
forge:
  type: github
  project: acme/hosts
nix-options:
  max-jobs: 2
  trusted-public-keys: infra:AAAA
"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env=make_workspace.GIT_ENV | {"PATH": "/usr/bin:/bin"}
                          ).stdout.strip()


def pr_repo(tmp_path: Path, base_yaml: str | None = BASE_YAML) -> tuple[Path, str]:
    """A repo whose first commit (the base) has base_yaml as ci-nix.yaml; returns it and the
    base sha. Tests then write the pull request's ci-nix.yaml into the work tree."""
    repo = tmp_path / "hosts"
    repo.mkdir()
    (repo / "flake.nix").write_text(FLAKE)
    if base_yaml is not None:
        (repo / "ci-nix.yaml").write_text(base_yaml)
    make_workspace.init_repo(repo, "base")
    return repo, git(repo, "rev-parse", "HEAD")


def load(repo: Path, side: trust.Side) -> workspace_mod.Workspace:
    return workspace_mod.load(repo, Git.from_env(), trusted=side)


def pull_request(base: str) -> trust.Side:
    return trust.Side(base, "GitHub pull_request_target event: pull_request.base.sha",
                      pull_request=True)


# --- which side is trusted ---------------------------------------------------------------------

def event(tmp_path: Path, payload: object) -> str:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(payload))
    return str(path)


def test_a_pull_request_event_trusts_its_base(tmp_path: Path) -> None:
    payload = {"pull_request": {"number": 3, "base": {"sha": "b" * 40}, "head": {"sha": "c" * 40}}}
    for name in ("pull_request", "pull_request_target"):
        side = trust.side(None, {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": name,
                                 "GITHUB_EVENT_PATH": event(tmp_path, payload)})
        assert (side.base, side.pull_request) == ("b" * 40, True)
        assert name in side.why
    group = trust.side(None, {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "merge_group",
                              "GITHUB_EVENT_PATH": event(tmp_path, {"merge_group": {
                                  "base_sha": "d" * 40}})})
    assert group.base == "d" * 40
    gitlab = trust.side(None, {"GITLAB_CI": "true", "CI_MERGE_REQUEST_IID": "4",
                               "CI_MERGE_REQUEST_DIFF_BASE_SHA": "e" * 40})
    assert gitlab.base == "e" * 40 and gitlab.pull_request
    assert trust.side("origin/main", {}).base == "origin/main"


def test_a_push_a_schedule_and_a_local_run_trust_the_work_tree(tmp_path: Path) -> None:
    push = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "push",
            "GITHUB_EVENT_PATH": event(tmp_path, {"before": "a" * 40, "after": "b" * 40})}
    assert trust.side(None, push).trusts_worktree  # `before` is a diff base, not a trust base
    assert trust.side(None, {"GITLAB_CI": "true", "CI_COMMIT_BEFORE_SHA": "a" * 40}
                      ).trusts_worktree
    assert trust.side(None, {}).trusts_worktree


def test_a_default_branch_workflow_run_for_a_pull_request_trusts_its_own_commit(
        tmp_path: Path) -> None:
    """workflow_run and issue_comment run the default branch's workflow with secrets; a job
    that checks out the pull request's head must not take its ci-nix.yaml as trusted."""
    repo, base = pr_repo(tmp_path)
    (repo / "ci-nix.yaml").write_text(BASE_YAML.replace("project: acme/hosts",
                                                        "url: http://127.0.0.1:9"))
    payloads = {"workflow_run": {"workflow_run": {"event": "pull_request", "pull_requests": []}},
                "issue_comment": {"issue": {"number": 3, "pull_request": {"url": "u"}}}}
    for name, payload in payloads.items():
        environ = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": name, "GITHUB_SHA": base,
                   "GITHUB_EVENT_PATH": event(tmp_path, payload)}
        side = trust.side(None, environ)
        assert (side.base, side.pull_request) == (base, True) and "GITHUB_SHA" in side.why
        with pytest.raises(ConfigError, match="'forge.url' .*differs from the base revision"):
            load(repo, side)
        assert not trust.side(None, environ | {"GITHUB_SHA": ""}).trusts_worktree
    # the same events about no pull request: a push to the default branch, a plain issue
    for name, payload in (("workflow_run", {"workflow_run": {"event": "push",
                                                             "pull_requests": []}}),
                          ("issue_comment", {"issue": {"number": 4}})):
        assert trust.side(None, {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": name,
                                 "GITHUB_SHA": base, "GITHUB_EVENT_PATH": event(tmp_path, payload)}
                          ).trusts_worktree


def test_a_pull_request_whose_base_cannot_be_read_trusts_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "event.json"
    bad.write_text("[" * 1000)
    side = trust.side(None, {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request_target",
                             "GITHUB_EVENT_PATH": str(bad)})
    assert side.pull_request and side.base is None and not side.trusts_worktree
    assert not trust.side(None, {"GITLAB_CI": "true", "CI_MERGE_REQUEST_IID": "4"}
                          ).trusts_worktree


# --- the head may not change them --------------------------------------------------------------

@pytest.mark.parametrize(("edit", "key"), [
    (("server: https://cache.corp.example", "server: http://127.0.0.1:9"), "cache.server"),
    (("substituter: https://cache.corp.example/infra", "substituter: http://127.0.0.1:9"),
     "cache.substituter"),
    (("token-env: CACHE_TOKEN", "token-env: GITHUB_TOKEN"), "cache.token-env"),
    (("project: acme/hosts", "project: acme/hosts\n  url: http://127.0.0.1:9"), "forge.url"),
    (("type: github", "type: gitlab"), "forge.type"),
    (("max-jobs: 2", "max-jobs: 2\n  post-build-hook: /tmp/steal"), "nix-options.post-build-hook"),
    (("max-jobs: 2", "max-jobs: 2\n  extra-substituters: http://127.0.0.1:9"),
     "nix-options.extra-substituters"),
    # builders run while evaluating: an evaluate-only job's base turns it off
    (("max-jobs: 2", "max-jobs: 2\n  allow-import-from-derivation: true"),
     "nix-options.allow-import-from-derivation"),
    (("  trusted-public-keys: infra:AAAA\n", "  require-sigs: false\n"),
     "nix-options.require-sigs"),
    (("forge:", "update: {branch: main}\nforge:"), "update.branch"),
    (("forge:", "runners: {x86_64-linux: [self-hosted, deployer]}\nforge:"), "runners"),
    # where the registry token goes, when it is used, and which tags it overwrites
    (("forge:", "images: {registry: 127.0.0.1:9}\nforge:"), "images.registry"),
    (("forge:", "images: {repository: other/app}\nforge:"), "images.repository"),
    (("forge:", "images: {token-env: CACHE_TOKEN}\nforge:"), "images.token-env"),
    (("forge:", "images: {push: always}\nforge:"), "images.push"),
    (("forge:", "images: {tags: [latest]}\nforge:"), "images.tags"),
])
def test_the_head_changing_a_trusted_setting_stops_the_run(tmp_path: Path, edit: tuple[str, str],
                                                           key: str) -> None:
    repo, base = pr_repo(tmp_path)
    text = BASE_YAML.replace(*edit)
    assert text != BASE_YAML
    (repo / "ci-nix.yaml").write_text(text)
    with pytest.raises(ConfigError) as raised:
        load(repo, pull_request(base))
    message = str(raised.value)
    assert f"'{key}'" in message and base[:12] in message and "\n" not in message
    section, _, name = key.partition(".")
    rows = text.splitlines()
    start = next(n for n, row in enumerate(rows) if row.startswith(section + ":"))
    line = next(n for n, row in enumerate(rows[start:], start + 1)
                if not name or row.strip().removeprefix(section + ": {").startswith(name + ":"))
    assert message.startswith(f"{repo / 'ci-nix.yaml'}:{line}: ")
    # the same file is the trusted one on a push or a local run
    assert load(repo, trust.side(None, {})).config.file == repo / "ci-nix.yaml"


def test_the_head_may_change_what_is_not_trusted(tmp_path: Path) -> None:
    repo, base = pr_repo(tmp_path)
    text = (BASE_YAML.replace("max-jobs: 2", "max-jobs: 8\n  keep-going: true\n  cores: 4")
            + "systems: [x86_64-linux]\nupdate: {labels: [deps]}\n")
    (repo / "ci-nix.yaml").write_text(text.replace("  name: infra", "  name: infra\n  push: none"))
    ws = load(repo, pull_request(base))
    assert ("max-jobs", "8") in ws.config.nix_options
    assert ws.config.cache.server == "https://cache.corp.example"


def test_a_new_ci_nix_yaml_in_a_pull_request_may_not_point_secrets_anywhere(
        tmp_path: Path) -> None:
    repo, base = pr_repo(tmp_path, base_yaml=None)
    (repo / "ci-nix.yaml").write_text("cache: {type: nix, server: 'http://127.0.0.1:9'}\n")
    with pytest.raises(ConfigError, match="'cache.type' \\(and cache.server\\) differs"):
        load(repo, pull_request(base))
    (repo / "ci-nix.yaml").write_text("systems: [x86_64-linux]\n")
    assert load(repo, pull_request(base)).config.systems == ("x86_64-linux",)


def test_a_relative_signing_key_is_the_trusted_files_neighbour(tmp_path: Path) -> None:
    """cache.secret-key-file relative to the ci-nix.yaml that sets it: a pull request's nearer
    file with the same words names another file (its own directory's), so it differs from the
    base; naming the base's file from there is the same setting. Links are kept for the key's
    reader to refuse (never resolved here)."""
    yaml_text = "cache: {type: nix, server: 'file:///srv/cache', secret-key-file: %s}\n"
    repo, base = pr_repo(tmp_path, base_yaml=yaml_text % "keys/ci.sec")
    assert load(repo, pull_request(base)).config.cache.secret_key_file == repo / "keys/ci.sec"
    nearer = repo / "hosts"
    nearer.mkdir()
    (nearer / "ci-nix.yaml").write_text(yaml_text % "keys/ci.sec")
    with pytest.raises(ConfigError, match="'cache.secret-key-file' differs from the base"):
        workspace_mod.load(nearer, Git.from_env(), trusted=pull_request(base))
    (nearer / "ci-nix.yaml").write_text(yaml_text % "../keys/ci.sec")
    ws = workspace_mod.load(nearer, Git.from_env(), trusted=pull_request(base))
    assert ws.config.cache.secret_key_file == repo / "keys/ci.sec"
    (repo / "keys").symlink_to(tmp_path)
    assert load(repo, pull_request(base)).config.cache.secret_key_file == repo / "keys/ci.sec"


def test_a_pull_request_cannot_drop_the_trusted_file(tmp_path: Path) -> None:
    """The base's file is the one ci-nix's lookup finds at the base: deleting it, or adding a
    nearer one, does not leave the head's defaults unchecked."""
    repo, base = pr_repo(tmp_path)
    (repo / "ci-nix.yaml").unlink()
    with pytest.raises(ConfigError, match=f"{repo} has no ci-nix.yaml: 'cache.type' .*differs "
                       "from the base revision's ci-nix.yaml"):
        load(repo, pull_request(base))
    git(repo, "checkout", "-q", "--", "ci-nix.yaml")
    nearer = repo / "hosts"
    nearer.mkdir()
    (nearer / "ci-nix.yaml").write_text("systems: [x86_64-linux]\n")
    with pytest.raises(ConfigError, match="hosts/ci-nix.yaml:1: 'cache.type' .*differs from "
                       "the base revision's ci-nix.yaml"):
        workspace_mod.load(nearer, Git.from_env(), trusted=pull_request(base))
    # the nearer file may keep the trusted settings and change the rest
    (nearer / "ci-nix.yaml").write_text(BASE_YAML + "systems: [x86_64-linux]\n")
    ws = workspace_mod.load(nearer, Git.from_env(), trusted=pull_request(base))
    assert ws.config.systems == ("x86_64-linux",)


def test_without_a_readable_base_the_head_may_set_no_trusted_setting(tmp_path: Path) -> None:
    repo, _ = pr_repo(tmp_path)
    unreadable = trust.Side(None, "GitHub pull_request_target event without a readable base sha",
                            pull_request=True)
    with pytest.raises(ConfigError, match="trusted side cannot be read"):
        load(repo, unreadable)
    with pytest.raises(ConfigError, match="not in this clone"):
        load(repo, pull_request("f" * 40))
    (repo / "ci-nix.yaml").write_text("systems: [x86_64-linux]\n")
    assert load(repo, unreadable).config.systems == ("x86_64-linux",)


def test_a_config_linked_from_elsewhere_may_set_no_trusted_setting(tmp_path: Path) -> None:
    repo, base = pr_repo(tmp_path)
    elsewhere = tmp_path / "runner-config.yaml"
    elsewhere.write_text(BASE_YAML)  # the same settings, but the pull request picked the file
    (repo / "ci-nix.yaml").unlink()
    (repo / "ci-nix.yaml").symlink_to(elsewhere)
    with pytest.raises(ConfigError, match="'cache.type' is set, but the trusted side cannot be "
                       "read \\(ci-nix.yaml is a symbolic link\\)"):
        load(repo, pull_request(base))


def test_a_shallow_checkout_fetches_the_base_to_read_its_config(tmp_path: Path) -> None:
    origin, base = pr_repo(tmp_path)
    (origin / "README").write_text("head\n")
    git(origin, "add", "README")
    git(origin, "commit", "-qm", "head")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--depth=1", f"file://{origin}", str(clone))
    assert subprocess.run(["git", "-C", str(clone), "cat-file", "-e", base],
                          capture_output=True).returncode != 0
    (clone / "ci-nix.yaml").write_text(BASE_YAML.replace("name: infra", "name: other"))
    with pytest.raises(ConfigError, match=f"'cache.name' differs from the base revision's "
                       f"ci-nix.yaml \\({base[:12]}"):
        load(clone, pull_request(base))


def test_a_config_outside_the_repo_under_test_is_trusted(tmp_path: Path) -> None:
    repo, base = pr_repo(tmp_path)
    outside = tmp_path / "trusted.yaml"
    outside.write_text("cache: {type: nix, server: 'file:///srv/cache'}\n")
    ws = workspace_mod.load(repo, Git.from_env(), outside, trusted=pull_request(base))
    assert ws.config.cache.server == "file:///srv/cache"


def test_verbose_says_where_each_trusted_setting_came_from(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    repo, base = pr_repo(tmp_path)
    with caplog.at_level(logging.DEBUG, logger="ci_nix.trust"):
        load(repo, pull_request(base))
        load(repo, trust.side(None, {}))
    lines = [r.getMessage() for r in caplog.records]
    assert (f"trusted setting cache.server: from {base[:12]}:ci-nix.yaml, the base revision "
            "(GitHub pull_request_target event: pull_request.base.sha)") in lines
    assert "trusted setting nix-options.trusted-public-keys: from the working tree's " \
        f"{repo / 'ci-nix.yaml'} (no pull request: a local run without --base)" in lines
    assert not any("max-jobs" in line for line in lines)


# --- through the command line, with the PR's hosts listening -----------------------------------

def pull_request_target(tmp_path: Path, base: str) -> dict[str, str]:
    return {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request_target",
            "GITHUB_EVENT_PATH": event(tmp_path, {"pull_request": {
                "number": 5, "base": {"sha": base, "repo": {"full_name": "acme/hosts"}},
                "head": {"sha": "c" * 40, "repo": {"full_name": "mallory/hosts"}}}}),
            "GITHUB_REPOSITORY": "acme/hosts", "GITHUB_STEP_SUMMARY": str(tmp_path / "s.md")}


# One Nix: stops before Nix runs
@ONE_NIX
def test_the_cache_token_never_goes_to_a_server_the_pull_request_names(
        tmp_path: Path, cli: Cli, nix_bin: str) -> None:
    repo, base = pr_repo(tmp_path, "cache: {type: attic, server: 'https://cache.corp.example', "
                         "name: infra, token-env: CACHE_TOKEN}\n")
    with BinaryCache() as mallory:
        (repo / "ci-nix.yaml").write_text(
            f"cache: {{type: attic, server: 'https://cache.corp.example', name: infra, "
            f"token-env: CACHE_TOKEN, substituter: '{mallory.url}'}}\n")
        env = pull_request_target(tmp_path, base) | {"CACHE_TOKEN": "SENTINEL-cache-4d1f"}
        result = cli("run", repo, "--no-push", "--junit", tmp_path / "r.xml", env=env)
        requests = list(mallory.requests)
    assert result.returncode == 2, result.stderr
    assert requests == []
    error = [line for line in result.stderr.splitlines() if line.startswith("ci-nix: error:")]
    assert len(error) == 1 and "'cache.substituter' differs from the base revision's" in error[0]
    assert "cache.substituter" in (tmp_path / "r.xml").read_text()  # the report says why


# One Nix: stops before Nix runs
@pytest.mark.parametrize("command", [("diff", "--comment"), ("run", "--comment")])
@ONE_NIX
def test_the_forge_token_never_goes_to_a_forge_the_pull_request_names(
        tmp_path: Path, cli: Cli, command: tuple[str, str], nix_bin: str) -> None:
    repo, base = pr_repo(tmp_path, "systems: [x86_64-linux]\n")
    mallory = forgefakes.start("github", "acme/hosts")
    try:
        (repo / "ci-nix.yaml").write_text(
            f"systems: [x86_64-linux]\nforge: {{url: '{mallory.url}'}}\n")
        env = pull_request_target(tmp_path, base) | {"GITHUB_TOKEN": forgefakes.TOKEN}
        result = cli(*command, repo, env=env)
    finally:
        mallory.close()
    assert result.returncode == 2, result.stderr
    assert "'forge.url' differs from the base revision's ci-nix.yaml" in result.stderr
    assert mallory.requests == []


def test_detect_says_which_side_under_verbose(tmp_path: Path, cli: Cli) -> None:
    repo = flake_repo(tmp_path / "repo", FLAKE)
    (repo / "ci-nix.yaml").write_text("forge: {type: github, project: acme/hosts}\n")
    result = cli("detect", "-v", repo, env={"GITHUB_ACTIONS": "", "GITLAB_CI": ""})
    assert result.returncode == 0, result.stderr
    assert "trusted setting forge.project: from the working tree's" in result.stderr


HOOKED_FLAKE = """{
  nixConfig.post-build-hook = "@HOOK@";
  outputs = { self }: {
    packages.x86_64-linux.hello = derivation {
      name = "hooked-@NONCE@"; system = "x86_64-linux"; builder = "/bin/sh";
      args = [ "-c" "echo hi > $out" ];
    };
  };
}
"""


# One Nix: which options apply does not depend on the Nix version here
@pytest.mark.nix
@ONE_NIX
def test_a_pull_requests_flake_nixconfig_never_applies(tmp_path: Path, cli: Cli,
                                                       nix_bin: str) -> None:
    """A flake's nixConfig is the pull request's nix-options: ci-nix evaluates through its own
    helper flake (the PR's flake is an input), so it never applies, even where nix.conf says
    accept-flake-config = true. Guards that design."""
    marker = tmp_path / "HOOK-RAN"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    repo = flake_repo(tmp_path / "repo", HOOKED_FLAKE.replace("@HOOK@", str(hook))
                      .replace("@NONCE@", uuid.uuid4().hex[:10]))
    env = pull_request_target(tmp_path, git(repo, "rev-parse", "HEAD")) | {
        "NIX_CONFIG": NIX_CONFIG + "accept-flake-config = true\n", "GITLAB_CI": ""}
    result = cli("run", "--all", repo, env=env)
    assert result.returncode == 0, result.stderr
    assert "1 passed" in result.stdout + result.stderr  # it was built: the hook had its chance
    assert not marker.exists()


@contextmanager
def recording() -> Iterator[tuple[str, list[tuple[str, str | None]]]]:
    """An HTTP cache on 127.0.0.1 that has nothing; yields its URL and (path, Authorization)."""
    seen: list[tuple[str, str | None]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            seen.append((self.path, self.headers.get("Authorization")))
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


# One Nix: where the token goes does not depend on the Nix version
@pytest.mark.nix
@ONE_NIX
def test_the_cache_token_goes_only_to_the_push_host(tmp_path: Path, cli: Cli,
                                                    nix_bin: str) -> None:
    repo = flake_repo(tmp_path / "repo", SHALLOW_FLAKE.replace("@NONCE@", uuid.uuid4().hex[:10]))
    secret = "SENTINEL-query-6b1d"
    with recording() as (server, at_server), recording() as (mirror, at_mirror):
        cache = f"{{type: attic, server: '{server}', name: infra, token-env: CACHE_TOKEN"
        for extra in (f", substituter: '{mirror}'}}", "}"):
            (repo / "ci-nix.yaml").write_text(f"cache: {cache}{extra}\n")
            result = cli("run", "--all", "--no-push", repo, env={"CACHE_TOKEN": secret,
                                                                 "GITHUB_ACTIONS": ""})
            assert result.returncode == 0, result.stderr
    # another host named as cache.substituter is asked without the token
    assert at_mirror and all(auth is None for _, auth in at_mirror)
    # the attic server itself (the default substituter, SERVER/NAME) gets it
    assert at_server and all(path.startswith("/infra/") and auth == f"Bearer {secret}"
                             for path, auth in at_server)


LEAK_FLAKE = """{
  outputs = { self }: {
    packages.x86_64-linux.fetch = derivation {
      name = "fetch-@NONCE@"; system = "x86_64-linux"; builder = "/bin/sh";
      args = [ "-c" "echo \\"$GITHUB_TOKEN|$DEPLOY_TOKEN|$BUILD_LABEL\\" > @SEEN@; : > $out" ];
      # what a fetcher lists for proxies: Nix without a daemon passes its own environment's
      impureEnvVars = [ "GITHUB_TOKEN" "DEPLOY_TOKEN" "BUILD_LABEL" ];
      outputHashMode = "flat"; outputHashAlgo = "sha256";
      outputHash = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
    };
  };
}
"""


def test_a_fixed_output_builder_never_sees_a_token(tmp_path: Path, cli: Cli,
                                                   nix_bin: str) -> None:
    """A pull request's fixed-output derivation (its path: name and hash, so the name is
    new each run) has the network and may name any variable in
    impureEnvVars: none of ci-nix's tokens reaches it (CI's, a configured token-env)."""
    seen = tmp_path / "seen"
    repo = flake_repo(tmp_path / "repo", LEAK_FLAKE.replace("@NONCE@", uuid.uuid4().hex)
                      .replace("@SEEN@", str(seen)))
    (repo / "ci-nix.yaml").write_text("forge: {type: github, project: acme/hosts, "
                                      "token-env: DEPLOY_TOKEN}\n")
    result = cli("run", "--all", repo, env={
        "GITHUB_TOKEN": "ghs_SENTINEL_0123456789", "DEPLOY_TOKEN": "SENTINEL_deploy_987654",
        "BUILD_LABEL": "nightly-build-label"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert seen.read_text() == "||nightly-build-label\n"  # what is no token still is
