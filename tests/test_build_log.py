"""The build stage's reading of Nix errors that name no derivation (in-process, no Nix)."""

from __future__ import annotations

import json

import pytest
from fakeproc import FakeProc, Reply

from ci_nix import build
from ci_nix.models import FailureType, Job, Status
from ci_nix.tools.nix import Nix

DRV = "/nix/store/9kc1fnxqy8ryh2bjaflf0fmzp4hyry10-hello-2.12.drv"


def record(**fields: object) -> str:
    return "@nix " + json.dumps(fields)


def test_a_timeout_naming_no_derivation_is_the_timeout_of_the_build_that_failed() -> None:
    """Nix 2.34+ reports "error: timed out after N seconds" without the derivation."""
    log = build.BuildLog()
    log.feed(record(action="start", id=1, level=3, parent=0, text=f"building '{DRV}'",
                    type=105, fields=[DRV, "", 1, 1]))
    log.feed(record(action="result", id=1, type=101, fields=["still compiling"]))
    log.feed(record(action="stop", id=1))
    log.feed(record(action="msg", level=0, msg="error: timed out after 10 seconds"))
    failure = build._unnamed_failure(log, 1, DRV)
    assert failure.type is FailureType.TIMEOUT
    assert "timed out after 10 s" in failure.message
    assert "still compiling" in failure.log


def test_nixs_own_timeout_comes_before_one_a_builder_printed() -> None:
    # a builder printing `@nix {"action":"msg","level":0,"msg":"error: timed out after 1
    # seconds"}` (relayed without raw_msg) does not decide what Nix's own report says
    log = build.BuildLog()
    log.feed(record(action="start", id=1, level=3, parent=0, text=f"building '{DRV}'",
                    type=105, fields=[DRV, "", 1, 1]))
    log.feed(record(action="msg", level=0, msg="error: timed out after 1 seconds"))
    log.feed(record(action="stop", id=1))
    own = "error: timed out after 10 seconds"
    log.feed(record(action="msg", column=None, file=None, level=0, line=None, msg=own,
                    raw_msg=own))
    assert "timed out after 10 s" in build._unnamed_failure(log, 1, DRV).message


def test_an_unclassified_error_is_named_in_the_message() -> None:
    log = build.BuildLog()
    log.feed(record(action="msg", level=0, msg="error: unexpected end-of-file"))
    failure = build._unnamed_failure(log, 1, DRV)
    assert failure.type is FailureType.OTHER
    assert failure.message.endswith("without naming this derivation: error: unexpected "
                                    "end-of-file")


# The run path: `nix build` exits non-zero and names no derivation (Nix crashed, was killed or
# printed something ci-nix does not read). Each job it did not build still fails, type other,
# with the line that says best why: never a green or silent case for a red Nix.
JOB = Job("ws", ("packages", "x86_64-linux", "hello"), "x86_64-linux", DRV,
          (("out", "/nix/store/0d7wjxrvf0r3ikl9imydf6ffrw4hhnmz-hello-2.12"),))


@pytest.mark.parametrize(("stderr", "returncode", "said", "kind_hint"), [
    ("nix: src/libstore/build/derivation-goal.cc:326: void nix::DerivationGoal::outputs"
     "SubstitutionTried(): Assertion `false' failed.\n", 134, "Assertion `false' failed",
     "Nix itself failed"),
    ("Killed\n", 137, "Killed", "out-of-memory killer"),
    ("the frobnicator gave up\n", 1, "the frobnicator gave up", None),
    ("", 1, "printed nothing about it", None),
])
def test_a_red_nix_build_naming_nothing_fails_each_unbuilt_job(
        fake_proc: FakeProc, stderr: str, returncode: int, said: str,
        kind_hint: str | None) -> None:
    fake_proc.on("nix", "--version", stdout="nix (Nix) 2.26.3\n")
    fake_proc.on("nix", "config", "show", stdout="{}")
    fake_proc.on("nix", "build", stderr=stderr, returncode=returncode)
    fake_proc.on("nix", "path-info", stdout=json.dumps({JOB.out_paths[0]: None}))
    outcome = build.build(Nix.from_env({"CI_NIX_NIX": "nix"}), [JOB])
    [case] = outcome.cases
    assert case.status is Status.FAILED and case.failure is not None
    assert case.failure.type is FailureType.OTHER
    assert case.failure.message.startswith(f"not built: nix build exited {returncode} ")
    assert said in case.failure.message
    assert (kind_hint is None) == (case.failure.hint is None)
    if kind_hint is not None:
        assert case.failure.hint is not None and kind_hint in case.failure.hint


def test_a_red_nix_build_whose_outputs_are_all_valid_is_a_failure_of_its_own(
        fake_proc: FakeProc) -> None:
    # every attribute was built, yet Nix exited 1 (its own step failed): the attribute passes,
    # and Nix's failure is a ci-nix.build case with its line, not a silent green run
    fake_proc.on("nix", "--version", stdout="nix (Nix) 2.26.3\n")
    fake_proc.on("nix", "config", "show", stdout="{}")
    fake_proc.on("nix", "build", stderr="error: the frobnicator gave up\n", returncode=1)
    fake_proc.on("nix", "path-info", stdout=json.dumps({JOB.out_paths[0]: {"narSize": 1}}))
    outcome = build.build(Nix.from_env({"CI_NIX_NIX": "nix"}), [JOB])
    attribute, red = outcome.cases
    assert attribute.status is Status.PASSED
    assert (red.flake, red.name, red.status) == (build.BUILD_CLASSNAME, "nix build",
                                                Status.FAILED)
    assert red.failure is not None and red.failure.type is FailureType.OTHER
    assert "exited 1" in red.failure.message and "the frobnicator gave up" in red.failure.message
    fake_proc.on("nix", "build", stderr="", returncode=0)  # the same, green: nothing extra
    assert [c.status for c in build.build(Nix.from_env({"CI_NIX_NIX": "nix"}),
                                          [JOB]).cases] == [Status.PASSED]


DEP = Job("lib", ("packages", "x86_64-linux", "dep"), "x86_64-linux",
          "/nix/store/1kc1fnxqy8ryh2bjaflf0fmzp4hyry10-dep.drv",
          (("out", "/nix/store/1d7wjxrvf0r3ikl9imydf6ffrw4hhnmz-dep"),))


@pytest.mark.parametrize("known", [True, False])
def test_a_dependency_the_run_evaluated_is_checked_in_the_jobs_question(
        fake_proc: FakeProc, known: bool) -> None:
    """A batch that builds a dependency that is no job of its own (an attribute of a later
    batch, say) checks that its outputs are valid too (a build Nix did not report as failed):
    where the run evaluated it (outputs_of), in the one `path-info` that asks about the jobs'
    outputs, without reading its .drv; else as before, from the .drv and a question more.
    Either way a dependency built with invalid outputs fails its dependents as the builder that
    failed."""
    fake_proc.on("nix", "--version", stdout="nix (Nix) 2.26.3\n")
    fake_proc.on("nix", "config", "show", stdout="{}")
    # the dependency's build ran and said nothing; its outputs are not valid (nor the job's,
    # which Nix then never began)
    built = [record(action="start", id=1, level=3, parent=0, text=f"building '{DEP.drv_path}'",
                    type=105, fields=[DEP.drv_path, "", 1, 1]), record(action="stop", id=1)]
    fake_proc.on("nix", "build", stderr="\n".join(built) + "\n", returncode=1)
    fake_proc.on("nix", "derivation", "show", stdout=json.dumps(
        {DEP.drv_path: {"outputs": {"out": {"path": DEP.out_paths[0]}}, "inputDrvs": {}}}))
    fake_proc.on("nix", "path-info", handler=lambda call: Reply(stdout=json.dumps(
        {path: None for path in call.argv if path.startswith("/nix/store/")})))
    fake_proc.on("nix", "path-info", "--derivation", "--recursive",
                 stdout=f"{JOB.drv_path}\n{DEP.drv_path}\n")
    outputs = {DEP.drv_path: DEP.out_paths} if known else {}
    [case] = build.build(Nix.from_env({"CI_NIX_NIX": "nix"}), [JOB],
                         outputs_of=outputs.get).cases
    assert case.status is Status.FAILED and case.failure is not None
    assert case.failure.type is FailureType.DEPENDENCY, case.failure
    assert "dep" in case.failure.message
    asked = [call.argv for call in fake_proc.ran("nix", "path-info")
             if "--derivation" not in call.argv]
    if known:
        assert not fake_proc.ran("nix", "derivation", "show")
        assert [sorted(a for a in argv if a.startswith("/nix/store/"))
                for argv in asked] == [sorted([*JOB.out_paths, *DEP.out_paths])]
    else:
        assert fake_proc.ran("nix", "derivation", "show") and len(asked) == 1


@pytest.mark.parametrize("known", [True, False])
def test_a_build_stopped_at_a_builder_error_asks_nix_once_about_what_it_ran(
        fake_proc: FakeProc, known: bool) -> None:
    """Nix stopped at a builder that is down (NixOS/nix#8321) after a dependency's build ran
    and said nothing: what the stop asked to tell killed builds from failed ones (the
    dependency's outputs, the validity of all outputs) is what the cases are made of too, so
    it is asked once: one `path-info` for the jobs' and the dependency's outputs, and the
    dependency's .drv read at most once (never where the run evaluated it)."""
    fake_proc.on("nix", "--version", stdout="nix (Nix) 2.26.3\n")
    fake_proc.on("nix", "config", "show", stdout="{}")
    built = [record(action="start", id=1, level=3, parent=0, text=f"building '{DEP.drv_path}'",
                    type=105, fields=[DEP.drv_path, "", 1, 1]), record(action="stop", id=1),
             record(action="msg", level=0, msg="cannot build on 'ssh://arm': error: failed to "
                    "start SSH connection to 'arm'"),
             record(action="msg", level=0, msg=f"error: a 'aarch64-linux' with features {{}} "
                    f"is required to build '{JOB.drv_path}', but I am a 'x86_64-linux' with "
                    "features {}")]
    fake_proc.on("nix", "build", stderr="\n".join(built) + "\n", returncode=1)
    fake_proc.on("nix", "derivation", "show", stdout=json.dumps(
        {DEP.drv_path: {"outputs": {"out": {"path": DEP.out_paths[0]}}, "inputDrvs": {}}}))
    fake_proc.on("nix", "path-info", handler=lambda call: Reply(stdout=json.dumps(
        {path: None for path in call.argv if path.startswith("/nix/store/")})))
    fake_proc.on("nix", "path-info", "--derivation", "--recursive", stdout="")
    outputs = {DEP.drv_path: DEP.out_paths} if known else {}
    [case] = build.build(Nix.from_env({"CI_NIX_NIX": "nix"}), [JOB],
                         outputs_of=outputs.get).cases
    assert case.status is Status.FAILED and case.failure is not None
    assert case.failure.type is FailureType.PLATFORM, case.failure
    assert len(fake_proc.ran("nix", "build")) == 1
    asked = [call.argv for call in fake_proc.ran("nix", "path-info")
             if "--derivation" not in call.argv]
    assert [sorted(a for a in argv if a.startswith("/nix/store/")) for argv in asked] == [
        sorted([*JOB.out_paths, *DEP.out_paths])]
    assert len(fake_proc.ran("nix", "derivation", "show")) == (0 if known else 1)


def test_a_green_nix_build_fails_nothing_whatever_its_log_says(fake_proc: FakeProc) -> None:
    # Nix exited 0 and the outputs are valid: no line of its log (a builder's output, a relayed
    # or even an attested error record, a plain error line) fails the attribute or adds a case
    said = f"error: builder for '{DRV}' failed with exit code 1"
    stderr = "\n".join([
        record(action="start", id=1, type=105, level=3, text=f"building '{DRV}'",
               fields=[DRV, "", 1, 1]),
        record(action="result", id=1, type=101, fields=[said]),
        record(action="msg", level=0, msg=said),
        record(action="msg", level=0, msg=said, raw_msg=said),
        record(action="stop", id=1), "error: the frobnicator gave up", "Killed", ""])
    fake_proc.on("nix", "--version", stdout="nix (Nix) 2.26.3\n")
    fake_proc.on("nix", "config", "show", stdout="{}")
    fake_proc.on("nix", "build", stderr=stderr, returncode=0)
    fake_proc.on("nix", "path-info", stdout=json.dumps({JOB.out_paths[0]: {"narSize": 1}}))
    outcome = build.build(Nix.from_env({"CI_NIX_NIX": "nix"}), [JOB])
    assert [(c.name, c.status, c.failure) for c in outcome.cases] == [
        (JOB.name, Status.PASSED, None)]
