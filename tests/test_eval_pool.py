"""The evaluation worker pool on real Nix: timeouts, memory limits, and no Nix left behind."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import FIRST_NIX, ONE_NIX, Cli, flake_repo
from helpers import (
    blocked,
    json_cases,
    never_answering,
    nix_processes_with,
    processes_with,
    wait_for,
)
from hypothesis import given
from hypothesis import strategies as st

from ci_nix import config, evaluate
from ci_nix.models import FLAKE_CASE, FlakeEval, Target
from ci_nix.tools import proc
from ci_nix.tools.git import Git
from ci_nix.tools.nix import (
    WORKER_LINE,
    Begin,
    Done,
    HelperResult,
    Nix,
    SourceRead,
    parse_worker_line,
)
from ci_nix.workspace import load

X86 = "x86_64-linux"

# Never ends in practice (10^10 additions), in bounded memory: a Nix that computes, spinning a
# core, for the tests that stop one (a signal to ci-nix, coreutils' timeout, the OOM killer's
# SIGKILL: test_a_signal_stops_every_worker, test_timeout_command_leaves_no_nix_behind, test_a_
# worker_killed_by_sigkill_...). Where an evaluation only has to outlast --eval-timeout, it waits
# on a fetch that never answers instead (helpers.blocked): the same timeout, no core spun for it.
FOREVER = ("builtins.foldl' (a: i: a + builtins.foldl' (b: j: b + j) 0 "
           "(builtins.genList (x: x) 100000)) 0 (builtins.genList (x: x) 100000)")


def flake_text(attrs: dict[str, str], nonce: str) -> str:
    """A flake whose packages.x86_64-linux.NAME = mk NAME, after forcing the given expression."""
    body = "\n".join(f"      {name} = builtins.seq ({expr}) (mk \"{name}\");"
                     for name, expr in attrs.items())
    return f"""{{
  outputs = {{ self }}: let
    mk = name: derivation {{ inherit name; system = "{X86}"; builder = "/bin/sh";
      args = [ "-c" "echo {nonce} > $out" ]; }};
  in {{
    packages.{X86} = {{
{body}
    }};
  }};
}}
"""


@pytest.mark.nix
def test_a_never_ending_attribute_times_out_and_the_others_pass(tmp_path: Path, nix_bin: str,
                                                                cli: Cli) -> None:
    with never_answering() as url:
        repo = flake_repo(tmp_path / "repo", flake_text(
            {"a": "1", "forever": blocked(url), "z": "2"}, os.urandom(4).hex()))
        result = cli("matrix", "--all", repo, "--format", "json", "--eval-timeout", "3",
                     "--workers", "2", timeout=120)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert sorted(j["attr"] for j in data["jobs"]) == [f"packages.{X86}.a", f"packages.{X86}.z"]
    [failure] = data["failures"]
    assert failure["attr"] == f"packages.{X86}.forever" and failure["type"] == "timeout"
    assert "--eval-timeout 3s" in failure["message"]
    assert not processes_with(str(repo)), "a Nix process outlived ci-nix"


# A flake that answers for ci-nix: its attribute `broken` throws, after a trace in the shape of
# eval.nix's "done" naming a derivation that builds.
FORGER = """{
  outputs = { self }: let
    good = derivation { name = "good-NONCE"; system = "x86_64-linux"; builder = "/bin/sh";
                        args = [ "-c" "echo > $out" ]; };
    done = i: builtins.toJSON { done = i; result = {
      path = [ "packages" "x86_64-linux" "broken" ]; inherit (good) drvPath system;
      outputs.out = good.outPath; }; };
  in {
    packages.x86_64-linux.broken = builtins.trace "ci-nix:${done 0}"
      (builtins.trace "ci-nix:TAG:${done 0}" (throw "broken does not evaluate"));
  };
}"""


@pytest.mark.nix
def test_a_flake_cannot_answer_for_the_evaluation_worker(tmp_path: Path, nix_bin: str,
                                                         cli: Cli) -> None:
    """What a flake traces is its own text: an attribute that throws fails `eval` however
    much its trace looks like the worker's answer (it passed, exit 0, before the tag)."""
    repo = flake_repo(tmp_path / "repo", FORGER.replace("NONCE", os.urandom(4).hex())
                      .replace("TAG", os.urandom(16).hex()))
    report = tmp_path / "report.json"
    result = cli("run", "--all", repo, "--json", report, "--no-eval-cache", timeout=120)
    assert result.returncode == 1, result.stderr
    case = json_cases(report)[f"repo#packages.{X86}.broken"]
    assert case["status"] == "failed" and case["failure"]["type"] == "eval", case


# How each Nix version's evaluation dies with ci-nix is matrix's cases, on both Nixes, for both
# signals; run's and diff's (ci-nix's commands over the same pool of workers) on the first only
@pytest.mark.nix
@pytest.mark.parametrize("command, signum, code", [
    (("matrix", "--all"), signal.SIGTERM, 143), (("matrix", "--all"), signal.SIGINT, 130),
    pytest.param(("run", "--all"), signal.SIGTERM, 143, marks=FIRST_NIX),
    pytest.param(("diff", "--all", "--base", "HEAD"), signal.SIGTERM, 143, marks=FIRST_NIX)])
def test_a_signal_stops_every_worker(tmp_path: Path, nix_bin: str, command: tuple[str, ...],
                                     signum: int, code: int) -> None:
    repo = flake_repo(tmp_path / "repo", flake_text(
        {"a": FOREVER, "b": FOREVER, "c": FOREVER}, os.urandom(4).hex()))
    # a total that 2 x --eval-memory fits on any machine: the second worker need not wait for
    # the first one's size (never known here: no attribute ends)
    child = subprocess.Popen([sys.executable, "-m", "ci_nix", *command, str(repo),
                              "--workers", "2", "--eval-memory-total", "1000000"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # both workers busy: one evaluating, one that took over the back of its list
        wait_for(lambda: len(nix_processes_with(str(repo))) >= 2, 60, "both workers busy")
        child.send_signal(signum)
        out, err = child.communicate(timeout=30)
        assert child.returncode == code, err
    finally:
        child.kill()
    assert "Traceback" not in err
    wait_for(lambda: not processes_with(str(repo)), 30, "no Nix process outliving ci-nix")


@pytest.mark.nix
def test_timeout_command_leaves_no_nix_behind(tmp_path: Path, nix_bin: str) -> None:
    """coreutils `timeout` around ci-nix: when time is up it TERMs ci-nix (and its process
    group); the Nix evaluating a never-ending attribute must not outlive ci-nix."""
    repo = flake_repo(tmp_path / "repo", flake_text({"a": FOREVER}, os.urandom(4).hex()))
    # `timeout` learns that time is up from SIGALRM, its own timer's signal: sending it once Nix
    # evaluates is expiry itself (exit 124), without a fixed time that Nix spins through and
    # that a loaded machine may need just to start Nix
    with subprocess.Popen(["timeout", "600", sys.executable, "-m", "ci_nix", "matrix", "--all",
                           str(repo)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as timer:
        try:
            wait_for(lambda: nix_processes_with(str(repo)) or None, 60, "Nix evaluating")
            timer.send_signal(signal.SIGALRM)
            _, err = timer.communicate(timeout=60)
        finally:
            timer.kill()
    assert timer.returncode == 124, err
    wait_for(lambda: not processes_with(str(repo)), 30, "no Nix process outliving ci-nix")


def _evaluate(repo: Path, workers: int | None = None, *,
              memory_mib: int = config.DEFAULT_EVAL_MEMORY_MIB, timeout: float = 0) -> FlakeEval:
    ws = load(repo, Git.from_env())
    selection = evaluate.Selection(systems=(X86,), outputs=ws.config.outputs)
    limits = evaluate.Limits(workers, memory_mib, timeout)
    [result] = evaluate.evaluate(Nix.from_env(), [Target(ws.flakes[0])], selection, limits)
    return result


def doubled(times: int) -> str:
    """A string of 2^times bytes, made by doubling (fast: no per-element allocation)."""
    return f'builtins.foldl\' (s: _: s + s) "x" (builtins.genList (i: i) {times})'


HEAVY = doubled(27)  # 128 MiB, kept reachable through the flake's outputs
HOG = f"builtins.stringLength ({doubled(33)})"  # 8 GiB: never fits


@pytest.mark.nix
def test_a_worker_past_the_memory_limit_is_replaced(tmp_path: Path, nix_bin: str) -> None:
    names = ["p1", "p2", "p3", "p4"]
    text = flake_text(dict.fromkeys(names, "1"), os.urandom(4).hex())
    for name in names:  # each attribute keeps its own big list alive in the outputs
        text = text.replace(f'{name} = builtins.seq (1) (mk "{name}");',
                            f'{name} = let big = {HEAVY}; in builtins.seq big '
                            f'(mk "{name}" // {{ inherit big; }});')
    repo = flake_repo(tmp_path / "repo", text)
    result = _evaluate(repo, workers=1, memory_mib=500)
    assert not result.cases, result.cases
    assert sorted(j.attr[-1] for j in result.jobs) == names
    assert result.evaluations >= 2  # 4 x 128 MiB do not fit in one worker of 500 MiB


@pytest.mark.nix
def test_an_attribute_that_alone_exceeds_the_limit_fails_as_out_of_memory(
        tmp_path: Path, nix_bin: str) -> None:
    repo = flake_repo(tmp_path / "repo", flake_text(
        {"a": "1", "hog": HOG, "z": "2"}, os.urandom(4).hex()))
    result = _evaluate(repo, workers=1, memory_mib=400)
    assert sorted(j.attr[-1] for j in result.jobs) == ["a", "z"]
    [case] = result.cases
    assert case.name == f"packages.{X86}.hog" and case.failure is not None
    assert case.failure.type.value == "eval"
    assert "out of memory" in case.failure.message and "400 MiB" in case.failure.message
    assert case.failure.hint and "--eval-memory" in case.failure.hint


@pytest.mark.nix
def test_a_flake_that_cannot_be_listed_in_time_fails_as_a_whole(tmp_path: Path,
                                                                nix_bin: str) -> None:
    with never_answering() as url:
        repo = flake_repo(tmp_path / "repo", f"""{{
  outputs = {{ self }}: builtins.seq ({blocked(url)}) {{ packages.{X86} = {{ }}; }};
}}
""")
        result = _evaluate(repo, timeout=2)
    [case] = result.cases
    assert case.name == FLAKE_CASE and case.failure is not None
    assert case.failure.type.value == "timeout"


@pytest.mark.nix
def test_a_group_that_throws_while_listed_fails_alone(tmp_path: Path, nix_bin: str) -> None:
    text = flake_text({"a": "1", "b": "2"}, os.urandom(4).hex()).replace(
        "  in {\n", f'  in {{\n    checks.{X86} = throw "no checks today";\n', 1)
    repo = flake_repo(tmp_path / "repo", text)
    result = _evaluate(repo, workers=2)
    assert sorted(j.attr[-1] for j in result.jobs) == ["a", "b"]
    [case] = result.cases
    assert case.name == f"checks.{X86}" and case.failure is not None
    assert "no checks today" in case.failure.message


# --- parsers of what the workers and /proc say ----------------------------------------------

def test_worker_lines() -> None:
    assert parse_worker_line(WORKER_LINE + '{"begin":3}') == Begin(3)
    done = parse_worker_line(WORKER_LINE + '{"done":0,"result":{"path":["packages","x","a"],'
                             '"drvPath":"/nix/store/a.drv","system":"x",'
                             '"outputs":{"out":"/nix/store/a"}}}')
    assert done == Done(0, HelperResult(("packages", "x", "a"), "/nix/store/a.drv", "x",
                                        (("out", "/nix/store/a"),)))
    assert parse_worker_line("trace: something of the user's") is None
    assert parse_worker_line(WORKER_LINE + '{"source":"' + "a" * 40 + '"}') == SourceRead("a" * 40)
    assert parse_worker_line(WORKER_LINE + '{"source":null}') == SourceRead(None)
    assert parse_worker_line(WORKER_LINE + '{"begin":') is None  # cut: plain text
    # a flake's own trace in the untagged shape is the flake's text, not an answer
    assert parse_worker_line('trace: ci-nix:{"begin":3}') is None


@given(st.text())
def test_any_stderr_line_parses_or_is_text(line: str) -> None:
    parse_worker_line(line)
    parse_worker_line("trace: ci-nix:" + line)


def test_proc_stat() -> None:
    text = "1234 (nix (odd) name) S 1 1200 1200 0 -1 4194560 " + " ".join(["0"] * 14) + \
        " 2500 0 0"
    assert proc.parse_stat(text) == (1200, 2500 * os.sysconf("SC_PAGE_SIZE"))
    own = Path(f"/proc/{os.getpid()}/stat").read_text()
    group, rss = proc.parse_stat(own)
    assert group == os.getpgrp() and rss > 1_000_000


def test_group_sampler_reads_all_of_proc_only_for_new_groups_and_now_and_then(
        tmp_path: Path) -> None:
    page = os.sysconf("SC_PAGE_SIZE")

    def process(pid: int, group: int, pages: int) -> None:
        (tmp_path / str(pid)).mkdir(exist_ok=True)
        (tmp_path / str(pid) / "stat").write_text(
            f"{pid} (nix) S 1 {group} {group} 0 -1 0 " + " ".join(["0"] * 14) + f" {pages} 0")

    now = [0.0]
    process(100, 100, 10)
    process(101, 100, 5)  # the worker's child
    process(200, 200, 7)  # some other process group
    sampler = proc.GroupSampler(rescan=1.0, proc_dir=tmp_path, clock=lambda: now[0])
    assert sampler([100]) == {100: 15 * page}
    now[0] = 0.9
    process(102, 100, 1)  # in a young group's first second (a wrapper starting Nix): found
    assert sampler([100]) == {100: 16 * page}
    now[0] = 1.2
    process(103, 100, 1)  # started since: found at the next scan of all of /proc
    process(101, 100, 8)  # grown: read between scans
    assert sampler([100]) == {100: 19 * page}
    now[0] = 1.3
    process(101, 300, 8)  # gone, its pid reused by a process of another group
    assert sampler([100]) == {100: 11 * page}
    now[0] = 1.95
    assert sampler([100]) == {100: 12 * page}  # a second after the last scan: all of /proc
    now[0] = 2.0
    # a group new to the sampler (a new worker) is looked for in all of /proc at once
    process(104, 100, 1)
    assert sampler([100, 200]) == {100: 13 * page, 200: 7 * page}
    assert proc.group_rss([100, 300], tmp_path) == {100: 13 * page, 300: 8 * page}


@given(st.text())
def test_proc_stat_garbage_raises_value_errors_only(text: str) -> None:
    try:
        proc.parse_stat(text)
    except (ValueError, IndexError):
        pass


@pytest.mark.nix
def test_hosts_read_from_fresh_outputs_have_nix_own_drv_paths(tmp_path: Path,
                                                              nix_bin: str) -> None:
    """Each NixOS host is evaluated from a fresh call of the flake's outputs (so a finished one
    is garbage): the derivations must be exactly those Nix itself gives, `self` included."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench import generate

    fleet = generate.generate_fleet(tmp_path / "ws", 3, host_mb=1, shared=1000,
                                    broken="missing")  # a small shared part: not its subject
    flake = fleet.root / "fleet"
    text = (flake / "flake.nix").read_text()  # a host that reads its own flake through self
    text = text.replace("    nixosConfigurations = {\n", "    nixosConfigurations = {\n"
                        "      self-ref = self.nixosConfigurations.h00 // { config = "
                        "self.nixosConfigurations.h00.config // { system.build.toplevel = "
                        "self.nixosConfigurations.h00.config.system.build.toplevel; }; };\n")
    (flake / "flake.nix").write_text(text)
    subprocess.run(["git", "-C", str(flake), "-c", "user.name=t", "-c", "user.email=t@e",
                    "commit", "-qam", "self"], check=True)
    ws = load(fleet.root, Git.from_env())
    selection = evaluate.Selection(systems=(X86,), outputs=ws.config.outputs)
    [result] = evaluate.evaluate(Nix.from_env(), [Target(ws.flakes[0])], selection,
                                 evaluate.Limits(workers=2))
    assert [c.name for c in result.cases] == ["nixosConfigurations.h01"]  # the missing one
    assert {j.name for j in result.jobs} == {"nixosConfigurations.h00",
                                             "nixosConfigurations.h02",
                                             "nixosConfigurations.self-ref"}
    # what Nix itself gives each host's toplevel: one bare `nix eval` for all of them
    hosts = [job.name.removeprefix("nixosConfigurations.") for job in result.jobs]
    bare = json.loads(Nix.from_env().check([
        "eval", "--json", f"git+file://{flake}#nixosConfigurations", "--apply",
        "hosts: map (name: hosts.${name}.config.system.build.toplevel.drvPath) "
        f"{json.dumps(hosts).replace(',', '')}"], "bare eval"))
    assert [job.drv_path for job in result.jobs] == bare
    assert all(job.system == X86 for job in result.jobs), result.jobs
    # every Nix process said the commit it read the clean checkout at (the evaluation cache
    # then need not ask git whether it changed meanwhile)
    head = Git.from_env().commit(flake, "HEAD")
    assert result.source_revs == (head,) * result.evaluations and result.evaluations > 1


@pytest.mark.nix
def test_hosts_of_a_flake_in_a_subdirectory(tmp_path: Path, nix_bin: str) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench import generate

    fleet = generate.generate_fleet(tmp_path / "gen", 2, host_mb=1, shared=1000)
    repo = tmp_path / "mono"
    (repo / "hosts").mkdir(parents=True)
    for name in ("flake.nix", "shared.nix", "host.nix"):
        (repo / "hosts" / name).write_text((fleet.root / "fleet" / name).read_text())
    (repo / "README").write_text("hosts live in hosts/\n")
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@e",
                                                   "commit", "-qm", "hosts"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True)
    (repo / "README").write_text("hosts live in hosts/, uncommitted\n")
    ws = load(repo, Git.from_env())
    [flake] = ws.flakes
    assert flake.subdir == "hosts"
    selection = evaluate.Selection(systems=(X86,), outputs=ws.config.outputs)
    [result] = evaluate.evaluate(Nix.from_env(), [Target(flake)], selection)
    assert not result.cases, result.cases
    # a work tree with uncommitted changes is read at no commit: no process names one
    assert result.source_revs == (None,) * result.evaluations
    bare = Nix.from_env().check(["eval", "--raw", f"{flake.ref}#nixosConfigurations.h01.config"
                                 ".system.build.toplevel.drvPath"], "bare eval").strip()
    assert {j.name: j.drv_path for j in result.jobs}["nixosConfigurations.h01"] == bare


# One Nix: the flags are refused before any evaluation
@pytest.mark.nix
@ONE_NIX
@pytest.mark.parametrize("flag, value, says", [
    ("--eval-timeout", "-1", "--eval-timeout -1: give seconds"),
    ("--eval-memory", "0", "--eval-memory 0: give the MiB"),
    ("--workers", "0", "--workers 0: give at least 1")])
def test_bad_pool_flags_are_one_line_errors_with_the_report_written(
        tmp_path: Path, nix_bin: str, cli: Cli, flag: str, value: str, says: str) -> None:
    repo = flake_repo(tmp_path / "repo", flake_text({"a": "1"}, os.urandom(4).hex()))
    junit = tmp_path / "r.xml"
    result = cli("run", "--all", repo, flag, value, "--junit", junit)
    assert result.returncode == 2 and says in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and junit.is_file()


def test_eval_keys_in_ci_nix_yaml(tmp_path: Path) -> None:
    from ci_nix.errors import ConfigError

    file = tmp_path / "ci-nix.yaml"
    file.write_text("eval:\n  workers: 3\n  memory: 600\n  timeout: 2.5\n")
    loaded = config.load(file).eval
    assert (loaded.workers, loaded.memory, loaded.timeout) == (3, 600, 2.5)
    # flags win over the file, the file over the defaults
    assert evaluate.EvalFlags(memory_mib=900).limits(loaded) == evaluate.Limits(3, 900, 2.5)
    assert evaluate.EvalFlags().limits(config.EvalConfig()) == evaluate.Limits(None, 4096, 0)
    for text, says in (("eval:\n  memory: -1\n", "2: 'eval.memory' must be a whole number"),
                       ("eval:\n  timeout: .inf\n", "2: 'eval.timeout' must be a number"),
                       ("eval:\n  workers: true\n", "2: 'eval.workers' must be a whole"),
                       ("eval:\n  cores: 2\n", "unknown key 'eval.cores'")):
        file.write_text(text)
        with pytest.raises(ConfigError, match=re.escape(says)):
            config.load(file)


@pytest.mark.nix
def test_a_worker_killed_by_sigkill_is_retried_alone_once_then_fails_out_of_memory(
        tmp_path: Path, nix_bin: str) -> None:
    """The kernel's OOM killer SIGKILLs the Nix process; here the test does."""
    repo = flake_repo(tmp_path / "repo", flake_text(
        {"a": "1", "hog": FOREVER, "z": "2"}, os.urandom(4).hex()))
    ws = load(repo, Git.from_env())
    selection = evaluate.Selection(systems=(X86,), outputs=ws.config.outputs)
    first_done = threading.Event()
    killed: list[int] = []

    def nix_on_hog() -> list[int] | None:
        found = []
        for pid in processes_with(str(repo)):
            try:  # the Nix itself, not a wrapper script (nix-modern): what the kernel would pick
                if pid not in killed and Path(f"/proc/{pid}/comm").read_text().strip() == "nix":
                    found.append(pid)
            except OSError:
                pass
        return found or None

    def killer() -> None:
        first_done.wait(120)  # `a` is done: the worker is on `hog`
        for _ in range(2):  # its worker, then the one that tries it again alone
            pids = wait_for(nix_on_hog, 60, "a Nix process evaluating hog")
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            killed.extend(pids)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    [result] = evaluate.evaluate(
        Nix.from_env(), [Target(ws.flakes[0])], selection, evaluate.Limits(workers=1),
        on_attr=lambda _target, done, _total: first_done.set() if done >= 1 else None)
    thread.join(10)
    assert sorted(j.attr[-1] for j in result.jobs) == ["a", "z"]
    [case] = result.cases
    assert case.name == f"packages.{X86}.hog" and case.failure is not None
    assert case.failure.type.value == "eval"
    assert "out of memory" in case.failure.message and "alone" in case.failure.message
    assert len(killed) >= 2 and result.evaluations == 3  # the first, hog alone, then z
