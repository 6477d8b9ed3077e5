"""Text a build or a pull request controls stays text in every channel ci-nix writes to.

The GitHub log is read by an emulation of the runner's command parser (tests/ghrunner.py), the
GitLab log by GitLab's section-marker pattern, JUnit by an XML parser, markdown by
markdown-it-py: for any text, no command runs, no section opens, the XML parses and the
markdown shows the text literally.
"""

from __future__ import annotations

import html
import html.parser
import io
import json
import logging
import re
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import ghrunner
import pytest
from conftest import Cli, flake_repo
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from ci_nix import cli
from ci_nix.changes import AttrChange, Change, Compared, Comparison, PackageChanges, VersionChange
from ci_nix.models import Case, Failure, FailureType, Job, RunReport, Status
from ci_nix.report import changes as changes_report
from ci_nix.report import github, gitlab, junit, progress, text, untrusted
from ci_nix.tools import nixlog

# What a hostile build or pull request prints or names its attributes: workflow commands at a
# line start (after whitespace the runner trims, after a lone \r), mid-line `##[...]`, GitLab
# section markers, terminal escapes, markdown that breaks out of code or pings a team.
HOSTILE = [
    "::add-mask::hunter2",
    "  ::error file=README.md,line=1::forged",
    "ok\r::stop-commands::x",
    "text ##[error]mid-line",
    "##[set-output name=x]y",
    "\t::warning::tabbed",
    "::Add-Mask::upper",
    ":\u200b:add-mask::zero-width",
    "#\u200b#[error]zero-width",
    "\x1b[0Ksection_start:1:forged[collapsed=true]\r\x1b[0Kforged section",
    "\x1b[0Ksection_end:1:ci_nix_0_x\r\x1b[0K",
    "a`b``c",
    "cell | break",
    "x\n\n# heading\n![img](https://evil.example/p.png)",
    "@org/admins please look <img src=x onerror=alert(1)>",
    "\ud800 lone surrogate \x00 nul \ufffe",
    "\u202eevil bidi",
]

# Any text, with the interesting characters made likely.
texts = st.text(alphabet=st.one_of(
    st.sampled_from([*":#[]` \t\r\n\x1b\x00\u200b\u2028@!|<>*_\\%,=-", "\ud800", "\udfff",
                     "\ufffe", "\x85", "\u202e", "\u3000"]),
    st.characters(codec=None)), max_size=60)


def runner(output: str) -> ghrunner.Runner:
    run = ghrunner.Runner()
    run.feed(output)
    return run


# --- the emulation itself reads commands as the runner does --------------------------------

def test_the_emulated_runner_runs_what_the_real_one_runs() -> None:
    run = runner("  ::add-mask::a\nx ##[error]b\nok\r::warning file=a%3Ab,line=2::c%0Ad\n"
                 "::nope::x\n::stop-commands::T\n::error::hidden\n::t::\n::debug::after")
    assert [(c.name, c.properties, c.data) for c in run.executed] == [
        ("add-mask", {}, "a"), ("error", {}, "b"),
        ("warning", {"file": "a:b", "line": "2"}, "c\nd"),
        ("stop-commands", {}, "T"), ("t", {}, ""), ("debug", {}, "after")]


# --- GitHub Actions log --------------------------------------------------------------------

@given(texts)
def test_no_text_runs_as_a_workflow_command(value: str) -> None:
    line = untrusted.log_line(value)
    assert runner(line).executed == []
    assert not re.search("[\r\n\x1b]", line)


@given(st.lists(texts, max_size=5))
def test_a_stopped_block_runs_nothing_but_its_own_stop_and_resume(lines: list[str]) -> None:
    run = runner(untrusted.github_block(lines) + "::debug::after\n")
    assert run.names() == ["stop-commands", "resume", "debug"]


@given(texts, texts.filter(bool))  # the runner drops an empty property
def test_a_command_carries_data_and_properties_unchanged(data: str, place: str) -> None:
    run = runner(untrusted.github_command("error", data, file=place, title="t") + "\n")
    assert [(c.name, c.properties, c.data) for c in run.executed] == [
        ("error", {"file": untrusted.text(place), "title": "t"}, untrusted.text(data))]


def _failed(name: str, message: str, log: str) -> Case:
    return Case("f", name, Status.FAILED, system="x86_64-linux",
                failure=Failure(FailureType.BUILD, message, log=log, hint=message,
                                file="flake.nix", line=3))


def hostile_report() -> RunReport:
    cases = tuple(_failed(f"packages.x86_64-linux.{value}", f"builder said {value}",
                          "\n".join(HOSTILE)) for value in HOSTILE)
    return RunReport(suites=("f",), cases=cases, error="\n".join(HOSTILE),
                     notes=tuple(HOSTILE))


def test_annotations_and_log_groups_run_only_ci_nix_commands() -> None:
    report = hostile_report()
    out = io.StringIO()
    github.write_annotations(report, out)
    run = runner(out.getvalue())
    n = len(HOSTILE)
    assert run.names() == (["error"] * n + ["group", "stop-commands", "resume", "endgroup"] * n
                           + ["error"])
    errors = [c for c in run.executed if c.name == "error"]
    assert [c.properties.get("file") for c in errors] == ["flake.nix"] * n + [None]
    assert errors[0].data.startswith("builder said ::add-mask::hunter2")


def test_the_text_summary_runs_no_command_and_moves_no_cursor() -> None:
    out = io.StringIO()
    text.write(hostile_report(), out)
    assert runner(out.getvalue()).executed == []
    assert "\x1b" not in out.getvalue() and "\r" not in out.getvalue()
    assert "FAIL f#packages.x86_64-linux.\\e[0Ksection_start" in out.getvalue()


def test_builder_output_with_print_build_logs_runs_no_command() -> None:
    out = io.StringIO()
    names = HOSTILE[:4]
    jobs = [Job("f", ("packages", "x86_64-linux", n), "x86_64-linux",
                f"/nix/store/{i:032d}-a.drv", (("out", "/o"),)) for i, n in enumerate(names)]
    monitor = progress.BuildMonitor(jobs, progress.Display(out, live=False, ci="github"),
                                    print_logs=True)
    parser = nixlog.LogParser()
    for index, job in enumerate(jobs):
        records = [{"action": "start", "id": index, "type": 105, "text": "building",
                    "fields": [job.drv_path, "", 1, 1], "level": 3}]
        records += [{"action": "result", "id": index, "type": 101, "fields": [line]}
                    for line in HOSTILE]
        for record in records:
            event = parser.parse("@nix " + json.dumps(record))
            assert event is not None
            monitor.event(event)
    monitor._close_group()
    run = runner(out.getvalue())
    assert run.names() == ["group", "stop-commands", "resume", "endgroup"] * len(jobs)
    assert 'f#packages.x86_64-linux."::add-mask::hunter2"> ::add-mask::hunter2' in out.getvalue()


# --- GitLab job log ------------------------------------------------------------------------

# GitLab's own pattern (lib/gitlab/regex.rb build_trace_section_regex, with the options)
SECTION = re.compile(r"section_((?:start)|(?:end)):(\d+):([a-zA-Z0-9_.-]+)"
                     r"(\[(?:\w+=\w+)(?:, ?(?:\w+=\w+))*\])?\r\033\[0K")


def test_gitlab_sections_are_only_ci_nix_s_own() -> None:
    out = io.StringIO()
    gitlab.write(hostile_report(), out, now=7)
    found = SECTION.findall(out.getvalue())
    assert len(found) == 2 * len(HOSTILE)
    assert all(when == "7" and name.startswith("ci_nix_") for _, when, name, _ in found)


@given(texts)
def test_no_text_forges_a_gitlab_section(value: str) -> None:
    assert not SECTION.search(untrusted.log_line(value))
    assert not SECTION.search("\n".join(untrusted.log_lines(value)))


# --- JUnit ---------------------------------------------------------------------------------

@settings(max_examples=60)
@given(texts, texts, texts)
def test_junit_is_valid_xml_whatever_the_text(name: str, message: str, log: str) -> None:
    report = RunReport(suites=(name or "f",), cases=(
        Case(name or "f", name, Status.FAILED, system=name,
             failure=Failure(FailureType.BUILD, message, log=log, hint=message)),
        Case(name or "f", name + "2", Status.SKIPPED, skip_reason=message)), error=message)
    out = io.StringIO()
    junit.write(report, out)
    root = ET.fromstring(out.getvalue().encode("utf-8"))
    case = root.find("./testsuite/testcase")
    assert case is not None and case.get("name") == untrusted.xml(name, attribute=True)
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == (untrusted.xml_shown(message, attribute=True) or "build")


# --- markdown ------------------------------------------------------------------------------

MD = MarkdownIt("commonmark").enable(["table", "strikethrough"])


class _Html(html.parser.HTMLParser):
    """The tags and the text of rendered HTML."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text += data


def rendered(markdown: str) -> _Html:
    parser = _Html()
    parser.feed(MD.render(markdown))
    return parser


def shown(value: str) -> str:
    """What a reader should see: the text with controls escaped."""
    return untrusted.name(value)


def read(page: _Html) -> str:
    """The rendered text without the zero-width spaces that defuse mentions and references (any
    the text held is shown escaped, as \\u200b)."""
    return page.text.replace("\u200b", "")


@given(texts)
def test_markdown_text_is_shown_literally(value: str) -> None:
    page = rendered(f"before {untrusted.md_text(value)} after")
    assert page.tags == ["p"]
    assert read(page) == f"before {shown(value)} after\n"


@given(texts)
def test_markdown_text_is_shown_literally_at_a_line_start(value: str) -> None:
    page = rendered(untrusted.md_text(value) + " end")
    assert page.tags == ["p"]
    assert read(page).strip(" \t\n") == f"{shown(value)} end".strip(" \t\n")


@given(texts)
def test_markdown_text_pings_and_references_nothing(value: str) -> None:
    inline = untrusted.md_text(value)
    for shown_text in (rendered(f"x {inline}").text, rendered(untrusted.md_html(value)).text):
        assert not re.search(r"@\w|[#!]\d", shown_text)  # @user, #12, owner/repo#12, !12
    assert not inline.startswith("/")  # a GitLab quick action at a line start


@given(texts)
def test_markdown_text_stays_in_its_table_cell(value: str) -> None:
    page = rendered(f"| a | b |\n|---|---|\n| {untrusted.md_text(value)} | "
                    f"{untrusted.md_code(value, table=True)} |\n")
    assert page.tags.count("td") == 2 and "a" not in page.tags and "img" not in page.tags


@given(texts)
def test_a_code_span_holds_any_name(value: str) -> None:
    page = rendered(f"x {untrusted.md_code(value)} y")
    assert page.tags == ["p", "code"] if value else ["p"]
    assert page.text == f"x {untrusted.name(value)} y\n"


@given(texts)
def test_a_fence_holds_any_log(value: str) -> None:
    page = rendered(f"- item\n\n  <details><summary>{untrusted.md_html(value)}</summary>\n\n"
                    + "".join(f"  {line}\n" for line in untrusted.md_fence(value).splitlines())
                    + "\n  </details>\n")
    assert "img" not in page.tags and "a" not in page.tags and page.tags.count("pre") == 1
    assert untrusted.text(value) + "\n" in page.text


def test_the_step_summary_shows_hostile_names_as_text() -> None:
    out = io.StringIO()
    github.write_summary(hostile_report(), out)
    page = rendered(out.getvalue())
    assert "img" not in page.tags and "a" not in page.tags
    assert page.tags.count("h1") == 0 and page.tags.count("h3") == 1  # "Failed attributes"
    # a mention pings outside code only (GitHub does not link inside code)
    outside = re.sub(r"<pre>.*?</pre>|<code>.*?</code>", "", MD.render(out.getvalue()), flags=re.S)
    assert "@org/admins" not in outside and "@\u200borg/admins" in outside
    assert "packages.x86_64-linux.a`b``c" in page.text


def test_the_pr_comment_shows_hostile_names_errors_and_packages_as_value() -> None:
    bad = HOSTILE
    changed = tuple(AttrChange(f"f{i}", f"packages.x86_64-linux.{value}", "x86_64-linux",
                               Change.CHANGED, "/nix/store/a-x.drv", "/nix/store/b-x.drv",
                               PackageChanges(changed=(VersionChange(value, "1", "2"),)))
                    for i, value in enumerate(bad))
    failed = tuple(AttrChange("f", f"checks.{value}", None, Change.FAILED, None, None,
                              error=f"error: {value}") for value in bad)
    unchanged = tuple(AttrChange("f", f"u.{value}", None, Change.UNCHANGED, "/d", "/d")
                      for value in bad)
    body = changes_report.comment(Comparison(
        "1" * 40, "2" * 40, changed + failed + unchanged,
        flakes=(Compared("f", tuple(bad)),), notes=tuple(bad), base_source="@org/admins"))
    html_out = MD.render(body)
    page = rendered(body)
    assert "img" not in page.tags and "a" not in page.tags and "h1" not in page.tags
    outside = re.sub(r"<pre>.*?</pre>|<code>.*?</code>", "", html_out, flags=re.S)
    assert "@org/admins" not in outside
    # one table row per changed or failed attribute, each name whole in its code span
    assert page.tags.count("tr") == 1 + len(changed) + len(failed)
    codes = re.findall(r"<code>(.*?)</code>", html_out, flags=re.S)
    for i, value in enumerate(bad):
        assert html.escape(untrusted.name(f"f{i}#packages.x86_64-linux.{value}"),
                           quote=False) in codes
        assert untrusted.name(f"f#u.{value}").replace("&", "&amp;").replace("<", "&lt;") \
            .replace(">", "&gt;") in codes


# What Nix 2.8 and 2.26 print for `system = "x86_64-linux\e[2K\r"` (captured): the escape
# sequence dropped, the \r turned into a line break; and for `"x86_64-linux\e[2K"`: nothing.
PLATFORM_ERRORS = [
    "error: a 'x86_64-linux\n       ' with features {} is required to build "
    "'/nix/store/lr64ylqganc96q084298pfwy7i1vk79b-bad.drv', but I am a 'x86_64-linux' with "
    "features {benchmark, big-parallel, kvm, nixos-test}",
    "error: a 'x86_64-linux' with features {} is required to build "
    "'/nix/store/lr64ylqganc96q084298pfwy7i1vk79b-bad.drv', but I am a 'x86_64-linux' with "
    "features {benchmark, big-parallel, kvm, nixos-test, uid-range}",
]


def test_a_system_with_control_characters_is_not_reported_as_this_machine_s() -> None:
    from ci_nix import diagnose

    for error in PLATFORM_ERRORS:
        found = diagnose.parse_log(error.splitlines())
        assert len(found) == 1 and found[0].type is FailureType.PLATFORM
        message = found[0].message
        assert "this machine is x86_64-linux" not in message, message
        assert "control characters" in message and "\n" not in message
        assert "\x1b" not in (found[0].hint or "")


def test_log_records_naming_hostile_attributes_stay_text(
        capsys: pytest.CaptureFixture[str]) -> None:
    logger = logging.getLogger("ci_nix")
    saved = (logger.handlers[:], logger.propagate, logger.level)
    try:
        cli._setup_logging(0)
        for value in HOSTILE:
            logging.getLogger("ci_nix.build").warning("cannot push %s: %s", value, value)
    finally:
        logger.handlers[:], logger.propagate = saved[0], saved[1]
        logger.setLevel(saved[2])
    err = capsys.readouterr().err
    assert runner(err).executed == []
    assert len(err.splitlines()) == len(HOSTILE) and "\x1b" not in err


def test_an_update_body_quotes_upstream_commit_subjects_without_pinging() -> None:
    from ci_nix import changelog

    subjects = ("Thanks @alice and @org/admins", "![x](https://e.example/x.png)",
                "</td></tr></table><img src=x>", "a `code` | pipe")
    old, new = (changelog.InputState(rev=rev * 40, url=f"git+file:///m?rev={rev * 40}")
                for rev in "12")
    change = changelog.InputChange(("m",), changelog.ChangeKind.UPDATED, old, new, subjects,
                                   len(subjects))
    log = changelog.FlakeChangelog("hosts", (change,), changelog.Health())
    body = changelog.render((log,))
    page = rendered(body)
    assert "img" not in page.tags and "a" not in page.tags
    assert page.tags.count("td") == 5 and "@alice" not in page.text
    for subject in subjects:
        assert shown(subject) in read(page)


HOSTILE_FLAKE = r"""{
  outputs = { self }: let
    sh = name: text: derivation { inherit name; system = "x86_64-linux"; builder = "/bin/sh";
      args = [ "-c" text ]; };
  in {
    packages.x86_64-linux."::add-mask::attr" = sh "bad" ''
      echo '::add-mask::hunter2 @NONCE@'; echo '  ::error file=README.md,line=1::forged'
      echo '::stop-commands::x'; echo 'text ##[error]mid-line'
      echo '@org/admins ![i](https://e.example/i.png)'; exit 1'';
    packages.x86_64-linux."a`b\n\n# h ##[warning]x" = sh "good" ''
      echo '::warning::w @NONCE@'; echo > $out'';
  };
}
"""


@pytest.mark.nix
def test_a_hostile_build_runs_no_command_in_a_github_job(tmp_path: Path, cli: Cli,
                                                          nix_bin: str) -> None:
    repo = flake_repo(tmp_path / "r", HOSTILE_FLAKE.replace("@NONCE@", uuid.uuid4().hex))
    summary, junit_file = tmp_path / "summary.md", tmp_path / "junit.xml"
    result = cli("run", "--all", "-L", "--junit", junit_file, repo,
                 env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)})
    assert result.returncode == 1, result.stderr
    run = runner(result.stderr + result.stdout)
    # -L groups (two builders: two, or more where their lines interleave, as both build at
    # once), the failure's annotation, its log tail's group: nothing else runs
    group = ["group", "stop-commands", "resume", "endgroup"]
    names = run.names()
    builder_groups = (len(names) - 1 - len(group)) // len(group)
    assert builder_groups >= 2, names
    assert names == group * builder_groups + ["error"] + group, names
    (error,) = [c for c in run.executed if c.name == "error"]
    assert error.properties == {"title": 'build: r#packages.x86_64-linux."::add-mask::attr"'}
    assert "> ::add-mask::hunter2" in result.stderr  # shown, not run
    ET.parse(junit_file)
    page = rendered(summary.read_text())
    assert "img" not in page.tags and "a" not in page.tags and "h1" not in page.tags


@given(st.dictionaries(texts, st.lists(texts, max_size=3), max_size=4))
def test_json_for_a_log_runs_nothing_and_keeps_its_value(value: dict[str, list[str]]) -> None:
    for indent in (None, 2):
        shown_json = untrusted.json_for_log(json.dumps(value, indent=indent))
        assert json.loads(shown_json) == value
        assert runner(shown_json).executed == []


@settings(max_examples=60)
@given(texts, texts)
def test_junit_for_a_log_runs_nothing_and_keeps_its_document(name: str, log: str) -> None:
    report = RunReport(suites=("f",), cases=(
        Case("f", name, Status.FAILED, failure=Failure(FailureType.BUILD, name, log=log)),))
    out = io.StringIO()
    junit.write(report, out)
    shown_xml = untrusted.xml_for_log(out.getvalue())
    assert runner(shown_xml).executed == []
    assert ET.tostring(ET.fromstring(shown_xml.encode())) == \
        ET.tostring(ET.fromstring(out.getvalue().encode()))
