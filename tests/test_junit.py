"""JUnit: the writer's per-testcase properties, and `ci-nix junit` on captured logs."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import tracemalloc
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from conftest import Cli

from ci_nix import diagnose, logtext
from ci_nix.commands.junit import log_cases
from ci_nix.models import Case, Failure, FailureType, RunReport, Status
from ci_nix.report import junit

DATA = Path(__file__).resolve().parent / "data"


def cases(xml: str | Path) -> list[tuple[str | None, str | None, str | None]]:
    root = ET.parse(xml).getroot() if isinstance(xml, Path) else ET.fromstring(xml)
    found = []
    for tc in root.iter("testcase"):
        failure = tc.find("failure")
        found.append((tc.get("name"), failure.get("type") if failure is not None else None,
                      failure.get("message") if failure is not None else None))
    return found


def test_writer_adds_drv_path_and_system_properties_and_cleans_the_log() -> None:
    failure = Failure(FailureType.BUILD, "builder for a.drv failed with exit code 2",
                      log="compiling\nbroken.c:3: error", hint="look at broken.c")
    report = RunReport(("f",), (
        Case("f", "packages.x86_64-linux.a", Status.FAILED, system="x86_64-linux",
             drv_path="/nix/store/aaaa-a.drv", failure=failure, time=1.5),
        Case("f", "packages.x86_64-linux.b", Status.SKIPPED, skip_reason="cached"),
    ))
    out = io.StringIO()
    junit.write(report, out)
    root = ET.fromstring(out.getvalue())
    a, b = root.iter("testcase")
    props = {p.get("name"): p.get("value") for p in a.iter("property")}
    assert props == {"drvPath": "/nix/store/aaaa-a.drv", "system": "x86_64-linux"}
    assert a.get("time") == "1.500000" and a.get("classname") == "f"
    fail = a.find("failure")
    assert fail is not None and fail.get("type") == "build"
    assert fail.text is not None and fail.text.startswith("hint: look at broken.c")
    assert b.find("properties") is None and b.find("skipped") is not None


def test_junit_command_gives_the_same_cases_for_nix_2_8_and_2_26(tmp_path: Path, cli: Cli) -> None:
    results = {}
    for version in ("2.8", "2.26"):
        logs = [DATA / f"nix-{version}/{name}.text.log"
                for name in ("dependency", "hash-mismatch", "timeout", "platform", "signal")]
        out = tmp_path / f"{version}.xml"
        result = cli("junit", *logs, "--output", out)
        assert result.returncode == 1, result.stderr
        results[version] = cases(out)
    assert results["2.8"] == results["2.26"]
    assert [(name, kind) for name, kind, _ in results["2.8"]] == [
        ("broken-dep-1.0", "build"), ("uses-broken-1.0", "dependency"),
        ("fod-1.0", "hash-mismatch"), ("slow-1.0", "timeout"), ("arm-only-1.0", "platform"),
        ("killed-1.0", "build")]


def test_junit_command_reads_internal_json_like_text(tmp_path: Path, cli: Cli) -> None:
    text_out, json_out = tmp_path / "t.xml", tmp_path / "j.xml"
    assert cli("junit", DATA / "nix-2.26/builder-exit.text.log", "-o", text_out).returncode == 1
    assert cli("junit", DATA / "nix-2.26/builder-exit.json.log", "-o", json_out).returncode == 1
    assert cases(text_out) == cases(json_out) == [
        ("broken-1.0", "build", "builder for broken-1.0.drv failed with exit code 2")]
    failure = ET.parse(json_out).getroot().find(".//failure")
    assert failure is not None and "expected ';' before" in (failure.text or "")
    assert "\x1b" not in (failure.text or "")


def test_junit_command_exit_codes(tmp_path: Path, cli: Cli) -> None:
    clean_log = tmp_path / "ok.log"
    clean_log.write_text("building '/nix/store/aaaa-x.drv'...\n/nix/store/bbbb-x\n")
    result = cli("junit", clean_log)
    assert result.returncode == 0 and cases(result.stdout) == []
    missing = cli("junit", tmp_path / "absent.log", "--output", tmp_path / "r.xml")
    assert missing.returncode == 2 and "cannot read log" in missing.stderr
    evaluation = cli("junit", DATA / "nix-2.8/missing-attribute.text.log")
    assert evaluation.returncode == 1
    assert cases(evaluation.stdout) == [
        ("evaluation", "eval", "attribute 'nope' missing at flake.nix:12:39")]


def test_junit_reads_a_log_within_a_bound(tmp_path: Path, cli: Cli,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A log is read whole: one past MAX_LOG_BYTES (or /dev/zero, which never ends) is exit 2
    with one line naming the file and the bound, not memory without end; a pipe is read to its
    end."""
    monkeypatch.setattr(diagnose, "MAX_LOG_BYTES", 2 << 20)
    big = tmp_path / "big.log"
    big.write_bytes(b"building '/nix/store/aaaa-x.drv'...\n" * (70 << 10))
    for path in (big, Path("/dev/zero")):
        result = cli("junit", path, "--output", tmp_path / "r.xml")
        assert result.returncode == 2, result.stderr
        assert result.stderr.splitlines()[-1].startswith(f"ci-nix: error: cannot read log {path}:")
        assert "at most 2 MiB" in result.stderr
    fifo = tmp_path / "fifo.log"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(
        (DATA / "nix-2.8/missing-attribute.text.log").read_bytes()))
    writer.start()
    piped = cli("junit", fifo)
    writer.join()
    assert piped.returncode == 1 and len(cases(piped.stdout)) == 1


def test_junit_names_a_timeout_hydra_reports_by_output_path_after_its_package() -> None:
    text = (DATA / "public/cardano-wallet-2703-hydra-silence.text.log").read_text()
    [case] = log_cases("hydra", text.splitlines())
    assert case.name == "cardano-wallet-core-test-unit-2021.5.26"
    assert case.failure is not None and case.failure.type.value == "timeout"


def test_junit_case_points_at_the_line_of_the_log_as_captured() -> None:
    """A GitHub raw log download: the case says where in that file Nix reported the error."""
    text = (Path(__file__).parent / "data" / "nix-2.26" / "builder-exit.text.log").read_text()
    lines = [f"2024-05-01T12:00:00.{i:07d}Z {line}" for i, line in enumerate(text.splitlines())]
    lines = ["2024-05-01T11:59:59.0000000Z ##[group]Run nix build", *lines]
    [case] = log_cases("build.log", lines)
    assert case.failure is not None
    at = next(i for i, line in enumerate(lines, 1) if "error:" in line)
    assert case.failure.log.endswith(f"(reported at line {at} of build.log)")


def test_a_terminal_captures_line_is_numbered_as_an_editor_numbers_it(tmp_path: Path) -> None:
    """Nix's progress bar redrawn over itself ("\\r\\e[K") is one line of the file: the case
    points at the line an editor shows (a line end of any other kind was counted before)."""
    log = tmp_path / "build.log"
    log.write_bytes((DATA / "nix-2.26/progress-bar.tty.log").read_bytes()
                    + b"warning: after\xe2\x80\xa8the bar\r\n")
    lines = diagnose.read_log(log)
    assert len(lines) == 7 and lines[-1] == "warning: after\u2028the bar\r"
    [case] = log_cases("build.log", lines)
    assert case.failure is not None
    assert case.failure.log.endswith("(reported at line 1 of build.log)")
    log.write_bytes(b"")
    assert list(diagnose.read_log(log)) == []


def test_a_huge_log_of_a_builders_short_lines_is_read_in_a_fraction_of_its_size(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bench P10 in small: `ci-nix junit` on a log of many short `nix build -L` lines needs
    memory a fraction of the log's size (it held every line as objects, some 200 bytes a line:
    14 times the log), and still reports the builder's failure with the builder's last lines,
    at the line of the file."""
    # (the first lines of a log, which it reads whole, fewer: the log here is small)
    monkeypatch.setattr(logtext, "CONDENSE_AFTER", 100, raising=False)
    drv = f"/nix/store/{'a' * 32}-hello-1.0.drv"
    failed = f"error: builder for '{drv}' failed with exit code 1\n"
    log = tmp_path / "build.log"
    log.write_text(failed)
    log_cases("build.log", diagnose.read_log(log))  # (what a first read compiles and caches)
    log.write_text(f"building '{drv}'...\n" + "".join(f"hello> l {i}\n" for i in range(50_000))
                   + failed)
    tracemalloc.start()
    try:
        [case] = log_cases("build.log", diagnose.read_log(log))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < log.stat().st_size // 2, (peak, log.stat().st_size)
    assert case.name == "hello-1.0" and case.failure is not None
    assert case.failure.log == "\n".join(f"l {i}" for i in range(50_000 - 40, 50_000)) \
        + "\n(reported at line 50002 of build.log)"


def test_what_a_reader_sees_shows_bidi_and_invisible_characters_names_stay(
        tmp_path: Path, cli: Cli) -> None:
    """A log (or a PR's attribute name) holding a bidi override or a zero-width character
    cannot reorder or hide what the JUnit report's reader sees: messages, failure text, skip
    reasons and the terminal summary show them as escapes; a test case's name stays exactly
    the attribute path, which tools match on (audit 41, row 15)."""
    text = (DATA / "nix-2.26/hash-mismatch.text.log").read_text()
    log = tmp_path / "bidi.log"
    log.write_text(text.replace("got:    sha256-", "got:    sha256-\u202eevil\u2066")
                   + "note: the\u200bhash\ufeff is\u200f here\n")
    out = tmp_path / "r.xml"
    result = cli("junit", log, "--output", out)
    assert result.returncode == 1, result.stderr
    [failure] = ET.parse(out).getroot().iter("failure")
    shown = f"{failure.get('message')}\n{failure.text}"
    assert "\\u202eevil\\u2066" in shown, shown
    assert not any(char in shown or char in result.stdout
                   for char in "\u202e\u2066\u200b\ufeff\u200f")
    attribute = "packages.x86_64-linux.\u202ebad\u200b"
    report = RunReport(("f",), (
        Case("f", attribute, Status.FAILED, failure=Failure(
            FailureType.BUILD, f"{attribute} \u061cfailed", log="x\u200dy\u2069\nz")),
        Case("f", "skipped", Status.SKIPPED, skip_reason="why\u200e"),
        Case("f", "output", Status.PASSED, output="captured\u2060 ok")), error="e\u202a")
    written = io.StringIO()
    junit.write(report, written)
    root = ET.fromstring(written.getvalue())
    failed, skipped, passed, _ = root.iter("testcase")
    assert failed.get("name") == attribute  # the contract's attribute path, as given to Nix
    fail = failed.find("failure")
    assert fail is not None and fail.text is not None
    assert fail.get("message") == "packages.x86_64-linux.\\u202ebad\\u200b \\u061cfailed"
    assert fail.text == "x\\u200dy\\u2069\nz"
    assert skipped.find("skipped") is not None
    assert skipped.find("skipped").get("message") == "why\\u200e"  # type: ignore[union-attr]
    assert passed.findtext("system-out") == "captured\\u2060 ok"
    assert root.find("./testsuite[@name='ci-nix']/testcase/error").get(  # type: ignore[union-attr]
        "message") == "e\\u202a"


def test_sigterm_stops_reading_a_huge_log_at_once_and_the_report_says_so(tmp_path: Path) -> None:
    """SIGTERM while `ci-nix junit` reads a log too big to classify in a moment: it stops then
    (not after the parse, which a CI's SIGKILL would cut with no report at all: audit 41,
    row 9), exits 143 and writes the report whole, the log cut saying so as a failure (a cut
    report never looks green), the logs after it as not read."""
    big = tmp_path / "big.log"
    os.mkfifo(big)  # (ci-nix has read it all, handlers installed, once the writer is done)
    # (lines it reads each of: a builder's plain lines it reads in a moment, logtext.condensed)
    lines = "".join(f"hello> compiling part {i}: ok\n" for i in range(300_000))
    text = (f"building '/nix/store/{'a' * 32}-hello-1.0.drv'...\n{lines}error: builder for "
            f"'/nix/store/{'a' * 32}-hello-1.0.drv' failed with exit code 1\n")
    report = tmp_path / "r.xml"
    proc = subprocess.Popen([sys.executable, "-m", "ci_nix", "junit", str(big),
                             str(DATA / "nix-2.8/missing-attribute.text.log"),
                             "--output", str(report)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # (a writer of its own: a ci-nix that never opened the log fails the test, not hangs it)
    writer = threading.Thread(target=big.write_text, args=(text,), daemon=True)
    writer.start()
    writer.join(timeout=120)
    assert not writer.is_alive(), proc.poll()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)  # (exits, not hangs)
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    root = ET.parse(report).getroot()
    found = [(case.get("classname"), case.get("name"), failure.get("type"), failure.get("message"))
             for case in root.iter("testcase") for failure in case.iter("failure")]
    assert found == [
        (str(big), "interrupted", "other", "not read whole: SIGTERM stopped ci-nix while it "
         "read this log; the failures it reports are not in this report"),
        (str(DATA / "nix-2.8/missing-attribute.text.log"), "interrupted", "other",
         "not read: SIGTERM stopped ci-nix before it read this log")]
    assert len(list(root.iter("testcase"))) == 2
    assert sorted(os.listdir(tmp_path)) == ["big.log", "r.xml"]  # no temporary file left
    assert "FAIL" in out and "interrupted" in out


def test_sigint_in_the_middle_of_classifying_ends_it_there(
        tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """The signal that arrives while the log is classified (here: as normalising starts) ends
    the classification there, not after it: the failure it would have found is not reported,
    the cut is (in-process: the signal handler ci-nix installs raises where the work is)."""
    from ci_nix import logshape

    whole = logshape.normalise

    def signalled(lines: list[str], *condensed: Any) -> list[logshape.Line]:
        os.kill(os.getpid(), signal.SIGINT)
        return whole(lines, *condensed)

    monkeypatch.setattr(logshape, "normalise", signalled)
    out = tmp_path / "r.xml"
    result = cli("junit", DATA / "nix-2.8/missing-attribute.text.log", "--output", out)
    assert result.returncode == 130, result.stderr
    assert cases(out) == [("interrupted", "other", "not read whole: SIGINT stopped ci-nix while "
                           "it read this log; the failures it reports are not in this report")]
