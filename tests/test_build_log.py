"""The build stage's reading of Nix errors that name no derivation (in-process, no Nix)."""

from __future__ import annotations

import json

from ci_nix import build
from ci_nix.models import FailureType

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


def test_an_unclassified_error_is_named_in_the_message() -> None:
    log = build.BuildLog()
    log.feed(record(action="msg", level=0, msg="error: unexpected end-of-file"))
    failure = build._unnamed_failure(log, 1, DRV)
    assert failure.type is FailureType.OTHER
    assert failure.message.endswith("without naming this derivation: error: unexpected "
                                    "end-of-file")
