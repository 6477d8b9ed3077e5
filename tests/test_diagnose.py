"""diagnose on its own: helper noise, positions mapped to the repo, hints, build messages."""

from __future__ import annotations

from pathlib import Path

from ci_nix import diagnose
from ci_nix.models import FailureType, Flake, Repo

DATA = Path(__file__).resolve().parent / "data"


def test_helper_positions_and_lock_notes_never_reach_the_report() -> None:
    # Nix 2.26 truncates the trace inside ci-nix's eval.nix: no position is better than eval.nix
    text = (DATA / "nix-2.26/throw.helper.log").read_text()
    found = diagnose.diagnose_eval(text)
    assert found.message == "the package is marked broken"
    assert found.file is None and "eval.nix" not in found.message
    assert "not writing modified lock file" not in found.log and "eval.nix" not in found.log
    assert "Added input" not in found.log


def test_position_maps_into_the_repo_of_the_flake(tmp_path: Path) -> None:
    repo = tmp_path / "hosts"
    (repo / "sub").mkdir(parents=True)
    (repo / "sub" / "flake.nix").write_text("{}\n")
    flake = Flake(Repo("hosts", repo), "sub")
    text = ("error: attribute 'nope' missing\n\n"
            "       at /nix/store/xdvgssw43ssmfv2wxplqcgjyfp0pscfy-source/lib/modules.nix:9:3:\n"
            "error: attribute 'nope' missing\n"
            "       at /nix/store/00000000000000000000000000000000-source/sub/flake.nix:4:37:\n")
    found = diagnose.diagnose_eval(text, flake)
    assert (found.file, found.line, found.column) == ("sub/flake.nix", 4, 37)
    assert found.message == "attribute 'nope' missing at sub/flake.nix:4:37"


def test_position_outside_the_repo_is_not_claimed(tmp_path: Path) -> None:
    flake = Flake(Repo("r", tmp_path), "")
    text = (DATA / "public/nixos-hardware-621-infinite-recursion.text.log").read_text()
    found = diagnose.diagnose_eval(text, flake)
    assert found.kind == "infinite-recursion" and found.file is None
    assert "mkIf" in (found.hint or "") and "imports" in (found.hint or "")


def test_failure_carries_hint_and_position() -> None:
    failure = diagnose.eval_failure((DATA / "nix-2.8/untracked-file.text.log").read_text())
    assert failure.type is FailureType.EVAL and failure.file == "generated.nix"
    assert "git add" in (failure.hint or "")


def test_build_error_keeps_the_entry_point_build_py_uses() -> None:
    err = diagnose.build_error(
        "\x1b[31;1merror:\x1b[0m building of '/nix/store/rqvki18y6vnm2ibaz1pfdw933ws5nxim-"
        "slow-1.0.drv^out' from .drv file timed out after 2 seconds")
    assert err is not None and err.type is FailureType.TIMEOUT
    assert err.drv == "/nix/store/rqvki18y6vnm2ibaz1pfdw933ws5nxim-slow-1.0.drv"
    assert diagnose.build_error("error: some unrelated message") is None


def test_tail_is_clean_and_bounded() -> None:
    lines = [f"\x1b[1mline {i}\x07\x00" for i in range(1000)]
    text = diagnose.tail(lines)
    assert "\x1b" not in text and "\x07" not in text and "\x00" not in text
    assert text.endswith("line 999") and len(text.splitlines()) == diagnose.TAIL_LINES
    assert len(diagnose.tail(["x" * 20000])) <= diagnose.TAIL_CHARS + 1
