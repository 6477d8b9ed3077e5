"""The stage that takes jobs whose outputs are all in the binary cache out of the plan."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from ci_nix.cache.backends import open_cache
from ci_nix.cache.client import display_url, query
from ci_nix.plan import Plan
from ci_nix.tools import proc
from ci_nix.words import count

log = logging.getLogger(__name__)

CACHED = "cached"  # skip reason of an attribute whose outputs are all in the cache


def skip_cached(plan: Plan, environ: Mapping[str, str] = os.environ) -> tuple[Plan, list[str]]:
    """Take the jobs whose outputs are all in the cache out of the plan (skipped: "cached")."""
    cache = open_cache(plan.workspace.config.cache, environ)
    if cache is None or not plan.jobs:
        return plan, []
    if cache.substituter is None:
        note = (f"cache: no substituter to ask for {cache.target}; building everything (set "
                "cache.substituter)")
        return plan, [note]
    paths = [path for job in plan.jobs for path in job.out_paths]
    log.info("asking %s for %s of %s", display_url(cache.substituter),
             count(len(set(paths)), "output"), count(len(plan.jobs), "attribute"))
    answer = query(cache.substituter, paths, cache.token, cache.policy, cache.config.timeout)
    if proc.cancelled() is not None:
        return plan, []  # the run reports every job as cancelled
    if answer.error is not None:
        log.warning("cache: %s; building everything", answer.error)
        return plan, [f"cache: could not query {answer.error}; built everything"]
    cached = [job for job in plan.jobs
              if job.out_paths and all(path in answer.cached for path in job.out_paths)]
    log.info("cached: %d of %s", len(cached), count(len(plan.jobs), "attribute"))
    return plan.skip(cached, CACHED), []

