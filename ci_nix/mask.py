"""Secrets known to this process, and credentials in URLs, masked in every log line, report and
stream ci-nix writes; known secrets are announced to GitHub Actions (on stderr, so stdout stays
clean data: `matrix --format json > f`)."""

from __future__ import annotations

import io
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TextIO, cast

from ci_nix.ci import CiEnv
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
    if CiEnv.detect(os.environ).github:
        # Workflow command: the runner masks the value in all later log output. It reads
        # commands from stderr as well; on stdout it would land in `matrix --format json > f`.
        stream = sys.stderr
        if isinstance(stream, MaskedStream):
            stream.write_unmasked_line(f"::add-mask::{value}")
        else:
            stream.write(f"::add-mask::{value}\n")
            stream.flush()


# Variables CI systems put tokens in. No child process inherits them (nor any variable that
# holds a known secret or that ci-nix read a secret from): a pull request's fixed-output
# derivation may list them in `impureEnvVars`, and Nix without a daemon hands its own
# environment's values to such a builder, which has the network.
CI_TOKEN_VARIABLES = frozenset({
    "GITHUB_TOKEN", "GH_TOKEN", "GITLAB_TOKEN", "CI_JOB_TOKEN", "CI_JOB_JWT", "CI_JOB_JWT_V1",
    "CI_JOB_JWT_V2", "CI_REGISTRY_PASSWORD", "CI_DEPLOY_PASSWORD", "ACTIONS_RUNTIME_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "CACHIX_AUTH_TOKEN", "CACHIX_SIGNING_KEY"})
_withheld: set[str] = set(CI_TOKEN_VARIABLES)


def withhold(variable: str | None) -> None:
    """Never hand $variable to a child process (a configured token variable)."""
    if variable:
        with _lock:
            _withheld.add(variable)


def child_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """environ without the variables a child process must not inherit: CI token variables,
    those withheld, and any whose value is a known secret."""
    with _lock:
        withheld, secrets = set(_withheld), set(_secrets)
    return {name: value for name, value in environ.items() if name not in withheld
            and (len(value) < 8 or (value not in secrets and value.strip() not in secrets))}


def secret_from_env(environ: Mapping[str, str], variable: str) -> str:
    """The secret in $variable ("" when unset or empty), remembered for masking.

    Surrounding whitespace (a pasted secret's trailing newline) is dropped; a control or
    non-ASCII character inside is a ConfigError that names the variable, never the value: it
    would otherwise end up in an HTTP header or a git config value, or in a traceback.
    """
    withhold(variable)
    raw = environ.get(variable) or ""
    add_secret(raw)
    value = raw.strip()
    add_secret(value)
    if any(not (" " <= char <= "~") for char in value):
        raise ConfigError(f"${variable} holds a control or non-ASCII character (a line break in "
                          "the middle of a pasted secret?); set it to the token alone")
    return value


# `scheme://userinfo@` up to the last @ before the host's end. A password is a credential; so is
# a lone user name in http(s)-like URLs (`https://TOKEN@github.com/...`, `TOKEN:x-oauth-basic`),
# unlike the `git@` of ssh URLs.
# (Not \s: it counts \x1c-\x1f as space, which would end the match before a password does.)
_NOT_USERINFO = "/?#@'\"`<> \t\n\r\f\v"
_URL_USERINFO = re.compile(
    rf"\b([A-Za-z][A-Za-z0-9+.-]*://)([^{_NOT_USERINFO}]*(?:@[^{_NOT_USERINFO}]*)*)@")


def _userinfo(match: re.Match[str]) -> str:
    scheme, userinfo = match.group(1), match.group(2)
    if ":" in userinfo or scheme.lower().rstrip(":/").endswith(("http", "https")):
        return f"{scheme}***@"
    return match.group(0)


def mask(text: str) -> str:
    """Replace every known secret, and the credentials of every URL, in text with ***."""
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, "***")
    return _URL_USERINFO.sub(_userinfo, text) if "@" in text else text


class MaskedStream(io.TextIOBase):
    """A text stream that passes on what is written to it masked.

    Text is held until its line ends (`\n` or `\r`) or the stream is flushed, so a secret
    written in pieces (print() writes each argument separately) is still seen whole.
    """

    def __init__(self, raw: TextIO) -> None:
        super().__init__()
        self.raw = raw
        self._pending = ""
        self._line_start = True
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self._pending += text
            cut = max(self._pending.rfind("\n"), self._pending.rfind("\r")) + 1
            if cut:
                done, self._pending = self._pending[:cut], self._pending[cut:]
                self._emit(done)
        return len(text)

    def _emit(self, text: str) -> None:
        if text:
            self.raw.write(mask(text))
            self._line_start = text.endswith(("\n", "\r"))

    def flush(self) -> None:
        with self._lock:
            self._emit(self._pending)
            self._pending = ""
            self.raw.flush()

    def write_unmasked_line(self, line: str) -> None:
        """A line that must pass as it is (a workflow command naming a secret), on its own."""
        with self._lock:
            self._emit(self._pending)
            self._pending = ""
            self.raw.write(line + "\n" if self._line_start else "\n" + line + "\n")
            self._line_start = True
            self.raw.flush()

    def isatty(self) -> bool:
        return self.raw.isatty()

    def fileno(self) -> int:
        return self.raw.fileno()


@contextmanager
def masked_output() -> Iterator[None]:
    """sys.stdout and sys.stderr masked for the duration: every output ci-nix prints."""
    saved = sys.stdout, sys.stderr
    sys.stdout = cast(TextIO, MaskedStream(saved[0]))
    sys.stderr = cast(TextIO, MaskedStream(saved[1]))
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed pipe: nothing more can be shown
                pass
        sys.stdout, sys.stderr = saved


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
