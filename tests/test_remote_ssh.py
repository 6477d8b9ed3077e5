"""A real remote builder: a second Nix with its own store, reached over SSH on 127.0.0.1.

The test starts its own sshd (Debian's openssh-server, installed by scripts/test.sh) on a free
loopback port with a host key and a client key it makes. The two Nix installations on this
machine have separate stores, so each is the other's remote: Debian's Nix 2.8 (/nix/store) runs
ci-nix and the nix-modern chroot (Nix 2.26, its own /nix/store) builds, and the other way round;
sshd runs the remote's `nix-store --serve` / `nix-daemon --stdio` through `?remote-program=`.
The local side has `max-jobs = 0`, so nothing can build there: what passes was built over there
and copied back.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import NIX_MODERN, Cli, flake_repo, xml_attr
from helpers import free_port

pytestmark = pytest.mark.nix

SSHD = Path("/usr/sbin/sshd")
MODERN_ROOT = Path(os.environ.get("NIX_MODERN_ROOT", "/var/lib/nix-modern"))

FLAKE = """{
  outputs = { self }: let
    hello = system: derivation {
      name = "hello-remote"; inherit system; builder = "/bin/sh";
      args = [ "-c" "echo NONCE-${system} > $out" ];
    };
  in {
    packages.x86_64-linux.hello = hello "x86_64-linux";
    packages.aarch64-linux.hello = hello "aarch64-linux";
  };
}
"""

# What sshd runs for Nix: the chroot's nix-store, which also claims aarch64-linux (the builder is
# /bin/sh, so any "system" this machine can run works) to stand in for an aarch64 box.
REMOTE_PROGRAM = """#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin NIX_MODERN_TOOL={tool}
export NIX_CONFIG="extra-platforms = aarch64-linux
substituters =
sandbox = false
build-users-group ="
exec {program} "$@"
"""


@dataclass(frozen=True)
class Side:
    """Which Nix runs ci-nix (`client`, its store under `local_root`) and which builds."""

    client: str  # CI_NIX_NIX
    local_root: Path
    remote_root: Path

    def tool(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        """A Nix tool of the client's installation, on the client's store."""
        modern = self.client != "nix"
        return subprocess.run([self.client if modern else name, *args], capture_output=True,
                              text=True, env={**os.environ, "NIX_MODERN_TOOL": name})


SIDES = {"nix-2.8-builds-on-nix-modern": Side("nix", Path("/"), MODERN_ROOT),
         "nix-modern-builds-on-nix-2.8": Side(str(NIX_MODERN), MODERN_ROOT, Path("/"))}


@dataclass(frozen=True)
class Builder:
    uri: str  # as Nix names it in "building … on …"
    line: str  # the `builders` entry
    store: str  # the same machine as an ssh-ng:// store (`nix-daemon --stdio` over there)
    env: dict[str, str]  # NIX_SSHOPTS: the port
    side: Side


def _skip_unless_possible() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: sshd logs in as root and the remote Nix is a chroot")
    if not SSHD.exists():
        pytest.skip(f"{SSHD} missing: install openssh-server (scripts/test.sh does)")
    if not (MODERN_ROOT / "usr/bin/nix").exists() or not NIX_MODERN.exists():
        pytest.skip("the remote store is the nix-modern chroot, which is not set up here")
    if not shutil.which("nix") or not shutil.which("ssh-keygen"):
        pytest.skip("needs Debian's nix (one of the two stores) and ssh-keygen")


@pytest.fixture(params=list(SIDES))
def ssh_builder(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Builder]:
    _skip_unless_possible()
    side = SIDES[request.param]
    home = tmp_path / "ssh"
    home.mkdir()
    for key in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ci-nix-test",
                        "-f", str(home / key)], check=True)
    (home / "authorized_keys").write_text((home / "client_key.pub").read_text())
    for tool in ("nix-store", "nix-daemon"):
        program = tool if side.remote_root == Path("/") else NIX_MODERN
        (home / f"remote-{tool}").write_text(REMOTE_PROGRAM.format(program=program, tool=tool))
        (home / f"remote-{tool}").chmod(0o755)
    port = free_port()
    config = home / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {home / 'host_key'}\n"
        f"AuthorizedKeysFile {home / 'authorized_keys'}\nPidFile {home / 'sshd.pid'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n")
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege separation dir
    log = (home / "sshd.log").open("w")
    sshd = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            if sshd.poll() is not None:
                pytest.skip(f"sshd cannot run here: {(home / 'sshd.log').read_text().strip()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.skip(f"sshd did not listen on 127.0.0.1:{port} within 10 s")
                time.sleep(0.1)
        uri = f"ssh://root@127.0.0.1?remote-program={home / 'remote-nix-store'}"
        host_key = base64.b64encode((home / "host_key.pub").read_bytes()).decode()
        line = (f"{uri} x86_64-linux,aarch64-linux {home / 'client_key'} 2 1 - - {host_key}")
        store = (f"ssh-ng://root@127.0.0.1?remote-program={home / 'remote-nix-daemon'}"
                 f"&ssh-key={home / 'client_key'}&base64-ssh-public-host-key={host_key}")
        yield Builder(uri=uri, line=line, store=store, side=side,
                      env={"NIX_SSHOPTS": f"-p {port}", "CI_NIX_NIX": side.client})
    finally:
        sshd.terminate()
        sshd.wait(timeout=10)
        log.close()


def _outputs(side: Side, drv: str) -> list[str]:
    result = side.tool("nix-store", "--query", "--outputs", drv)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_build_happens_on_the_ssh_builder_and_comes_back(
        ssh_builder: Builder, tmp_path: Path, cli: Cli) -> None:
    nonce = uuid.uuid4().hex
    repo = flake_repo(tmp_path / "repo", FLAKE.replace("NONCE", nonce))
    junit = tmp_path / "junit.xml"
    result = cli("run", "--all", repo, "--system", "x86_64-linux", "--system", "aarch64-linux",
                 "--junit", junit, "--option", "max-jobs", "0", "--builders", ssh_builder.line,
                 env=ssh_builder.env)
    assert result.returncode == 0, result.stdout + result.stderr
    cases = list(ET.parse(junit).iter("testcase"))
    assert sorted(xml_attr(c, "name") for c in cases) == ["packages.aarch64-linux.hello",
                                                    "packages.x86_64-linux.hello"]
    for case in cases:
        assert case.find("failure") is None and case.find("skipped") is None
        props = {xml_attr(p, "name"): xml_attr(p, "value") for p in case.iter("property")}
        assert props["machine"] == ssh_builder.uri
        side = ssh_builder.side
        (out,) = _outputs(side, props["drvPath"])
        # built in the remote store ...
        assert (side.remote_root / out.lstrip("/")).exists(), out
        # ... and valid here, with what the builder wrote
        valid = side.tool("nix-store", "--check-validity", out)
        assert valid.returncode == 0, valid.stderr
        assert (side.local_root / out.lstrip("/")).read_text() == f"{nonce}-{props['system']}\n"



def test_store_on_the_remote_with_evaluation_here(ssh_builder: Builder, tmp_path: Path,
                                                  cli: Cli) -> None:
    """--store ssh-ng://box --eval-store auto: evaluated here, built and kept over there."""
    nonce = uuid.uuid4().hex
    repo = flake_repo(tmp_path / "repo", FLAKE.replace("NONCE", nonce))
    junit = tmp_path / "junit.xml"
    result = cli("run", "--all", repo, "--system", "x86_64-linux", "--junit", junit,
                 "--store", ssh_builder.store, "--eval-store", "auto", env=ssh_builder.env)
    assert result.returncode == 0, result.stdout + result.stderr
    (case,) = ET.parse(junit).iter("testcase")
    assert case.find("failure") is None and case.find("skipped") is None
    props = {xml_attr(p, "name"): xml_attr(p, "value") for p in case.iter("property")}
    assert props["machine"] == ssh_builder.store
    side = ssh_builder.side
    (out,) = _outputs(side, props["drvPath"])
    remote = side.remote_root / out.lstrip("/")
    assert remote.read_text() == f"{nonce}-x86_64-linux\n"
    assert not (side.local_root / out.lstrip("/")).exists()  # it stays where it was built
