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
from conftest import ONE_NIX, Cli, flake_repo
from httpcache import BinaryCache
from hypothesis import given
from hypothesis import strategies as st
from test_update import (  # noqa: F401 - estate: the fixture workspace on bare remotes
    estate,
    github_checkout,
)

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


def without_mask_lines(stderr: str, secret: str) -> str:
    """stderr without the `::add-mask::` line, which must be there (stdout is clean data)."""
    lines = stderr.splitlines()
    assert f"::add-mask::{secret}" in lines, "the secret is masked before anything else"
    return "\n".join(line for line in lines if line != f"::add-mask::{secret}")


# One Nix: the token goes to the cache client (a fake here) and never to Nix (each Nix's
# processes never get it: test_no_nix_process_inherits_a_token_the_config_names, on both);
# what is shown is ci-nix's handling of the client's echo. The build before it is every run's
@pytest.mark.nix
@ONE_NIX
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
    observed = {"stdout": result.stdout, "stderr": without_mask_lines(result.stderr, secret),
                **{f"argv of call {i}": json.dumps(c["argv"]) + c["stdin"]
                   for i, c in enumerate(calls)},
                **files_under(tmp_path, fixture_ws, skip=[record])}
    assert leaks(secret, observed) == []
    if client == "attic":  # the token went to attic's own config file, which is gone again
        assert all(secret in c["config"] for c in calls)
        assert not any(Path(c["config_path"]).exists() for c in calls)
    else:  # cachix reads it from its environment, never from argv
        assert all(c["env"]["CACHIX_AUTH_TOKEN"] == secret for c in calls)


# One Nix: the token is the forge's (its API and ci-nix's git push), never Nix's; each Nix's
# update of the lock is test_update's test_nightly_opens_updates_and_closes, on both
@pytest.mark.nix
@ONE_NIX
def test_update_never_shows_the_forge_token(
        estate: tuple[Path, Path], tmp_path: Path, cli: Cli) -> None:  # noqa: F811
    _, remotes = estate
    checkout, config, github = github_checkout(tmp_path, remotes)
    secret = forgefakes.TOKEN
    try:
        env = {**github_env(tmp_path), "GITHUB_TOKEN": secret}
        result = cli("update", "-v", checkout, "--config", config, env=env)
        assert result.returncode == 0, result.stderr
        assert "created #1" in result.stdout
        git_config = subprocess.run(["git", "-C", str(checkout), "config", "--list",
                                     "--show-origin"], capture_output=True, text=True).stdout
        remotes_v = subprocess.run(["git", "-C", str(checkout), "remote", "-v"],
                                   capture_output=True, text=True).stdout
        observed = {"stdout": result.stdout,
                    "stderr": without_mask_lines(result.stderr, secret),
                    "git config": git_config, "remotes": remotes_v,
                    **files_under(tmp_path, remotes)}
        assert leaks(secret, observed) == []

        # a token the forge refuses: a clear one-line error, still nothing shown
        bad = "SENTINEL-bad-token-42af"
        result = cli("update", checkout, "--config", config,
                     env={**github_env(tmp_path), "GITHUB_TOKEN": bad})
        assert result.returncode == 2
        assert "token invalid or lacks scope" in result.stderr.strip().splitlines()[-1]
        assert leaks(bad, {"stdout": result.stdout,
                           "stderr": without_mask_lines(result.stderr, bad),
                           **files_under(tmp_path)}) == []
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
    assert capsys.readouterr() == ("", "::add-mask::SENTINEL-unit-1234\n")
    record = logging.LogRecord("x", logging.INFO, "f", 1, "calling with %s",
                               ("SENTINEL-unit-1234",), None)
    assert mask.MaskingFilter().filter(record) and record.getMessage() == "calling with ***"
    # Outside GitHub Actions nothing is printed, and the secret is masked all the same.
    monkeypatch.delenv("GITHUB_ACTIONS")
    mask.add_secret("SENTINEL-unit-5678")
    assert capsys.readouterr() == ("", "")
    assert mask.mask("token SENTINEL-unit-5678.") == "token ***."


# --- credentials in URLs, and stdout as clean data -------------------------------------------

URL_FLAKE = """{
  inputs.secret.url = "git+https://deploy:SENTINEL-url-9c2e@127.0.0.1:9/infra/secret.git";
  inputs.secret.flake = false;
  outputs = { self, secret }: {
    packages.x86_64-linux.hello = derivation {
      name = "hello"; system = "x86_64-linux"; builder = "/bin/sh";
      args = [ "-c" "echo ${secret} > $out" ];
    };
  };
}
"""


@pytest.mark.nix
def test_credentials_in_a_flake_input_url_are_masked_everywhere(tmp_path: Path, cli: Cli,
                                                                nix_bin: str) -> None:
    repo = flake_repo(tmp_path / "repo", URL_FLAKE)
    env = github_env(tmp_path) | {"GITLAB_CI": ""}
    result = cli("run", "-v", "--all", repo, "--junit", tmp_path / "r.xml",
                 "--json", tmp_path / "r.json", env=env)
    assert result.returncode == 1, result.stderr
    junit = (tmp_path / "r.xml").read_text()
    # the failure still says which input could not be fetched, without its credentials
    assert "git+https://***@127.0.0.1:9/infra/secret.git" in junit
    observed = {"stdout": result.stdout, "stderr": result.stderr,
                **files_under(tmp_path, skip=[repo / "flake.nix"])}
    assert "summary.md" in " ".join(observed)  # the step summary was written, and scanned
    assert leaks("SENTINEL-url-9c2e", observed) == []


def test_a_token_in_a_repo_url_is_masked_under_verbose(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "ci-nix.yaml").write_text(
        "repos:\n  - path: gone\n    url: https://ci:SENTINEL-repo-77ab@127.0.0.1:9/x.git\n"
        "  - path: other\n    url: https://SENTINEL-lone-31cd@127.0.0.1:9/y.git\n")
    result = cli("detect", "-v", tmp_path, env={"GIT_TERMINAL_PROMPT": "0"})
    assert result.returncode == 2
    assert "git clone" in result.stderr and "https://***@127.0.0.1:9/x.git" in result.stderr
    assert leaks("SENTINEL", {"stdout": result.stdout, "stderr": result.stderr}) == []


# One Nix: where the mask goes does not depend on the Nix version
@pytest.mark.nix
@ONE_NIX
def test_matrix_json_on_stdout_stays_clean_data(tmp_path: Path, cli: Cli, nix_bin: str) -> None:
    repo = flake_repo(tmp_path / "repo", URL_FLAKE.replace("deploy:SENTINEL-url-9c2e@", "")
                      .replace("inputs.secret", "# inputs.secret").replace(", secret }", " }")
                      .replace("${secret}", "hi"))
    (repo / "ci-nix.yaml").write_text(
        f"cache: {{type: nix, server: 'file://{tmp_path}/cache', token-env: CACHE_TOKEN}}\n")
    env = github_env(tmp_path) | {"CACHE_TOKEN": "SENTINEL-json-5e6f", "GITLAB_CI": ""}
    result = cli("matrix", "--all", "--format", "json", repo, env=env)
    assert result.returncode == 0, result.stderr
    entries = json.loads(result.stdout)  # the whole of stdout is the JSON document
    assert entries and "SENTINEL" not in result.stdout
    assert "::add-mask::SENTINEL-json-5e6f" in result.stderr.splitlines()


def test_mask_hides_url_credentials_but_not_ssh_user_names() -> None:
    from ci_nix.mask import mask

    cases = {
        "fetching 'git+https://deploy:tok3n@host/x.git'": "fetching 'git+https://***@host/x.git'",
        "https://ghp_lonetoken@github.com/a/b": "https://***@github.com/a/b",
        "https://user:p@ss@host:8443/p?q=1": "https://***@host:8443/p?q=1",
        "s3://key:secret@bucket": "s3://***@bucket",
        "git+ssh://git@github.com/a/b and ssh://git@host": "git+ssh://git@github.com/a/b and "
                                                          "ssh://git@host",
        "mail me@example.com, see https://example.com/a@b": "mail me@example.com, see "
                                                            "https://example.com/a@b",
    }
    for text, masked in cases.items():
        assert mask(text) == masked


URL_ENDS = "/?#'\"`<> \t\n\r\f\v"  # what ends a URL's user:password part in text


@given(user=st.text(st.characters(codec="ascii", exclude_characters=URL_ENDS + "@"),
                    min_size=1, max_size=20),
       secret=st.text(st.characters(codec="ascii", exclude_characters=URL_ENDS),
                      min_size=8, max_size=40),
       scheme=st.sampled_from(["https", "git+https", "http", "git+ssh", "s3", "ssh"]),
       before=st.sampled_from(["", "error: ", "'", "… while fetching the input '", "(", "\n"]))
def test_mask_never_shows_a_url_password(user: str, secret: str, scheme: str,
                                         before: str) -> None:
    from ci_nix.mask import mask

    text = f"{before}{scheme}://{user}:{secret}@host.example/repo.git'"
    assert secret not in mask(text) or secret in f"{before}{scheme}://host.example/repo.git'***"


def test_masked_stream_sees_a_secret_written_in_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from ci_nix import mask

    monkeypatch.setattr(mask, "_secrets", set())
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    raw = io.StringIO()
    stream = mask.MaskedStream(raw)
    monkeypatch.setattr("sys.stderr", stream)
    stream.write("status: ")
    mask.add_secret("SENTINEL-piece-9911")  # announced on a line of its own, unmasked
    for piece in ("token SENTINEL-", "piece-", "9911 and https://u:pw", "@h/x\rnext"):
        stream.write(piece)
    stream.flush()
    assert raw.getvalue() == ("status: \n::add-mask::SENTINEL-piece-9911\n"
                              "token *** and https://***@h/x\rnext")


@pytest.mark.nix
def test_no_nix_process_inherits_a_token_the_config_names(tmp_path: Path, cli: Cli,
                                                           nix_bin: str) -> None:
    """A token variable ci-nix.yaml names (cache/forge/images token-env) is withheld from every
    Nix process, those asked ahead while git reads the repos (version, settings) included."""
    record = tmp_path / "seen.txt"
    wrapper = tmp_path / "nix"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "${{MY_AUDIT_TOKEN-unset}}" >> {record}\n'
                       f'exec {nix_bin} "$@"\n')
    wrapper.chmod(0o755)
    repo = flake_repo(tmp_path / "repo", "{ outputs = { self }: { }; }\n")
    (repo / "ci-nix.yaml").write_text(
        "cache: {type: attic, server: 'http://127.0.0.1:9', name: x, "
        "token-env: MY_AUDIT_TOKEN}\n")
    result = cli("matrix", "--format", "json", repo,
                 env={"CI_NIX_NIX": str(wrapper), "MY_AUDIT_TOKEN": "SENTINEL-audit-1"})
    assert result.returncode == 0, result.stderr
    seen = record.read_text().split()
    assert len(seen) >= 2 and set(seen) == {"unset"}, seen


def test_no_git_process_inherits_a_token_the_config_names(tmp_path: Path, cli: Cli) -> None:
    """The git calls that load the workspace before its config is settled (the clone of a
    repo the config names by url:, each repo's rev-parse, the trust check's reads) run
    without the token variables ci-nix.yaml names too: they are withheld as soon as the file
    is read, not only once it is settled."""
    record = tmp_path / "seen.txt"
    wrapper = tmp_path / "git"
    wrapper.write_text('#!/bin/sh\nprintf "%s %s\\n" "${MY_AUDIT_TOKEN-unset}" "$3" '
                       f'>> {record}\nexec git "$@"\n')
    wrapper.chmod(0o755)
    source = flake_repo(tmp_path / "source", "{ outputs = { self }: { }; }\n")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "ci-nix.yaml").write_text(
        f"repos:\n  - path: r\n    url: file://{source}\n"
        "cache: {type: attic, server: 'http://127.0.0.1:9', name: x, "
        "token-env: MY_AUDIT_TOKEN}\n")
    result = cli("detect", "--all", workspace,
                 env={"CI_NIX_GIT": str(wrapper), "MY_AUDIT_TOKEN": "SENTINEL-audit-2"})
    assert result.returncode == 0, result.stderr
    seen = record.read_text().splitlines()
    assert any(line.endswith(" clone") for line in seen), seen
    assert seen and all(line.startswith("unset ") for line in seen), seen
