"""A real registry for the image tests: Debian's `docker-registry` (distribution 2.8) on
127.0.0.1 with htpasswd (bcrypt) auth, its access log kept so tests can count pushes."""

from __future__ import annotations

import re
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from helpers import free_port, wait_for

USER = "ci-nix-test"
PASSWORD = "registry-secret-for-the-image-test-7"
AVAILABLE = bool(shutil.which("docker-registry") and shutil.which("skopeo")
                 and shutil.which("htpasswd"))


@dataclass(frozen=True)
class Registry:
    port: int
    log: Path

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def manifest_puts(self, repository: str) -> int:
        """How many manifests were pushed to the repository (tags written), from the log."""
        pattern = re.compile(rf'"PUT /v2/{re.escape(repository)}/manifests/[^ ]+ HTTP')
        return len(pattern.findall(self.log.read_text(errors="replace")))

    def digest(self, ref: str) -> str:
        """The manifest digest the registry serves for ref, as skopeo sees it."""
        return subprocess.run(
            ["skopeo", "inspect", "--tls-verify=false", "--creds", f"{USER}:{PASSWORD}",
             "--format", "{{.Digest}}", f"docker://{self.host}/{ref}"],
            check=True, capture_output=True, text=True).stdout.strip()


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2)  # noqa: S310 (loopback)
    except urllib.error.HTTPError as err:
        return err.code == 401  # up, and asking for credentials
    except OSError:
        return False
    return False


@contextmanager
def running(directory: Path) -> Iterator[Registry]:
    """A registry serving from directory until the block ends."""
    directory.mkdir(parents=True, exist_ok=True)
    passwords = directory / "htpasswd"
    line = subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], check=True,
                          capture_output=True, text=True).stdout.strip()
    passwords.write_text(line + "\n")
    port = free_port()
    config = directory / "config.yml"
    config.write_text(f"""version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: {directory / "data"}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
auth:
  htpasswd:
    realm: ci-nix-test
    path: {passwords}
""")
    log = directory / "registry.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=out,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_for(lambda: server.poll() is None and _answers(f"http://127.0.0.1:{port}/v2/"),
                 30, "the registry to answer")
        yield Registry(port, log)
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
