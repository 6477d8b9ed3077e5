"""One pipeline: `run`, `diff`, `update --verify` and the nightly bots evaluate with the same
stages and the repo's own ci-nix.yaml, so a setting added once reaches every command."""

from __future__ import annotations

import platform
import signal
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import make_workspace
import pytest
from conftest import ONE_NIX, Cli
from helpers import blocked, never_answering

from ci_nix import evaluate
from ci_nix.models import FlakeEval, Target
from ci_nix.tools import proc
from ci_nix.tools.nix import Nix

SYSTEM = f"{platform.machine()}-linux"


def app_with_input(tmp_path: Path, config: str, never: str | None = None) -> Path:
    """`app` locks the plain repo `dep` (which `pkg` reads) and commits ci-nix.yaml; then `dep`
    gets a harmless commit, so `update` has an input to move. never: a URL that never answers
    (helpers.never_answering), for an attribute `forever` whose evaluation never ends."""
    nonce = uuid.uuid4().hex[:12]
    dep, app = tmp_path / "dep", tmp_path / "app"
    dep.mkdir()
    (dep / "value.txt").write_text("v1\n")
    make_workspace.init_repo(dep, "first")
    app.mkdir()
    slow = (f'forever = builtins.seq ({blocked(never)}) (sh "forever" "echo > $out");'
            if never is not None else "")
    (app / "flake.nix").write_text(f"""{{
  inputs.dep = {{ url = "git+file://{dep}?ref=main"; flake = false; }};
  outputs = {{ self, dep }}:
    let
      sh = name: text: derivation {{
        inherit name;
        system = "{SYSTEM}";
        builder = "/bin/sh";
        args = [ "-c" text ];
        NONCE = "{nonce}";
      }};
    in {{
      packages.{SYSTEM} = {{
        pkg = sh "pkg" "read v < ${{dep}}/value.txt; echo $v > $out";
        {slow}
      }};
    }};
}}
""")
    (app / "ci-nix.yaml").write_text(config)
    make_workspace.init_repo(app, "app")
    locked = make_workspace.nix("flake", "lock", f"git+file://{app}")
    assert locked.returncode == 0, locked.stderr
    make_workspace.git(app, "add", "flake.lock")
    make_workspace.git(app, "commit", "-q", "-m", "lock")
    (dep / "value.txt").write_text("v2\n")
    make_workspace.git(dep, "commit", "-qam", "dep: v2")
    return app


@contextmanager
def stopped_after(seconds: float) -> Iterator[None]:
    """SIGTERM the in-process run if it is still going: a hang fails the test, not the suite."""
    timer = threading.Timer(seconds, proc.cancel, args=(signal.SIGTERM,))
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


# One Nix, as below: what #25 broke is ci-nix's plumbing (update --verify dropping `eval:`); each
# Nix version's never-ending attribute cut at the timeout is test_eval_pool's
# test_a_never_ending_attribute_times_out_and_the_others_pass, and its update test_update_verify's
@pytest.mark.nix
@ONE_NIX
def test_update_verify_keeps_the_repos_eval_timeout(tmp_path: Path, nix_bin: str,
                                                    cli: Cli) -> None:
    """The bug of #25: `update --verify` ignored `eval:`; a never-ending attribute hung it."""
    with never_answering() as url:
        app = app_with_input(tmp_path, "eval:\n  timeout: 2\n", never=url)
        with stopped_after(150):
            result = cli("update", app, "--dry-run", "--verify")
    out = result.stdout
    assert "cancelled" not in result.stderr, "the verification hung: eval.timeout was ignored"
    assert result.returncode == 1, out + result.stderr  # an attribute of the update fails
    assert f"| `app#packages.{SYSTEM}.forever` | failed (timeout): " in out, out
    assert f"| `app#packages.{SYSTEM}.pkg` | passed |" in out, out
    assert "Held back" not in out  # it fails on the current lock too: not the update's fault


@pytest.mark.nix
def test_an_eval_setting_reaches_run_diff_verify_and_bots(tmp_path: Path, cli: Cli,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Written once in ci-nix.yaml, the evaluation limits arrive whole in every command that
    evaluates (one Nix: what is checked is ci-nix's plumbing, not Nix)."""
    # cache: false, so that diff evaluates what run just evaluated
    app = app_with_input(tmp_path, "eval:\n  workers: 1\n  memory: 777\n  timeout: 33\n"
                         "  cache: false\n")
    seen: list[tuple[str, evaluate.Limits]] = []
    command = [""]
    real = evaluate.evaluate

    def recording(nix: Nix, targets: Sequence[Target], selection: evaluate.Selection,
                  limits: evaluate.Limits, *rest: Any,
                  **kwargs: Any) -> list[FlakeEval]:
        seen.append((command[0], limits))
        return real(nix, targets, selection, limits, *rest, **kwargs)

    monkeypatch.setattr(evaluate, "evaluate", recording)
    bots = tmp_path / "bots.yaml"
    bots.write_text(f"forges:\n  gh: {{type: github}}\nrepos:\n  - name: app\n    forge: gh\n"
                    f"    project: o/app\n    clone: {app}\n    update: {{verify: true}}\n")
    for name, args in (("run", ("run", "--all", app)),
                       ("diff", ("diff", "--all", "--base", "HEAD", app)),
                       ("verify", ("update", app, "--dry-run", "--verify")),
                       ("bots", ("update", "--config", bots, "--dry-run"))):
        command[0] = name
        result = cli(*args, cwd=app)
        assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}"
    assert {name for name, _ in seen} == {"run", "diff", "verify", "bots"}, seen
    assert {limits for _, limits in seen} == {evaluate.Limits(1, 777, 33)}, seen
