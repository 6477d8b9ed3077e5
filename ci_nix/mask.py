"""Secrets known to this process, masked in every log line and announced to GitHub Actions."""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Mapping

from ci_nix.errors import ConfigError

_lock = threading.Lock()
_secrets: set[str] = set()


def add_secret(value: str | None) -> None:
    """Remember a secret so that logs never show it; in GitHub Actions also ask the runner to mask
    it."""
    if not value or len(value) < 4:
        return
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
    if os.environ.get("GITHUB_ACTIONS") == "true":
        # Workflow command: the runner masks the value in all later log output.
        sys.stdout.write(f"::add-mask::{value}\n")
        sys.stdout.flush()


def secret_from_env(environ: Mapping[str, str], variable: str) -> str:
    """The secret in $variable ("" when unset or empty), remembered for masking.

    Surrounding whitespace (a pasted secret's trailing newline) is dropped; a control or
    non-ASCII character inside is a ConfigError that names the variable, never the value: it
    would otherwise end up in an HTTP header or a git config value, or in a traceback.
    """
    raw = environ.get(variable) or ""
    add_secret(raw)
    value = raw.strip()
    add_secret(value)
    if any(not (" " <= char <= "~") for char in value):
        raise ConfigError(f"${variable} holds a control or non-ASCII character (a line break in "
                          "the middle of a pasted secret?); set it to the token alone")
    return value


def mask(text: str) -> str:
    """Replace every known secret in text with ***."""
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


class MaskingFilter(logging.Filter):
    """Logging filter that masks known secrets in the formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        folded = bool(record.exc_info)
        if record.exc_info:
            # A logged traceback is formatted after the filters run: fold it in to mask it too.
            message += "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info, record.exc_text = None, None
        masked = mask(message)
        if masked != message or folded:
            record.msg, record.args = masked, None
        return True
