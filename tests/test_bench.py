"""The bench runs, and the counts it reports are right (no timing assertions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ONE_NIX

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.nix, pytest.mark.slow]


# One Nix: this proves the bench harness and its counts; how each Nix version evaluates, fails
# and is cancelled is tested on both by test_eval_pool, test_evaluate and the rest.
@ONE_NIX
def test_bench_smoke(tmp_path: Path, nix_bin: str) -> None:
    output = tmp_path / "bench.json"
    figures_wanted = ["P1", "P3", "P4", "P5", "P6", "P7", "P7t", "P8", "P9", "P9c"]
    argv = [sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--output", str(output)]
    for key in figures_wanted:
        if key != "P9c":  # measured with P9
            argv += ["--only", key]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| P1 |" in proc.stdout and "| P6 |" in proc.stdout
    data = json.loads(output.read_text())
    figures = {f["key"]: f for f in data["figures"]}
    assert sorted(figures) == figures_wanted

    p1 = figures["P1"]
    # every generated attribute is its own derivation, the broken one included
    assert p1["counts"]["built"] == p1["counts"]["attributes"] == 12
    assert p1["ours"] and p1["baseline"]
    # each side with its default: ci-nix's builds one per CPU, bare Nix one at a time
    assert p1["counts"]["ci-nix's max-jobs"] == "auto (Nix's configuration sets none)"
    assert p1["counts"]["bare nix build's max-jobs"] == "1 (Nix's default)"
    # the changed leaf flake's 4 attributes, and nothing of the other flakes
    assert figures["P3"]["counts"]["built in the changed run"] == 4
    p4 = figures["P4"]["counts"]
    assert p4["builds in the second run"] == 0 and p4["uploads in the second run"] == 0
    assert p4["cached in the second run"] == p4["attributes"] == 12
    assert p4["narinfo hits"] == 100  # half of the 200 smoke checks
    rows = figures["P5"]["counts"]["rows"]
    assert [(r["k"], r["n"]) for r in rows] == [(1, 8), (2, 16)]
    # no re-evaluation: each attribute once, one more Nix process per failure (+ take-overs)
    assert all(r["attribute evaluations"] == r["n"] for r in rows), rows
    assert all(r["k"] < r["evaluations"] <= r["k"] + 5 for r in rows), rows
    p7 = figures["P7"]["counts"]
    assert p7["jobs"] == 3 and p7["failures"] == 0 and p7["--eval-memory 600: failures"] == 0
    assert p7["its attribute evaluations"] == 3  # the broken host: once, like the others
    assert p7["largest Nix RSS MB ours"] > 0 and p7["one host's (bare) MB"] > 0
    p7t = figures["P7t"]["counts"]
    assert p7t["jobs"] == 3 and p7t["failures"] == 0
    assert 0 < p7t["peak summed Nix RSS MiB"] and 0 < p7t["no budget: peak MiB"]
    assert 0 < figures["P6"]["counts"]["peak RSS MB"] < 1000
    # the root flake changed: its 4 attributes and the first chain of both dependents
    # ... the head evaluated, the base (evaluated when it landed) from the evaluation cache
    p8 = figures["P8"]["counts"]
    assert {key: p8[key] for key in ("attributes", "changed", "unchanged", "pairs")} == {
        "attributes": 12, "changed": 12, "unchanged": 0, "pairs": 1}
    head, base = p8["Nix evaluations (head, base)"]
    assert head > 0 and base == 0
    # a no-op run: nothing evaluated or built, every host cached, on a warm runner and on a
    # fresh one with the cache restored
    for key in ("P9", "P9c"):
        assert figures[key]["counts"] == {"hosts": 4, "Nix evaluations": 0, "built": 0,
                                          "cached (from the evaluation cache)": 4}, key
