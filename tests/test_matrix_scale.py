"""Issue 4's done-when: 20 flakes x 15 attributes, 3 broken (one uncatchable), matrix and run."""

from __future__ import annotations

import json
import re
import shlex
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from conftest import ONE_NIX, Cli
from helpers import check_jsonschema

pytestmark = [pytest.mark.nix, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import generate  # noqa: E402


def evaluations_logged(stderr: str) -> int:
    match = re.search(r"evaluated 20 flakes with (\d+) Nix evaluations", stderr)
    assert match, stderr
    return int(match[1])


# One Nix: this proves scale (300 attributes of 20 flakes in at most 256 entries, each once, a
# GitLab child pipeline GitLab's schema takes, every attribute built or failed with its own
# error, under 60 evaluations). How each Nix version fails and isolates these same broken kinds
# (generate's missing, throw, ...: text, position, evaluation count) is test_evaluate's
# test_every_failing_attribute_is_isolated_with_its_own_error, on both; a build failure's
# report on both is test_run_fixtures' and test_junit_ci_reports'.
@ONE_NIX
def test_twenty_flakes_matrix_and_run(tmp_path: Path, nix_bin: str, cli: Cli) -> None:
    gen = generate.generate(tmp_path / "ws", flakes=20, attrs=15,
                            broken=("throw", "build", "missing"),
                            config={"runners": {"x86_64-linux": ["nix", "x64"]}})
    assert len(gen.attrs) == 300 and {a.broken for a in gen.broken} == {"throw", "build",
                                                                         "missing"}
    every = {(a.flake, a.path) for a in gen.attrs}
    eval_broken = {(a.flake, a.path) for a in gen.broken if a.broken != "build"}

    # GitHub: at most 256 entries, every attribute in exactly one, written to GITHUB_OUTPUT
    output = tmp_path / "github_output"
    output.write_text("other=1\n")
    result = cli("matrix", "--all", gen.root, "--format", "github",
                 env={"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(output)})
    assert result.returncode == 0, result.stderr
    matrix = json.loads(result.stdout)
    entries = matrix["include"]
    assert 0 < len(entries) <= 256
    listed = [(e["flake"], attr) for e in entries for attr in e["attrs"]]
    assert sorted(listed) == sorted(every)
    assert all(e["runner"] == ["nix", "x64"] and e["system"] == "x86_64-linux" for e in entries)
    lines = output.read_text().splitlines()
    assert lines[0] == "other=1" and json.loads(lines[1].removeprefix("matrix=")) == matrix
    assert evaluations_logged(result.stderr) < 60  # 20 clean evaluations + bisection

    # GitLab: a child pipeline that passes GitLab's schema
    child = tmp_path / "child.yml"
    result = cli("matrix", "--all", gen.root, "--format", "gitlab", "--output", child)
    assert result.returncode == 0, result.stderr
    code, said = check_jsonschema("vendor.gitlab-ci", child)
    assert code == 0, said
    jobs = {k: v for k, v in yaml.safe_load(child.read_text()).items() if k.startswith("build")}
    assert len(jobs) == len(entries) and all(v["tags"] == ["nix", "x64"] for v in jobs.values())

    # run: every good attribute built, each broken one with its own error
    junit, report = tmp_path / "all.xml", tmp_path / "all.json"
    result = cli("run", "--all", gen.root, "--junit", junit, "--json", report)
    assert result.returncode == 1, result.stderr
    evaluations = evaluations_logged(result.stderr)
    cases = {(c["flake"], c["attr"]): c for c in json.loads(report.read_text())["cases"]}
    assert set(cases) == every
    for attr in gen.attrs:
        case = cases[(attr.flake, attr.path)]
        if attr.broken is None:
            assert case["status"] == "passed", case
        else:
            assert case["status"] == "failed", case
            assert case["failure"]["type"] == ("build" if attr.broken == "build" else "eval")
            text = case["failure"]["message"] + case["failure"]["log"]
            assert generate.ERROR_TEXT[attr.broken] in text, case
    assert evaluations < 60

    # one matrix job: the entry holding the uncatchable failure, run as the workflow would
    [entry] = [e for e in entries if any((e["flake"], a) in eval_broken and
                                         a.endswith("pkg11") for a in e["attrs"])]
    job_junit = tmp_path / "job.xml"
    result = cli("run", *shlex.split(entry["args"]), "--junit", job_junit)
    assert result.returncode == 1, result.stderr
    names = {(tc.get("classname"), tc.get("name"))
             for tc in ET.parse(job_junit).iter("testcase")}
    assert names == {(entry["flake"], attr) for attr in entry["attrs"]}
