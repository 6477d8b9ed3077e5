"""How `ci-nix junit` classifies a directory of captured logs with `.expected.json` sidecars.

    .venv/bin/python scripts/measure_diagnosis.py tests/data/fresh/dev [-v]

A sample counts as classified when the failure it is about (the one for the derivation its
sidecar names, else the first) has the expected type (and kind and exit code where given); a
silent zero is a log for which no failure at all was found. In process, no Nix needed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ci_nix import diagnose


def judge(expected_file: Path) -> tuple[bool, bool, str]:
    """(classified, silent zero, what was found) for one sample."""
    expected = json.loads(expected_file.read_text())
    log = Path(str(expected_file).removesuffix(".expected.json") + ".log")
    found = diagnose.parse_log(log.read_bytes().decode("utf-8", errors="replace").split("\n"))
    if not found:
        return False, True, "nothing"
    chosen = found[0]
    if "drv" in expected:
        named = [d for d in found if d.drv and d.drv.endswith("-" + expected["drv"])]
        if not named:
            return False, False, f"no failure for {expected['drv']}: {found[0].type.value}"
        chosen = named[0]
    ok = chosen.type.value == expected["type"] and all(
        str(getattr(chosen, key)) == str(expected[key]) for key in ("kind", "exit_code")
        if key in expected)
    return ok, False, f"{chosen.type.value}/{chosen.kind.value}: {chosen.message[:100]}"


def main(argv: list[str]) -> int:
    verbose = "-v" in argv
    for directory in [Path(a) for a in argv if a != "-v"]:
        samples = sorted(directory.glob("*.expected.json"))
        results = [(p, *judge(p)) for p in samples]
        right = sum(ok for _, ok, _, _ in results)
        zeros = sum(zero for _, _, zero, _ in results)
        print(f"{directory}: {right}/{len(results)} classified "
              f"({100 * right / max(len(results), 1):.0f} %), {zeros} silent zeros")
        for path, ok, _, what in results:
            if verbose and not ok:
                print(f"  MISS {path.name.removesuffix('.expected.json')}: {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
