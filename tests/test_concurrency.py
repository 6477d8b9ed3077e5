"""Two `ci-nix run` processes on the same store and workspace at once both report correctly."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import xml_attr

pytestmark = pytest.mark.nix


def outcomes(junit: Path) -> dict[tuple[str | None, str | None], str]:
    result = {}
    for case in ET.parse(junit).iter("testcase"):
        failure = case.find("failure")
        result[(case.get("classname"), case.get("name"))] = (
            xml_attr(failure, "type") if failure is not None else "passed")
    return result


@pytest.mark.slow
def test_two_runs_at_once(fixture_ws: Path, tmp_path: Path) -> None:
    reports = [tmp_path / f"r{i}.xml" for i in range(2)]
    # The run that finds a derivation locked by the other's build waits for it as Nix does,
    # polling the lock every build-poll-interval (5 s by default): 1 s here, same behaviour.
    env = {**os.environ,
           "NIX_CONFIG": os.environ.get("NIX_CONFIG", "") + "\nbuild-poll-interval = 1\n"}
    procs = [subprocess.Popen([sys.executable, "-m", "ci_nix", "run", "--all", str(fixture_ws),
                               "--junit", str(report)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for report in reports]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 1, err
        assert "Traceback" not in err
    first, second = (outcomes(report) for report in reports)
    assert first == second
    assert first[("modules", "packages.x86_64-linux.broken")] == "build"
    assert first[("modules", "packages.x86_64-linux.uses-broken")] == "dependency"
    assert first[("hosts", "nixosConfigurations.web")] == "passed"
    assert len(first) == 10
