"""The `builders` / machines file parser (tools/machines.py), on examples and generated input."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ci_nix.errors import ConfigError
from ci_nix.tools import machines
from ci_nix.tools.machines import Machine

X86, ARM = "x86_64-linux", "aarch64-linux"


def test_nix_manual_example_with_defaults_and_comments() -> None:
    text = """
    # three i686 builders
    nix@scratchy.labs.cs.uu.nl i686-linux /home/nix/.ssh/id_scratchy 8 1 kvm
    nix@itchy.labs.cs.uu.nl    i686-linux /home/nix/.ssh/id_scratchy 8 2
    nix@poochie.labs.cs.uu.nl  i686-linux /home/nix/.ssh/id_scratchy 1 2 kvm benchmark  # slow
    """
    scratchy, itchy, poochie = machines.parse(text, X86)
    assert scratchy == Machine("ssh://nix@scratchy.labs.cs.uu.nl", ("i686-linux",),
                               "/home/nix/.ssh/id_scratchy", 8, 1.0, frozenset({"kvm"}))
    assert itchy.speed_factor == 2.0 and itchy.supported_features == frozenset()
    assert poochie.mandatory_features == frozenset({"benchmark"})


def test_semicolons_dashes_and_the_local_system_default() -> None:
    arm, local = machines.parse("ssh-ng://arm aarch64-linux,armv7l-linux - 4 ; "
                                "ssh://box - - 0 - big-parallel", X86)
    assert arm.uri == "ssh-ng://arm" and arm.systems == (ARM, "armv7l-linux")
    assert arm.max_jobs == 4 and arm.ssh_key is None
    assert local.systems == (X86,) and not local.enabled
    assert machines.systems((arm, local)) == {ARM, "armv7l-linux"}
    assert machines.serving((arm, local), X86) == ()


def test_at_file_is_read_and_a_missing_one_skipped(tmp_path: Path) -> None:
    inner = tmp_path / "more"
    inner.write_text("ssh://c x86_64-linux\n")
    outer = tmp_path / "machines"
    outer.write_text(f"ssh://b aarch64-linux\n@{inner}\n@{tmp_path / 'absent'}\n")
    found = machines.parse(f"ssh://a {X86}; @{outer}", X86)
    assert [m.uri for m in found] == ["ssh://a", "ssh://b", "ssh://c"]
    assert machines.parse(f"@{tmp_path / 'absent'}", X86) == ()


def test_machines_files_that_include_each_other_stop(tmp_path: Path) -> None:
    loop = tmp_path / "loop"
    loop.write_text(f"@{loop}\n")
    with pytest.raises(ConfigError, match="include each other"):
        machines.parse(f"@{loop}", X86)


@pytest.mark.parametrize("line", ["ssh://a x86_64-linux - many", "ssh://a - - 1 -3",
                                  "ssh://a - - 1 nan"])
def test_bad_numbers_are_one_line_errors(line: str) -> None:
    with pytest.raises(ConfigError, match="ssh://a: .* is not a non-negative number"):
        machines.parse(line, X86)


# --- generated: whatever Nix would read, the parser reads back --------------------------------

_part = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=8)
_word = st.builds(lambda a, b: f"{a}-{b}" if b else a, _part, st.one_of(st.none(), _part))
_host = st.builds(lambda user, host: f"{user}@{host}" if user else host,
                  st.one_of(st.none(), _word), _word)
_uri = st.one_of(st.builds(lambda scheme, host: f"{scheme}://{host}",
                           st.sampled_from(["ssh", "ssh-ng"]), _host), _host)
_words = st.lists(_word, max_size=3, unique=True)


@st.composite
def _machine_line(draw: st.DrawFn) -> tuple[str, Machine]:
    uri, systems = draw(_uri), draw(_words)
    key = draw(st.one_of(st.none(), st.builds(lambda w: f"/keys/{w}", _word)))
    jobs = draw(st.one_of(st.none(), st.integers(0, 64)))
    speed = draw(st.one_of(st.none(), st.integers(1, 9)))
    supported, mandatory = draw(_words), draw(_words)
    host_key = draw(st.one_of(st.none(), st.text(alphabet="ABCabc012+/=", min_size=4,
                                                 max_size=20)))
    fields = [uri, ",".join(systems) or "-", key or "-", "-" if jobs is None else str(jobs),
              "-" if speed is None else str(speed), ",".join(supported) or "-",
              ",".join(mandatory) or "-", host_key or "-"]
    # trailing defaults may be left out, as in hand-written machines files
    while len(fields) > 1 and fields[-1] == "-" and draw(st.booleans()):
        fields.pop()
    space = draw(st.sampled_from([" ", "  ", "\t", " \t "]))
    expected = Machine(uri=uri if "://" in uri else f"ssh://{uri}",
                       systems=tuple(systems) or (X86,), ssh_key=key,
                       max_jobs=1 if jobs is None else jobs,
                       speed_factor=1.0 if speed is None else float(speed),
                       supported_features=frozenset(supported),
                       mandatory_features=frozenset(mandatory), public_host_key=host_key)
    return space.join(fields), expected


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_machine_line(), st.sampled_from(["\n", ";", " ; ", "\n\n"]),
                          st.booleans()), max_size=5))
def test_generated_machines_round_trip(lines: list[tuple[tuple[str, Machine], str, bool]]) -> None:
    text = "".join(line + (" # a comment" if comment and sep.strip() != ";" else "") + sep
                   for (line, _), sep, comment in lines)
    assert machines.parse(text, X86) == tuple(expected for (_, expected), _, _ in lines)


@given(st.text(max_size=200))
def test_any_text_parses_or_fails_with_one_line(text: str) -> None:
    try:
        found = machines.parse(text, X86, read_file=lambda path: None)
    except ConfigError as err:
        assert "\n" not in str(err)
    else:
        assert all(m.uri and m.systems for m in found)
