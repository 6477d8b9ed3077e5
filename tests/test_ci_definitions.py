"""action.yml and gitlab-ci-template.yml: validated, audited, and run for real on the fixtures.

The GitHub Action runs under act (host mode, no containers, nothing fetched) and the GitLab
template under gitlab-ci-local (shell executor), each through the README's own example pipeline
(examples/) made local: the `uses:`/`include:` of the published ci-nix points at this checkout,
and the examples' steps that would download something (install-nix-action, upload-artifact) are
left out — Nix is already on this machine. The action itself runs whole: its actions/cache steps
run tests/ci/actions-cache (the @actions/cache library from npm) against act's cache server.
Tools come from scripts/ci-tools.sh.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import make_workspace
import pytest
import yaml
from conftest import NIX_CONFIG, ROOT, run_main
from helpers import check_jsonschema, git, write

pytestmark = pytest.mark.slow

BIN = ROOT / ".venv" / "bin"
GITLAB_CI_LOCAL = ROOT / ".venv" / "ci-tools" / "node_modules" / ".bin" / "gitlab-ci-local"
EXAMPLES = ROOT / "examples"
PUBLISHED_ACTION = "OWNER/ci-nix@"
ACTION_DIR = "ci-nix-action"  # where the tests put this checkout inside the act workspace
GREEN = ("modules#packages.x86_64-linux.greeting", "hosts#nixosConfigurations.web")
RED = "modules#packages.x86_64-linux.broken"
# The fan-out runs: one green entry and the red one make "one job per entry, the red one fails
# alone"; each GitLab child job pip-installs ci-nix, so each entry costs a venv there.
FAN_OUT = (GREEN[1], RED)
# A virtualenv that holds this checkout's ci-nix (scripts/setup.sh's), for the action's `venv`
# input and the template's: a job that uses it installs nothing. Creating a venv and
# pip-installing ci-nix is ~7 CPU seconds per job, so only the runs that prove the install
# (test_action_red_pull_request_from_a_fork, test_gitlab_single_job_red and the fan-out child
# jobs) install ci-nix as a user's runner does; the others use this.
INSTALLED = str(ROOT / ".venv")
# what the template's `install` is where `venv` is given: a job that tried pip would fail
NOT_INSTALLED = "/nonexistent/ci-nix-is-not-installed-here"


def tool(path: Path) -> str:
    if not path.exists():
        pytest.skip(f"{path.name} is not installed: run scripts/ci-tools.sh")
    return str(path)


def has_subcommand(name: str) -> bool:
    out = run_main("--help").stdout  # in-process: `python -m ci_nix --help`'s text
    return any(line.split()[:1] == [name] for line in out.splitlines())


def needs_subcommand(name: str) -> None:
    if not has_subcommand(name):
        pytest.skip(f"`ci-nix {name}` does not exist yet (not in `ci-nix --help`)")


def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    # callers look at the return code themselves, or pass check=True
    return subprocess.run(argv, capture_output=True, text=True, timeout=600,  # noqa: PLW1510
                          **kwargs)


def copy_checkout(dest: Path) -> None:
    """This checkout's files (tracked and new, not ignored), as a user's `uses:` would get them,
    less the test corpus: tests/data is 96% of the checkout's files (5,300 and growing with every
    held-out round), which no step of the action or template reads, and each copy of it here
    and in act's own copy of the workspace per run cost ~1-2 CPU s (40 CPU s of the suite)."""
    files = run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others",
                 "--exclude-standard"], check=True).stdout.split("\0")
    for name in filter(None, files):
        if name.startswith("tests/data/"):
            continue
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def cases(junit: Path) -> dict[str, str]:
    """`flake#attr` -> passed / failed:<type> / skipped."""
    result = {}
    for case in ET.parse(junit).iter("testcase"):
        failure = case.find("failure")
        state = ("failed:" + str(failure.get("type")) if failure is not None
                 else "skipped" if case.find("skipped") is not None else "passed")
        result[f"{case.get('classname')}#{case.get('name')}"] = state
    return result


@pytest.fixture
def system_ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fixture workspace, on Debian's Nix only: these tests prove the CI definitions (the
    action's and the template's steps, outputs, fan-out); what the red fixture run reports on
    each Nix version is tests/test_junit_ci_reports.py's and tests/test_run_fixtures.py's."""
    if not shutil.which("nix"):
        pytest.skip("no nix on PATH")
    monkeypatch.setenv("CI_NIX_NIX", "nix")
    return make_workspace.make(tmp_path / "ws", nonce=uuid.uuid4().hex[:12])


# --- validators --------------------------------------------------------------------------------

# One worker runs the three schema checks in turn: check-jsonschema's first call in a process
# imports ~1 CPU second of validators, which each of them paid on a worker of its own (`slow`
# hands every test here out alone)
SCHEMAS = pytest.mark.xdist_group("test_ci_definitions-schemas")


@SCHEMAS
def test_action_matches_the_github_actions_schema() -> None:
    code, output = check_jsonschema("vendor.github-actions", ROOT / "action.yml")
    assert code == 0, output


@SCHEMAS
def test_example_pipelines_match_their_schemas() -> None:
    workflows = sorted((EXAMPLES / "github").glob("*.yml"))
    assert len(workflows) >= 4, workflows  # one call checks each file (it names a bad one)
    code, output = check_jsonschema("vendor.github-workflows", *workflows)
    assert code == 0, output
    code, output = check_jsonschema("vendor.gitlab-ci", EXAMPLES / "gitlab" / ".gitlab-ci.yml")
    assert code == 0, output


@SCHEMAS
def test_gitlab_template_header_and_body_each_validate(tmp_path: Path) -> None:
    header, body = yaml.safe_load_all((ROOT / "gitlab-ci-template.yml").read_text())
    assert set(header) == {"spec"}
    assert {"stage", "update-stage", "config", "systems", "push", "junit", "image",
            "fan-out"} <= set(header["spec"]["inputs"])
    # GitLab's schema knows `spec:` as a document of its own, and the body as a pipeline.
    for name, document in (("header.yml", header), ("body.yml", body)):
        (tmp_path / name).write_text(yaml.safe_dump(document))
        code, output = check_jsonschema("vendor.gitlab-ci", tmp_path / name)
        assert code == 0, output
    assert body["ci-nix-build"]["trigger"] == {
        "include": [{"artifact": "ci-nix-child.yml", "job": "ci-nix-matrix"}],
        "strategy": "depend"}
    assert body["ci-nix-update"]["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}]
    for name in ("ci-nix", "ci-nix-update"):
        assert body[name]["artifacts"]["reports"]["junit"] == ["$[[ inputs.junit ]]"]


def expand(text: str, variables: dict[str, str]) -> str:
    """GitLab's expansion of $NAME / ${NAME} in a cache key (an unset variable is empty)."""
    return re.sub(r"\$\{?([A-Za-z_]\w*)\}?", lambda m: variables.get(m.group(1), ""), text)


def test_gitlab_eval_cache_keys_keep_merge_requests_apart() -> None:
    """gitlab-ci-local ignores `fallback_keys` (test_gitlab_single_job_green runs the rest):
    a new branch falls back to exactly the key the default branch saves under; no merge
    request or external pull request, whatever its branch's name, saves under a key the
    default branch restores."""
    _, body = yaml.safe_load_all((ROOT / "gitlab-ci-template.yml").read_text())
    (cache,) = body[".ci-nix"]["cache"]
    (fallback,) = cache["fallback_keys"]
    default = {"CI_DEFAULT_BRANCH": "main"}
    main = expand(cache["key"], {**default, "CI_COMMIT_REF_SLUG": "main",
                                 "CI_COMMIT_REF_PROTECTED": "true"})
    assert expand(fallback, default) == main
    assert expand(cache["key"], {**default, "CI_COMMIT_REF_SLUG": "feature"}) != main
    # an unprotected tag `main` or branch `Main` has the default branch's slug: another key
    # (it saved into the default branch's cache where "separate caches" was off)
    for ref in ({"CI_COMMIT_TAG": "main"}, {"CI_COMMIT_BRANCH": "Main"}):
        assert expand(cache["key"], {**default, **ref, "CI_COMMIT_REF_SLUG": "main",
                                     "CI_COMMIT_REF_PROTECTED": "false"}) != main
    for slug in ("main", "main-mr", "main-mr7", "feature"):
        for request in ("CI_MERGE_REQUEST_IID", "CI_EXTERNAL_PULL_REQUEST_IID"):
            key = expand(cache["key"], {**default, "CI_COMMIT_REF_SLUG": slug, request: "7"})
            assert key not in (main, expand(fallback, default)), key
    assert body["ci-nix-update"]["cache"] == []


@pytest.mark.parametrize("committed", ["fetcher cache", "symlink", None])
def test_gitlab_template_refuses_caches_from_the_repository(tmp_path: Path,
                                                            committed: str | None) -> None:
    """The template points XDG_CACHE_HOME into the project directory. A merge request that
    commits .ci-nix-cache/nix/fetcher-cache-v1.sqlite decides which store path Nix takes for
    a commit (Nix 2.8, by hand: a forged row made rev=B evaluate as A's source); the job
    stops (exit 2) before ci-nix runs. Untracked (GitLab's cache restored it), it goes on."""
    _, body = yaml.safe_load_all((ROOT / "gitlab-ci-template.yml").read_text())
    guard = body[".ci-nix"]["before_script"][0]
    repo = tmp_path / "repo"
    write(repo / "flake.nix", "{ outputs = _: { }; }")
    if committed == "symlink":
        (repo / ".ci-nix-cache").symlink_to(tmp_path)
    else:
        write(repo / ".ci-nix-cache" / "nix" / "fetcher-cache-v1.sqlite", "forged")
    git(tmp_path, "init", "-q", str(repo))
    git(repo, "add", "flake.nix", *([".ci-nix-cache"] if committed else []))
    result = subprocess.run(["sh", "-c", guard], cwd=repo, capture_output=True, text=True,
                            check=False)
    if committed is None:
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode == 2 and ".ci-nix-cache is in the repository" in result.stderr


def test_zizmor_finds_nothing_in_the_action_or_the_examples() -> None:
    zizmor = tool(BIN / "zizmor")
    result = run([zizmor, "--offline", str(ROOT / "action.yml")])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings" in result.stdout
    # The examples show `@v4`-style tags for readability; everything else must be clean.
    result = run([zizmor, "--offline", "--config", str(ROOT / "tests/ci/zizmor-examples.yml"),
                  *map(str, sorted((EXAMPLES / "github").glob("*.yml")))])
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_expression_inside_run_scripts() -> None:
    steps = yaml.safe_load((ROOT / "action.yml").read_text())["runs"]["steps"]
    for step in steps:
        assert "${{" not in step.get("run", ""), step["name"]


def test_readme_shows_the_tested_examples_verbatim() -> None:
    readme = (ROOT / "README.md").read_text()
    for example in [*sorted((EXAMPLES / "github").glob("*.yml")),
                    EXAMPLES / "gitlab" / ".gitlab-ci.yml"]:
        assert example.read_text() in readme, f"README.md does not show {example} verbatim"


# --- the GitHub Action under act --------------------------------------------------------------

def localize_workflow(example: Path, overrides: dict[str, dict[str, str]]) -> dict[str, Any]:
    """The example workflow with ci-nix from this checkout; overrides: job -> extra `with:`."""
    workflow: dict[Any, Any] = yaml.safe_load(example.read_text())
    workflow["on"] = workflow.pop(True)  # YAML 1.1 reads the key `on` as true
    for job_name, job in workflow["jobs"].items():
        steps = []
        for step in job["steps"]:
            uses = step.get("uses", "")
            if uses.startswith(PUBLISHED_ACTION):
                step["uses"] = f"./{ACTION_DIR}"
                step["with"] = {**step.get("with", {}), **overrides.get(job_name, {})}
                step.setdefault("id", "ci-nix")
            elif uses and not uses.startswith("actions/checkout@"):
                continue  # act runs checkout locally; anything else would be downloaded
            steps.append(step)
        ours = next(s["id"] for s in steps if s.get("uses") == f"./{ACTION_DIR}")
        steps.append({
            "if": "always()",
            "name": "keep outputs and report for the test",
            # one directory per job run: matrix jobs share the job name
            "run": 'mkdir -p "$KEEP"\nkeep=$(mktemp -d "$KEEP/$KEY.XXXXXX")\n'
                   'printf %s "$OUTPUTS" > "$keep/outputs.json"\n'
                   'if [ -n "$JUNIT" ]; then cp "$JUNIT" "$keep/junit.xml"; fi\n',
            "env": {"OUTPUTS": f"${{{{ toJSON(steps.{ours}.outputs) }}}}",
                    "JUNIT": f"${{{{ steps.{ours}.outputs.junit-path }}}}",
                    "KEY": job_name},
        })
        job["steps"] = steps
    return workflow


# actions/cache, which act cannot fetch here: tests/ci/actions-cache runs its inputs with the
# @actions/cache library from npm (scripts/ci-tools.sh) against act's own cache server
ACTIONS_CACHE = ROOT / "tests" / "ci" / "actions-cache"
NODE_MODULES = ROOT / ".venv" / "ci-tools" / "node_modules"


class Act:
    """act on a fixture workspace that holds a copy of this checkout."""

    def __init__(self, ws: Path, tmp: Path, pip: dict[str, str] | None = None) -> None:
        self.ws, self.tmp, self.keep, self.pip = ws, tmp, tmp / "kept", pip or {}
        copy_checkout(ws / ACTION_DIR)
        # the composite's actions/cache steps run as written: act maps the pinned commit
        # to ACTIONS_CACHE (--local-repository) instead of fetching it
        steps = yaml.safe_load((ROOT / "action.yml").read_text())["runs"]["steps"]
        pins = {step["uses"].split("@")[1] for step in steps if "uses" in step}
        assert len(pins) == 1 and all(s["uses"].startswith("actions/cache/")
                                      for s in steps if "uses" in s), pins
        self.actions_cache = f"actions/cache@{pins.pop()}={ACTIONS_CACHE}"
        tool(NODE_MODULES / "@actions" / "cache" / "package.json")

    def run(self, workflow: dict[str, Any], event: str,
            payload: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        """One workflow run on a new runner: an empty XDG_CACHE_HOME (the same path, as on
        GitHub's runners), so the evaluation cache comes only from the cache server, which
        lives as long as self."""
        path = self.ws / ".github" / "workflows" / "ci.yml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(workflow, sort_keys=False))
        (self.tmp / "event.json").write_text(json.dumps(payload))
        shutil.rmtree(self.tmp / "xdg-cache", ignore_errors=True)
        result = run([
            tool(BIN / "act"), event, "-C", str(self.ws), "-W", str(path),
            "-e", str(self.tmp / "event.json"),
            "-P", "ubuntu-latest=-self-hosted", "--action-offline-mode",
            "--local-repository", self.actions_cache,
            "--cache-server-addr", "127.0.0.1", "--cache-server-port", "0",
            "--cache-server-path", str(self.tmp / "cache-server"),
            "--action-cache-path", str(self.tmp / "act-cache"),
            "--env", f"NIX_CONFIG={NIX_CONFIG}", "--env", f"CI_NIX_NIX={os.environ['CI_NIX_NIX']}",
            "--env", f"KEEP={self.keep}", "--env", f"XDG_CACHE_HOME={self.tmp / 'xdg-cache'}",
            "--env", f"NODE_PATH={NODE_MODULES}",
            *(arg for name, value in self.pip.items() for arg in ("--env", f"{name}={value}"))])
        (self.tmp / "act.log").write_text(result.stdout + result.stderr)
        return result

    def kept(self, job: str) -> list[Path]:
        """What the runs of `job` kept: outputs.json and junit.xml, one directory per run."""
        return sorted(self.keep.glob(f"{job}.*"))

    def outputs(self, job: str) -> dict[str, str]:
        (only,) = self.kept(job)
        outputs: dict[str, str] = json.loads((only / "outputs.json").read_text())
        return outputs

    def junit(self, job: str) -> Path:
        (only,) = self.kept(job)
        return only / "junit.xml"


def test_action_red_pull_request_from_a_fork(system_ws: Path, tmp_path: Path,
    offline_pip: dict[str, str]) -> None:
    act = Act(system_ws, tmp_path, offline_pip)
    workflow = localize_workflow(EXAMPLES / "github" / "ci-nix.yml", {"build": {"all": "true"}})
    fork_pr = {"pull_request": {"number": 7, "head": {"repo": {"full_name": "mallory/project",
                                                               "fork": True}}}}
    result = act.run(workflow, "pull_request", fork_pr)
    log = result.stdout + result.stderr
    assert result.returncode != 0, log
    assert "Failure - Main ci-nix run" in log
    assert re.search(r"::set-output:: ci-nix=\S*/ci-nix-venv/bin/ci-nix", log), log  # installed
    assert "pull request from the fork mallory/project: not pushing to the cache" in log
    # its evaluation cache is saved under a key only this pull request restores
    assert re.search(r"::set-output:: key=ci-nix-eval-\S*-pr-7:", log), log
    assert " --no-push" in log
    outputs = act.outputs("build")
    assert outputs["exit-code"] == "1" and outputs["failed"] == "4", outputs
    assert outputs["junit-path"] == "ci-nix-junit.xml"
    found = cases(act.junit("build"))
    assert found[RED] == "failed:build" and found[GREEN[0]] == "passed"
    assert sum(state.startswith("failed") for state in found.values()) == 4
    # annotations reach the runner (act shows the workflow commands it received); the step
    # summary is tested on a direct run (test_junit_ci_reports): act resets it per step
    annotations = [line for line in log.splitlines() if "::error " in line]
    assert len(annotations) == 4, annotations
    # file= is relative to GITHUB_WORKSPACE, where the repos are subdirectories (#23)
    assert any("file=hosts/flake.nix,line=35,col=19,title=eval%3A "
               "hosts#packages.x86_64-linux.missing" in line for line in annotations), annotations


def test_action_workflow_run_of_a_fork_pull_request_does_not_push(
        system_ws: Path, tmp_path: Path) -> None:
    """A workflow_run job runs with the default branch's secrets; one that builds the fork's
    head must not push what that code built (push: auto)."""
    act = Act(system_ws, tmp_path)
    workflow = localize_workflow(EXAMPLES / "github" / "ci-nix.yml",
                                 {"build": {"all": "true", "only": GREEN[0], "venv": INSTALLED}})
    workflow["on"] = {"workflow_run": {"workflows": ["ci"], "types": ["completed"]}}
    fork_run = {"workflow_run": {"event": "pull_request", "pull_requests": [],
                                 "head_repository": {"full_name": "mallory/project"}}}
    result = act.run(workflow, "workflow_run", fork_run)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    assert "pull request from the fork mallory/project: not pushing to the cache" in log
    assert " --no-push" in log


def test_action_green_push_passes(system_ws: Path, tmp_path: Path) -> None:
    """Four workflow runs, each on a new runner (empty XDG_CACHE_HOME), the evaluation cache
    kept only by the action's actions/cache steps: a pull request, then a push to the default
    branch (which must not get the pull request's entries), then a push to a new branch
    (which starts from the default branch's), then a check_suite job (restores, saves nothing)."""
    act = Act(system_ws, tmp_path)
    workflow = localize_workflow(EXAMPLES / "github" / "ci-nix.yml", {"build": {
        "all": "true", "only": "\n".join(GREEN), "venv": INSTALLED}})
    repository = {"repository": {"default_branch": "main"}}

    def workflow_run(event: str, payload: dict[str, Any]) -> str:
        shutil.rmtree(act.keep, ignore_errors=True)
        result = act.run(workflow, event, {**payload, **repository})
        log = result.stdout + result.stderr
        assert result.returncode == 0, log
        outputs = act.outputs("build")
        assert outputs["exit-code"] == "0" and outputs["failed"] == "0", outputs
        assert cases(act.junit("build")) == dict.fromkeys(GREEN, "passed")
        assert "--no-push" not in log
        return log

    log = workflow_run("pull_request", {"pull_request": {"number": 8}, "number": 8})
    assert f"::set-output:: ci-nix={INSTALLED}/bin/ci-nix" in log, log  # nothing installed
    assert "with 0 Nix evaluations" not in log
    assert re.search(r"Cache saved with key: ci-nix-eval-\S*-pr-8:", log), log
    # the default branch restores only its own entries: none yet, so it evaluates
    log = workflow_run("push", {"ref": "refs/heads/main"})
    assert re.search(r"::set-output:: key=ci-nix-eval-\S*-ref-refs-heads-main:", log), log
    assert "Cache not found for input keys" in log, log
    assert "with 0 Nix evaluations" not in log, log
    # a new branch has none of its own and restores the default branch's: no evaluation
    log = workflow_run("push", {"ref": "refs/heads/feature"})
    assert re.search(r"Cache restored from key: ci-nix-eval-\S*-ref-refs-heads-main:", log,
                     re.IGNORECASE), log
    assert "evaluated 2 flakes with 0 Nix evaluations" in log, log
    assert re.search(r"Cache saved with key: ci-nix-eval-\S*-ref-refs-heads-feature:", log), log
    # a check_suite job runs on the default branch's ref and may build a pull request's head:
    # it starts from the default branch's entries, and saves none for it
    workflow["on"]["check_suite"] = {"types": ["requested"]}
    log = workflow_run("check_suite", {"action": "requested",
                                       "check_suite": {"head_sha": "0" * 40}})
    assert "restored, not saved" in log and "Cache saved" not in log, log
    assert "evaluated 2 flakes with 0 Nix evaluations" in log, log


def action_cache_keys(tmp_path: Path, ref: str, event: str = "push",
                      **env: str) -> tuple[str, list[str]]:
    """(key, restore keys) the action's "Evaluation cache key" step computes, run by bash as
    the runner does, for GITHUB_EVENT_NAME `event`; env: its env: as GitHub fills it in for
    the event. The key is "" where the job saves nothing."""
    steps = yaml.safe_load((ROOT / "action.yml").read_text())["runs"]["steps"]
    (step,) = [s for s in steps if s.get("id") == "eval-cache"]
    assert set(step["env"]) == {"PR_NUMBER", "RUN_EVENT", "RUN_ID", "DEFAULT_BRANCH"}
    output = tmp_path / "github-output"
    output.write_text("")
    run(["bash", "-c", step["run"]], check=True, env={
        "PATH": os.environ["PATH"], "HOME": str(tmp_path), "GITHUB_OUTPUT": str(output),
        "GITHUB_REF": ref, "RUNNER_OS": "Linux", "RUNNER_ARCH": "X64", "GITHUB_RUN_ID": "41",
        "GITHUB_RUN_ATTEMPT": "1", "GITHUB_JOB": "build", "PR_NUMBER": "", "RUN_EVENT": "",
        "RUN_ID": "", "DEFAULT_BRANCH": "main", "GITHUB_EVENT_NAME": event, **env})
    text = output.read_text()
    key = re.search(r"^key=(.*)$", text, re.MULTILINE)
    save = re.search(r"^save=(true|false)$", text, re.MULTILINE)
    restore = re.search(r"^restore<<CI_NIX_EOF\n(.*?)^CI_NIX_EOF$", text, re.MULTILINE | re.DOTALL)
    assert key and save and restore, text
    return key.group(1) if save.group(1) == "true" else "", restore.group(1).splitlines()


def test_action_eval_cache_keys_keep_pull_requests_off_the_default_branch(
        tmp_path: Path) -> None:
    """No entry a pull request (or a job GitHub runs on the default branch's ref for one:
    issue_comment, workflow_run) or another branch saves matches a restore key of the default
    branch, even on a cache server that does not scope by ref; a new branch and a pull request
    restore the default branch's. What GitHub puts into the step's env per event:
    PR_NUMBER = pull_request.number, else issue.number for a comment on a pull request;
    RUN_EVENT/RUN_ID = workflow_run.event/id."""
    steps = yaml.safe_load((ROOT / "action.yml").read_text())["runs"]["steps"]
    (step,) = [s for s in steps if s.get("id") == "eval-cache"]
    assert "github.event.pull_request.number" in step["env"]["PR_NUMBER"]
    assert "github.event.issue.pull_request && github.event.issue.number" in step["env"][
        "PR_NUMBER"]
    main_key, main_restore = action_cache_keys(tmp_path, "refs/heads/main")
    assert len(set(main_restore)) == 1 and main_key.startswith(main_restore[0])
    others = {
        "branch main-x": action_cache_keys(tmp_path, "refs/heads/main-x"),
        "branch main/x": action_cache_keys(tmp_path, "refs/heads/main/x"),
        "branch main.x": action_cache_keys(tmp_path, "refs/heads/main.x"),
        "branch feature": action_cache_keys(tmp_path, "refs/heads/feature"),
        "tag main": action_cache_keys(tmp_path, "refs/tags/main"),
        "pull request 7": action_cache_keys(tmp_path, "refs/pull/7/merge", "pull_request",
                                            PR_NUMBER="7"),
        "pull request 70": action_cache_keys(tmp_path, "refs/pull/70/merge", "pull_request",
                                             PR_NUMBER="70"),
        "comment on 7": action_cache_keys(tmp_path, "refs/heads/main", "issue_comment",
                                          PR_NUMBER="7"),
        "workflow_run of a PR": action_cache_keys(tmp_path, "refs/heads/main", "workflow_run",
                                                  RUN_EVENT="pull_request", RUN_ID="9"),
        "workflow_run of a PR target": action_cache_keys(
            tmp_path, "refs/heads/main", "workflow_run", RUN_EVENT="pull_request_target",
            RUN_ID="9"),
    }
    # GitHub runs these on the default branch's ref (a deployment: on the ref it names, which
    # may be a fork's branch called main), with no pull_request in the payload; a job may
    # check out and build a pull request's head there: it restores but never saves
    unsaved = {
        event: action_cache_keys(tmp_path, "refs/heads/main", event)
        for event in ("check_run", "check_suite", "status", "deployment_status", "deployment",
                      "issues", "discussion", "some_future_event", "")}
    unsaved["workflow_run of a check_suite"] = action_cache_keys(
        tmp_path, "refs/heads/main", "workflow_run", RUN_EVENT="check_suite", RUN_ID="9")
    for name, (key, restore) in unsaved.items():
        assert key == "" and restore[-1] == main_restore[0], (name, key, restore)
    # what a branch's own code runs saves under the branch (main: the default branch's)
    for event in ("push", "schedule", "workflow_dispatch", "repository_dispatch"):
        assert action_cache_keys(tmp_path, "refs/heads/main", event)[1] == main_restore, event
    assert action_cache_keys(tmp_path, "refs/heads/main", "workflow_run", RUN_EVENT="push",
                             RUN_ID="9")[1] == main_restore
    for name, (key, restore) in others.items():
        assert key and not any(key.startswith(prefix) for prefix in main_restore), (name, key)
        # ... and each starts from its own entries, then the default branch's
        assert restore[-1] == main_restore[0] and len(restore) == 2, (name, restore)
    pr7, pr70 = others["pull request 7"], others["pull request 70"]
    assert not pr70[0].startswith(pr7[1][0]) and pr7[1] == others["comment on 7"][1]


def test_action_matrix_fans_out_one_job_per_entry(system_ws: Path, tmp_path: Path) -> None:
    needs_subcommand("matrix")
    act = Act(system_ws, tmp_path)
    only = " ".join(f"--only {attr}" for attr in FAN_OUT)
    workflow = localize_workflow(EXAMPLES / "github" / "ci-nix-matrix.yml", {
        "matrix": {"all": "true", "args": only, "venv": INSTALLED},
        "build": {"venv": INSTALLED}})
    result = act.run(workflow, "push", {"ref": "refs/heads/main"})
    log = result.stdout + result.stderr
    assert result.returncode != 0, log  # the broken entry fails its job
    matrix = json.loads(act.outputs("matrix")["matrix"])
    assert sorted(entry["attr"] for entry in matrix["include"]) == sorted(
        attr.split("#")[1] for attr in FAN_OUT)
    outcomes = {}
    runs = act.kept("build")
    assert len(runs) == len(FAN_OUT), runs
    for kept in runs:
        outputs = json.loads((kept / "outputs.json").read_text())
        junit = cases(kept / "junit.xml")
        assert len(junit) == 1, junit
        outcomes.update(junit)
        assert outputs["exit-code"] == ("1" if RED in junit else "0"), outputs
    assert outcomes == {GREEN[1]: "passed", RED: "failed:build"}


def test_action_update_dry_run(system_ws: Path, tmp_path: Path) -> None:
    needs_subcommand("update")
    act = Act(system_ws, tmp_path)
    workflow = localize_workflow(EXAMPLES / "github" / "ci-nix-update.yml", {
        "update": {"path": "hosts", "args": "--dry-run", "venv": INSTALLED}})
    result = act.run(workflow, "workflow_dispatch", {})
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    assert "$ ci-nix update hosts --junit ci-nix-junit.xml --dry-run" in log
    assert "dry run" in log
    assert act.outputs("update")["exit-code"] == "0"


def test_action_diff_writes_the_comparison(system_ws: Path, tmp_path: Path) -> None:
    needs_subcommand("diff")
    act = Act(system_ws, tmp_path)
    report = tmp_path / "diff.json"
    # --base HEAD instead of the example's --comment: no forge and no base commit here
    workflow = localize_workflow(EXAMPLES / "github" / "ci-nix-diff.yml", {"diff": {
        "all": "true", "only": "\n".join(GREEN), "args": "--base HEAD", "json": str(report),
        "venv": INSTALLED}})
    result = act.run(workflow, "pull_request", {"pull_request": {"number": 7}})
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    only = " ".join(f"--only={attr}" for attr in GREEN)  # one word: an id is never a flag
    assert f"$ ci-nix diff --all {only} --json {report} --base HEAD" in log
    outputs = act.outputs("diff")
    assert outputs["exit-code"] == "0" and outputs["failed"] == "0", outputs
    assert outputs["json-path"] == str(report) and outputs["junit-path"] == ""
    attributes = json.loads(report.read_text())["attributes"]
    assert sorted((f"{a['flake']}#{a['attr']}", a["status"]) for a in attributes) == sorted(
        (attr, "unchanged") for attr in GREEN)


# --- the GitLab template under gitlab-ci-local -------------------------------------------------

class GitLabLocal:
    """gitlab-ci-local on a fixture workspace made a git project that includes the template."""

    def __init__(self, ws: Path, tmp: Path, inputs: dict[str, Any],
                 pip: dict[str, str] | None = None, isolated: bool = False) -> None:
        self.ws, self.tmp, self.pip, self.isolated = ws, tmp, pip or {}, isolated
        copy_checkout(tmp / "ci-nix-src")
        shutil.copy(ROOT / "gitlab-ci-template.yml", ws / "ci-nix-template.yml")
        pipeline = yaml.safe_load((EXAMPLES / "gitlab" / ".gitlab-ci.yml").read_text())
        published = pipeline["include"][0]
        assert published["project"] and published["file"] == "gitlab-ci-template.yml"
        pipeline["include"] = [{"local": "ci-nix-template.yml", "inputs": {
            **published["inputs"], "install": str(tmp / "ci-nix-src"), **inputs}}]
        (ws / ".gitlab-ci.yml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
        git = ["git", "-C", str(ws), "-c", "user.name=t", "-c", "user.email=t@example.com"]
        run([*git, "init", "-q", "-b", "main"], check=True)
        run([*git, "add", ".gitlab-ci.yml", "ci-nix-template.yml", "ci-nix.yaml"], check=True)
        if isolated:
            # --shell-isolation copies the tracked files into the job's directory: the
            # workspace's repos go along as gitlinks (rsync copies them whole, .git included)
            run([*git, "add", "modules", "hosts"], check=True)
        run([*git, "commit", "-q", "-m", "ci"], check=True)

    def run(self, *args: str, variables: dict[str, str] | None = None,
            pip: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        argv = [tool(GITLAB_CI_LOCAL), "--force-shell-executor",
                # isolated: each job runs in .gitlab-ci-local/builds/JOB, a fresh copy of the
                # project, and gets `cache:` only by gitlab-ci-local restoring it from
                # .gitlab-ci-local/cache/KEY (by `key`; 4.65 ignores `fallback_keys`)
                *(["--shell-isolation"] if self.isolated else []),
                "--no-color", "--variable", f"CI_NIX_NIX={os.environ['CI_NIX_NIX']}",
                "--variable", f"NIX_CONFIG={NIX_CONFIG}",
                # the template's per-job venvs (${TMPDIR:-/tmp}/ci-nix-venv-JOB, ~60 MB each)
                # go where pytest removes them, not into the machine's /tmp
                "--variable", f"TMPDIR={self.tmp}"]
        for name, value in {**self.pip, **(pip or {}), **(variables or {})}.items():
            argv += ["--variable", f"{name}={value}"]
        result = run([*argv, *args], cwd=self.ws, env={**os.environ, "HOME": str(self.tmp)})
        (self.tmp / "gitlab-ci-local.log").write_text(result.stdout + result.stderr)
        return result

    def jobs(self, **variables: str) -> list[str]:
        quiet = ["--ignore-predefined-vars", ",".join(variables)] if variables else []
        result = self.run("--list-json", *quiet, variables=variables)
        assert result.returncode == 0, result.stdout + result.stderr
        return sorted(job["name"] for job in json.loads(result.stdout) if job["when"] != "never")

    def artifact(self, job: str, name: str) -> Path:
        return self.ws / ".gitlab-ci-local" / "artifacts" / job / name

    def child_pipeline(self) -> Path:
        """The child pipeline ci-nix-matrix wrote, valid against GitLab's schema, put in the
        project: gitlab-ci-local does not run `trigger:` jobs, so the child pipeline runs as a
        second step (`--file ci-nix-child.yml`)."""
        child = self.artifact("ci-nix-matrix", "ci-nix-child.yml")
        code, output = check_jsonschema("vendor.gitlab-ci", child)
        assert code == 0, output
        shutil.copy(child, self.ws / "ci-nix-child.yml")
        return child


def test_gitlab_template_rules_pick_the_jobs(system_ws: Path, tmp_path: Path) -> None:
    single = GitLabLocal(system_ws, tmp_path, {})
    assert single.jobs() == ["ci-nix"]
    assert single.jobs(CI_PIPELINE_SOURCE="schedule") == ["ci-nix-update"]
    fan_out = GitLabLocal(system_ws, tmp_path / "fan-out", {"fan-out": True})
    assert fan_out.jobs() == ["ci-nix-build", "ci-nix-matrix"]


def test_gitlab_single_job_red(system_ws: Path, tmp_path: Path,
    offline_pip: dict[str, str]) -> None:
    glcl = GitLabLocal(system_ws, tmp_path, {"args": "--all"}, offline_pip)
    result = glcl.run()
    log = result.stdout + result.stderr
    assert result.returncode != 0, log
    assert "4 failed" in log
    found = cases(glcl.artifact("ci-nix", "ci-nix-junit.xml"))
    assert found[RED] == "failed:build" and found[GREEN[0]] == "passed"
    assert sum(state.startswith("failed") for state in found.values()) == 4


def test_gitlab_single_job_green(system_ws: Path, tmp_path: Path) -> None:
    """Three pipelines, each job in a fresh directory: a fork's merge request from its own
    `main`, then two on the default branch `main`. The evaluation cache reaches a job only
    through the template's `cache:`, and a merge request's never reaches the default branch."""
    only = " ".join(f"--only {attr}" for attr in GREEN)
    glcl = GitLabLocal(system_ws, tmp_path, {"args": f"--all {only}", "venv": INSTALLED,
                                             "install": NOT_INSTALLED}, isolated=True)
    caches = system_ws / ".gitlab-ci-local" / "cache"
    job_dir = system_ws / ".gitlab-ci-local" / "builds" / "ci-nix"

    def pipeline(**variables: str) -> str:
        shutil.rmtree(job_dir, ignore_errors=True)  # a new runner: nothing left by the last job
        result = glcl.run(variables=variables)
        log = result.stdout + result.stderr
        assert result.returncode == 0, log
        assert cases(glcl.artifact("ci-nix", "ci-nix-junit.xml")) == dict.fromkeys(
            GREEN, "passed")
        return log

    log = pipeline(CI_PIPELINE_SOURCE="merge_request_event", CI_MERGE_REQUEST_IID="7",
                   CI_MERGE_REQUEST_SOURCE_PROJECT_ID="999")
    assert "with 0 Nix evaluations" not in log
    assert list((caches / "ci-nix-eval-main-mr7-false").rglob("*.json"))  # kept under its own key
    assert not (system_ws / ".ci-nix-cache").exists()  # the job ran elsewhere
    # the default branch does not get the merge request's entries: it evaluates
    # (protected, as a default branch is)
    log = pipeline(CI_COMMIT_REF_PROTECTED="true")
    assert "imported cache" not in log, log
    assert "with 0 Nix evaluations" not in log, log
    assert list((caches / "ci-nix-eval-main-mr-true").rglob("*.json"))
    # the next default-branch pipeline restores its own branch's: no evaluation
    log = pipeline(CI_COMMIT_REF_PROTECTED="true")
    assert "imported cache 'ci-nix-eval-main-mr-true'" in log, log
    assert "evaluated 2 flakes with 0 Nix evaluations" in log, log


def test_gitlab_fan_out_child_pipeline(system_ws: Path, tmp_path: Path,
    offline_pip: dict[str, str]) -> None:
    needs_subcommand("matrix")
    only = " ".join(f"--only {attr}" for attr in FAN_OUT)
    # the parent job uses the installed ci-nix; the child jobs install it (their own
    # before_script, written by ci-nix matrix)
    glcl = GitLabLocal(system_ws, tmp_path, {"fan-out": True, "args": f"--all {only}",
                                             "venv": INSTALLED, "install": NOT_INSTALLED})
    result = glcl.run("ci-nix-matrix")
    assert result.returncode == 0, result.stdout + result.stderr
    # the child pipeline runs with the variables ci-nix-build forwards to it
    child = glcl.child_pipeline()
    pipeline = yaml.safe_load(child.read_text())
    jobs = [name for name in pipeline if name.startswith("build ")]
    assert len(jobs) == len(FAN_OUT), jobs
    # Every child job runs the one `default: before_script` ci-nix matrix wrote (no job has its
    # own): the broken attribute's job proves that script installs ci-nix and runs it. The
    # green job is given the installed venv (a job variable, as a runner with ci-nix would
    # have), saving a second identical install (~7 CPU s).
    install = pipeline["default"]["before_script"]
    assert any("pip install" in line for line in install), install
    assert not [name for name in jobs if "before_script" in pipeline[name]], pipeline
    [green] = [name for name in jobs if GREEN[1].split("#")[1] in name]
    pipeline[green]["variables"] = {**pipeline[green].get("variables", {}),
                                    "CI_NIX_INSTALLED": INSTALLED}
    (system_ws / "ci-nix-child.yml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    # One job at a time: pip builds from one source directory would share its build/.
    # CI_NIX_INSTALLED (forwarded empty) is left out: a pipeline variable would override the
    # green job's own.
    result = glcl.run("--file", "ci-nix-child.yml", "--concurrency", "1", variables={
        "CI_NIX_INSTALL": str(tmp_path / "ci-nix-src"), "CI_NIX_PYTHON": "python3"},
        pip=offline_pip)
    log = result.stdout + result.stderr
    assert result.returncode != 0, log  # the broken attribute's job fails
    # the broken attribute's job made its venv (under the TMPDIR GitLabLocal gives), the green
    # one used the installed ci-nix
    assert len(list(tmp_path.glob("ci-nix-venv-*/bin/ci-nix"))) == 1, log
    outcomes: dict[str, str] = {}
    # gitlab-ci-local escapes job names in artifact directories: find the reports instead
    reports = sorted((system_ws / ".gitlab-ci-local" / "artifacts").glob("*/junit.xml"))
    assert len(reports) == len(FAN_OUT), reports
    for report in reports:
        outcomes.update(cases(report))
    assert outcomes == {GREEN[1]: "passed", RED: "failed:build"}
