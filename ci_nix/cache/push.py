"""The stage that pushes what passed to the binary cache, retrying transient trouble; a push
that still fails is a `ci-nix.cache` JUnit case, and never loses the build results."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ci_nix.cache.backends import Cache
from ci_nix.config import CacheConfig, Push
from ci_nix.errors import ConfigError, ToolError
from ci_nix.mask import mask
from ci_nix.models import Case, Failure, FailureType, Job, Status
from ci_nix.tools.nix import Nix, NixCommandError, last_error_line
from ci_nix.words import count

log = logging.getLogger(__name__)

CACHE_CLASSNAME = "ci-nix.cache"  # README "Binary cache": cache push problems


class PushError(Exception):
    """A push attempt failed; `transient` says whether retrying can help."""

    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient



# Checked first: the server understood and said no; asking again cannot help.
_PERMANENT = re.compile(r"HTTP error 40[0-4]\b|\b40[13]\b|unauthori[sz]ed|forbidden|"
                        r"permission denied|no such cache|cache does not exist", re.IGNORECASE)
_TRANSIENT = re.compile(
    r"HTTP error (5\d\d|408|429)|\b5(00|02|03|04)\b|couldn't connect|could not connect|"
    r"connection (refused|reset|closed|aborted)|reset by peer|timed? ?out|timeout|broken pipe|"
    r"send failed|recv failure|failed to open/read local data|server returned nothing|"
    r"failure when receiving data|empty reply from server|"
    r"error sending request|dns error|resolve host|name resolution|network is unreachable|"
    r"ConnectionFailure|ResponseTimeout|ConnectionTimeout|HttpExceptionRequest|"
    r"unexpected eof|too many requests|no answer within", re.IGNORECASE)


def is_transient(text: str) -> bool:
    """Whether a push client's error text means network or server trouble."""
    if _PERMANENT.search(text):
        return False
    return bool(_TRANSIENT.search(text))


def push_mode(config: CacheConfig, override: bool | None) -> Push:
    """cache.push after --push/--no-push."""
    if override is False:
        return Push.NONE
    if override is True and config.push == Push.NONE:
        return Push.CLOSURE
    return config.push


@dataclass(frozen=True)
class PushOutcome:
    paths: tuple[str, ...]  # what was handed to the backend
    cases: tuple[Case, ...] = ()  # a failed push, under ci-nix.cache
    notes: tuple[str, ...] = ()


def push(cache: Cache | None, override: bool | None, jobs: Sequence[Job],
         cases: Sequence[Case], nix: Nix, environ: Mapping[str, str] = os.environ) -> PushOutcome:
    """Push the outputs of the jobs that passed (and, per cache.push, their closure) to the
    cache the run opened (open_cache)."""
    if cache is None:
        return PushOutcome(())
    config = cache.config
    mode = push_mode(config, override)
    passed = {(c.flake, c.name, c.system) for c in cases if c.status is Status.PASSED}
    paths = tuple(sorted({path for job in jobs if (job.flake, job.name, job.system) in passed
                          for path in job.out_paths}))
    if mode == Push.NONE or not paths:
        why = "push disabled" if mode == Push.NONE else "nothing new to push"
        log.info("cache: %s", why)
        return PushOutcome((), notes=(f"cache: pushed 0 paths ({why})",))
    if config.token_env and cache.token is None and cache.backend.uses_token:
        message = (f"${config.token_env} is not set (as in a pull request from a fork): not "
                   f"pushing to {cache.target}")
        if config.required:
            return PushOutcome((), cases=(_failure_case(cache, message, len(paths)),))
        log.warning("cache: %s", message)
        return PushOutcome((), notes=(f"cache: {message}",))
    log.info("pushing %s (%s) to %s", count(len(paths), "path"), mode, cache.target)
    started = time.monotonic()
    try:
        cache.policy.call(f"pushing to {cache.target}",
                          lambda left: _push_once(cache, mode, paths, nix, environ,
                                                  min(left, cache.policy.push_timeout)),
                          lambda err: isinstance(err, PushError) and err.transient)
    except PushError as err:
        log.error("cache: pushing to %s failed: %s", cache.target, mask(str(err)))
        return PushOutcome(paths, cases=(_failure_case(cache, str(err), len(paths),
                                                       time.monotonic() - started),))
    note = f"cache: pushed {count(len(paths), 'path')} ({mode}) to {cache.target}"
    return PushOutcome(paths, notes=(note,))


def _failure_case(cache: Cache, message: str, paths: int, elapsed: float = 0.0) -> Case:
    text = mask(message)
    return Case(CACHE_CLASSNAME, "push", Status.FAILED, time=elapsed,
                required=cache.config.required,
                failure=Failure(FailureType.OTHER,
                                f"push of {count(paths, 'path')} to {cache.target} failed: "
                                f"{text.splitlines()[0] if text else 'no error text'}",
                                log=text[-4000:],
                                hint=None if cache.config.required else
                                "the build results stand; set cache.required: true to fail the "
                                "run when the cache cannot be filled"))


def _push_once(cache: Cache, mode: Push, paths: Sequence[str], nix: Nix,
               environ: Mapping[str, str], timeout: float) -> None:
    try:
        result = cache.backend.push(cache, mode, paths, nix, environ, timeout)
    except ConfigError as err:  # the signing key cannot be used (now): asking again cannot help
        raise PushError(str(err), transient=False) from None
    except NixCommandError as err:  # `nix store sign` before the copy
        raise PushError(f"{err}\n{err.stderr}", transient=is_transient(err.stderr)) from None
    except ToolError as err:
        if "no answer within" in str(err):
            raise PushError(str(err), transient=True) from None
        raise
    if not result.ok:
        text = result.stderr.strip() or result.stdout.strip()
        line = last_error_line(text) if text else f"exit code {result.returncode}"
        raise PushError(f"{line} (exit code {result.returncode})\n{text}" if text else line,
                        transient=is_transient(text))
