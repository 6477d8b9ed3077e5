"""The stage that takes jobs whose outputs are all in the binary cache out of the plan."""

from __future__ import annotations

import logging
from collections import Counter

from ci_nix import narinfo
from ci_nix.cache.client import Verdict, display_url, query
from ci_nix.mask import add_secret
from ci_nix.plan import Plan
from ci_nix.tools import files, proc
from ci_nix.tools.nix import Nix
from ci_nix.words import count

log = logging.getLogger(__name__)

CACHED = "cached"  # skip reason of an attribute whose outputs are all in the cache


def skip_cached(plan: Plan, refused: Counter[Verdict] | None = None) -> tuple[Plan, list[str]]:
    """Take the jobs whose outputs are all in the plan's cache out of it (skipped: "cached").
    refused: where a run asks in several parts, the outputs Nix would not substitute are
    counted there (for one refused_note at the end) rather than noted per part."""
    cache = plan.cache
    if cache is None or not plan.jobs:
        return plan, []
    if cache.substituter is None:
        note = (f"cache: no substituter to ask for {cache.target}; building everything (set "
                "cache.substituter)")
        return plan, [note]
    paths = [path for job in plan.jobs for path in job.out_paths]
    log.info("asking %s for %s of %s", display_url(cache.substituter),
             count(len(set(paths)), "output"), count(len(plan.jobs), "attribute"))
    if cache.token is not None and cache.query_token is None:
        log.debug("cache: asking %s without the token: it goes only to %s",
                  display_url(cache.substituter), cache.target)
    answer = query(cache.substituter, paths, cache.query_token, cache.policy,
                   cache.config.timeout, trust=trust(plan.nix))
    if proc.cancelled() is not None:
        return plan, []  # the run reports every job as cancelled
    if answer.error is not None:
        log.warning("cache: %s; building everything", answer.error)
        return plan, [f"cache: could not query {answer.error}; built everything"]
    cached = [job for job in plan.jobs
              if job.out_paths and all(path in answer.cached for path in job.out_paths)]
    log.info("cached: %d of %s", len(cached), count(len(plan.jobs), "attribute"))
    notes = []
    if refused is not None:
        refused.update(dict(answer.refused))
    elif answer.refused:
        notes.append(refused_note(cache.substituter, Counter(dict(answer.refused))))
    return plan.skip(cached, CACHED), notes


def refused_note(substituter: str, refused: Counter[Verdict]) -> str:
    """The note (and warning) on outputs the cache has that Nix would not substitute."""
    why = ", ".join(f"{n}: {verdict}" for verdict, n in sorted(refused.items()))
    note = (f"cache: {count(refused.total(), 'output')} in {display_url(substituter)} not "
            f"taken as cached, as Nix would not substitute them ({why}); built")
    log.warning("%s", note)
    return note


_KEY_BYTES = 4096  # `name:base64(64 bytes)`


def trust(nix: Nix) -> narinfo.Trust:
    """Nix's own rule for substituting (`require-sigs`, the keys of `trusted-public-keys` and
    of `secret-key-files`), read from the Nix this run uses, with ci-nix's options."""
    if not nix.require_sigs:
        return narinfo.Trust(require_sigs=False)
    keys = []
    for text in nix.trusted_public_keys:
        try:
            keys.append(narinfo.parse_public_key(text))
        except narinfo.NarInfoError as err:
            log.warning("trusted-public-keys: %s; nothing signed with it counts", err)
    for file in nix.secret_key_files:
        try:
            # a key file is a line: a FIFO (which would hang the run) or a device is not read
            secret = files.read_linked(file, _KEY_BYTES).decode("utf-8")
            add_secret(secret.strip())
            keys.append(narinfo.public_key_of_secret(secret))
        except (OSError, ValueError, narinfo.NarInfoError):  # UnicodeDecodeError among them
            log.warning("secret-key-files: cannot read a public key from %s", file)
    log.info("cache: Nix substitutes only what is signed by %s (require-sigs)",
             ", ".join(key.name for key in keys) or "no key")
    return narinfo.Trust(require_sigs=True, keys=tuple(keys))

