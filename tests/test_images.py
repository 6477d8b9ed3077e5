"""Delivering with real Nix, a real registry (Debian's docker-registry with htpasswd) and real
skopeo: an image attribute is built, pushed once, not again, its digest reported; a wrong
password is a ci-nix.images failure with the build intact; a closure that grows past
--max-closure-growth fails its attribute."""

from __future__ import annotations

import re
import shutil
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import make_workspace
import pytest
import registry
from conftest import ONE_NIX, Cli, xml_attr, xml_find
from helpers import git, json_cases, write

pytestmark = [pytest.mark.nix,
              pytest.mark.skipif(not registry.AVAILABLE,
                                 reason="docker-registry, skopeo and htpasswd (apache2-utils) "
                                 "are not installed: scripts/test.sh installs them")]

OCI_SH = Path(__file__).resolve().parent / "data" / "images" / "oci.sh"
AUTH = "TEST_REGISTRY_AUTH"
GOOD = {AUTH: f"{registry.USER}:{registry.PASSWORD}"}

FLAKE = """{
  outputs = { self }: let
    system = "x86_64-linux";
    oci = message: derivation {
      name = "app-image-1.0";
      inherit system message;
      builder = "/bin/sh";
      args = [ ./oci.sh ];
      PATH = "/usr/bin:/bin";
    };
    # a file of `size` bytes, and a package whose runtime closure holds it
    dep = size: derivation {
      name = "dep-@NONCE@"; inherit system;
      builder = "/bin/sh"; args = [ "-c" "head -c ${toString size} /dev/zero > $out" ];
      PATH = "/usr/bin:/bin";
    };
  in {
    packages.${system} = {
      image = oci "hello @NONCE@";
      app = derivation {
        name = "app-@NONCE@"; inherit system;
        builder = "/bin/sh"; args = [ "-c" "echo ${dep @SIZE@} > $out" ];
        PATH = "/usr/bin:/bin";
      };
    };
  };
}
"""


@pytest.fixture(scope="module")
def running_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[registry.Registry]:
    with registry.running(tmp_path_factory.mktemp("registry")) as found:
        yield found


def _repo(path: Path, nonce: str, size: int, config: str) -> Path:
    write(path / "flake.nix", FLAKE.replace("@NONCE@", nonce).replace("@SIZE@", str(size)))
    shutil.copy(OCI_SH, path / "oci.sh")
    write(path / "ci-nix.yaml", config)
    make_workspace.init_repo(path, "an image and an app")
    return path


# One Nix: the push is skopeo's to the registry, and what ci-nix reports of it; each Nix
# version's build of the image (and of its closure) is
# test_a_closure_grown_past_the_limit_fails_its_attribute's, on both
@ONE_NIX
def test_an_image_is_pushed_once_with_its_digest_reported(
        tmp_path: Path, nix_bin: str, cli: Cli, running_registry: registry.Registry) -> None:
    nonce = uuid.uuid4().hex[:12]
    repository = f"ci-nix/app-{nonce}"
    repo = _repo(tmp_path / "flake", nonce, 100, f"""images:
  attrs: ["packages.*.image"]
  registry: http://{running_registry.host}
  repository: {repository}
  tags: ["{{attr}}-{{short_sha}}", "v{{version}}"]
  token-env: {AUTH}
""")
    sha = git(repo, "rev-parse", "HEAD")
    report, junit = tmp_path / "run.json", tmp_path / "run.xml"
    image = "flake#packages.x86_64-linux.image"

    first = cli("run", "--all", repo, "--push-images", "--json", report, "--junit", junit,
                env=GOOD)
    assert first.returncode == 0, first.stdout + first.stderr
    case = json_cases(report)[image]
    assert case["status"] == "passed"
    digest = running_registry.digest(f"{repository}:v1.0")
    assert case["image"]["digest"] == digest
    assert case["image"]["refs"] == [f"{running_registry.host}/{repository}:image-{sha[:12]}",
                                     f"{running_registry.host}/{repository}:v1.0"]
    assert running_registry.digest(f"{repository}:image-{sha[:12]}") == digest
    assert running_registry.manifest_puts(repository) == 2  # one per tag
    properties = {p.get("name"): p.get("value") for p in ET.parse(junit).getroot().iterfind(
        ".//testcase[@name='packages.x86_64-linux.image']/properties/property")}
    assert properties["digest"] == digest
    assert f"image {image}: {digest} as " in first.stdout  # the run's notes
    assert registry.PASSWORD not in first.stdout + first.stderr + report.read_text()

    # the registry holds this image under both tags: nothing is pushed again
    second = cli("run", "--all", repo, "--push-images", "--json", report, env=GOOD)
    assert second.returncode == 0, second.stdout + second.stderr
    assert running_registry.manifest_puts(repository) == 2
    assert json_cases(report)[image]["image"]["digest"] == digest

    # a wrong password: the build stands, the delivery is a ci-nix.images failure
    wrong = cli("run", "--all", repo, "--push-images", "--json", report, "--junit", junit,
                env={AUTH: f"{registry.USER}:not-the-password"})
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr
    cases = json_cases(report)
    assert cases[image]["status"] == "passed"
    assert "image" not in cases[image]
    failed = cases[f"ci-nix.images#{image}"]
    assert failed["status"] == "failed" and failed["failure"]["type"] == "other"
    assert "unauthorized" in failed["failure"]["message"], failed
    assert running_registry.host in failed["failure"]["message"]
    junit_case = xml_find(ET.parse(junit), ".//testcase[@classname='ci-nix.images']")
    assert "unauthorized" in xml_attr(xml_find(junit_case, "failure"), "message")
    assert "not-the-password" not in wrong.stdout + wrong.stderr + report.read_text()
    assert running_registry.manifest_puts(repository) == 2


def test_a_closure_grown_past_the_limit_fails_its_attribute(
        tmp_path: Path, nix_bin: str, cli: Cli) -> None:
    nonce = uuid.uuid4().hex[:12]
    repo = _repo(tmp_path / "flake", nonce, 100_000, "")
    app = "flake#packages.x86_64-linux.app"
    base = cli("run", "--all", repo, "--no-push-images")
    assert base.returncode == 0, base.stdout + base.stderr

    # the dependency grows by 20 %: past 10 %, within 30 %
    write(repo / "flake.nix", (repo / "flake.nix").read_text().replace("100000", "120000"))
    git(repo, "commit", "-qam", "a bigger dependency")
    report = tmp_path / "run.json"
    grown = cli("run", "--all", repo, "--base", "HEAD~1", "--max-closure-growth", "10%",
                "--json", report)
    assert grown.returncode == 1, grown.stdout + grown.stderr
    failure = json_cases(report)[app]["failure"]
    assert failure["type"] == "other"
    message = failure["message"]
    # both sizes (100000 and 120000 zero bytes, plus NAR framing and the app's few bytes), the
    # growth, and the new paths largest first: the bigger dependency, then the app itself
    found = re.search(r"grew from 97\.\d KiB to 117\.\d KiB \(\+19\.\d KiB, \+(\d+\.\d)%\), "
                      r"past max-closure-growth 10%; largest new paths: (/nix/store/\S+) "
                      r"\(117\.\d KiB\), (/nix/store/\S+) \(\d+ B\)$", message)
    assert found is not None, message
    assert 19.5 < float(found.group(1)) < 20.5
    assert found.group(2).endswith(f"-dep-{nonce}") and found.group(3).endswith(f"-app-{nonce}")
    assert json_cases(report)["flake#packages.x86_64-linux.image"]["status"] == "passed"

    within = cli("run", "--all", repo, "--base", "HEAD~1", "--max-closure-growth", "30%",
                 "--json", report)
    assert within.returncode == 0, within.stdout + within.stderr
    assert json_cases(report)[app]["closureSize"] > 120_000
