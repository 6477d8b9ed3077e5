"""The same results as JSON (`--json FILE`)."""

from __future__ import annotations

import json
from typing import Any, TextIO

from ci_nix.models import Case, EvalCost, Override, RunReport


def override_json(override: Override) -> dict[str, Any]:
    """An input evaluated from a workspace checkout: which one, at what, and what was locked."""
    return {"input": override.input, "ref": override.ref, "flake": override.source,
            "rev": override.rev, "dirty": override.dirty, "locked": override.locked}


def eval_cost_json(cost: EvalCost) -> dict[str, float]:
    """What evaluating an attribute cost: seconds, and its worker's memory growth in MiB."""
    return {"seconds": round(cost.seconds, 3), "memoryMiB": round(cost.memory_mib, 1)}


def case_dict(case: Case) -> dict[str, Any]:
    data: dict[str, Any] = {
        "flake": case.flake, "attr": case.name, "status": case.status.value,
        "system": case.system, "drvPath": case.drv_path, "time": round(case.time, 3),
    }
    if case.failure is not None:
        f = case.failure
        data["failure"] = {"type": f.type.value, "message": f.message, "log": f.log,
                           "drv": f.drv, "hint": f.hint, "file": f.file, "line": f.line,
                           "column": f.column, "repo": f.repo}
    if case.eval_cost is not None:
        data["eval"] = eval_cost_json(case.eval_cost)
    if case.machine is not None:
        data["machine"] = case.machine  # built on this remote builder / in this remote store
    if case.closure_size is not None:
        data["closureSize"] = case.closure_size  # bytes, the built outputs' runtime closure
    if case.digest is not None:
        data["image"] = {"digest": case.digest, "refs": list(case.images)}  # delivered image
    if case.skip_reason is not None:
        data["skipped"] = case.skip_reason
    if not case.required:
        data["required"] = False  # reported, but does not fail the run
    return data


def write(report: RunReport, out: TextIO) -> None:
    totals = {status: sum(c.status.value == status for c in report.cases)
              for status in ("passed", "failed", "skipped")}
    json.dump({"exitCode": report.exit_code, "error": report.error, "totals": totals,
               "notes": list(report.notes), "flakes": list(report.suites),
               # per flake, its inputs taken from workspace checkouts (none with --locked)
               "locked": report.locked,
               "inputs": {flake: [override_json(o) for o in overrides]
                          for flake, overrides in report.inputs},
               "cases": [case_dict(c) for c in report.cases]}, out, indent=2)
    out.write("\n")
