"""Secrets never show: every command runs with sentinel tokens, and everything observable is
scanned for them — stdout, stderr, reports, CI files, argv seen by fake clients, git config,
remote URLs and every file left behind. In GitHub Actions each secret is masked first."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable
from pathlib import Path

import forgefakes
import pytest
from conftest import Cli
from httpcache import BinaryCache
from test_update import estate  # noqa: F401 - fixture: the fixture workspace on bare remotes

FAKES = Path(__file__).resolve().parent / "fakes"
FAST = {"CI_NIX_CACHE_RETRY_BASE": "0.01", "CI_NIX_CACHE_RETRY_TOTAL": "60",
        "CI_NIX_CACHE_TIMEOUT": "5", "CI_NIX_CACHE_RETRY_ATTEMPTS": "3"}


def leaks(secret: str, texts: dict[str, str]) -> list[str]:
    return [where for where, text in texts.items() if secret in text]


def files_under(*roots: Path, skip: Iterable[Path] = ()) -> dict[str, str]:
    skipped = {p.resolve() for p in skip}
    found = {}
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink() and path.resolve() not in skipped:
                try:
                    found[str(path)] = path.read_bytes().decode(errors="replace")
                except OSError:
                    pass
    return found


def github_env(tmp_path: Path) -> dict[str, str]:
    return {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
            "GITHUB_OUTPUT": str(tmp_path / "output.txt")}


def without_mask_lines(stdout: str, secret: str) -> str:
    lines = stdout.splitlines()
    assert f"::add-mask::{secret}" in lines, "the secret is masked before anything else"
    return "\n".join(line for line in lines if line != f"::add-mask::{secret}")


@pytest.mark.nix
@pytest.mark.parametrize("client", ["attic", "cachix"])
def test_run_never_shows_the_cache_token(client: str, fixture_ws: Path, tmp_path: Path,
                                         cli: Cli) -> None:
    secret = f"SENTINEL-{client}-7f3c9a1e5d"
    record = tmp_path / "calls.jsonl"
    with BinaryCache() as server:
        (fixture_ws / "ci-nix.yaml").write_text(
            "repos: [{path: modules}, {path: hosts}]\n"
            f"cache: {{type: {client}, server: '{server.url}', name: infra, "
            f"token-env: CACHE_TOKEN, substituter: '{server.url}'}}\n")
        env = {**FAST, **github_env(tmp_path), "CACHE_TOKEN": secret,
               "CI_NIX_ATTIC": str(FAKES / "attic"), "CI_NIX_CACHIX": str(FAKES / "cachix"),
               "FAKE_CLIENT_RECORD": str(record), "FAKE_CLIENT_FAIL_TIMES": "1",
               # a client that echoes its token in an error must not leak it through ci-nix
               "FAKE_CLIENT_FAIL_STDERR": f"Error: connection reset (token {secret})"}
        result = cli("run", "-v", "--all", fixture_ws,
                     "--only", "modules#packages.x86_64-linux.greeting",
                     "--junit", tmp_path / "r.xml", "--json", tmp_path / "r.json", env=env)
    assert result.returncode == 0, result.stderr
    calls = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(calls) == 2 and all(call["program"] == client for call in calls)
    assert "retry" in result.stderr.lower()  # the echoed error was seen, and retried
    observed = {"stdout": without_mask_lines(result.stdout, secret), "stderr": result.stderr,
                **{f"argv of call {i}": json.dumps(c["argv"]) + c["stdin"]
                   for i, c in enumerate(calls)},
                **files_under(tmp_path, fixture_ws, skip=[record])}
    assert leaks(secret, observed) == []
    if client == "attic":  # the token went to attic's own config file, which is gone again
        assert all(secret in c["config"] for c in calls)
        assert not any(Path(c["config_path"]).exists() for c in calls)
    else:  # cachix reads it from its environment, never from argv
        assert all(c["env"]["CACHIX_AUTH_TOKEN"] == secret for c in calls)


@pytest.mark.nix
def test_update_never_shows_the_forge_token(
        estate: tuple[Path, Path], tmp_path: Path, cli: Cli) -> None:  # noqa: F811
    _, remotes = estate
    github = forgefakes.start("github", "acme/hosts")
    secret = forgefakes.TOKEN
    try:
        checkout = tmp_path / "hosts"
        subprocess.run(["git", "clone", "-q", str(remotes / "hosts-gh.git"), str(checkout)],
                       check=True)
        config = tmp_path / "ci-nix.yaml"
        config.write_text(f"forge: {{type: github, url: '{github.url}', project: acme/hosts}}\n")
        env = {**github_env(tmp_path), "GITHUB_TOKEN": secret}
        result = cli("update", "-v", checkout, "--config", config, env=env)
        assert result.returncode == 0, result.stderr
        assert "created #1" in result.stdout
        git_config = subprocess.run(["git", "-C", str(checkout), "config", "--list",
                                     "--show-origin"], capture_output=True, text=True).stdout
        remotes_v = subprocess.run(["git", "-C", str(checkout), "remote", "-v"],
                                   capture_output=True, text=True).stdout
        observed = {"stdout": without_mask_lines(result.stdout, secret),
                    "stderr": result.stderr, "git config": git_config, "remotes": remotes_v,
                    **files_under(tmp_path, remotes)}
        assert leaks(secret, observed) == []

        # a token the forge refuses: a clear one-line error, still nothing shown
        bad = "SENTINEL-bad-token-42af"
        result = cli("update", checkout, "--config", config,
                     env={**github_env(tmp_path), "GITHUB_TOKEN": bad})
        assert result.returncode == 2
        assert "token invalid or lacks scope" in result.stderr.strip().splitlines()[-1]
        assert leaks(bad, {"stdout": without_mask_lines(result.stdout, bad),
                           "stderr": result.stderr, **files_under(tmp_path)}) == []
    finally:
        github.close()


def test_mask_is_announced_once_and_applied_to_logs(capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import logging

    from ci_nix import mask

    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setattr(mask, "_secrets", set())
    mask.add_secret("SENTINEL-unit-1234")
    mask.add_secret("SENTINEL-unit-1234")
    assert capsys.readouterr().out == "::add-mask::SENTINEL-unit-1234\n"
    record = logging.LogRecord("x", logging.INFO, "f", 1, "calling with %s",
                               ("SENTINEL-unit-1234",), None)
    assert mask.MaskingFilter().filter(record) and record.getMessage() == "calling with ***"
    # Outside GitHub Actions nothing is printed, and the secret is masked all the same.
    monkeypatch.delenv("GITHUB_ACTIONS")
    mask.add_secret("SENTINEL-unit-5678")
    assert capsys.readouterr().out == ""
    assert mask.mask("token SENTINEL-unit-5678.") == "token ***."
