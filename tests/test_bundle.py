"""`ci-nix bundle`: airgap bundles written with real Nix, imported into an empty store, checked
by `--verify` (real Nix, module-scoped per Nix version); the verifier's and the delta's logic
in process on bundles made here."""

from __future__ import annotations

import base64
import bz2
import hashlib
import json
import lzma
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from conftest import NIX_CONFIG, NIX_PARAMS, NIXES, Cli, flake_repo, run_main, xml_attr
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fakeproc import FakeProc
from helpers import git
from httpcache import TEST_KEY, Key
from hypothesis import given
from hypothesis import strategies as st

from ci_nix import narinfo, sbom
from ci_nix.bundle import make
from ci_nix.bundle.manifest import Manifest, read
from ci_nix.models import Job
from ci_nix.tools.nix import Derivation, PathInfo

SYSTEM = "x86_64-linux"
DATA = Path(__file__).parent / "data" / "derivations"  # `nix derivation show` as each Nix prints it

FLAKE = """{
  outputs = { self }:
    let
      system = "x86_64-linux";
      sh = name: text: extra: derivation ({ inherit name system; builder = "/bin/sh";
        args = [ "-c" text ]; NONCE = "@NONCE@"; } // extra);
      src = derivation { name = "tool-src-2.1.tar"; inherit system; builder = "/bin/sh";
        args = [ "-c" "printf x > $out" ]; outputHashAlgo = "sha256"; outputHashMode = "flat";
        outputHash = "sha256-LXEWQrcmsEQBYnyp+6wy9chTD7GQPMTbAiWHF5IaSIE=";
        urls = "https://example.org/tool-2.1.tar https://mirror.example/tool-2.1.tar"; };
      lib = sh "libshared-1.4" "echo lib > $out" { };
      tool = sh "tool-2.1" "read x < $src; echo $x ${lib} > $out" { inherit src; };
      # a stand-in for nixpkgs.lib.nixosSystem: what ci-nix looks at
      host = name: release: {
        type = "configuration";
        config = { networking.hostName = name; nixpkgs.hostPlatform = system;
          system.build.toplevel =
            sh "nixos-system-${name}" "echo ${name} ${tool} ${release} > $out" { }; };
        pkgs.stdenv.hostPlatform.system = system; options = { };
      };
    in {
      nixosConfigurations.web = host "web" "@WEB@";
      nixosConfigurations.db = host "db" "1";
      packages.${system}.image = sh "image-1.0.tar" "echo ${tool} > $out" { };
    };
}
"""

WEB = "fleet#nixosConfigurations.web"
DB = "fleet#nixosConfigurations.db"
IMAGE = f"fleet#packages.{SYSTEM}.image"


@dataclass(frozen=True)
class Bundles:
    nix: str
    tmp: Path
    full: Path
    delta: Path
    public: str  # the public key, as trusted-public-keys lists it
    delta_stdout: str
    repo: Path


def assert_valid_cyclonedx(text: str) -> None:
    """The SBOM passes CycloneDX 1.6's JSON schema, strictly. Imported here, not with the
    module: the validator loads jsonschema and every format checker (~1 CPU s), which each
    xdist worker paid while collecting, whether or not it ran these tests."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None


def _nix(nix: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([nix, "--extra-experimental-features", "nix-command", *args],
                          capture_output=True, text=True, env=_env())


def _env() -> dict[str, str]:
    import os
    return {**os.environ, "NIX_CONFIG": NIX_CONFIG}


@pytest.fixture(scope="module", params=NIX_PARAMS, ids=[label for label, _ in NIXES] or ["none"])
def bundles(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bundles]:
    nix = request.param
    if nix is None:
        pytest.skip("no Nix on this machine")
    tmp = tmp_path_factory.mktemp("bundle")
    subprocess.run(["nix-store", "--generate-binary-cache-key", "fleet-1", tmp / "secret",
                    tmp / "public"], check=True)
    nonce = uuid.uuid4().hex[:12]
    repo = flake_repo(tmp / "fleet", FLAKE.replace("@NONCE@", nonce).replace("@WEB@", "1"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CI_NIX_NIX", nix)
        patch.setenv("NIX_CONFIG", NIX_CONFIG)
        first = run_main("bundle", repo, "--all", "--output", tmp / "full", "--key-file",
                         tmp / "secret", "--junit", tmp / "full.xml")
        assert first.returncode == 0, first.stderr + first.stdout
        # the one-host change the next transfer carries
        (repo / "flake.nix").write_text(FLAKE.replace("@NONCE@", nonce).replace("@WEB@", "2"))
        git(repo, "commit", "-qam", "web: release 2")
        second = run_main("bundle", repo, "--all", "--output", tmp / "delta", "--key-file",
                          tmp / "secret", "--since", tmp / "full" / "manifest.json")
        assert second.returncode == 0, second.stderr + second.stdout
        yield Bundles(nix, tmp, tmp / "full", tmp / "delta",
                      (tmp / "public").read_text().strip(), second.stdout, repo)


def _import(b: Bundles, bundle: Path, store: Path, key: str | None = None
            ) -> subprocess.CompletedProcess[str]:
    """What DEPLOY.md says, into a local store rooted at `store`, require-sigs on."""
    paths = (bundle / "store-paths").read_text().split()
    return _nix(b.nix, "copy", "--no-recursive", "--from", f"file://{bundle}", "--to",
                str(store), "--option", "require-sigs", "true", "--option",
                "trusted-public-keys", key or b.public, *paths)


def test_a_bundle_of_two_hosts_and_an_image_imports_into_an_empty_store(bundles: Bundles
                                                                          ) -> None:
    manifest, _ = read(bundles.full)
    assert set(manifest.attributes) == {WEB, DB, IMAGE}
    assert manifest.key == "fleet-1" and manifest.since is None and manifest.requires == ()
    store = bundles.tmp / "store-full"
    imported = _import(bundles, bundles.full, store)
    assert imported.returncode == 0, imported.stderr
    roots = [attr.store_path for attr in manifest.attributes.values()]
    valid = _nix(bundles.nix, "path-info", "--recursive", "--store", str(store), *roots)
    assert valid.returncode == 0, valid.stderr
    assert set(valid.stdout.split()) == set(manifest.paths)
    # nothing was (or could be) built there: no derivation reached the store
    assert not [p for p in (store / "nix" / "store").iterdir() if p.name.endswith(".drv")]
    deploy = (bundles.full / "DEPLOY.md").read_text()
    assert bundles.public in deploy and "store-paths" in deploy
    assert "SEC" not in deploy and (bundles.tmp / "secret").read_text().split(":")[1] not in \
        (bundles.full / "manifest.json").read_text() + deploy


def test_an_untrusted_key_imports_nothing(bundles: Bundles) -> None:
    other = Key("fleet-1", bytes(range(1, 33))).public  # same name, another key
    imported = _import(bundles, bundles.full, bundles.tmp / "store-untrusted", key=other)
    assert imported.returncode != 0
    assert "signature" in imported.stderr or "trusted" in imported.stderr


def test_a_delta_holds_only_the_changed_host_and_imports_on_top(bundles: Bundles) -> None:
    full, digest = read(bundles.full)
    delta, _ = read(bundles.delta)
    assert delta.since == digest
    new_web = delta.attributes[WEB].store_path
    assert delta.paths == (new_web,)
    assert delta.attributes[DB] == full.attributes[DB]
    assert set(delta.requires) <= set(full.paths)
    assert "% smaller than a full bundle" in bundles.delta_stdout
    store = bundles.tmp / "store-delta"
    assert _import(bundles, bundles.full, store).returncode == 0
    imported = _import(bundles, bundles.delta, store)
    assert imported.returncode == 0, imported.stderr
    valid = _nix(bundles.nix, "path-info", "--recursive", "--store", str(store), new_web)
    assert valid.returncode == 0, valid.stderr
    # alone, the delta is not enough: what it requires is missing
    assert _import(bundles, bundles.delta, bundles.tmp / "store-delta-alone").returncode != 0


def _deploy(b: Bundles, bundle: Path, store: Path) -> subprocess.CompletedProcess[str]:
    """DEPLOY.md's import command word for word (by bash, in the bundle), into `store`."""
    command = next(line for line in (bundle / "DEPLOY.md").read_text().splitlines()
                   if line.startswith("nix "))
    return subprocess.run(["bash", "-c", f"{shlex.quote(b.nix)} {command[4:]}"], cwd=bundle,
                          capture_output=True, text=True,
                          env={**_env(), "NIX_CONFIG": f"{NIX_CONFIG}\nstore = {store}\n"
                               "require-sigs = true\n"})


def test_deploy_md_imports_and_its_unsigned_path_list_cannot_turn_signatures_off(
        bundles: Bundles, cli: Cli, tmp_path: Path) -> None:
    copy = shutil.copytree(bundles.full, tmp_path / "b")
    manifest, _ = read(copy)
    imported = _deploy(bundles, copy, tmp_path / "store")
    assert imported.returncode == 0, imported.stderr
    assert {p.name for p in (tmp_path / "store" / "nix" / "store").iterdir()} >= {
        Path(p).name for p in manifest.paths}
    # in transit: every narinfo unsigned, and an option added to the (unsigned) path list
    for info in copy.glob("*.narinfo"):
        info.write_text("".join(line for line in info.read_text().splitlines(keepends=True)
                                if not line.startswith("Sig:")))
    paths = copy / "store-paths"
    paths.write_text("--no-check-sigs\n" + paths.read_text())
    tampered = _deploy(bundles, copy, tmp_path / "store-tampered")
    assert tampered.returncode != 0, tampered.stderr
    store = tmp_path / "store-tampered" / "nix" / "store"
    assert not store.exists() or not [p for p in store.iterdir() if not p.name.startswith(".")]
    checked = cli("bundle", "--verify", copy, "--key", bundles.public)
    assert checked.returncode == 1
    assert "store-paths is not the signed manifest's 'paths': it lists '--no-check-sigs'" \
        in checked.stdout


def _junit_cases(path: Path) -> dict[str, str]:
    import xml.etree.ElementTree as ET
    cases = {}
    for case in ET.parse(path).iter("testcase"):
        name = f"{xml_attr(case, 'classname')}#{xml_attr(case, 'name')}"
        cases[name] = "failed" if case.find("failure") is not None else "passed"
    return cases


def test_verify_passes_a_good_bundle_and_its_delta(bundles: Bundles, cli: Cli) -> None:
    result = cli("bundle", "--verify", bundles.full, "--key", bundles.public, "--junit",
                 bundles.tmp / "verify.xml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert _junit_cases(bundles.tmp / "verify.xml") == {WEB: "passed", DB: "passed",
                                                        IMAGE: "passed"}
    chained = cli("bundle", "--verify", bundles.delta, "--key", bundles.public, "--since",
                  bundles.full / "manifest.json")
    assert chained.returncode == 0, chained.stdout + chained.stderr
    wrong = cli("bundle", "--verify", bundles.delta, "--key", bundles.public, "--since",
                bundles.delta / "manifest.json")
    assert wrong.returncode == 1 and "not the one given" in wrong.stdout


def test_verify_catches_a_truncated_nar(bundles: Bundles, cli: Cli, tmp_path: Path) -> None:
    copy = shutil.copytree(bundles.full, tmp_path / "b")
    manifest, _ = read(copy)
    web = manifest.attributes[WEB].store_path
    info = narinfo.parse((copy / narinfo.narinfo_name(web)).read_bytes())
    nar = copy / info.url
    nar.write_bytes(nar.read_bytes()[: nar.stat().st_size // 2])
    result = cli("bundle", "--verify", copy, "--key", bundles.public, "--junit",
                 tmp_path / "v.xml")
    assert result.returncode == 1
    assert _junit_cases(tmp_path / "v.xml") == {WEB: "failed", DB: "passed", IMAGE: "passed"}
    assert "truncated" in result.stdout


def test_verify_catches_a_bad_signature(bundles: Bundles, cli: Cli, tmp_path: Path) -> None:
    copy = shutil.copytree(bundles.full, tmp_path / "b")
    manifest, _ = read(copy)
    db = manifest.attributes[DB].store_path
    file = copy / narinfo.narinfo_name(db)
    forged = Key("fleet-1", bytes(range(2, 34)))  # the key's name, not its secret
    info = narinfo.parse(file.read_bytes())
    lines = [line for line in file.read_text().splitlines() if not line.startswith("Sig:")]
    file.write_text("\n".join([*lines, f"Sig: {forged.sign(info)}"]) + "\n")
    result = cli("bundle", "--verify", copy, "--key", bundles.public, "--junit",
                 tmp_path / "v.xml")
    assert result.returncode == 1
    assert _junit_cases(tmp_path / "v.xml") == {WEB: "passed", DB: "failed", IMAGE: "passed"}
    assert "no valid signature" in result.stdout
    # and a bundle checked against another key fails every attribute
    other = cli("bundle", "--verify", bundles.full, "--key", forged.public)
    assert other.returncode == 1


# --- in process: bundles made here, no Nix ------------------------------------------------------

def _path(name: str) -> str:
    digest = hashlib.sha256(name.encode()).hexdigest()[:32]
    return f"/nix/store/{digest.translate(str.maketrans('e', 'z'))}-{name}"  # no e in base32


def _compress(data: bytes, how: str) -> bytes:
    if how == "xz":
        return lzma.compress(data)
    if how == "bzip2":
        return bz2.compress(data)
    if how == "zstd":
        return subprocess.run(["zstd", "-q", "-c"], input=data, capture_output=True,
                              check=True).stdout
    return data


def _synthetic(root: Path, paths: dict[str, tuple[str, ...]], compression: str = "xz",
               key: Key = TEST_KEY, attributes: dict[str, str] | None = None,
               requires: tuple[str, ...] = ()) -> Manifest:
    """A bundle in root as ci-nix writes one: narinfos signed by key, compressed NARs."""
    (root / "nar").mkdir(parents=True)
    (root / "nix-cache-info").write_text("StoreDir: /nix/store\n")
    for path, refs in paths.items():
        nar = f"NAR of {path}".encode() * 50
        packed = _compress(nar, compression)
        nar_hash = "sha256:" + narinfo.nix32_encode(hashlib.sha256(nar).digest())
        file_hash = "sha256:" + narinfo.nix32_encode(hashlib.sha256(packed).digest())
        url = f"nar/{file_hash[7:]}.nar"
        (root / url).write_bytes(packed)
        names = tuple(ref.removeprefix("/nix/store/") for ref in refs)
        info = narinfo.NarInfo(path, url, nar_hash, len(nar), names)
        (root / narinfo.narinfo_name(path)).write_text(
            f"StorePath: {path}\nURL: {url}\nCompression: {compression}\n"
            f"FileHash: {file_hash}\nFileSize: {len(packed)}\nNarHash: {nar_hash}\n"
            f"NarSize: {len(nar)}\nReferences: {' '.join(names)}\nSig: {key.sign(info)}\n")
    from ci_nix.bundle.manifest import Attribute
    attrs = {name: Attribute(path, "sha256:" + narinfo.nix32_encode(
        hashlib.sha256(f"NAR of {path}".encode() * 50).digest()), 1)
        for name, path in (attributes or {}).items()}
    manifest = Manifest(attrs, tuple(sorted(paths)), key.name, None, "0", "nix", requires)
    (root / "manifest.json").write_text(manifest.dump())
    (root / "store-paths").write_text("".join(f"{path}\n" for path in manifest.paths))
    _sign_manifest(root, key)
    return manifest


def _sign_manifest(root: Path, key: Key) -> None:
    signature = Ed25519PrivateKey.from_private_bytes(key.seed).sign(
        (root / "manifest.json").read_bytes())
    (root / "manifest.json.sig").write_text(f"{key.name}:{base64.b64encode(signature).decode()}\n")


LIB, APP = _path("lib-1.0"), _path("app-2.0")


@pytest.mark.parametrize("compression", ["xz", "bzip2", "zstd", "none"])
def test_verify_reads_every_compression_nix_writes(compression: str, cli: Cli,
                                                   tmp_path: Path) -> None:
    _synthetic(tmp_path / "b", {LIB: (), APP: (LIB,)}, compression, attributes={"f#app": APP})
    result = cli("bundle", "--verify", tmp_path / "b", "--key", TEST_KEY.public)
    assert result.returncode == 0, result.stdout + result.stderr


def test_verify_finds_an_incomplete_closure(cli: Cli, tmp_path: Path) -> None:
    _synthetic(tmp_path / "b", {APP: (LIB,)}, attributes={"f#app": APP})
    result = cli("bundle", "--verify", tmp_path / "b", "--key", TEST_KEY.public)
    assert result.returncode == 1
    assert f"refers to {LIB}" in result.stdout and "closure is incomplete" in result.stdout
    # the same bundle as a delta that says the earlier one carried lib: complete
    _synthetic(tmp_path / "d", {APP: (LIB,)}, attributes={"f#app": APP}, requires=(LIB,))
    assert cli("bundle", "--verify", tmp_path / "d", "--key", TEST_KEY.public).returncode == 0


def test_verify_refuses_a_nar_outside_the_bundle(cli: Cli, tmp_path: Path) -> None:
    _synthetic(tmp_path / "b", {LIB: ()}, attributes={"f#lib": LIB})
    file = tmp_path / "b" / narinfo.narinfo_name(LIB)
    text = file.read_text()
    url = text.split("URL: ")[1].split("\n")[0]
    shutil.copy(tmp_path / "b" / url, tmp_path / "outside.nar")
    file.write_text(text.replace(f"URL: {url}", "URL: ../outside.nar"))
    result = cli("bundle", "--verify", tmp_path / "b", "--key", TEST_KEY.public)
    assert result.returncode == 1 and "outside the bundle" in result.stdout


@pytest.mark.parametrize("setup, message", [
    ("missing-dir", "not a directory"),
    ("no-cache-info", "no nix-cache-info"),
    ("garbage-manifest", "not a bundle manifest"),
    ("no-manifest", "cannot read the manifest"),
    ("bad-key", "neither a public key"),
])
def test_verify_bad_input_is_one_line_and_exit_2(setup: str, message: str, cli: Cli,
                                                 tmp_path: Path) -> None:
    bundle = tmp_path / "b"
    key = TEST_KEY.public
    if setup != "missing-dir":
        _synthetic(bundle, {LIB: ()}, attributes={"f#lib": LIB})
    if setup == "no-cache-info":
        (bundle / "nix-cache-info").unlink()
    elif setup == "garbage-manifest":
        (bundle / "manifest.json").write_text('{"attributes": [1]}')
    elif setup == "no-manifest":
        (bundle / "manifest.json").unlink()
    elif setup == "bad-key":
        key = "not-a-key"
    result = cli("bundle", "--verify", bundle, "--key", key, "--junit", tmp_path / "j.xml")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert "<failure" in (tmp_path / "j.xml").read_text() or \
        "error" in (tmp_path / "j.xml").read_text()


def test_a_bundle_needs_a_key_and_never_prints_it(cli: Cli, tmp_path: Path) -> None:
    repo = flake_repo(tmp_path / "fleet", "{ outputs = { self }: { }; }")
    missing = cli("bundle", repo, "--all", "--output", tmp_path / "out", "--key-env",
                  "CI_NIX_TEST_UNSET_KEY")
    assert missing.returncode == 2 and "CI_NIX_TEST_UNSET_KEY" in missing.stderr
    secret = "fleet-1:" + "QUJD" * 10  # base64, but not the 64 bytes of a key
    bad = cli("bundle", repo, "--all", "--output", tmp_path / "out2", "--key-env", "KEY",
              env={"KEY": secret})
    assert bad.returncode == 2 and "not a Nix secret key" in bad.stderr
    assert "QUJD" not in bad.stderr + bad.stdout


def test_output_must_be_new_or_empty(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old").write_text("x")
    result = cli("bundle", tmp_path, "--output", tmp_path / "out", "--key-file", "/nonexistent")
    assert result.returncode == 2 and "not empty" in result.stderr


def _job(name: str, out: str) -> Job:
    return Job("f", ("packages", SYSTEM, name), SYSTEM, f"/nix/store/{'d' * 32}-{name}.drv",
               (("out", out),))


def test_a_delta_ships_what_the_previous_bundle_lacks() -> None:
    old_app, new_app = _path("app-1.0"), APP
    infos = {LIB: PathInfo(100, (), "sha256-" + "A" * 43 + "="),
             old_app: PathInfo(10, (LIB,), "sha256-" + "B" * 43 + "="),
             new_app: PathInfo(20, (LIB,), "sha256-" + "C" * 43 + "=")}
    first = make.contents([_job("app", old_app)], infos, None)
    assert first.paths == tuple(sorted((LIB, old_app))) and first.requires == ()
    previous = Manifest(first.attributes, first.paths, "k", None, "0", "nix")
    delta = make.contents([_job("app", new_app)], infos, previous)
    assert delta.paths == (new_app,) and delta.requires == (LIB,)
    assert delta.attributes[f"f#packages.{SYSTEM}.app"].closure_size == 120
    assert delta.nar_size(infos, delta.paths) == 20


def test_the_manifest_round_trips_and_names_its_digest(tmp_path: Path) -> None:
    manifest = _synthetic(tmp_path / "b", {LIB: ()}, attributes={"f#lib": LIB})
    again, digest = read(tmp_path / "b" / "manifest.json")
    assert again == manifest
    assert digest == hashlib.sha256((tmp_path / "b" / "manifest.json").read_bytes()).hexdigest()
    assert json.loads(manifest.dump())["since"] is None


# --- SBOM -------------------------------------------------------------------------------------

def _sbom(path: Path) -> dict[str, Any]:
    text = path.read_text()
    assert_valid_cyclonedx(text)
    data: dict[str, Any] = json.loads(text)
    return data


def _by_name(sbom: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in [sbom["metadata"]["component"], *sbom.get("components", [])]}


def test_the_bundle_holds_a_valid_sbom_per_attribute(bundles: Bundles) -> None:
    manifest, _ = read(bundles.full)
    for name, attr in manifest.attributes.items():
        found = _sbom(bundles.full / "sbom" / sbom.filename(name))
        outputs = {p["value"] for c in _by_name(found).values()
                   for p in c.get("properties", []) if p["name"] == "nix:output_path"}
        assert attr.store_path in outputs
    web = _sbom(bundles.full / "sbom" / sbom.filename(WEB))
    assert web["metadata"]["component"]["type"] == "operating-system"
    components = _by_name(web)
    assert set(components) == {"nixos-system-web", "tool", "libshared"}
    assert components["tool"]["version"] == "2.1" and components["libshared"]["version"] == "1.4"
    # the download tool is built from: its URLs and the fixed-output hash, from the derivation
    refs = {r["url"]: r for r in components["tool"]["externalReferences"]}
    assert set(refs) == {"https://example.org/tool-2.1.tar", "https://mirror.example/tool-2.1.tar"}
    assert refs["https://example.org/tool-2.1.tar"]["hashes"] == [
        {"alg": "SHA-256", "content": hashlib.sha256(b"x").hexdigest()}]
    depends = {d["ref"]: set(d.get("dependsOn", [])) for d in web["dependencies"]}
    web_ref, tool_ref = components["nixos-system-web"]["bom-ref"], components["tool"]["bom-ref"]
    assert depends[web_ref] == {tool_ref}
    assert depends[tool_ref] == {components["libshared"]["bom-ref"]}


def test_run_sbom_writes_one_per_built_attribute(bundles: Bundles, cli: Cli,
                                                tmp_path: Path) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CI_NIX_NIX", bundles.nix)
        result = cli("run", bundles.repo, "--all", "--sbom", tmp_path / "sbom")
    assert result.returncode == 0, result.stdout + result.stderr
    names = sorted(path.name for path in (tmp_path / "sbom").iterdir())
    assert names == sorted(sbom.filename(name) for name in (WEB, DB, IMAGE))
    for path in (tmp_path / "sbom").iterdir():
        _sbom(path)


@pytest.mark.parametrize("version", ["nix-2.8", "nix-2.26"])
def test_fixed_output_derivations_read_alike_on_both_nix_versions(version: str) -> None:
    data = json.loads((DATA / f"{version}.json").read_text())
    drvs = Derivation.parse_all(data)
    flat = next(d for d in drvs.values() if d.name == "src-1.2.tar.gz")
    tree = next(d for d in drvs.values() if d.name == "tree")
    assert flat.fixed is not None and tree.fixed is not None
    assert (flat.fixed.algo, flat.fixed.recursive) == ("sha256", False)
    assert flat.fixed.urls == ("https://example.org/src-1.2.tar.gz",
                               "https://mirror.example/src-1.2.tar.gz")
    # as declared (outputHash sha256-LcCQ…), printed in hex by both versions
    assert flat.fixed.hash == base64.b64decode("LcCQ6R4vt4bA3gBr7I1XQKwGEEfhmE8PkD1bOHCKAt0=").hex()
    assert (tree.fixed.algo, tree.fixed.recursive) == ("sha256", True)
    assert tree.fixed.urls == ("https://example.org/tree.git",)
    assert all(d.fixed is None for d in drvs.values() if d.name == "web-toplevel")


def test_a_recursive_source_hash_is_not_claimed_as_the_download_s(tmp_path: Path) -> None:
    drvs = Derivation.parse_all(json.loads((DATA / "nix-2.26.json").read_text()))
    tree_drv = next(k for k, d in drvs.items() if d.name == "tree")
    out = drvs[tree_drv].outputs[0]
    app_drv = f"/nix/store/{'a' * 32}-app-3.0.drv"
    app_out = _path("app-3.0")
    graph = {**drvs, app_drv: Derivation((tree_drv,), (app_out,), "app-3.0")}
    infos = {app_out: PathInfo(10, (), "sha256-" + "A" * 43 + "=", app_drv)}
    job = Job("f", ("packages", SYSTEM, "app"), SYSTEM, app_drv, (("out", app_out),))
    found = json.loads(sbom.document("f#app", job, infos, graph))
    assert_valid_cyclonedx(json.dumps(found))
    root = found["metadata"]["component"]
    assert (root["name"], root["version"]) == ("app", "3.0")
    assert root["externalReferences"] == [{"type": "distribution",
                                           "url": "https://example.org/tree.git",
                                           "comment": "tree"}]
    fixed = drvs[tree_drv].fixed
    assert fixed is not None
    assert {"name": "nix:source_nar_hash", "value": f"sha256:{fixed.hash}"} in root["properties"]
    assert out not in json.dumps(found)  # the source is not in the runtime closure
    # an attribute `images:` names is a container
    image = json.loads(sbom.document("f#app", job, infos, graph, image=True))
    assert image["metadata"]["component"]["type"] == "container"


@given(st.text(min_size=1, max_size=400))
def test_sbom_file_names_are_safe_and_distinct(name: str) -> None:
    file = sbom.filename(name)
    assert "/" not in file and "\0" not in file and not file.startswith(".")
    assert len(file.encode()) <= 255
    assert file == sbom.filename(name)
    assert sbom.filename(name + "x") != file


def test_verify_stops_unpacking_past_the_nar_size(cli: Cli, tmp_path: Path) -> None:
    _synthetic(tmp_path / "b", {LIB: ()}, attributes={"f#lib": LIB})
    file = tmp_path / "b" / narinfo.narinfo_name(LIB)
    info = narinfo.parse(file.read_bytes())
    bomb = lzma.compress(bytes(50 << 20))  # 50 MiB of zeros in a few KiB
    (tmp_path / "b" / info.url).write_bytes(bomb)
    text = file.read_text()
    for line in text.splitlines():
        if line.startswith(("FileHash:", "FileSize:")):
            text = text.replace(line + "\n", "")
    file.write_text(text)
    result = cli("bundle", "--verify", tmp_path / "b", "--key", TEST_KEY.public)
    assert result.returncode == 1 and "unpacks to more than" in result.stdout


def test_verify_defaults_to_the_keys_nix_trusts(cli: Cli, tmp_path: Path) -> None:
    if not NIXES:
        pytest.skip("no Nix on this machine")
    _synthetic(tmp_path / "b", {LIB: ()}, attributes={"f#lib": LIB})
    trusted = cli("bundle", "--verify", tmp_path / "b",
                  env={"NIX_CONFIG": f"{NIX_CONFIG}trusted-public-keys = {TEST_KEY.public}\n"})
    assert trusted.returncode == 0, trusted.stdout + trusted.stderr
    other = Key("other-1", bytes(range(3, 35)))
    untrusted = cli("bundle", "--verify", tmp_path / "b",
                    env={"NIX_CONFIG": f"{NIX_CONFIG}trusted-public-keys = {other.public}\n"})
    assert untrusted.returncode == 1 and "other-1" in untrusted.stdout


def test_an_unreadable_since_manifest_is_one_line_and_exit_2(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "old.json").write_text("{not json")
    for since in (tmp_path / "missing.json", tmp_path / "old.json"):
        result = cli("bundle", tmp_path, "--output", tmp_path / f"out-{since.stem}", "--since",
                     since, "--key-file", tmp_path / "none")
        errors = [line for line in result.stderr.splitlines() if "error:" in line]
        assert result.returncode == 2 and len(errors) == 1 and str(since) in errors[0]


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=80),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.sampled_from(
                        ["attributes", "paths", "key", "since", "requires", "storePath",
                         "narHash", "closureSize", LIB]), inner, max_size=6),
                    max_leaves=20))
def test_a_manifest_parser_only_ever_says_value_error(data: object) -> None:
    from ci_nix.bundle.manifest import parse
    try:
        manifest = parse(data)
    except ValueError:
        return
    assert all(narinfo.is_store_path(path) for path in manifest.paths)


def test_sboms_that_cannot_be_written_fail_their_own_case_and_keep_the_builds(
        bundles: Bundles, cli: Cli, fake_proc: FakeProc, tmp_path: Path) -> None:
    for words in (("show-derivation",), ("derivation", "show")):
        fake_proc.on(Path(bundles.nix).name, *words, returncode=1,
                     stderr="error: reading derivations: boom\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CI_NIX_NIX", bundles.nix)
        result = cli("run", bundles.repo, "--all", "--sbom", tmp_path / "sbom", "--junit",
                     tmp_path / "run.xml")
    assert result.returncode == 1, result.stdout + result.stderr
    assert _junit_cases(tmp_path / "run.xml") == {
        WEB: "passed", DB: "passed", IMAGE: "passed", "ci-nix.sbom#sbom": "failed"}
    assert "boom" in (tmp_path / "run.xml").read_text()


def test_run_sbom_into_an_unwritable_place_is_exit_2_before_any_work(cli: Cli,
                                                                      tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    result = cli("run", tmp_path, "--all", "--sbom", tmp_path / "file" / "sbom")
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert result.returncode == 2 and len(errors) == 1 and "--sbom" in errors[0]


def test_a_secret_key_given_as_key_is_refused_without_showing_it(cli: Cli,
                                                                 tmp_path: Path) -> None:
    _synthetic(tmp_path / "b", {LIB: ()}, attributes={"f#lib": LIB})
    secret = "fleet-1:" + base64.b64encode(bytes(range(64))).decode()
    result = cli("bundle", "--verify", tmp_path / "b", "--key", secret)
    assert result.returncode == 2 and "neither a public key" in result.stderr
    assert secret.split(":")[1][:12] not in result.stderr + result.stdout


def test_verify_catches_an_altered_or_unsigned_manifest(cli: Cli, tmp_path: Path) -> None:
    _synthetic(tmp_path / "b", {LIB: (), APP: (LIB,)}, attributes={"f#app": APP})
    manifest = tmp_path / "b" / "manifest.json"
    original = manifest.read_text()
    # the attribute now names another signed path of the bundle
    manifest.write_text(original.replace(f'"storePath": "{APP}"', f'"storePath": "{LIB}"'))
    altered = cli("bundle", "--verify", tmp_path / "b", "--key", TEST_KEY.public)
    assert altered.returncode == 1 and "not signed by a trusted key" in altered.stdout
    manifest.write_text(original)
    (tmp_path / "b" / "manifest.json.sig").unlink()
    unsigned = cli("bundle", "--verify", tmp_path / "b", "--key", TEST_KEY.public)
    assert unsigned.returncode == 1 and "unsigned" in unsigned.stdout


GONE = _path("gone-1.0")


def _swap_nar(root: Path, path: str) -> None:
    """Another NAR of the same size behind path's narinfo, its unsigned fields (URL, FileHash,
    FileSize) made to fit: only the signed NarHash can tell."""
    file = root / narinfo.narinfo_name(path)
    info = narinfo.parse(file.read_bytes())
    nar = bytearray(lzma.decompress((root / info.url).read_bytes()))
    nar[-1] ^= 1
    packed = lzma.compress(bytes(nar))
    (root / "nar" / "other.nar.xz").write_bytes(packed)
    file_hash = "sha256:" + narinfo.nix32_encode(hashlib.sha256(packed).digest())
    file.write_text("".join(
        "URL: nar/other.nar.xz\n" if line.startswith("URL:") else
        f"FileHash: {file_hash}\n" if line.startswith("FileHash:") else
        f"FileSize: {len(packed)}\n" if line.startswith("FileSize:") else line
        for line in file.read_text().splitlines(keepends=True)))


@pytest.mark.parametrize(("tamper", "case", "expected"), [
    (lambda root: _swap_nar(root, LIB), "f#app", "does not hash to its NarHash"),
    (lambda root: (root / narinfo.narinfo_name(LIB)).unlink(), "f#app", "no narinfo"),
    # signed by the key, but naming a path the bundle does not hold
    (lambda root: (root / "manifest.json").write_text((root / "manifest.json").read_text()
                                                      .replace(f'"storePath": "{APP}"',
                                                               f'"storePath": "{GONE}"')),
     "f#app", f"{GONE} is not in the bundle"),
    # a broken path no attribute's closure reaches still fails the bundle
    (lambda root: _swap_nar(root, _path("orphan-1.0")), "ci-nix.bundle#manifest",
     "does not hash to its NarHash"),
])
def test_verify_catches_what_was_swapped_or_left_out(
        tamper: Any, case: str, expected: str, cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "b"
    _synthetic(root, {LIB: (), APP: (LIB,), _path("orphan-1.0"): ()}, attributes={"f#app": APP})
    assert cli("bundle", "--verify", root, "--key", TEST_KEY.public).returncode == 0
    tamper(root)
    _sign_manifest(root, TEST_KEY)  # as its maker would have: only a mistake, no forgery
    result = cli("bundle", "--verify", root, "--key", TEST_KEY.public, "--junit",
                 tmp_path / "v.xml")
    assert result.returncode == 1, result.stdout
    assert expected in result.stdout
    assert _junit_cases(tmp_path / "v.xml")[case] == "failed"


def test_verify_refuses_a_named_pipe_instead_of_blocking_on_it(cli_process: Cli,
                                                                tmp_path: Path) -> None:
    import os
    _synthetic(tmp_path / "b", {LIB: ()}, attributes={"f#lib": LIB})
    info = tmp_path / "b" / narinfo.narinfo_name(LIB)
    info.unlink()
    os.mkfifo(info)  # opening it would wait for a writer forever
    # its own process: were it to block, the timeout fails the test instead of hanging the suite
    result = cli_process("bundle", "--verify", tmp_path / "b", "--key", TEST_KEY.public,
                         timeout=30)
    assert result.returncode == 2
    assert f"{info.name} is neither a file nor a directory" in result.stderr


def test_an_empty_delta_says_there_is_nothing_to_import() -> None:
    """`nix copy --from file://… --` with no paths falls back to the flake in the current
    directory and fails: an empty delta's DEPLOY.md has no import command."""
    from ci_nix.bundle import deploy
    empty = Manifest({}, (), TEST_KEY.name, "0" * 64, "0", "nix", (LIB,))
    text = deploy.text(empty, narinfo.parse_public_key(TEST_KEY.public))
    assert "nothing to import" in text and "copy --no-recursive" not in text
    full = replace(empty, paths=(LIB,), since=None, requires=())
    assert "copy --no-recursive" in deploy.text(full, narinfo.parse_public_key(TEST_KEY.public))


def _secret_text(key: Key) -> str:
    return key.secret


def test_a_key_file_given_as_a_pipe_is_read_and_a_silent_one_does_not_hang(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--key-file <(pass show nix-key)`: /dev/fd/N, a symlink to a pipe, is the operator's way
    to hand a secret; it is read to its end. A FIFO nobody writes to stops with an error after
    files.PIPE_TIMEOUT instead of hanging the run (it waited for a writer for good)."""
    import os
    import threading

    from ci_nix.bundle import key as key_mod
    from ci_nix.errors import ConfigError
    from ci_nix.tools import files

    read, write = os.pipe()

    def writer() -> None:
        time.sleep(0.2)  # the reader is waiting: it must wait for the end
        os.write(write, (_secret_text(TEST_KEY) + "\n").encode())
        os.close(write)
    threading.Thread(target=writer, daemon=True).start()
    try:
        loaded = key_mod.load(Path(f"/dev/fd/{read}"), None, None, {})
    finally:
        os.close(read)
    assert loaded.public.name == TEST_KEY.name
    monkeypatch.setattr(files, "PIPE_TIMEOUT", 0.3)
    fifo = tmp_path / "key.fifo"
    os.mkfifo(fifo)
    outcome: list[object] = []

    def load() -> None:
        try:
            outcome.append(key_mod.load(fifo, None, None, {}))
        except ConfigError as err:
            outcome.append(err)
    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive():  # blocked opening it: let it go, then fail
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("reading a FIFO nobody writes to hung")
    [error] = outcome
    assert isinstance(error, ConfigError) and "not written and closed within 0.3s" in str(error)


def test_a_manifest_nested_past_the_recursion_limit_is_no_manifest(tmp_path: Path) -> None:
    """`bundle --verify` reads a bundle from elsewhere: a manifest.json of '[[[[…' made it an
    internal error with a traceback (json.loads raises RecursionError, not ValueError)."""
    from ci_nix.bundle.manifest import ManifestError

    (tmp_path / "manifest.json").write_text("[" * 100_000)
    with pytest.raises(ManifestError, match="not a bundle manifest"):
        read(tmp_path)


def test_a_store_url_python_cannot_split_still_has_its_key_files_checked(
        tmp_path: Path) -> None:
    """`--store 'http://[::1/c?secret-key=…'`: urlsplit refuses the open bracket (ValueError:
    an internal error with a traceback before every run); its secret-key= is still read off
    the query, as Nix reads it, and checked."""
    from ci_nix.bundle import key as key_mod
    from ci_nix.errors import ConfigError

    repo, outside = tmp_path / "repo", tmp_path / "outside"
    repo.mkdir()
    outside.mkdir()
    (repo / "keys").symlink_to(outside)
    linked = repo / "keys" / "k.sec"
    url = f"http://[::1/c?secret-key={linked}#x"
    assert key_mod.store_key_files(url) == [str(linked)]
    with pytest.raises(ConfigError, match="symbolic link inside a checkout"):
        key_mod.check_nix_options([("store", url)], [repo], "--option ")
    assert key_mod.store_key_files("file:///c?secret-key=/k&secret-key=/j") == ["/k", "/j"]


@pytest.mark.parametrize(("query", "named"), [
    ("secret-key=/k+y", ["/k+y"]),  # Nix keeps a '+' (parse_qs read '/k y': not Nix's file)
    ("secret-key=/%6Bq&x=1", ["/kq"]),  # percent-decoded, as Nix does
    ("secret-keys=/a,/b&secret-key=/c", ["/a", "/b", "/c"]),  # newer Nix: a list
    ("x=1#&secret-key=/h", []),  # after a '#': Nix 2.8 and 2.26 read no key there
    ("secret-key=/h#f", ["/h"]),
    ("secret%2Dkey=/e&secret-key", []),  # Nix decodes no names; a name alone is no setting
])
def test_a_store_urls_key_files_are_the_ones_nix_opens(
        tmp_path: Path, query: str, named: list[str]) -> None:
    """The key files of a store URL are read off it as Nix reads them (checked by hand with
    `nix store ping --store URL` on 2.8 and 2.26): a '+' in the path stays a '+', so a link at
    `keys+x` in a checkout is found, not a `keys x` that does not exist."""
    from ci_nix.bundle import key as key_mod
    from ci_nix.errors import ConfigError

    assert key_mod.store_key_files(f"file:///c?{query}") == named
    repo, outside = tmp_path / "repo", tmp_path / "outside"
    repo.mkdir()
    outside.mkdir()
    (repo / "keys+x").symlink_to(outside)
    for param in ("secret-key", "secret-keys"):
        with pytest.raises(ConfigError, match="symbolic link inside a checkout"):
            key_mod.check_nix_options(
                [("store", f"file:///c?{param}={repo}/keys+x/k.sec")], [repo], "--option ")
    # a NUL: Nix opens the path up to it (C), Python's lstat refused it (an internal error)
    with pytest.raises(ConfigError, match="symbolic link inside a checkout"):
        key_mod.check_nix_options([("store", f"file:///c?secret-key={repo}/keys+x%00/k")],
                                  [repo], "--option ")


@pytest.mark.parametrize("name", ["post-build-hook", "extra-plugin-files", "builders"])
def test_a_program_nix_runs_from_a_checkout_is_refused(tmp_path: Path, name: str) -> None:
    """A hook (run by Nix with the run's environment, its tokens included), a plugin or a
    build machines file (`builders = @FILE`: where builds go, with which ssh keys) named in a
    trusted nix-options but lying in a checkout is the pull request's version of it: refused,
    link or not; outside the checkouts, or a bare program name Nix looks up in PATH, it is
    handed to Nix as before."""
    from ci_nix.bundle import key as key_mod
    from ci_nix.errors import ConfigError

    repo, outside = tmp_path / "repo", tmp_path / "etc"
    (repo / "ci").mkdir(parents=True)
    outside.mkdir()
    (repo / "linked").symlink_to(outside)
    at = "@" if name == "builders" else ""
    for named, where in ((repo / "ci" / "upload.sh", f"inside the checkout {repo}"),
                         (repo / "linked" / "upload.sh",
                          f"{repo / 'linked'} is a symbolic link inside a checkout")):
        value = f"ssh://a x86_64-linux; {at}{named}" if at else f"/etc/nix/first {named}"
        with pytest.raises(ConfigError) as raised:
            key_mod.check_nix_options([(name, value)], [repo], "nix-options.")
        assert str(raised.value).startswith(f"nix-options.{name} {named}: {where}, whose "
                                            "files a pull request decides"), raised.value
    key_mod.check_nix_options([(name, f"{at}{outside / 'upload.sh'}"), ("build-hook", "nix")],
                              [repo], "--option ")


def test_a_link_a_dot_dot_climbs_out_of_is_still_a_link(tmp_path: Path) -> None:
    """`secret-key-files = /w/repo/keys/../k.sec`: Nix opens the path as given, so the system
    climbs from where the pull request's link `keys` points (its parent's k.sec: the runner's
    key), while the check read it by the letters as /w/repo/k.sec (no link: passed)."""
    from ci_nix.bundle import key as key_mod
    from ci_nix.errors import ConfigError

    runner = tmp_path / "etc"
    (runner / "sub").mkdir(parents=True)
    (runner / "k.sec").write_text(_secret_text(TEST_KEY))
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "keys").symlink_to(runner / "sub")
    named = f"{repo}/keys/../k.sec"
    assert Path(named).read_text() == _secret_text(TEST_KEY)  # what Nix would sign with
    with pytest.raises(ConfigError, match=f"{repo / 'keys'} is a symbolic link inside a "):
        key_mod.check_nix_options([("secret-key-files", named)], [repo], "nix-options.")
    (repo / "sub").mkdir()  # a plain directory climbed out of is no link
    key_mod.check_nix_options([("secret-key-files", f"{repo}/sub/../k.sec")], [repo],
                              "nix-options.")


def test_a_pipe_nobody_writes_to_gives_way_to_sigterm(tmp_path: Path) -> None:
    """SIGTERM while `--key-file` waits for a FIFO nobody writes to: the command stops
    (Cancelled: exit 143, its JUnit written) rather than waiting out the pipe's timeout
    (files.PIPE_TIMEOUT is 30 s, past a CI runner's grace before it kills the job unreported)."""
    import os
    import signal
    import threading

    from ci_nix.errors import Cancelled
    from ci_nix.tools import files, proc

    fifo = tmp_path / "key.fifo"
    os.mkfifo(fifo)
    timer = threading.Timer(0.2, proc.cancel, args=(signal.SIGTERM,), kwargs={"grace": 0})
    timer.start()
    try:
        with pytest.raises(Cancelled):
            files.read_given(fifo, 100, timeout=5)  # waited the 5 s, then ValueError
    finally:
        timer.cancel()
        proc.reset_cancellation()


@pytest.mark.parametrize("link", ["file", "directory", "fifo", None])
def test_the_config_key_file_is_never_read_through_a_link_in_a_checkout(
        tmp_path: Path, link: str | None) -> None:
    """cache.secret-key-file names a path; in a checkout its files are a pull request's: a
    link there (the file, or a directory on the way) to the runner's own signing key would
    sign the bundle with it. Refused, as is a FIFO (which would hang); a link above the
    checkout (a machine's /run/secrets) and a plain file are read."""
    import os

    from ci_nix.bundle import key as key_mod
    from ci_nix.errors import ConfigError

    runner = tmp_path / "etc" / "nix" / "cache.sec"  # the runner's own key
    runner.parent.mkdir(parents=True)
    runner.write_text(_secret_text(TEST_KEY))
    checkout = tmp_path / "above" / "checkout"
    (checkout / "keys").mkdir(parents=True)
    named = checkout / "keys" / "ci.sec"
    if link == "file":
        named.symlink_to(runner)
    elif link == "directory":
        (checkout / "keys").rmdir()
        (checkout / "keys").symlink_to(runner.parent)
        named = checkout / "keys" / "cache.sec"
    elif link == "fifo":
        os.mkfifo(named)
    else:
        named.write_text(_secret_text(TEST_KEY))
    if link is None:
        above = tmp_path / "linked-above"
        above.symlink_to(tmp_path / "above")
        for path in (named, above / "checkout" / "keys" / "ci.sec"):
            loaded = key_mod.load(None, None, str(path), {}, [checkout])
            assert loaded.public.name == TEST_KEY.name
        return
    # reached through a link above the checkout (a runner's work directory, /tmp on macOS),
    # the checkout's links are refused all the same
    alias = tmp_path / "alias"
    alias.symlink_to(tmp_path / "above")
    for path in (named, alias / named.relative_to(tmp_path / "above")):
        with pytest.raises(ConfigError) as raised:
            key_mod.load(None, None, str(path), {}, [checkout])
        assert "cache.secret-key-file" in str(raised.value)
        assert ("cannot read it (not a regular file)" if link == "fifo" else
                "symbolic link inside a checkout") in str(raised.value)


def test_a_bundles_manifest_is_never_read_through_a_link_out_of_it(tmp_path: Path) -> None:
    """A bundle is outside data: its manifest.json linking to another file is not read (that
    file's JSON, or its error text, would be the bundle's); one named directly (`--since
    old.json`, or `<(curl …)`) is the operator's and is read through a link or a pipe."""
    import os

    from ci_nix.bundle.manifest import ManifestError

    _synthetic(tmp_path / "b", {LIB: ()}, attributes={"f#lib": LIB})
    manifest, digest = read(tmp_path / "b")
    elsewhere = tmp_path / "elsewhere.json"
    os.replace(tmp_path / "b" / "manifest.json", elsewhere)
    (tmp_path / "b" / "manifest.json").symlink_to(elsewhere)
    with pytest.raises(ManifestError, match="cannot read the manifest"):
        read(tmp_path / "b")
    assert read(tmp_path / "b" / "manifest.json") == (manifest, digest)  # named: followed
    piped, write = os.pipe()
    os.write(write, elsewhere.read_bytes())
    os.close(write)
    try:
        assert read(Path(f"/dev/fd/{piped}")) == (manifest, digest)
    finally:
        os.close(piped)
