"""The in-process tier itself: `cli` runs main(argv) like a process would, `fake_proc` answers
commands at proc.py's spawn point and records every command ci-nix starts."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from conftest import Cli
from fakeproc import FakeProc, Reply

from ci_nix import __version__, mask
from ci_nix.tools import proc
from ci_nix.tools.nix import Nix


def test_cli_returns_the_exit_code_and_captures_both_streams(cli: Cli, tmp_path: Path) -> None:
    assert cli("--version").stdout == f"ci-nix {__version__}\n"
    bad = cli("junit", tmp_path / "missing.log")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("ci-nix: error: ") and "missing.log" in bad.stderr
    usage = cli("no-such-command")
    assert usage.returncode == 2 and "invalid choice" in usage.stderr


def test_cli_runs_in_the_given_directory_with_the_given_env(cli: Cli, tmp_path: Path,
                                                           fake_proc: FakeProc) -> None:
    fake_proc.on("nix", "--version", stdout="nix (Nix) 2.99.1\n")
    (tmp_path / "ci-nix.yaml").write_text("bogus-key: 1\n")
    result = cli("detect", cwd=tmp_path, env={"CI_NIX_NIX": "nix"})
    assert result.returncode == 2 and "bogus-key" in result.stderr
    assert Path.cwd() != tmp_path  # only for the call


def test_the_loggers_are_left_as_they_were(cli: Cli, caplog: pytest.LogCaptureFixture) -> None:
    # main() configures the ci_nix loggers; a later test's caplog must still see `$ command`
    proc_level = logging.getLogger("ci_nix.proc").level
    cli("--version")
    cli("detect", "/nonexistent")
    assert logging.getLogger("ci_nix.proc").level == proc_level
    with caplog.at_level(logging.INFO, logger="ci_nix.proc"):
        proc.run(["git", "--version"])
    assert "$ git --version" in caplog.text


def test_each_run_starts_with_what_a_new_process_knows(cli: Cli, tmp_path: Path) -> None:
    # A secret this process learnt earlier is not known to the run (a new process would not
    # mask it), and is known again afterwards.
    mask.add_secret("earlier-secret")
    result = cli("junit", tmp_path / "earlier-secret.log")
    assert result.returncode == 2 and "earlier-secret.log" in result.stderr
    assert mask.mask("earlier-secret") == "***"


def test_fake_answers_matching_commands_and_records_all(fake_proc: FakeProc,
                                                        tmp_path: Path) -> None:
    fake_proc.on("nix", "path-info", stdout="/nix/store/aaa-x\n")
    fake_proc.on("attic", "push", returncode=1, stderr="401\n")
    assert proc.run(["nix", "--extra-experimental-features", "nix-command flakes", "path-info",
                     "--json"]).stdout == "/nix/store/aaa-x\n"
    pushed = proc.run(["attic", "push", "c", "/nix/store/aaa-x"], input="more\n")
    assert (pushed.returncode, pushed.stderr) == (1, "401\n")
    real = proc.run(["git", "--version"])  # nothing answers it: it runs for real
    assert real.ok and real.stdout.startswith("git version")
    assert [call.faked for call in fake_proc.calls] == [True, True, False]
    assert fake_proc.ran("attic", "push")[0].stdin == "more\n"
    lines: list[str] = []
    fake_proc.on("nix", "build", stderr="one\ntwo\n", stdout="/nix/store/out\n")
    streamed = proc.stream(["nix", "build", "x"], lines.append)
    assert lines == ["one", "two"] and streamed.stdout == "/nix/store/out\n"


def test_a_handler_computes_the_reply_from_the_call(fake_proc: FakeProc) -> None:
    fake_proc.on("nix", "--version", handler=lambda call: Reply(stdout=" ".join(call.argv[1:])))
    answer = Nix.from_env({"CI_NIX_NIX": "nix"}).run(["--version"]).stdout
    assert answer == "--extra-experimental-features nix-command flakes --version"


def test_strict_fake_refuses_unanswered_commands(fake_proc: FakeProc) -> None:
    fake_proc.strict = True
    with pytest.raises(AssertionError, match="nothing answers"):
        proc.run(["git", "--version"])
    fake_proc.unexpected.clear()  # seen: the fixture would fail the test otherwise
