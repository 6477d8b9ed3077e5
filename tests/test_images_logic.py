"""The image stage's logic without a registry: recognising image outputs, tag templates, when to
push, credentials, the config, and the stage against a faked skopeo."""

from __future__ import annotations

import base64
import gzip
import io
import json
import logging
import shutil
import socket
import tarfile
from dataclasses import replace
from pathlib import Path
from typing import Literal

import pytest
from fakeproc import Call, FakeProc, Reply
from hypothesis import given
from hypothesis import strategies as st

from ci_nix import changes as changes_mod
from ci_nix import config as config_mod
from ci_nix import images, pipeline, trust
from ci_nix.ci import CiEnv
from ci_nix.closure import Growth
from ci_nix.config import ImagePush, ImagesConfig
from ci_nix.errors import ConfigError
from ci_nix.images import Format, Revision
from ci_nix.models import Case, Job, Status
from ci_nix.tools import skopeo as skopeo_mod
from ci_nix.tools.nix import Nix
from ci_nix.tools.skopeo import Manifest, auth_file, auth_json

DRV = "/nix/store/" + "d" * 32 + "-app-image-1.0.drv"


def _tar(path: Path, names: list[str], compress: bool = False) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name in names:
            info = tarfile.TarInfo(name)
            info.size = 2
            archive.addfile(info, io.BytesIO(b"{}"))
    data = buffer.getvalue()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def test_image_outputs_are_recognised(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    layout.mkdir()
    (layout / "oci-layout").write_text("{}")
    (layout / "index.json").write_text("{}")
    assert images.recognise(layout) is Format.OCI
    assert images.recognise(_tar(tmp_path / "d.tar.gz", ["./manifest.json", "./abc/layer.tar"],
                                 compress=True)) is Format.DOCKER_ARCHIVE
    assert images.recognise(_tar(tmp_path / "o.tar", ["oci-layout", "index.json"])) \
        is Format.OCI_ARCHIVE
    script = tmp_path / "stream"
    script.write_text("#!/bin/sh\nexit 0\n")
    assert images.recognise(script) is None  # not executable: no stream script
    script.chmod(0o755)
    assert images.recognise(script) is Format.STREAM
    for other in (_tar(tmp_path / "x.tar", ["etc/passwd"]), tmp_path / "missing",
                  tmp_path / "layout" / "index.json"):
        assert images.recognise(other) is None
    (tmp_path / "empty").mkdir()
    assert images.recognise(tmp_path / "empty") is None


@given(st.sampled_from([b"", b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00"]), st.binary(max_size=300))
def test_any_bytes_are_an_image_or_not_never_an_error(magic: bytes, data: bytes) -> None:
    import tempfile
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "out"
        path.write_bytes(magic + data)
        assert images.recognise(path) in (None, *Format)


@pytest.mark.parametrize("mode", ["w:xz", "w:bz2"])
def test_every_compression_tarfile_reads_is_recognised(
        tmp_path: Path, mode: Literal["w:xz", "w:bz2"]) -> None:
    archive = tmp_path / "d.tar"
    with tarfile.open(archive, mode) as out:
        for name in ("abc/layer.tar", "manifest.json"):
            out.addfile(tarfile.TarInfo(name), io.BytesIO())
    assert images.recognise(archive) is Format.DOCKER_ARCHIVE


def test_an_archive_is_read_within_bounds(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A build output is the pull request's: a compression bomb (or a tar of endless members)
    is not unpacked (nor listed in memory) without bound, looking for an image in it; it is an
    ImageError naming the file and the bound."""
    bomb = tmp_path / "bomb.tar.gz"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        zeros = tarfile.TarInfo("zeros")
        zeros.size = 16 << 20
        archive.addfile(zeros, io.BytesIO(bytes(zeros.size)))
        archive.addfile(tarfile.TarInfo("manifest.json"), io.BytesIO())
    bomb.write_bytes(gzip.compress(buffer.getvalue()))
    with pytest.raises(images.ImageError, match=rf"^{bomb}: not read as an image further: "
                       r"unpacks to more than \d+ MiB \(.*100 times the file's size"):
        images.recognise(bomb)
    monkeypatch.setattr(images, "_TAR_MEMBERS", 3)
    many = _tar(tmp_path / "many.tar", ["a", "b", "c", "d", "manifest.json"])
    with pytest.raises(images.ImageError, match=r"more than 3 members \(ci-nix reads at most 3"):
        images.recognise(many)
    assert images.recognise(_tar(tmp_path / "few.tar", ["a", "b", "manifest.json"])) \
        is Format.DOCKER_ARCHIVE


def _job(attr: str = "image", system: str = "x86_64-linux", out: str = "/nix/store/x") -> Job:
    return Job("app", ("packages", system, attr), system, DRV, (("out", out),))


def test_tags_come_from_templates_and_are_cleaned() -> None:
    revision = Revision("0123456789abcdef0123", "feature/ünï code")
    job = _job()
    assert images.tags(["{attr}-{short_sha}", "v{version}", "{branch}", "{system}-{sha}",
                        "latest", "latest"], job, revision) == [
        "image-0123456789ab", "v1.0", "feature-n-code", "x86_64-linux-0123456789abcdef0123",
        "latest"]
    with pytest.raises(ValueError, match=r"unknown placeholder \{tag\}"):
        images.tags(["{tag}"], job, revision)
    with pytest.raises(ValueError, match=r"no \{branch\}"):
        images.tags(["{branch}"], job, Revision("abc", None))
    with pytest.raises(ValueError, match="no valid tag"):
        images.tags(["-{attr}"], job, revision)


@given(st.text(max_size=200))
def test_a_pull_request_controlled_name_never_breaks_out_of_a_tag(name: str) -> None:
    value = images.tag_value(name)
    assert all(c.isascii() and (c.isalnum() or c in "_.-") for c in value)
    assert len(value) <= 128 and not value.startswith((".", "-"))


def test_when_images_are_pushed() -> None:
    config = ImagesConfig(attrs=("packages.*.image",))
    main = CiEnv(branch="main", default_branch="main")
    assert images.push_decision(config, None, main, pull_request=False)[0]
    assert not images.push_decision(config, None, main, pull_request=True)[0]
    assert not images.push_decision(config, None, CiEnv(branch="dev", default_branch="main"),
                                    False)[0]
    assert not images.push_decision(config, None, CiEnv(), False)[0]  # a local run
    assert images.push_decision(config, True, CiEnv(), True) == (True, "--push-images")
    assert not images.push_decision(config, False, main, False)[0]
    never = ImagesConfig(push=ImagePush.NEVER)
    assert images.push_decision(never, None, main, False) == (False, "images.push: never")


def test_ci_names_the_branch_and_the_default_branch(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"repository": {"default_branch": "trunk"}}))
    environ = {"GITHUB_ACTIONS": "true", "GITHUB_REF": "refs/heads/trunk",
               "GITHUB_EVENT_PATH": str(event)}
    assert CiEnv.detect(environ).branch == "trunk"
    assert trust.github_default_branch(environ) == "trunk"
    event.write_text("[" * 100_000)  # a hostile payload: no default branch, no crash
    assert trust.github_default_branch(environ) is None
    tag = CiEnv.detect({"GITHUB_ACTIONS": "true", "GITHUB_REF": "refs/tags/v1"})
    assert tag.branch is None
    gitlab = CiEnv.detect({"GITLAB_CI": "true", "CI_COMMIT_BRANCH": "dev",
                           "CI_DEFAULT_BRANCH": "main"})
    assert (gitlab.branch, gitlab.default_branch) == ("dev", "main")


def test_credentials_go_to_a_private_auth_file() -> None:
    data = json.loads(auth_json("reg:5000", "user:pa:ss"))
    assert base64.b64decode(data["auths"]["reg:5000"]["auth"]) == b"user:pa:ss"
    bare = json.loads(auth_json("ghcr.io", "tok3n"))
    assert base64.b64decode(bare["auths"]["ghcr.io"]["auth"]) == b"ci-nix:tok3n"
    assert json.loads(auth_json("x", None)) == {"auths": {}}
    with auth_file("reg:5000", "user:pw") as path:
        assert path.stat().st_mode & 0o777 == 0o600
        assert path.parent.stat().st_mode & 0o777 == 0o700
    assert not path.exists()


def test_a_manifest_names_its_image_by_config() -> None:
    raw = json.dumps({"schemaVersion": 2, "config": {"digest": "sha256:abc"}})
    found = Manifest.parse(raw)
    assert found.config == "sha256:abc" and found.digest.startswith("sha256:")
    assert Manifest.parse(json.dumps({"manifests": []})).config is None  # an index
    assert Manifest.parse("not json").config is None
    # a registry's answer nested past Python's recursion limit (json.loads: RecursionError)
    assert Manifest.parse("[" * 100_000).config is None


def test_images_config(tmp_path: Path) -> None:
    file = tmp_path / "ci-nix.yaml"
    file.write_text("images: ['packages.*.image']\nmax-closure-growth: 50MiB\n")
    loaded = config_mod.load(file)
    assert loaded.images.attrs == ("packages.*.image",)
    assert loaded.images.push is ImagePush.DEFAULT_BRANCH
    assert loaded.max_closure_growth is not None
    assert loaded.max_closure_growth.bytes == 50 * 1024**2
    file.write_text("images:\n  attrs: [x]\n  registry: ghcr.io\n  repository: o/app\n"
                    "  token-env: REG\n  push: always\n  tags: ['{sha}']\n")
    loaded = config_mod.load(file)
    assert (loaded.images.registry, loaded.images.push) == ("ghcr.io", ImagePush.ALWAYS)
    for text, message in (("images:\n  nope: 1\n", "unknown key 'images.nope'"),
                          ("max-closure-growth: lots\n", ":1: 'max-closure-growth' 'lots'"),
                          ("images:\n  push: sometimes\n", "images.push")):
        file.write_text(text)
        with pytest.raises(ConfigError, match=message):
            config_mod.load(file)
    # a pull request may not choose where the registry token goes, or to push with it
    for key in ("images.registry", "images.repository", "images.token-env", "images.push"):
        assert key in trust.DEFAULTS


def _case(job: Job) -> Case:
    return Case(job.flake, job.name, Status.PASSED, system=job.system, drv_path=job.drv_path)


def _layout(tmp_path: Path) -> Path:
    layout = tmp_path / "image-out"
    layout.mkdir()
    (layout / "oci-layout").write_text("{}")
    (layout / "index.json").write_text("{}")
    return layout


CONFIG = ImagesConfig(attrs=("packages.*.image",), registry="http://reg.test:5000",
                      repository="o/app", tags=("{attr}",), token_env="REG_AUTH")
LOCAL = json.dumps({"config": {"digest": "sha256:1d"}})


def test_an_image_the_registry_holds_is_not_pushed(tmp_path: Path, fake_proc: FakeProc) -> None:
    fake_proc.strict = True
    job = _job(out=str(_layout(tmp_path)))
    fake_proc.on("skopeo", "inspect", stdout=LOCAL)  # local and remote: the same image
    done = images.deliver(CONFIG, True, [job], [_case(job)], Nix(("nix",)), Revision("a", None),
                          pull_request=False, environ={"REG_AUTH": "u:secret-pw"})
    assert not done.failures and not fake_proc.ran("skopeo", "copy")
    assert done.cases[0].digest == Manifest.parse(LOCAL).digest
    assert done.cases[0].images == ("reg.test:5000/o/app:image",)
    remote = fake_proc.ran("skopeo", "inspect", "docker://reg.test:5000/o/app:image")[0]
    assert "--tls-verify=false" in remote.argv  # http:// said so
    assert all("secret-pw" not in " ".join(call.argv) for call in fake_proc.calls)


def test_a_missing_tag_is_pushed_and_a_refusal_is_a_failure(tmp_path: Path,
                                                            fake_proc: FakeProc) -> None:
    fake_proc.strict = True
    job = _job(out=str(_layout(tmp_path)))

    def inspect(call: Call) -> Reply:
        if any(arg.startswith("docker://") for arg in call.argv):
            return Reply(stderr='level=fatal msg="reading manifest: manifest unknown"',
                         returncode=1)
        return Reply(stdout=LOCAL)

    def copy(call: Call) -> Reply:
        Path(call.argv[call.argv.index("--digestfile") + 1]).write_text("sha256:pushed\n")
        auth = Path(call.argv[call.argv.index("--authfile") + 1])
        assert json.loads(auth.read_text())["auths"]["reg.test:5000"]
        return Reply()

    fake_proc.on("skopeo", "inspect", handler=inspect)
    fake_proc.on("skopeo", "copy", handler=copy)
    environ = {"REG_AUTH": "u:secret-pw"}
    done = images.deliver(CONFIG, True, [job], [_case(job)], Nix(("nix",)), Revision("a", None),
                          pull_request=False, environ=environ)
    assert done.cases[0].digest == "sha256:pushed"
    assert done.notes[-1] == ("image app#packages.x86_64-linux.image: sha256:pushed as "
                              "reg.test:5000/o/app:image")
    bad = replace(CONFIG, repository="My Org/app")
    refused = images.deliver(bad, True, [job], [_case(job)], Nix(("nix",)), Revision("a", None),
                             pull_request=False, environ=environ)
    assert refused.failures[0].failure is not None
    assert "images.repository 'My Org/app'" in refused.failures[0].failure.message

    fake_proc.on("skopeo", "copy", stderr='level=fatal msg="writing blob: unauthorized"',
                 returncode=1)
    failed = images.deliver(CONFIG, True, [job], [_case(job)], Nix(("nix",)),
                            Revision("a", None), pull_request=False, environ=environ)
    assert failed.cases[0].status is Status.PASSED and failed.cases[0].digest is None
    [failure] = failed.failures
    assert failure.flake == images.IMAGES_CLASSNAME and failure.failure is not None
    assert failure.failure.message == ("pushing to reg.test:5000/o/app:image failed: "
                                       "writing blob: unauthorized")


def test_what_cannot_be_pushed_says_why(tmp_path: Path, fake_proc: FakeProc) -> None:
    fake_proc.strict = True
    plain = tmp_path / "plain"
    plain.write_text("not an image")
    job = _job(out=str(plain))
    no_token = images.deliver(CONFIG, True, [job], [_case(job)], Nix(("nix",)),
                              Revision("a", None), pull_request=False, environ={})
    assert no_token.failures[0].failure is not None
    assert "$REG_AUTH (images.token-env) is not set" in no_token.failures[0].failure.message
    not_image = images.deliver(CONFIG, True, [job], [_case(job)], Nix(("nix",)),
                               Revision("a", None), pull_request=False,
                               environ={"REG_AUTH": "u:p"})
    assert not_image.failures[0].failure is not None
    assert "is not a container image" in not_image.failures[0].failure.message
    # in a pull request nothing is pushed, but an output that is no image still fails
    assert images.deliver(CONFIG, None, [job], [_case(job)], Nix(("nix",)), Revision("a", None),
                          pull_request=True, environ={}).failures
    image = _job(out=str(_layout(tmp_path)))
    skipped = images.deliver(CONFIG, None, [image], [_case(image)], Nix(("nix",)),
                             Revision("a", None), pull_request=True, environ={})
    assert not skipped.failures
    assert skipped.notes == ("images: not pushed (a pull request (images.push: "
                             "default-branch))",)
    assert not fake_proc.calls


def test_a_stream_script_runs_without_ci_nix_environment(
        tmp_path: Path, fake_proc: FakeProc, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = tmp_path / "seen-env"
    script = tmp_path / "stream-image"
    script.write_text(f"#!/bin/sh\nenv > {seen}\nprintf archive\n")
    script.chmod(0o755)
    fake_proc.on("skopeo", "inspect", returncode=1, stderr="cannot read")
    monkeypatch.setenv("CI_NIX_TEST_SECRET", "must-not-leak")
    done = images.deliver(CONFIG, True, [_job(out=str(script))], [_case(_job(out=str(script)))],
                          Nix(("nix",)), Revision("a", None), pull_request=False,
                          environ={"REG_AUTH": "u:p"})
    local = fake_proc.ran("skopeo", "inspect")[0]
    assert local.argv[-1].startswith("docker-archive:") and local.argv[-1].endswith("stream.tar")
    assert done.failures  # the fake skopeo could not read the stream; the script did run
    names = {line.split("=", 1)[0] for line in seen.read_text().splitlines()}
    assert "CI_NIX_TEST_SECRET" not in names and "REG_AUTH" not in names
    assert {"PATH", "HOME", "TMPDIR"} <= names


def test_an_image_this_run_did_not_build_is_fetched_to_be_pushed(
        tmp_path: Path, fake_proc: FakeProc) -> None:
    fake_proc.strict = True
    job = _job(out=str(_layout(tmp_path)))
    cached = Case(job.flake, job.name, Status.SKIPPED, system=job.system, drv_path=job.drv_path,
                  skip_reason="cached")
    fake_proc.on("nix", "--version", stdout="nix (Nix) 2.8.0\n")
    fake_proc.on("nix", "build", "--max-jobs", "0", returncode=1,
                 stderr="error: cannot build on 'local' (max-jobs = 0)\n")
    environ = {"REG_AUTH": "u:p"}
    # not pushing: nothing fetched, nothing failed
    quiet = images.deliver(CONFIG, False, [job], [cached], Nix(("nix",)), Revision("a", None),
                           pull_request=False, environ=environ)
    assert not quiet.failures and not fake_proc.ran("nix", "build")
    # pushing, but the cache does not have it: a failure that says so, never a build
    missing = images.deliver(CONFIG, True, [job], [cached], Nix(("nix",)), Revision("a", None),
                             pull_request=False, environ=environ)
    assert missing.failures[0].failure is not None
    assert "not built in this run and not in a binary cache" in missing.failures[0].failure.message
    # substituted: pushed like a built one
    fake_proc.on("nix", "build", "--max-jobs", "0")
    fake_proc.on("skopeo", "inspect", stdout=LOCAL)
    fetched = images.deliver(CONFIG, True, [job], [cached], Nix(("nix",)), Revision("a", None),
                             pull_request=False, environ=environ)
    assert not fetched.failures and fetched.cases[0].digest == Manifest.parse(LOCAL).digest
    assert fake_proc.ran("nix", "build", "--no-link", "--max-jobs", "0", DRV)


def test_the_growth_gate_also_holds_for_a_cached_attribute(fake_proc: FakeProc) -> None:
    fake_proc.strict = True
    store = "/nix/store/"
    base_drv, base_out = store + "b" * 32 + "-app.drv", store + "b" * 32 + "-app"
    head_out, big = store + "h" * 32 + "-app", store + "z" * 32 + "-big-dep"
    infos = [{"path": base_out, "narSize": 1000, "references": []},
             {"path": head_out, "narSize": 1000, "references": [big]},
             {"path": big, "narSize": 500, "references": []}]
    fake_proc.on("nix", "--version", stdout="nix (Nix) 2.8.0\n")
    fake_proc.on("nix", "show-config", stdout='{"substituters": {"value": []}}')
    fake_proc.on("nix", "show-derivation", stdout=json.dumps(
        {base_drv: {"outputs": {"out": {"path": base_out}}, "inputDrvs": {}}}))
    fake_proc.on("nix", "path-info", stdout=json.dumps(infos))
    job = Job("app", ("packages", "x86_64-linux", "app"), "x86_64-linux", DRV,
              (("out", head_out),))
    cached = Case("app", job.name, Status.SKIPPED, system=job.system, drv_path=DRV,
                  skip_reason="cached")
    comparison = changes_mod.Comparison("b", "h", (changes_mod.AttrChange(
        "app", job.name, job.system, changes_mod.Change.CHANGED, base_drv, DRV),))
    progress = pipeline.Progress()
    [gated] = pipeline._gate_growth(Nix(("nix",)), Growth.parse("10%"), comparison, [job],
                                    [cached], progress)
    assert gated.status is Status.FAILED and gated.skip_reason is None
    assert gated.failure is not None and gated.failure.message == (
        "runtime closure grew from 1000 B to 1.5 KiB (+500 B, +50.0%), past max-closure-growth "
        f"10%; largest new paths: {head_out} (1000 B), {big} (500 B)")  # largest first
    [within] = pipeline._gate_growth(Nix(("nix",)), Growth.parse("50%"), comparison, [job],
                                     [cached], progress)
    assert within == cached and not progress.notes


def test_a_github_push_to_the_default_branch_pushes(tmp_path: Path, fake_proc: FakeProc) -> None:
    fake_proc.strict = True
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"repository": {"default_branch": "main"}}))
    job = _job(out=str(_layout(tmp_path)))
    fake_proc.on("skopeo", "inspect", stdout=LOCAL)
    config = replace(CONFIG, push=ImagePush.DEFAULT_BRANCH)
    github = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_PATH": str(event), "REG_AUTH": "u:p"}
    on_main = images.deliver(config, None, [job], [_case(job)], Nix(("nix",)),
                             Revision("a", "main"), pull_request=False,
                             environ={**github, "GITHUB_REF": "refs/heads/main"})
    assert on_main.cases[0].digest is not None
    assert "(the default branch main)" in on_main.notes[0]
    on_dev = images.deliver(config, None, [job], [_case(job)], Nix(("nix",)),
                            Revision("a", "dev"), pull_request=False,
                            environ={**github, "GITHUB_REF": "refs/heads/dev"})
    assert on_dev.cases[0].digest is None
    assert on_dev.notes == ("images: not pushed (branch dev, not the default branch main)",)


@pytest.mark.skipif(not shutil.which("skopeo"), reason="skopeo is not installed "
                    "(scripts/test.sh installs it)")
def test_a_registry_that_hangs_is_waited_for_once_not_per_image(
        tmp_path: Path, fake_proc: FakeProc, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """A real skopeo against a socket that accepts and never answers: the manifest query is
    cut off, that image fails, and the next image does not wait as long again."""
    monkeypatch.setattr(skopeo_mod, "INSPECT_TIMEOUT", 2.0)
    caplog.set_level(logging.INFO, "ci_nix.images")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        host = f"127.0.0.1:{server.getsockname()[1]}"
        layout = _layout(tmp_path)
        first, second = _job("image", out=str(layout)), _job("image2", out=str(layout))
        fake_proc.on("skopeo", "inspect", f"oci:{layout}", stdout=LOCAL)  # the local image
        config = replace(CONFIG, attrs=("packages.*.image*",),
                         registry=f"http://{host}")
        done = images.deliver(config, True, [first, second], [_case(first), _case(second)],
                              Nix(("nix",)), Revision("a", None), pull_request=False,
                              environ={"REG_AUTH": "u:secret-pw"})
    assert [case.status for case in done.cases] == [Status.PASSED, Status.PASSED]  # builds stand
    messages = [f.failure.message for f in done.failures if f.failure is not None]
    assert len(messages) == 2
    assert messages[0].startswith(f"cannot read {host}/o/app:image: skopeo: no answer "
                                  "within 2s")
    assert messages[1] == (f"not pushed: {host} did not answer "
                           "for app#packages.x86_64-linux.image in this run, so it was not "
                           "asked again")
    assert len(fake_proc.ran("skopeo", "inspect", "--tls-verify=false")) == 1  # asked once
    # while it waits, the log says for what
    assert f"images: delivering app#packages.x86_64-linux.image to {host} as image" \
        in caplog.messages
    assert "secret-pw" not in "".join(messages)


def test_two_images_of_a_run_never_share_a_tag(tmp_path: Path, fake_proc: FakeProc) -> None:
    fake_proc.strict = True
    fake_proc.on("skopeo", "inspect", stdout=LOCAL)  # the registry holds it: nothing to copy
    layout = str(_layout(tmp_path))
    x86, arm = _job(out=layout), _job(system="aarch64-linux", out=layout)
    x86_case, arm_case = _case(x86), _case(arm)
    clash = images.deliver(CONFIG, True, [x86, arm], [x86_case, arm_case], Nix(("nix",)),
                           Revision("a", None), pull_request=False, environ={"REG_AUTH": "u:p"})
    assert [case.digest for case in clash.cases] == [None, None]  # neither owns the tag
    messages = [f.failure.message for f in clash.failures if f.failure is not None]
    assert messages[0] == ("not pushed: tag 'image' would also be "
                           "app#packages.aarch64-linux.image's in this run; make images.tags "
                           "tell them apart (e.g. add {system} or {version})")
    assert len(messages) == 2 and not fake_proc.ran("skopeo", "inspect", "--tls-verify=false")
    apart = images.deliver(replace(CONFIG, tags=("{attr}-{system}",)), True, [x86, arm],
                           [x86_case, arm_case], Nix(("nix",)), Revision("a", None),
                           pull_request=False, environ={"REG_AUTH": "u:p"})
    assert not apart.failures
    assert [case.images for case in apart.cases] == [("reg.test:5000/o/app:image-x86_64-linux",),
                                                     ("reg.test:5000/o/app:image-aarch64-linux",)]


def test_the_step_summary_lists_delivered_images_and_closure_sizes() -> None:
    from ci_nix.models import RunReport
    from ci_nix.report import github
    hostile = "packages.x86_64-linux.im|age`<b>"  # a pull request names attributes
    image = replace(_case(_job()), digest="sha256:" + "a" * 64,
                    images=("reg.test:5000/o/app:image-1", "reg.test:5000/o/app:v1.0"),
                    closure_size=3 * 1024**2)
    other = replace(_case(_job()), name=hostile, closure_size=1024**3)
    out = io.StringIO()
    github.write_summary(RunReport(("app",), (image, other)), out)
    summary = out.getvalue()
    images_table = summary.split("### Images", 1)[1].split("\n\n", 2)[1]
    assert images_table.splitlines()[2:] == [
        f"| `app#packages.x86_64-linux.image` | `sha256:{'a' * 64}` | "
        "`reg.test:5000/o/app:image-1`, `reg.test:5000/o/app:v1.0` |"]
    sizes = summary.split("Runtime closure sizes", 1)[1]
    assert sizes.index("1.0 GiB") < sizes.index("3.0 MiB")  # largest first
    rows = [line for line in sizes.splitlines() if line.startswith("| `")]
    assert len(rows) == 2 and all(row.count(" | ") == 1 for row in rows)  # no cell broken out
    assert "| ``app#packages.x86_64-linux.im\\|age`<b>`` |" in summary  # code: never HTML


def test_a_stream_script_is_not_run_where_nothing_is_pushed(tmp_path: Path,
                                                            fake_proc: FakeProc) -> None:
    """A pull request's stream script would run outside the sandbox, on the runner, next to
    its signing keys and credentials: only a pushing run runs it."""
    fake_proc.strict = True
    ran = tmp_path / "ran"
    script = tmp_path / "stream-image"
    script.write_text(f"#!/bin/sh\ntouch {ran}\nprintf archive\n")
    script.chmod(0o755)
    job = _job(out=str(script))
    done = images.deliver(CONFIG, None, [job], [_case(job)], Nix(("nix",)), Revision("a", None),
                          pull_request=True, environ={})
    assert not done.failures and not ran.exists() and not fake_proc.calls
    assert done.notes == ("images: not pushed (a pull request (images.push: default-branch))",)
