"""`nix --version` as Nix and Lix print it, and what else ci-nix asks Nix about itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakeproc import FakeProc

from ci_nix.errors import ToolError
from ci_nix.tools.nix import Nix, NixVersion, parse_version


@pytest.mark.parametrize(("output", "expected"), [
    ("nix (Nix) 2.8.0\n", NixVersion(2, 8, 0, "nix", "nix (Nix) 2.8.0")),
    ("nix (Nix) 2.26.3\n", NixVersion(2, 26, 3, "nix", "nix (Nix) 2.26.3")),
    ("nix (Lix, like Nix) 2.91.1\nSystem type: x86_64-linux\n",
     NixVersion(2, 91, 1, "lix", "nix (Lix, like Nix) 2.91.1")),
    ("nix (Lix, like Nix) 2.93.0-pre20250101\n",
     NixVersion(2, 93, 0, "lix", "nix (Lix, like Nix) 2.93.0-pre20250101")),
    ("nix-env (Nix) 2.3\n", NixVersion(2, 3, 0, "nix", "nix-env (Nix) 2.3")),
    # Determinate Nix names its own version in the parentheses: the Nix version follows
    ("nix (Determinate Nix 3.8.2) 2.30.0\n",
     NixVersion(2, 30, 0, "nix", "nix (Determinate Nix 3.8.2) 2.30.0")),
    ("nix (Lix, like Nix) 2.93.0\n", NixVersion(2, 93, 0, "lix", "nix (Lix, like Nix) 2.93.0")),
    # `nix -v --version` (ci-nix's one question, version and configuration files): the lines
    # after the first are paths, which may hold "lix" or a version-like number
    ("nix (Nix) 2.26.3\nSystem type: x86_64-linux\nFeatures: gc, signed-caches\n"
     "System configuration file: /etc/nix-3.1/nix.conf\n"
     "User configuration files: /home/felix/.config/nix/nix.conf:/etc/xdg/nix/nix.conf\n"
     "Store directory: /nix/store\nState directory: /nix/var/nix\nData directory: /usr/share\n",
     NixVersion(2, 26, 3, "nix", "nix (Nix) 2.26.3")),
])
def test_versions(output: str, expected: NixVersion) -> None:
    found = parse_version(output)
    assert found == expected
    assert found.at_least(2, 4) is (expected.minor >= 4)


def test_not_a_version() -> None:
    with pytest.raises(ToolError, match="is CI_NIX_NIX a nix binary"):
        parse_version("bash: nix: command not found")
    with pytest.raises(ToolError, match="printed 'hello'; is CI_NIX_NIX"):
        parse_version("hello\nState directory: /nix/var/nix-2.8\n")


def test_one_nix_start_tells_the_version_and_the_configuration_files(
        fake_proc: FakeProc) -> None:
    """`nix -v --version` says both: the version (every run) and the files Nix reads (whether
    Nix's configuration sets max-jobs, before a build), so Nix starts once for them."""
    fake_proc.strict = True
    fake_proc.on("nix", "-v", "--version", stdout=(
        "nix (Nix) 2.8.0\nSystem type: x86_64-linux\n"
        "System configuration file: /nonexistent/etc/nix.conf\n"
        "User configuration files: /nonexistent/home/nix.conf\n"))
    fake_proc.on("nix", "show-config", stdout=json.dumps({"max-jobs": {
        "aliases": ["build-max-jobs"], "defaultValue": 1, "value": 1}}))
    nix = Nix(("nix",))
    assert nix.version.at_least(2, 8)
    assert nix.with_options([("max-silent-time", "5")]).build_max_jobs == "auto"
    assert [call.argv for call in fake_proc.ran("nix", "--version")] == [
        ("nix", "-v", "--version")]


@pytest.mark.parametrize(("settings", "expected", "evaluates"), [
    # Nix 2.19+: `eval-system` decides builtins.currentSystem when it is set
    ({"system": {"value": "x86_64-linux"}, "eval-system": {"value": "aarch64-linux"}},
     "aarch64-linux", False),
    ({"system": {"value": "x86_64-linux"}, "eval-system": {"value": ""}}, "x86_64-linux", False),
    ({"system": {"value": "i686-linux"}}, "i686-linux", False),  # Nix 2.8: `system` alone
    ({}, "riscv64-linux", True),  # a Nix whose settings do not say: ask it
])
def test_the_current_system_comes_from_the_settings(fake_proc: FakeProc, settings: object,
                                                    expected: str, evaluates: bool) -> None:
    fake_proc.strict = True
    fake_proc.on("nix", "--version", stdout="nix (Nix) 2.26.0\n")
    fake_proc.on("nix", "config", "show", stdout=json.dumps(settings))
    fake_proc.on("nix", "eval", stdout="riscv64-linux")
    assert Nix(("nix",)).current_system == expected
    assert bool(fake_proc.ran("nix", "eval")) is evaluates


@pytest.mark.parametrize(("line", "system"), [
    ("System configuration file: /etc/nix/nix.conf", "/etc/nix/nix.conf"),
    # Nix 2.33.0 to 2.34.x stream a std::filesystem::path there: std::quoted, '"' and '\'
    # escaped (2.35 prints it plain again)
    ('System configuration file: "/etc/nix/nix.conf"', "/etc/nix/nix.conf"),
    ('System configuration file: "/etc/a \\"b\\" \\\\c/nix.conf"', '/etc/a "b" \\c/nix.conf'),
])
def test_the_system_configuration_file_as_each_nix_prints_it(line: str, system: str) -> None:
    """A quoted path read as the path (its quotes in the name: a file that is not there, so
    the max-jobs of /etc/nix/nix.conf went unseen and ci-nix built with max-jobs = auto)."""
    from ci_nix.tools import nixconf

    text = (f"nix (Nix) 2.34.0\nSystem type: x86_64-linux\n{line}\n"
            "User configuration files: /root/.config/nix/nix.conf:/etc/xdg/nix/nix.conf\n")
    assert nixconf.files(text) == (Path(system), Path("/root/.config/nix/nix.conf"),
                                   Path("/etc/xdg/nix/nix.conf"))


def test_a_nix_that_never_says_its_version_is_an_error(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """`nix -v --version` is the one start every command waits on (now on a thread the plan
    joins): a Nix that never answers (a wrapper waiting on a lock) was a run that never ended;
    it is a one-line error naming the command (exit 2, the report written)."""
    import ci_nix.tools.nix as nix_mod
    from ci_nix.errors import ToolTimeout

    hanging = tmp_path / "nix"
    hanging.write_text("#!/bin/sh\nexec sleep 60\n")
    hanging.chmod(0o755)
    monkeypatch.setattr(nix_mod, "QUERY_TIMEOUT", 0.5)
    with pytest.raises(ToolTimeout, match=r"no answer within 0s|no answer within 1s"):
        Nix((str(hanging),)).version  # noqa: B018 - the query is the test


def test_settings_that_are_not_json_are_an_error_naming_the_command(
        fake_proc: FakeProc) -> None:
    """A Nix (or a wrapper) printing something else than JSON for its settings: an error
    naming the command, not an internal error with a traceback."""
    fake_proc.on("nix", "-v", "--version", stdout="nix (Nix) 2.8.0\n")
    fake_proc.on("nix", "show-config", stdout='{"max-jobs": {"value": 1')
    with pytest.raises(ToolError, match="show-config --json` printed no JSON"):
        Nix(("nix",)).current_system  # noqa: B018 - the query is the test
    fake_proc.on("nix", "show-config", stdout="[" * 100_000)
    with pytest.raises(ToolError, match="printed no JSON"):
        Nix(("nix",)).current_system  # noqa: B018 - the query is the test
