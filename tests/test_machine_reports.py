"""Which machine built what: from Nix's events to the JUnit property and the step summary."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET

from ci_nix.build import BuildLog
from ci_nix.models import Case, RunReport, Status
from ci_nix.report import github, json_report, junit

DRV = "/nix/store/0c3i5g0x8a3b1w0v5y8z7k9l2m4n6p1q-hello.drv"


def _event(**fields: object) -> str:
    return "@nix " + json.dumps(fields)


def test_build_log_records_the_remote_machine_and_builder_errors() -> None:
    log = BuildLog()
    # as Nix 2.8 and 2.26 print them (actBuild = 105: drv, machine, round, rounds)
    log.feed(_event(action="start", id=7, level=3, type=105, text=f"building '{DRV}' on "
                    "'ssh://root@127.0.0.1'", fields=[DRV, "ssh://root@127.0.0.1", 1, 1]))
    log.feed(_event(action="start", id=8, level=3, type=105, text="building 'b.drv'",
                    fields=["/nix/store/b.drv", "", 1, 1]))
    log.feed(_event(action="msg", level=0, msg="cannot build on 'ssh://arm': \x1b[31;1merror:"
                    "\x1b[0m failed to start SSH connection to 'arm': ssh: Could not\n resolve"))
    assert log.machines == {DRV: "ssh://root@127.0.0.1"}
    assert log.builder_errors == {
        "ssh://arm": "failed to start SSH connection to 'arm': ssh: Could not resolve"}


REPORT = RunReport(("hosts",), (
    Case("hosts", "packages.aarch64-linux.a", Status.PASSED, system="aarch64-linux",
         drv_path=DRV, machine="ssh://arm"),
    Case("hosts", "packages.x86_64-linux.a", Status.PASSED, system="x86_64-linux",
         drv_path=DRV),
    Case("hosts", "packages.x86_64-linux.b", Status.SKIPPED, drv_path=DRV, skip_reason="cached"),
))


def test_junit_names_the_machine_only_for_remote_builds() -> None:
    out = io.StringIO()
    junit.write(REPORT, out)
    props = [{p.get("name"): p.get("value") for p in case.iter("property")}
             for case in ET.fromstring(out.getvalue()).iter("testcase")]
    assert props[0]["machine"] == "ssh://arm"
    assert "machine" not in props[1]


def test_json_report_names_the_machine() -> None:
    out = io.StringIO()
    json_report.write(REPORT, out)
    cases = json.loads(out.getvalue())["cases"]
    assert [c.get("machine") for c in cases] == ["ssh://arm", None, None]


def test_step_summary_has_a_built_on_column_when_a_builder_was_used() -> None:
    out = io.StringIO()
    github.write_summary(REPORT, out)
    assert "| flake | passed | failed | skipped | built on |" in out.getvalue()
    assert "| hosts | 2 | 0 | 1 | ssh://arm (1), this machine (1) |" in out.getvalue()
    local = io.StringIO()
    github.write_summary(RunReport(REPORT.suites, REPORT.cases[1:]), local)
    assert "built on" not in local.getvalue()


def test_matrix_sends_builder_only_systems_to_a_runner_that_reaches_the_builders() -> None:
    from dataclasses import replace

    from test_matrix import ARM, X86, job, make_plan

    from ci_nix import matrix

    plan = make_plan([job("a", "packages.aarch64-linux.x", ARM),
                      job("a", "packages.riscv64-linux.x", "riscv64-linux")],
                     buildable=(X86, ARM, "riscv64-linux"))
    plan = replace(plan, remote_systems=frozenset({ARM, "riscv64-linux"}))
    entries = matrix.entries(plan, {}, require_runner=True)
    assert [(e.system, e.runner) for e in entries] == [(ARM, ("ubuntu-latest",)),
                                                       ("riscv64-linux", ("ubuntu-latest",))]
    # 'runners:' still wins
    (arm, _) = matrix.entries(plan, {ARM: ("arm64",)})
    assert arm.runner == ("arm64",)


def test_only_failures_a_builder_explains_are_put_on_it() -> None:
    from ci_nix.build import _name_builders
    from ci_nix.models import Failure, FailureType
    from ci_nix.tools.machines import Machine

    arm = (Machine("ssh://arm", ("aarch64-linux", "x86_64-linux")),)
    local = frozenset({"x86_64-linux"})
    download = Failure(FailureType.OTHER, "unable to download 'https://x': HTTP error 404")
    assert _name_builders(download, "aarch64-linux", arm, {}, local) == download
    build = Failure(FailureType.BUILD, "builder for x.drv failed with exit code 1")
    assert _name_builders(build, "aarch64-linux", arm, {"ssh://arm": "down"}, local) == build
    platform = Failure(FailureType.PLATFORM, "x.drv needs aarch64-linux; this machine is x86_64")
    named = _name_builders(platform, "aarch64-linux", arm, {}, local)
    assert named.message == ("remote builder for aarch64-linux failed: ssh://arm did not take "
                             "it (busy, or lacks a required feature)")
    assert "Nix: x.drv needs aarch64-linux" in named.log
    assert named.hint is not None and "leave aarch64-linux out of `systems:`" in named.hint
    other = Failure(FailureType.OTHER, "unable to start any build")
    named = _name_builders(other, "x86_64-linux", arm, {"ssh://arm": "cannot connect"}, local)
    assert named.message == "remote builder for x86_64-linux failed: ssh://arm: cannot connect"
    assert named.hint is not None and "systems:" not in named.hint
