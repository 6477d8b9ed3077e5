"""SIGTERM/SIGINT during a build: Nix stops, finished results are kept, the rest is cancelled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import flake_repo

pytestmark = pytest.mark.nix

FLAKE = """{
  outputs = { self }: let
    sh = name: text: derivation { inherit name; system = "x86_64-linux"; builder = "/bin/sh";
      args = [ "-c" text ]; PATH = "/usr/bin:/bin"; };
  in {
    packages.x86_64-linux.quick = sh "quick" "echo @NONCE@ > $out";
    packages.x86_64-linux.slow = sh "slow" "echo started; sleep 300 # @NONCE@";
  };
}
"""


def builder_running(nonce: str) -> bool:
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if nonce.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    return True
            except OSError:
                pass
    return False


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_during_build_keeps_results(tmp_path: Path, nix_bin: str, signum: int,
                                           code: int) -> None:
    nonce = uuid.uuid4().hex
    repo = flake_repo(tmp_path / "repo", FLAKE.replace("@NONCE@", nonce))
    junit = tmp_path / "report.xml"
    proc = subprocess.Popen([sys.executable, "-m", "ci_nix", "run", "--all", str(repo),
                             "--junit", str(junit)], stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "building 2 attributes" in line:
            break
    deadline = time.monotonic() + 60
    while not builder_running(nonce) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert builder_running(nonce), "the slow builder never started"
    time.sleep(1)  # let the quick one finish
    proc.send_signal(signum)
    assert proc.wait(timeout=30) == code
    err = proc.stderr.read()
    assert "Traceback" not in err

    cases = {tc.get("name"): tc for tc in ET.parse(junit).iter("testcase")}
    assert cases["packages.x86_64-linux.quick"].find("failure") is None
    assert cases["packages.x86_64-linux.quick"].find("skipped") is None
    skipped = cases["packages.x86_64-linux.slow"].find("skipped")
    assert skipped is not None and skipped.get("message") == "cancelled"
    deadline = time.monotonic() + 10
    while builder_running(nonce) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not builder_running(nonce), "the builder outlived ci-nix"


def test_a_new_run_starts_uncancelled() -> None:
    # In one process (the in-process CLI, a library user) a cancelled run must not cancel the next.
    from ci_nix.pipeline import Cancellation
    from ci_nix.tools import proc

    proc.cancel(signal.SIGTERM, grace=0)
    try:
        assert proc.cancelled() == signal.SIGTERM
        with Cancellation().installed():
            assert proc.cancelled() is None
            proc.sleep(0)  # does not raise Cancelled
    finally:
        proc.reset_cancellation()
