"""The secret key a bundle is signed with: where it comes from, and that it is never shown.

It comes from a file (`--key-file`, else ci-nix.yaml's trusted `cache.secret-key-file`) or from
an environment variable (`--key-env NAME`: how CI systems hand out secrets), never from argv.
Nix reads it from a private copy (mode 0600, removed afterwards) whose path has no characters a
store URL would misread.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import tempfile
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ci_nix.errors import ConfigError
from ci_nix.mask import add_secret, secret_from_env
from ci_nix.narinfo import NarInfoError, PublicKey, public_key_of_secret
from ci_nix.tools import files

_MAX_SIZE = 4096  # `name:base64(64 bytes)`: a key file is a line


@dataclass(frozen=True)
class SigningKey:
    public: PublicKey
    text: str = field(repr=False)  # `name:base64`, the secret itself

    @property
    def name(self) -> str:
        return self.public.name

    def sign(self, data: bytes) -> str:
        """A detached ed25519 signature over data, `<key name>:<base64>` as Nix writes them."""
        seed = base64.b64decode(self.text.partition(":")[2])[:32]
        signature = Ed25519PrivateKey.from_private_bytes(seed).sign(data)
        return f"{self.name}:{base64.b64encode(signature).decode()}"

    @contextlib.contextmanager
    def file(self) -> Iterator[Path]:
        """The key in a private temporary file, for `nix copy --to file://…?secret-key=FILE`."""
        directory = Path(tempfile.mkdtemp(prefix="ci-nix-key-"))  # 0700
        try:
            path = directory / "secret-key"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(self.text)
            yield path
        finally:
            shutil.rmtree(directory, ignore_errors=True)


def load(key_file: Path | None, key_env: str | None, config_file: str | Path | None,
         environ: Mapping[str, str], checkouts: Sequence[Path] = ()) -> SigningKey:
    """The signing key from the first source given (--key-file, --key-env, the config's
    `cache.secret-key-file`); ConfigError naming the source (never the key) otherwise.

    --key-file is the operator's: a symlink is followed and a pipe read (`<(pass show …)`,
    within files.PIPE_TIMEOUT). The config's file is read as from_setting reads it."""
    if key_file is not None:
        return _parse(_read(key_file, "--key-file", given=True), f"--key-file {key_file}")
    if key_env is not None:
        text = secret_from_env(environ, key_env)
        if not text:
            raise ConfigError(f"--key-env {key_env}: ${key_env} is unset or empty; set it to "
                              "the secret key (nix-store --generate-binary-cache-key)")
        return _parse(text, f"${key_env}")
    if config_file:
        return from_setting(config_file, checkouts, "or give --key-file / --key-env")
    raise ConfigError("a bundle is signed: give --key-file FILE or --key-env NAME, or set "
                      "cache.secret-key-file in ci-nix.yaml (make a key with "
                      "`nix-store --generate-binary-cache-key NAME secret public`)")


def check_setting(config_file: str | Path, checkouts: Sequence[Path], instead: str,
                  setting: str = "cache.secret-key-file") -> Path:
    """`cache.secret-key-file` (or another `setting` naming a key file) as the path to read
    (`..` taken away, as it was checked), or ConfigError: the file may lie in a checkout
    (`checkouts`: the workspace's repos), whose files a pull request decides, and a symlink
    there, in the file's name or any directory below the checkout, would sign with whatever
    it points to (the runner's own cache key). `instead`: what else to do, for the message."""
    path = Path(os.path.abspath(config_file))
    link = files.symlink_under(config_file, checkouts)  # as given: `link/..` is the link's
    if link is not None:
        raise ConfigError(f"{setting} {path}: {link} is a symbolic link inside a checkout, "
                          "which a pull request can point anywhere; keep the key outside the "
                          f"repositories ({instead})")
    return path


# Settings naming a program Nix runs (a hook runs with this run's environment, tokens
# included; a plugin inside Nix) or the file that says where builds go (`builders = @FILE`):
# anywhere in a checkout, link or not, a pull request decides what it does.
_PROGRAMS = frozenset({"post-build-hook", "pre-build-hook", "build-hook", "diff-hook",
                       "plugin-files"})


def check_nix_options(options: Iterable[tuple[str, str]], checkouts: Sequence[Path],
                      source: str) -> None:
    """check_setting for the key files Nix reads itself from the settings ci-nix hands it
    (`source`: "nix-options." or "--option "): `secret-key-files` (Nix signs every path it
    builds with them) and a store URL's `secret-key=` (a binary cache store signs what it
    receives); check_outside for the programs and build machines files Nix is given."""
    for name, value in options:
        bare = name.removeprefix("extra-")
        if bare == "secret-key-files":
            named = value.split()
        elif bare == "store":
            named = store_key_files(value)
        elif bare in _PROGRAMS:  # a word without a '/' is a program Nix looks up in PATH
            for word in value.split():
                if "/" in word:
                    check_outside(word, checkouts, f"{source}{name}")
            continue
        elif bare == "builders":
            for spec in re.split(r"[;\n]", value):
                words = spec.split()
                if words and words[0].startswith("@"):
                    check_outside(words[0][1:], checkouts, f"{source}{name}")
            continue
        else:
            continue
        for word in named:
            check_setting(word, checkouts, "name the file itself, outside them",
                          f"{source}{name}")


def check_outside(named: str, checkouts: Sequence[Path], setting: str) -> None:
    """ConfigError where a program Nix runs (a hook, a plugin) or a file that routes its
    builds lies in a checkout, through a link or not: a pull request decides its contents, so
    Nix would run the pull request's program with this run's environment (or send its builds
    where it says)."""
    path = Path(os.path.abspath(named))
    link = files.symlink_under(named, checkouts)
    real = Path(os.path.realpath(named))
    inside = [top for top in checkouts if path.is_relative_to(os.path.abspath(top))
              or real.is_relative_to(os.path.realpath(top))]
    if link is not None or inside:
        where = (f"{link} is a symbolic link inside a checkout" if link is not None
                 else f"inside the checkout {inside[0]}")
        raise ConfigError(f"{setting} {path}: {where}, whose files a pull request decides (Nix "
                          "would run its version with this run's environment); keep it "
                          "outside the repositories")


def check_nix_settings(configured: Iterable[tuple[str, str]], given: Iterable[tuple[str, str]],
                       eval_store: str | None, checkouts: Sequence[Path]) -> None:
    """check_nix_options for everything a command hands Nix: ci-nix.yaml's nix-options, the
    command line's --option/--store, and --eval-store (a binary cache store there signs the
    derivations written to it)."""
    check_nix_options(configured, checkouts, "nix-options.")
    check_nix_options(given, checkouts, "--option ")
    if eval_store:
        check_nix_options([("store", eval_store)], checkouts, "--eval-")


def store_key_files(url: str) -> list[str]:
    """The key files a Nix store URL names, as Nix reads them: `secret-key=` (and newer Nix's
    comma-separated `secret-keys=`) in its query, after the first `?` (not through urlsplit,
    which refuses a bracket left open: an internal error, and no key checked) and before a
    `#`. Values are percent-decoded as Nix decodes them: a `+` stays a `+` (parse_qs would
    read a space and check another file than Nix opens)."""
    return [word for _, words in _store_key_params(url)[1] for word in words]


_KEY_PARAMS = ("secret-key", "secret-keys")


def _store_key_params(url: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The URL's query fields (split at `&`) and, for each that names key files, its index and
    the files."""
    query = url.partition("?")[2].partition("#")[0]
    fields = query.split("&")
    named = []
    for index, pair in enumerate(fields):
        name, equals, value = pair.partition("=")
        if equals and name in _KEY_PARAMS:
            words = urllib.parse.unquote(value)
            named.append((index, [w for w in (words.split(",") if name == "secret-keys"
                                              else [words]) if w]))
    return fields, named


@contextlib.contextmanager
def private_store_url(url: str, checkouts: Sequence[Path], instead: str, setting: str
                      ) -> Iterator[str]:
    """The store URL with each key file it names read now, by ci-nix (refused as
    from_setting refuses it: `setting` names the URL in the message) and replaced by a
    private copy: Nix, which follows links, reads the file when the store opens, which for
    a push is long after the run started; what a checkout holds by then is not what was
    checked. A URL naming no key file is given back as it is."""
    fields, named = _store_key_params(url)
    if not named:
        yield url
        return
    with contextlib.ExitStack() as stack:
        for index, words in named:
            copies = [str(stack.enter_context(from_setting(word, checkouts, instead,
                                                           setting).file()))
                      for word in words]
            name = fields[index].partition("=")[0]
            fields[index] = f"{name}={urllib.parse.quote(','.join(copies))}"
        base, _, rest = url.partition("?")
        fragment = rest.partition("#")[1:]
        yield f"{base}?{'&'.join(fields)}{''.join(fragment)}"


def from_setting(config_file: str | Path, checkouts: Sequence[Path], instead: str,
                 setting: str = "cache.secret-key-file") -> SigningKey:
    """The key `cache.secret-key-file` (or another `setting`) names, refused as check_setting
    says, read as a regular file only (a FIFO would hang); ConfigError naming the file (never
    the key) otherwise."""
    path = check_setting(config_file, checkouts, instead, setting)
    return _parse(_read(path, setting), f"{setting} {path}")


def _read(path: Path, source: str, *, given: bool = False) -> str:
    try:
        data = (files.read_given(path, _MAX_SIZE) if given
                else files.read_regular(path, _MAX_SIZE))
    except (OSError, ValueError) as err:
        why = err.strerror or err if isinstance(err, OSError) else err
        raise ConfigError(f"{source} {path}: cannot read it ({why}); give the secret key "
                          "file nix-store --generate-binary-cache-key wrote") from None
    text = data.decode("utf-8", errors="replace")
    add_secret(text)
    add_secret(text.strip())
    return text.strip()


def _parse(text: str, source: str) -> SigningKey:
    name, _, payload = text.partition(":")
    add_secret(payload)
    try:
        if len(text) > _MAX_SIZE:
            raise NarInfoError("too long")
        public = public_key_of_secret(text)
    except NarInfoError:
        raise ConfigError(f"{source}: not a Nix secret key (NAME:BASE64 of 64 bytes, as "
                          "nix-store --generate-binary-cache-key writes it)") from None
    return SigningKey(public, text)
