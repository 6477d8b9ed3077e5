"""ci-nix run --all on the fixture workspace, on every available Nix."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import ONE_NIX, Cli, xml_attr, xml_find, xml_text

pytestmark = pytest.mark.nix


def cases_of(junit: Path) -> dict[tuple[str, str], ET.Element]:
    tree = ET.parse(junit)
    return {(xml_attr(tc, "classname"), xml_attr(tc, "name")): tc for tc in tree.iter("testcase")}


def outcome(case: ET.Element) -> str:
    failure = case.find("failure")
    if failure is not None:
        return f"failed:{failure.get('type')}"
    return "skipped" if case.find("skipped") is not None else "passed"


def test_run_all_reports_every_attribute(fixture_ws: Path, tmp_path: Path, cli: Cli) -> None:
    junit, report = tmp_path / "report.xml", tmp_path / "report.json"
    result = cli("run", "--all", fixture_ws, "--junit", junit, "--json", report)
    assert result.returncode == 1, result.stderr
    cases = {key: outcome(case) for key, case in cases_of(junit).items()}
    assert cases == {
        ("modules", "packages.x86_64-linux.greeting"): "passed",
        ("modules", "packages.x86_64-linux.broken"): "failed:build",
        ("modules", "packages.x86_64-linux.uses-broken"): "failed:dependency",
        ("modules", "packages.x86_64-linux.thrower"): "failed:eval",
        ("modules", "devShells.x86_64-linux.default"): "passed",
        ("modules", "checks.x86_64-linux.fmt"): "passed",
        ("hosts", "nixosConfigurations.web"): "passed",
        ("hosts", "nixosConfigurations.db"): "passed",
        ("hosts", "packages.x86_64-linux.motd"): "passed",
        ("hosts", "packages.x86_64-linux.missing"): "failed:eval",
    }
    suites = [s.get("name") for s in ET.parse(junit).iter("testsuite")]
    assert suites == ["modules", "hosts"]
    assert "4 failed" in result.stdout and "JUnit report:" in result.stdout

    junit_cases = cases_of(junit)
    broken = xml_find(junit_cases[("modules", "packages.x86_64-linux.broken")], "failure")
    assert "exit code 2" in xml_attr(broken, "message")
    assert "expected ';' before" in xml_text(broken)  # the builder's own log tail
    missing = xml_find(junit_cases[("hosts", "packages.x86_64-linux.missing")], "failure")
    assert "attribute 'nope' missing" in xml_attr(missing, "message")
    thrower = xml_find(junit_cases[("modules", "packages.x86_64-linux.thrower")], "failure")
    assert "marked broken" in xml_attr(thrower, "message")
    # where the throw is, on every Nix (2.26 cuts it off without --show-trace)
    assert " at flake.nix:46:" in xml_attr(thrower, "message")
    dependency = xml_find(junit_cases[("modules", "packages.x86_64-linux.uses-broken")], "failure")
    assert "broken-1.0" in xml_attr(dependency, "message")

    data = json.loads(report.read_text())
    assert data["exitCode"] == 1 and data["totals"] == {"passed": 6, "failed": 4, "skipped": 0}
    web = next(c for c in data["cases"] if c["attr"] == "nixosConfigurations.web")
    assert web["system"] == "x86_64-linux" and web["drvPath"].endswith("nixos-system-web.drv")


def test_green_subset_exits_zero(fixture_ws: Path, tmp_path: Path, cli: Cli) -> None:
    junit = tmp_path / "green.xml"
    result = cli("run", fixture_ws, "--only", "hosts#nixosConfigurations.web",
                 "--only", "modules#packages.x86_64-linux.greeting", "--junit", junit)
    assert result.returncode == 0, result.stderr
    assert {k: outcome(v) for k, v in cases_of(junit).items()} == {
        ("hosts", "nixosConfigurations.web"): "passed",
        ("modules", "packages.x86_64-linux.greeting"): "passed",
    }


# One Nix: the directory is refused before any Nix runs
@ONE_NIX
def test_not_a_workspace_exits_two_and_still_writes_junit(tmp_path: Path, cli: Cli,
                                                          nix_bin: str) -> None:
    empty = tmp_path / "plain dir"
    empty.mkdir()
    junit = tmp_path / "r.xml"
    result = cli("run", "--all", empty, "--junit", junit)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("ci-nix: error: ") and "not inside a git repository" in lines[-1]
    assert "Traceback" not in result.stderr
    assert ET.parse(junit).find(".//error") is not None


# One Nix: the run's CI_NIX_NIX is the case's own, a file that does not exist (the workspace's
# Nix only made its lock)
@ONE_NIX
def test_missing_nix_exits_two(fixture_ws: Path, tmp_path: Path, cli: Cli) -> None:
    result = cli("run", "--all", fixture_ws, env={"CI_NIX_NIX": str(tmp_path / "no-such-nix")})
    assert result.returncode == 2
    assert "not found" in result.stderr and "CI_NIX_NIX" in result.stderr
