"""Each attribute's evaluation cost (seconds, its worker's memory growth) in every report."""

from __future__ import annotations

import io
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import Cli, flake_repo

from ci_nix.models import Case, EvalCost, Failure, FailureType, RunReport, Status
from ci_nix.report import github, json_report, junit

X86 = "x86_64-linux"


def _report() -> RunReport:
    cases = [Case("hosts", f"nixosConfigurations.h{i}", Status.PASSED, system=X86,
                  eval_cost=EvalCost(float(i), 100.0 + i)) for i in range(7)]
    cases.append(Case("hosts", "nixosConfigurations.broken", Status.FAILED,
                      failure=Failure(FailureType.EVAL, "boom"),
                      eval_cost=EvalCost(9.5, 12.25)))
    cases.append(Case("hosts", 'nixosConfigurations."| **x** |"', Status.PASSED,
                      eval_cost=EvalCost(8.0, 1.0)))
    cases.append(Case("hosts", "packages.x86_64-linux.cached", Status.SKIPPED,
                      skip_reason="cached"))  # not evaluated here: no cost
    return RunReport(("hosts",), tuple(cases))


def test_json_report_has_each_attributes_eval_cost() -> None:
    out = io.StringIO()
    json_report.write(_report(), out)
    cases = {c["attr"]: c for c in json.loads(out.getvalue())["cases"]}
    assert cases["nixosConfigurations.h3"]["eval"] == {"seconds": 3.0, "memoryMiB": 103.0}
    assert cases["nixosConfigurations.broken"]["eval"] == {"seconds": 9.5, "memoryMiB": 12.2}
    assert "eval" not in cases["packages.x86_64-linux.cached"]


def test_junit_has_eval_properties() -> None:
    out = io.StringIO()
    junit.write(_report(), out)
    tree = ET.fromstring(out.getvalue())
    props = {case.get("name"): {p.get("name"): p.get("value")
                                for p in case.iter("property")}
             for case in tree.iter("testcase")}
    assert props["nixosConfigurations.h2"]["eval-seconds"] == "2.000"
    assert props["nixosConfigurations.h2"]["eval-memory-mib"] == "102.0"
    assert props["nixosConfigurations.broken"]["eval-seconds"] == "9.500"
    assert "eval-seconds" not in props["packages.x86_64-linux.cached"]


def test_step_summary_lists_the_five_slowest_evaluations() -> None:
    out = io.StringIO()
    github.write_summary(_report(), out)
    text = out.getvalue()
    section = text[text.index("### Slowest evaluations"):]
    rows = [line for line in section.splitlines()[3:] if line.startswith("| ")][:6]
    assert [row.split(" | ")[1] for row in rows[:5]] == ["9.5", "8.0", "6.0", "5.0", "4.0"]
    assert "hosts#nixosConfigurations.broken" in rows[0] and "12 MiB" in rows[0]
    assert "| **x** |" not in section  # an attribute name cannot break the table
    assert len([r for r in section.splitlines() if r.startswith("| hosts#")]) == 5


@pytest.mark.nix
def test_run_and_matrix_report_what_each_attribute_cost(tmp_path: Path, nix_bin: str,
                                                        cli: Cli) -> None:
    nonce = os.urandom(4).hex()
    repo = flake_repo(tmp_path / "repo", f"""{{
  outputs = {{ self }}: let
    mk = name: derivation {{ inherit name; system = "{X86}"; builder = "/bin/sh";
      args = [ "-c" "echo {nonce} > $out" ]; }};
  in {{
    packages.{X86} = {{ a = mk "a"; b = mk "b"; bad = throw "no"; }};
  }};
}}
""")
    matrix = cli("matrix", "--all", repo, "--format", "json", "--no-eval-cache")
    assert matrix.returncode == 0, matrix.stderr
    data = json.loads(matrix.stdout)
    for entry in [*data["jobs"], *data["failures"]]:
        assert entry["eval"]["seconds"] >= 0 and entry["eval"]["memoryMiB"] >= 0, entry
    assert {j["attr"] for j in data["jobs"]} == {f"packages.{X86}.a", f"packages.{X86}.b"}
    summary = tmp_path / "summary.md"
    report, xml = tmp_path / "r.json", tmp_path / "r.xml"
    run = cli("run", "--all", repo, "--json", report, "--junit", xml, "--no-eval-cache",
              env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)})
    assert run.returncode == 1, run.stderr  # `bad` fails evaluation
    cases = {c["attr"]: c for c in json.loads(report.read_text())["cases"]}
    assert set(cases[f"packages.{X86}.a"]["eval"]) == {"seconds", "memoryMiB"}
    assert "eval" in cases[f"packages.{X86}.bad"]
    assert 'name="eval-seconds"' in xml.read_text()
    assert "### Slowest evaluations" in summary.read_text()
