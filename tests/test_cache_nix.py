"""ci-nix run with a binary cache on real Nix: push with `nix copy`, skip what is cached, survive
a failing cache; attic through the fake client against a real narinfo endpoint."""

from __future__ import annotations

import base64
import json
import os
import shlex
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import NIX_CONFIG, Cli, xml_attr, xml_find
from httpcache import TEST_KEY, BinaryCache, Key, narinfo_for

from ci_nix import narinfo
from ci_nix.cache.client import query
from ci_nix.narinfo import narinfo_name

pytestmark = pytest.mark.nix

FAKES = Path(__file__).resolve().parent / "fakes"
FIXTURE_CONFIG = (FAKES.parent.parent / "fixtures" / "workspace" / "ci-nix.yaml").read_text()
GREEN = ("modules#packages.x86_64-linux.greeting", "modules#devShells.x86_64-linux.default",
         "modules#checks.x86_64-linux.fmt", "hosts#nixosConfigurations.web",
         "hosts#nixosConfigurations.db", "hosts#packages.x86_64-linux.motd")
FAST = {"CI_NIX_CACHE_RETRY_BASE": "0.01", "CI_NIX_CACHE_RETRY_TOTAL": "120",
        "CI_NIX_CACHE_RETRY_ATTEMPTS": "3"}
TOKEN = "attic-token-for-the-cli-test-42"


def only(*attrs: str) -> list[str]:
    return [arg for attr in attrs for arg in ("--only", attr)]


def configure(ws: Path, **cache_keys: str | bool) -> None:
    """The fixture's ci-nix.yaml with this `cache:` section."""
    lines = ["cache:"] + [f"  {key}: {json.dumps(value)}" for key, value in cache_keys.items()]
    (ws / "ci-nix.yaml").write_text(FIXTURE_CONFIG + "\n" + "\n".join(lines) + "\n")


def nix(nix_bin: str, *args: str) -> str:
    return subprocess.run([*shlex.split(nix_bin), "--extra-experimental-features",
                           "nix-command flakes", *args], check=True, capture_output=True,
                          text=True).stdout


def outputs_of(nix_bin: str, drvs: list[str]) -> list[str]:
    """The output paths of built derivations (nothing is built again)."""
    modern = "modern" in nix_bin
    data = json.loads(nix(nix_bin, "build", "--no-link", "--json",
                          *[f"{d}^*" if modern else d for d in drvs]))
    return [path for entry in data for path in entry["outputs"].values()]


def test_second_run_with_filled_cache_builds_and_pushes_nothing(
        fixture_ws: Path, tmp_path: Path, cli: Cli, nix_bin: str) -> None:
    key = tmp_path / "cache.key"
    key.write_text(nix(nix_bin, "key", "generate-secret", "--key-name", "ci-nix-test-1"))
    public = narinfo.public_key_of_secret(key.read_text())
    # Nix substitutes only what a trusted key signed (require-sigs is on)
    env = {**FAST, "NIX_CONFIG": NIX_CONFIG + f"trusted-public-keys = {public_text(key)}\n"}
    with BinaryCache() as server:
        configure(fixture_ws, type="nix", server=server.url, **{"secret-key-file": str(key)})
        first = cli("run", fixture_ws, *only(*GREEN), "--json", tmp_path / "1.json", "-v",
                    env=env)
        assert first.returncode == 0, first.stderr
        report = json.loads((tmp_path / "1.json").read_text())
        assert report["totals"] == {"passed": 6, "failed": 0, "skipped": 0}
        assert any(n.startswith("cache: pushed ") and "(closure)" in n for n in report["notes"])
        assert " copy --to " in first.stderr
        # Nix signs with ci-nix's private copy of the key (read without links), never reads
        # the configured file itself; the key is in no log line
        assert "?secret-key=/" in first.stderr and f"secret-key={key}" not in first.stderr
        assert key.read_text().strip().partition(":")[2] not in first.stderr + first.stdout
        # the test's NIX_CONFIG sets no max-jobs: ci-nix builds one per CPU (README "Parallel
        # builds"), and says so
        assert " build --option max-jobs auto --keep-going " in first.stderr
        assert "building with max-jobs = auto" in first.stderr

        outs = outputs_of(nix_bin, [c["drvPath"] for c in report["cases"]])
        trust = narinfo.Trust(True, (public,))
        assert query(server.url, outs, trust=trust).cached == set(outs)  # the check agrees
        for path in outs:
            text = server.files["/" + narinfo_name(path)].decode()
            assert f"StorePath: {path}\n" in text and "Sig: ci-nix-test-1:" in text
        puts = server.count("PUT")

        # evaluated afresh (--no-eval-cache): the skip is the binary cache's alone
        second = cli("run", fixture_ws, *only(*GREEN), "--json", tmp_path / "2.json", "-v",
                     "--no-eval-cache", env=env)
        assert second.returncode == 0, second.stderr
        report = json.loads((tmp_path / "2.json").read_text())
        assert report["totals"] == {"passed": 0, "failed": 0, "skipped": 6}, report["notes"]
        assert {c["skipped"] for c in report["cases"]} == {"cached"}
        assert "cache: pushed 0 paths (nothing new to push)" in report["notes"]
        assert server.count("PUT") == puts  # pushed nothing
        assert " --keep-going --no-link " not in second.stderr
        assert " copy --to " not in second.stderr
        assert "6 skipped (6 cached)" in second.stdout

        # the evaluation cache the first run wrote and the binary cache together: no
        # evaluation worker starts, nothing is built, every attribute is said to be cached
        third = cli("run", fixture_ws, *only(*GREEN), "--json", tmp_path / "3.json", env=env)
        assert third.returncode == 0, third.stderr
        report = json.loads((tmp_path / "3.json").read_text())
        assert {c["skipped"] for c in report["cases"]} == {"cached (from the evaluation cache)"}
        assert "evaluated 2 flakes with 0 Nix evaluations" in third.stderr
        assert " --keep-going --no-link " not in third.stderr and server.count("PUT") == puts


def public_text(secret_file: Path) -> str:
    key = narinfo.public_key_of_secret(secret_file.read_text())
    return f"{key.name}:{base64.b64encode(key.key).decode()}"


def test_failing_cache_mid_push_is_retried_then_reported(
        fixture_ws: Path, tmp_path: Path, cli: Cli) -> None:
    attrs = ("modules#packages.x86_64-linux.greeting", "hosts#packages.x86_64-linux.motd")
    # Nix retries uploads itself (5 tries with backoff); one try each keeps this test quick.
    env = {**FAST, "NIX_CONFIG": NIX_CONFIG + "download-attempts = 1\n"}
    with BinaryCache() as server:
        configure(fixture_ws, type="nix", server=server.url)
        server.fail("close", methods=["PUT"], after=1)  # the first upload lands, then it dies
        junit = tmp_path / "r.xml"
        result = cli("run", fixture_ws, *only(*attrs), "--junit", junit,
                     "--json", tmp_path / "soft.json", env=env)
        assert result.returncode == 0, result.stderr  # cache.required is false
        soft = json.loads((tmp_path / "soft.json").read_text())
        push_case = next(c for c in soft["cases"] if c["flake"] == "ci-nix.cache")
        assert push_case["status"] == "failed" and push_case["required"] is False
        assert result.stderr.count("retrying in") == 2  # 3 attempts
        assert server.count("PUT") >= 3
        cases = {(c.get("classname"), c.get("name")): c for c in ET.parse(junit).iter("testcase")}
        assert set(cases) == {("modules", "packages.x86_64-linux.greeting"),
                              ("hosts", "packages.x86_64-linux.motd"), ("ci-nix.cache", "push")}
        for key in [("modules", "packages.x86_64-linux.greeting"),
                    ("hosts", "packages.x86_64-linux.motd")]:
            assert cases[key].find("failure") is None  # passed: build results intact
            assert cases[key].find("skipped") is None
        failure = xml_find(cases[("ci-nix.cache", "push")], "failure")
        assert xml_attr(failure, "type") == "other" and server.url in xml_attr(failure, "message")
        assert "FAIL ci-nix.cache#push" in result.stdout

        configure(fixture_ws, type="nix", server=server.url, required=True)
        server.fail("500", methods=["PUT"])
        result = cli("run", fixture_ws, *only(*attrs), "--json", tmp_path / "r.json", env=env)
        assert result.returncode == 1, result.stderr
        report = json.loads((tmp_path / "r.json").read_text())
        assert report["exitCode"] == 1
        assert report["totals"] == {"passed": 2, "failed": 1, "skipped": 0}
        assert "required" not in next(c for c in report["cases"] if c["flake"] == "ci-nix.cache")


def test_attic_push_through_the_cli_then_skip_from_its_narinfos(
        fixture_ws: Path, tmp_path: Path, cli: Cli, nix_bin: str) -> None:
    record = tmp_path / "attic.jsonl"
    env = {**FAST, "CI_NIX_ATTIC": str(FAKES / "attic"), "FAKE_CLIENT_RECORD": str(record),
           "ATTIC_TOKEN": TOKEN,
           "NIX_CONFIG": NIX_CONFIG + f"trusted-public-keys = {TEST_KEY.public}\n"}
    attrs = ("modules#packages.x86_64-linux.greeting", "hosts#nixosConfigurations.web")
    with BinaryCache() as server:
        configure(fixture_ws, type="attic", server=server.url, name="infra",
                  **{"token-env": "ATTIC_TOKEN", "push": "outputs"})
        first = cli("run", fixture_ws, *only(*attrs), "--json", tmp_path / "1.json", "-v",
                    env=env)
        assert first.returncode == 0, first.stderr
        report = json.loads((tmp_path / "1.json").read_text())
        outs = outputs_of(nix_bin, [c["drvPath"] for c in report["cases"]])
        [call] = [json.loads(line) for line in record.read_text().splitlines()]
        assert call["argv"] == ["push", "ci-nix:infra", "--no-closure", *sorted(outs)]
        assert f'token = "{TOKEN}"' in call["config"]
        assert TOKEN not in first.stderr + first.stdout + json.dumps(call["argv"])
        assert server.count("GET", ".narinfo") == len(outs)  # asked at <server>/infra/

        for path in outs:  # what attic's server would now answer (signed, NAR and all)
            server.add(path, "/infra")
        second = cli("run", fixture_ws, *only(*attrs), "--json", tmp_path / "2.json",
                     "--no-eval-cache", env=env)
        assert second.returncode == 0, second.stderr
        report = json.loads((tmp_path / "2.json").read_text())
        assert {c["skipped"] for c in report["cases"]} == {"cached"}
        assert len(record.read_text().splitlines()) == 1  # attic not called again
    assert os.environ.get("ATTIC_TOKEN") != TOKEN


@pytest.mark.slow
def test_hanging_cache_during_push_times_out_retries_and_reports(
        fixture_ws: Path, tmp_path: Path, cli: Cli) -> None:
    attrs = ("modules#packages.x86_64-linux.greeting",)
    env = {**FAST, "CI_NIX_CACHE_RETRY_ATTEMPTS": "2", "CI_NIX_CACHE_PUSH_TIMEOUT": "1",
           "NIX_CONFIG": NIX_CONFIG + "download-attempts = 1\n"}
    with BinaryCache() as server:
        configure(fixture_ws, type="nix", server=server.url)
        server.fail("hang", methods=["PUT"])  # accepts the connection, never answers
        junit = tmp_path / "r.xml"
        result = cli("run", fixture_ws, *only(*attrs), "--junit", junit, env=env, timeout=120)
        server.heal()
    assert result.returncode == 0, result.stderr  # cache.required is false
    assert result.stderr.count("retrying in") == 1  # 2 attempts, each cut off by the timeout
    assert "no answer within 1s" in result.stdout + result.stderr
    cases = {(c.get("classname"), c.get("name")): c for c in ET.parse(junit).iter("testcase")}
    assert cases[("modules", "packages.x86_64-linux.greeting")].find("failure") is None
    assert cases[("ci-nix.cache", "push")].find("failure") is not None


def test_what_nix_would_not_substitute_is_built(fixture_ws: Path, tmp_path: Path, cli: Cli,
                                                nix_bin: str) -> None:
    """The false greens: a narinfo with no Sig and no NAR behind it, and one with a bogus Sig
    and a truncated NAR, in front of two attributes that fail to build."""
    attrs = ("modules#packages.x86_64-linux.broken", "modules#packages.x86_64-linux.uses-broken")
    ref = f"git+file://{fixture_ws / 'modules'}#packages.x86_64-linux"
    broken, uses = json.loads(nix(nix_bin, "eval", "--json", ref, "--apply",
                                  "p: [ p.broken.outPath p.uses-broken.outPath ]"))
    env = {**FAST, "NIX_CONFIG": NIX_CONFIG + f"trusted-public-keys = {TEST_KEY.public}\n"}
    with BinaryCache() as server:
        configure(fixture_ws, type="nix", server=server.url)
        server.files["/" + narinfo_name(broken)] = narinfo_for(broken)  # no Sig, no NAR
        # a Sig by the trusted key's name that is not its signature, and half a NAR
        server.add(uses, key=Key(TEST_KEY.name, bytes(32)))
        nar = next(name for name in server.files if name.startswith("/nar/"))
        server.files[nar] = server.files[nar][:10]
        report = tmp_path / "run.json"
        result = cli("run", fixture_ws, *only(*attrs), "--json", report, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    cases = {c["attr"]: c for c in json.loads(report.read_text())["cases"]}
    assert cases["packages.x86_64-linux.broken"]["failure"]["type"] == "build"
    assert cases["packages.x86_64-linux.uses-broken"]["failure"]["type"] == "dependency"
    [note] = [n for n in json.loads(report.read_text())["notes"] if "not taken as cached" in n]
    assert "2 outputs" in note and "no valid signature by a key in trusted-public-keys" in note


def test_a_file_cache_signed_by_nix_counts_once_its_key_is_trusted(
        fixture_ws: Path, tmp_path: Path, cli: Cli, nix_bin: str) -> None:
    greeting = "modules#packages.x86_64-linux.greeting"
    ref = f"git+file://{fixture_ws / 'modules'}#packages.x86_64-linux.greeting"
    nix(nix_bin, "build", "--no-link", ref)
    out = nix(nix_bin, "eval", "--raw", f"{ref}.outPath")
    secret, public = tmp_path / "key.sec", tmp_path / "key.pub"
    subprocess.run(["nix-store", "--generate-binary-cache-key", "ci-nix-file-1", str(secret),
                    str(public)], check=True)
    cache = tmp_path / "cache"
    nix(nix_bin, "copy", "--to", f"file://{cache}?secret-key={secret}", out)
    configure(fixture_ws, type="nix", server=f"file://{cache}")
    untrusted = cli("run", fixture_ws, *only(greeting), "--json", tmp_path / "1.json", env=FAST)
    assert untrusted.returncode == 0, untrusted.stderr
    report = json.loads((tmp_path / "1.json").read_text())
    assert report["cases"][0]["status"] == "passed"  # checked, not taken from the cache
    assert any("no valid signature" in note for note in report["notes"])
    trusted = cli("run", fixture_ws, *only(greeting), "--json", tmp_path / "2.json",
                  "--no-eval-cache", env={**FAST, "NIX_CONFIG": NIX_CONFIG + "require-sigs = true\n"
                       f"trusted-public-keys = {public.read_text().strip()}\n"})
    assert trusted.returncode == 0, trusted.stderr
    case = json.loads((tmp_path / "2.json").read_text())["cases"][0]
    assert case["status"] == "skipped" and case["skipped"] == "cached"
