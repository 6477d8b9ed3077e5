"""False reds of `parse_log` on directories of green texts (the guard set's shape).

    .venv/bin/python scripts/measure_false_reds.py tests/data/guard [DIR...]

Each DIR holds texts that are no failing run of Nix (logs of runs that passed, warnings, prose
about errors) and an `expected.json` naming, per text, the lines that hold a real failure the text
quotes (`holds`) and the false reds already known (`known_false_red`). A false red is a failure
`parse_log` reports at a line not in `holds`: a red JUnit for a text that holds no such failure.
Known ones count too: they are false reds all the same. Prints each text's false reds and the
totals; in process, no Nix needed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ci_nix import diagnose


def false_reds(directory: Path, name: str, holds: list[int]) -> list[str]:
    """The failures `parse_log` reports in one text at lines it does not hold, one line each."""
    text = (directory / name).read_bytes().decode("utf-8", errors="replace")
    return [f"line {d.log_line}: {d.type.value}/{d.kind.value}: {d.message[:100]}"
            for d in diagnose.parse_log(text.split("\n")) if d.log_line not in holds]


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: measure_false_reds.py DIR... (each DIR with an expected.json)",
              file=sys.stderr)
        return 2
    for directory in map(Path, argv):
        index = directory / "expected.json"
        if not index.is_file():
            print(f"{index}: no such file; a directory of green texts needs its expected.json",
                  file=sys.stderr)
            return 1
        expected = json.loads(index.read_text())
        texts = reds = 0
        for name in sorted(expected):
            found = false_reds(directory, name, expected[name]["holds"])
            texts += bool(found)
            reds += len(found)
            for line in found:
                print(f"  FALSE RED {name} {line}")
        print(f"{directory}: {texts} of {len(expected)} texts with a false red, {reds} false reds")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
