"""Backoff for cache traffic: how often and how long to retry narinfo queries and pushes."""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import tenacity

from ci_nix.errors import ConfigError
from ci_nix.mask import mask
from ci_nix.tools import proc

log = logging.getLogger(__name__)

_T = TypeVar("_T")


class TransientError(Exception):
    """Worth another try: the network or the server, not the request."""




@dataclass(frozen=True)
class RetryPolicy:
    """Backoff for cache traffic; CI_NIX_CACHE_RETRY_{ATTEMPTS,BASE,TOTAL}, CI_NIX_CACHE_TIMEOUT
    and CI_NIX_CACHE_PUSH_TIMEOUT (seconds) tune it, e.g. to make tests wait milliseconds."""

    attempts: int = 4
    base: float = 2.0  # first wait, doubled each retry, with full jitter
    max_wait: float = 60.0
    total: float = 1800.0  # bound on one push or query batch, waits and attempts included
    timeout: float = 30.0  # one narinfo request
    # One push attempt: big closures take a while, but a cache that stopped answering must not
    # use up the whole budget in the first attempt.
    push_timeout: float = 600.0
    # How to wait between attempts: proc.sleep ends at once on cancellation; tests record.
    sleep: Callable[[float], None] = field(default=proc.sleep, compare=False, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> RetryPolicy:
        default = cls()

        def number(name: str, value: float) -> float:
            text = environ.get(name)
            if not text:
                return value
            try:
                number = float(text)
            except ValueError:
                number = math.nan
            # inf, nan or a negative timeout would fail deep inside the socket or the retry loop
            if not math.isfinite(number) or number < 0 or (number == 0 and "TIMEOUT" in name):
                raise ConfigError(f"{name}={text!r}: expected a positive number, e.g. {value:g}"
                                  ) from None
            return number

        return cls(attempts=max(1, int(number("CI_NIX_CACHE_RETRY_ATTEMPTS", default.attempts))),
                   base=number("CI_NIX_CACHE_RETRY_BASE", default.base),
                   max_wait=default.max_wait,
                   total=number("CI_NIX_CACHE_RETRY_TOTAL", default.total),
                   timeout=number("CI_NIX_CACHE_TIMEOUT", default.timeout),
                   push_timeout=number("CI_NIX_CACHE_PUSH_TIMEOUT", default.push_timeout))

    def call(self, what: str, attempt: Callable[[float], _T],
             transient: Callable[[BaseException], bool]) -> _T:
        """Run attempt(seconds left) until it succeeds, fails for good, or the budget is spent."""
        start = time.monotonic()

        def log_retry(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.warning("%s: attempt %d of %d failed (%s); retrying in %.1fs", what,
                        state.attempt_number, self.attempts, mask(str(error))[:300],
                        state.upcoming_sleep)

        # A cancelled run does not retry, and its waits end at once (proc.sleep raises).
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.attempts) | tenacity.stop_after_delay(self.total),
            wait=tenacity.wait_random_exponential(multiplier=self.base, max=self.max_wait),
            retry=tenacity.retry_if_exception(
                lambda err: transient(err) and proc.cancelled() is None),
            before_sleep=log_retry, sleep=self.sleep, reraise=True)
        return retrying(lambda: attempt(max(1.0, self.total - (time.monotonic() - start))))

