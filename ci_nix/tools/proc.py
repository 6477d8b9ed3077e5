"""The only module that starts processes: logging, masking, timeouts and cancellation live here."""

from __future__ import annotations

import atexit
import logging
import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

from ci_nix.errors import Cancelled, ToolError, ToolTimeout
from ci_nix.mask import child_environ, mask

log = logging.getLogger("ci_nix.proc")

_children_lock = threading.Lock()
_children: set[subprocess.Popen[bytes]] = set()
_cancelled: list[int] = []  # the signal that cancelled this process, once one has
_cancel_event = threading.Event()
_cancel_hooks: list[Callable[[], None]] = []  # guarded by _children_lock


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def command_from_env(environ: Mapping[str, str], variable: str, default: str) -> tuple[str, ...]:
    """The argv prefix of an injectable tool: $variable split like a shell would, or default."""
    return tuple(shlex.split(environ.get(variable, default))) or (default,)


PATHS_ON_STDIN = 200  # more store paths than this go to a client on stdin, not argv


def paths_stdin(paths: Sequence[str]) -> str | None:
    """The paths as stdin lines when they are too many for one argv (ARG_MAX), else None:
    the caller then passes them as arguments."""
    if len(paths) > PATHS_ON_STDIN:
        return "".join(f"{path}\n" for path in paths)
    return None


def _describe(argv: Sequence[str]) -> str:
    return mask(shlex.join(argv))


def _spawn(
    argv: Sequence[str],
    *,
    cwd: Path | None,
    env: Mapping[str, str] | None,
    stdin: int | None,
    tool_hint: str,
    essential: bool = False,
    stdout: int = subprocess.PIPE,
    inherit_env: bool = True,
) -> subprocess.Popen[bytes]:
    if _cancelled and not essential:
        # After SIGINT/SIGTERM only the quick queries needed to report what finished may run.
        raise Cancelled(_cancelled[0])
    log.info("$ %s", _describe(argv))
    # inherit_env=False: only `env` (a program the build made must not see ci-nix's secrets);
    # otherwise ci-nix's environment without its secrets (mask.child_environ), plus `env`,
    # which may hand a secret on deliberately (CACHIX_AUTH_TOKEN to cachix)
    full_env = (dict(env or {}) if not inherit_env
                else {**child_environ(os.environ), **(env or {})})
    try:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=full_env,
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.PIPE,
            # Own process group, so cancellation can stop the whole tree (nix spawns
            # builders).
            start_new_session=True,
        )
    except FileNotFoundError:
        raise ToolError(f"{argv[0]}: not found; install it or {tool_hint}") from None
    except PermissionError:
        raise ToolError(f"{argv[0]}: not executable; check the path ({tool_hint})") from None
    # Recorded, and checked again, under the lock cancel() takes to mark the run cancelled and
    # to collect the children it stops: a command that starts while a signal comes is either
    # stopped by cancel() or, recorded after it, stopped here, never left running (a worker's
    # Nix spinning on, with ci-nix waiting for it for good: SIGINT/SIGTERM then hung the run).
    # Not started under it: a process start takes milliseconds on a busy machine, and the
    # threads that start commands side by side (proc.each) would wait for each other there.
    with _children_lock:
        _children.add(proc)
        late = bool(_cancelled) and not essential
    if late:
        _kill_group(proc, signal.SIGKILL)
        proc.communicate()
        _forget(proc)
        raise Cancelled(_cancelled[0])
    return proc


_T = TypeVar("_T")
_R = TypeVar("_R")


def each(work: Callable[[_T], _R], items: Iterable[_T], threads: int = 4) -> list[_R]:
    """work(item) for every item, on a few threads, the results in the items' order: for short
    commands per item (a few git calls per workspace repo), which one after another leave the
    other cores idle while each process starts. An item's exception is raised as a loop would
    have raised it: the first item's in order (the items after it may have run meanwhile)."""
    items = list(items)
    if len(items) < 2 or threads < 2:
        return [work(item) for item in items]
    pool = ThreadPoolExecutor(min(threads, len(items)), thread_name_prefix="ci-nix-each")
    try:
        return list(pool.map(work, items))
    finally:
        pool.shutdown(cancel_futures=True)


def ahead(work: Callable[[], object]) -> Callable[[], None]:
    """Start work on a thread now, for a query whose answer it keeps (e.g. Nix's version, a
    cached property) while the caller does other work; returns what waits for it to end.
    Its failure is dropped: the caller asks again where it needs the answer and gets the
    error there, where it always came. But a query that ran out of time raises its ToolTimeout
    from the wait: asked again, it would keep the run waiting as long again."""
    timed_out: list[ToolTimeout] = []

    def run() -> None:
        try:
            work()
        except ToolTimeout as err:
            timed_out.append(err)
        except Exception:  # noqa: BLE001, S110 - met again where the answer is needed
            pass

    thread = threading.Thread(target=run, name="ci-nix-ahead", daemon=True)
    thread.start()

    def wait() -> None:
        thread.join()
        if timed_out:
            raise timed_out[0]
    return wait


def _forget(proc: subprocess.Popen[bytes]) -> None:
    with _children_lock:
        _children.discard(proc)


def run(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    timeout: float | None = None,
    tool_hint: str = "put it on PATH",
    essential: bool = False,
    output: Path | None = None,
    inherit_env: bool = True,
) -> Result:
    """Run argv to completion and capture its output (never through a shell).

    `essential` commands still run after cancellation (to find out what finished).
    `output`: stdout goes to this file (bytes, however large), not into Result.stdout.
    `inherit_env` False: the process gets only `env`, none of ci-nix's environment.
    """
    sink = open(output, "wb") if output is not None else None  # noqa: SIM115 (closed below)
    try:
        proc = _spawn(
            argv, cwd=cwd, env=env, stdin=subprocess.PIPE if input is not None else None,
            tool_hint=tool_hint, essential=essential,
            stdout=sink.fileno() if sink is not None else subprocess.PIPE,
            inherit_env=inherit_env,
        )
    except BaseException:
        if sink is not None:
            sink.close()
        raise
    try:
        out, err = proc.communicate(
            input.encode() if input is not None else None, timeout=timeout
        )
        if sink is not None:
            sink.write(out or b"")  # a process writes to the file itself; a fake answers here
            out = b""
    except subprocess.TimeoutExpired:
        _kill_group(proc, signal.SIGKILL)
        out, err = proc.communicate()
        _forget(proc)
        raise ToolTimeout(
            f"{argv[0]}: no answer within {timeout:.0f}s ({_describe(argv)[:200]})"
        ) from None
    finally:
        _forget(proc)
        if sink is not None:
            sink.close()
    result = Result(
        tuple(argv), proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")
    )
    if not result.ok:
        log.debug("exit %d: %s", result.returncode, mask(result.stderr[-2000:]))
    return result


def stream(
    argv: Sequence[str],
    on_stderr_line: Callable[[str], None],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    tool_hint: str = "put it on PATH",
) -> Result:
    """Run argv, handing each stderr line to a callback as it arrives (bounded memory).

    stdout is captured whole; stderr is not kept (Result.stderr is empty).
    """
    proc = _spawn(argv, cwd=cwd, env=env, stdin=None, tool_hint=tool_hint)
    chunks: list[bytes] = []
    assert proc.stdout is not None and proc.stderr is not None
    stdout = proc.stdout
    reader = threading.Thread(target=lambda: chunks.append(stdout.read()), daemon=True)
    reader.start()
    try:
        for line in _bounded_lines(proc.stderr):
            on_stderr_line(line)
        proc.wait()
        reader.join()
    finally:
        _forget(proc)
    return Result(tuple(argv), proc.returncode, b"".join(chunks).decode(errors="replace"), "")


def chunks(argv: Sequence[str], on_chunk: Callable[[bytes], None], *,
           tool_hint: str = "put it on PATH") -> Result:
    """Run argv, handing its stdout to on_chunk piece by piece (for output too large to hold,
    e.g. a decompressed NAR); Result.stdout is empty, stderr is captured."""
    proc = _spawn(argv, cwd=None, env=None, stdin=None, tool_hint=tool_hint)
    assert proc.stdout is not None and proc.stderr is not None
    errors: list[bytes] = []
    stderr = proc.stderr
    reader = threading.Thread(target=lambda: errors.append(stderr.read()), daemon=True)
    reader.start()
    try:
        while piece := proc.stdout.read(1 << 20):
            on_chunk(piece)
        proc.wait()
        reader.join()
    finally:
        _forget(proc)
    return Result(tuple(argv), proc.returncode, "", b"".join(errors).decode(errors="replace"))


MAX_LINE = 64 * 1024


def _bounded_lines(pipe: IO[bytes]) -> Iterator[str]:
    """Lines of a pipe, each cut at MAX_LINE bytes, so one huge line cannot exhaust memory."""
    while True:
        raw = pipe.readline(MAX_LINE)
        if not raw:
            return
        if not raw.endswith(b"\n") and len(raw) >= MAX_LINE:
            while (rest := pipe.readline(MAX_LINE)) and not rest.endswith(b"\n"):
                pass  # drop the remainder of an over-long line
            raw += b" [line cut]"
        yield raw.decode(errors="replace").rstrip("\r\n")


class Running:
    """A started process whose stderr is read line by line; stdout is discarded.

    For long-lived workers that another thread may stop at any moment (`kill`), and whose
    memory is watched (`rss`).
    """

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self._proc = proc
        self.pid = proc.pid

    def lines(self) -> Iterator[str]:
        """stderr, one line at a time (each cut at MAX_LINE bytes), until the process closes it."""
        assert self._proc.stderr is not None
        yield from _bounded_lines(self._proc.stderr)

    def wait(self) -> int:
        """Wait for the exit; the return code (negative: killed by that signal)."""
        try:
            return self._proc.wait()
        finally:
            _forget(self._proc)
            if self._proc.stderr is not None:
                self._proc.stderr.close()

    def kill(self) -> None:
        """SIGKILL the whole process group (the process and everything it started)."""
        _kill_group(self._proc, signal.SIGKILL)


def start(argv: Sequence[str], *, env: Mapping[str, str] | None = None,
          tool_hint: str = "put it on PATH") -> Running:
    """Start argv in its own process group; read its stderr with Running.lines()."""
    return Running(_spawn(argv, cwd=None, env=env, stdin=None, tool_hint=tool_hint,
                          stdout=subprocess.DEVNULL))


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def parse_stat(text: str) -> tuple[int, int]:
    """(process group, resident bytes) from the text of /proc/PID/stat."""
    _, group, size = _stat(text)
    return group, size


def _read_stat(proc_dir: Path, pid: int | str) -> str:
    """The text of /proc/PID/stat. Without pathlib: a scan reads one per process on the
    machine, ten times a second while evaluating, and Path's own work doubled its cost."""
    fd = os.open(f"{proc_dir}/{pid}/stat", os.O_RDONLY)
    try:
        return os.read(fd, 4096).decode(errors="replace")
    finally:
        os.close(fd)


def _stat(text: str) -> tuple[int, int, int]:
    """(parent, process group, resident bytes) from the text of /proc/PID/stat."""
    # The command name (field 2) is in parentheses and may itself hold spaces and parentheses.
    fields = text[text.rindex(")") + 2:].split()
    # after the name: state ppid pgrp ... rss is field 24 of the whole line, 22nd here
    return int(fields[1]), int(fields[2]), int(fields[21]) * _PAGE


def group_rss(groups: Iterable[int], proc_dir: Path = Path("/proc")) -> dict[int, int]:
    """Resident memory in bytes of every process in each process group (Linux /proc)."""
    return GroupSampler(proc_dir=proc_dir)(groups)


class ProcScan:
    """All of /proc: every process's (parent, process group, resident bytes). A scan reads
    every process's stat file; the samplers of one evaluation pool share one ProcScan, so one
    scan serves both in a tick (each scans when the other has, so their scans stay in step).
    For one thread (the pool's)."""

    # the samplers of one tick ask microseconds apart; a tick is 20 ms at the least
    FRESH = 0.005

    def __init__(self, proc_dir: Path = Path("/proc"),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.proc_dir, self.clock = proc_dir, clock
        self.taken = float("-inf")  # when the table was read
        self.table: dict[int, tuple[int, int, int]] = {}

    def __call__(self) -> dict[int, tuple[int, int, int]]:
        """The table, read now unless another sampler read it just now (FRESH)."""
        now = self.clock()
        if now - self.taken >= self.FRESH:
            self.table, self.taken = {}, now
            try:
                entries = os.listdir(self.proc_dir)
            except OSError:
                entries = []
            for entry in entries:
                if entry.isdigit():
                    try:
                        self.table[int(entry)] = _stat(_read_stat(self.proc_dir, entry))
                    except (OSError, ValueError, IndexError):
                        continue  # gone meanwhile, or not a process we can read
        return self.table


class GroupSampler:
    """group_rss for a loop that asks every tenth of a second: the whole of /proc is read
    while a group is new to it (its first `rescan` seconds, when a wrapper starts the real
    Nix) and every `rescan` seconds after (to find what a group's processes have started
    since), and in between only the processes found then. A scan reads every process's stat
    file: on a runner with hundreds of processes, ten scans a second cost the evaluation pool
    more CPU than all else it does, CPU its Nix workers could use. scan: one shared with the
    pool's TreeSampler."""

    def __init__(self, rescan: float = 1.0, proc_dir: Path = Path("/proc"),
                 clock: Callable[[], float] = time.monotonic, scan: ProcScan | None = None) -> None:
        self.scan = scan or ProcScan(proc_dir, clock)
        self.rescan, self.proc_dir, self.clock = rescan, self.scan.proc_dir, self.scan.clock
        self.members: dict[int, set[int]] = {}  # group -> the pids last found in it
        self.seen: dict[int, float] = {}  # group -> when it was first asked for
        self.scanned = float("-inf")

    def __call__(self, groups: Iterable[int]) -> dict[int, int]:
        wanted = set(groups)
        now = self.clock()
        young = any(now - self.seen.setdefault(group, now) < self.rescan for group in wanted)
        if (young or now - self.scanned >= self.rescan or not wanted <= set(self.members)
                or self.scan.taken > self.scanned):  # the other sampler scanned: in step
            return self._scan(wanted)
        total = dict.fromkeys(wanted, 0)
        for group in wanted:
            for pid in list(self.members[group]):
                try:
                    owner, size = parse_stat(_read_stat(self.proc_dir, pid))
                except (OSError, ValueError, IndexError):
                    owner = -1  # gone
                if owner != group:  # gone, or its pid reused by another process
                    self.members[group].discard(pid)
                    continue
                total[group] += size
        return total

    def _scan(self, wanted: set[int]) -> dict[int, int]:
        table = self.scan()
        self.scanned = self.scan.taken
        total = dict.fromkeys(wanted, 0)
        self.members = {group: set() for group in wanted}
        for pid, (_, group, size) in table.items():
            if group in wanted:
                total[group] += size
                self.members[group].add(pid)
        return total


def child_groups() -> list[int]:
    """The process groups of the commands ci-nix runs now (each starts its own: its group is its
    pid), e.g. a `nix build`."""
    with _children_lock:
        return [child.pid for child in _children if child.returncode is None]


class TreeSampler:
    """The resident bytes of everything the commands ci-nix runs (child_groups) have started,
    at any depth, but the process groups excluded (the evaluation pool's workers, which it
    reads itself by group). By descent, not process group: Nix puts each builder in a session
    of its own (setsid), so neither a `nix build`'s group nor a worker's holds the builders
    it runs (a build, or an evaluation's import-from-derivation). Descent needs all of /proc,
    read at most every `rescan` seconds (and when the commands change); in between only the
    processes found then are read again, as GroupSampler does (and with its scan, shared)."""

    def __init__(self, rescan: float = 1.0, proc_dir: Path = Path("/proc"),
                 clock: Callable[[], float] = time.monotonic,
                 roots: Callable[[], Iterable[int]] = child_groups,
                 scan: ProcScan | None = None) -> None:
        self.scan = scan or ProcScan(proc_dir, clock)
        self.rescan, self.proc_dir, self.clock = rescan, self.scan.proc_dir, self.scan.clock
        self.roots = roots
        self.found: frozenset[int] = frozenset()  # the commands of the last scan, but workers
        self.members: set[int] = set()  # the pids it counted at the last scan
        self.scanned = float("-inf")

    def __call__(self, exclude: Iterable[int] = ()) -> int:
        roots, left_out = frozenset(self.roots()), frozenset(exclude)
        if not roots:
            self.found, self.members = roots, set()
            return 0
        now = self.clock()
        # a new command (a build) is looked for at once; workers come and go too often for a
        # scan each: what they start is found by the next one
        watched = roots - left_out
        if (watched != self.found or now - self.scanned >= self.rescan
                or self.scan.taken > self.scanned):  # the other sampler scanned: in step
            self.found = watched
            return self._scan(roots, left_out)
        total = 0
        for pid in list(self.members):
            try:
                total += _stat(_read_stat(self.proc_dir, pid))[2]
            except (OSError, ValueError, IndexError):
                self.members.discard(pid)  # gone (a reused pid is found again at the next scan)
        return total

    def _scan(self, roots: frozenset[int], left_out: frozenset[int]) -> int:
        stats = self.scan()
        self.scanned = self.scan.taken
        under: dict[int, bool] = {}

        def ours(pid: int) -> bool:  # in a command's group, or below one
            chain = []
            while pid not in under:
                stat = stats.get(pid)
                if stat is None or stat[1] in roots:
                    under[pid] = stat is not None
                    break
                chain.append(pid)
                pid = stat[0]
                if len(chain) > len(stats):  # a loop (pids reused meanwhile)
                    under[pid] = False
                    break
            for link in chain:
                under[link] = under[pid]
            return under[pid]

        self.members = {pid for pid, stat in stats.items()
                        if stat[1] not in left_out and ours(pid)}
        return sum(stats[pid][2] for pid in self.members)


def rss(pid: int, proc_dir: Path = Path("/proc")) -> int:
    """Resident bytes of one process (0 when it is gone): cheap enough to read per event."""
    try:
        return int((proc_dir / str(pid) / "statm").read_text().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def machine_memory(meminfo: Path = Path("/proc/meminfo"), key: str = "MemTotal") -> int | None:
    """The machine's memory in bytes (MemTotal; MemAvailable: what it has free), None where
    /proc/meminfo cannot tell."""
    try:
        for line in meminfo.read_text().splitlines():
            name, _, value = line.partition(":")
            if name == key:
                number, _, unit = value.strip().partition(" ")
                return int(number) * (1024 if unit.strip().lower() == "kb" else 1)
    except (OSError, ValueError):
        pass
    return None


def _kill_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def cancel(signum: int, grace: float = 5.0) -> None:
    """Refuse new (non-essential) commands, wake sleepers, run the cancel hooks (which cut
    network calls short) and stop the running commands."""
    with _children_lock:  # after any command being started now (see _spawn)
        if not _cancelled:
            _cancelled.append(signum)
    _cancel_event.set()
    with _children_lock:
        hooks = list(_cancel_hooks)
    for hook in hooks:
        try:
            hook()
        except Exception as err:  # a hook must not keep the others (or the children) running
            log.debug("cancel hook failed: %s", err)
    terminate_all(grace)


def on_cancel(hook: Callable[[], None]) -> Callable[[], None]:
    """Call hook when the run is cancelled (at once if it already is); returns the remover."""
    with _children_lock:
        _cancel_hooks.append(hook)
    if _cancelled:
        hook()

    def remove() -> None:
        with _children_lock:
            if hook in _cancel_hooks:
                _cancel_hooks.remove(hook)
    return remove


def sleep(seconds: float) -> None:
    """time.sleep that a cancellation ends early, raising Cancelled (for retry waits)."""
    if _cancel_event.wait(max(0.0, seconds)):
        raise Cancelled(_cancelled[0])


def reset_cancellation() -> None:
    """Forget an earlier cancellation: a new run in the same process starts uncancelled."""
    with _children_lock:
        _cancelled.clear()
        _cancel_event.clear()


def cancelled() -> int | None:
    """The signal that cancelled this process, if any."""
    return _cancelled[0] if _cancelled else None


# one entry for each `pure_work()` the main thread is inside (see there), nested ones too
_pure_work: list[bool] = []


@contextmanager
def pure_work() -> Iterator[None]:
    """Work in the main thread that SIGINT/SIGTERM end at once, Cancelled raised wherever it
    is, rather than after it returns: reading and classifying a captured log (`ci-nix junit`),
    which takes seconds to minutes on a huge one and starts no command. A check between lines
    would need one in every pass over them (and in each one added later); the work holds no
    lock, child or output of its own that an exception raised anywhere inside could strand."""
    if threading.current_thread() is not threading.main_thread():
        yield  # (signal handlers run in the main thread: nothing to stop here)
        return
    _pure_work.append(True)
    try:
        yield
    finally:
        # (only its own entry: a nested one ending left the outer one's work unstoppable; none
        # left where a signal ended them all)
        if _pure_work:
            _pure_work.pop()


def stop_pure_work(signum: int) -> None:
    """Called by the signal handler: end the main thread's `pure_work()`, if it is in one."""
    if _pure_work:
        _pure_work.clear()  # (once: a second signal meets the report being written)
        raise Cancelled(signum)


def terminate_all(grace: float = 5.0) -> None:
    """Stop every running child process tree: SIGTERM, then SIGKILL after `grace` seconds."""
    with _children_lock:
        procs = list(_children)
    for proc in procs:
        _kill_group(proc, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _kill_group(proc, signal.SIGKILL)


# A normal exit (or an exception nobody caught) must not leave a Nix process behind.
atexit.register(terminate_all, 1.0)
