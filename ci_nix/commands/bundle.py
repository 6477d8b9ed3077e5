"""`ci-nix bundle`: write a signed airgap bundle of the selected attributes' runtime closures,
or check one (`--verify DIR`)."""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from ci_nix import closure, outputs, pipeline
from ci_nix.bundle import key as key_mod
from ci_nix.bundle import make, verify
from ci_nix.bundle.manifest import Manifest
from ci_nix.bundle.manifest import read as read_manifest
from ci_nix.commands.common import (
    INTERRUPTED,
    TOOL_ERROR,
    Subcommands,
    add_common,
    add_eval_options,
    add_nix_options,
    add_selection,
    exit_codes,
    plan_options,
    subparser,
)
from ci_nix.errors import CiNixError, ConfigError
from ci_nix.models import Case, Failure, FailureType, RunReport, Status, split_flake_attr
from ci_nix.narinfo import NarInfoError, PublicKey, parse_public_key
from ci_nix.report import junit, text
from ci_nix.report.untrusted import log_line
from ci_nix.tools.files import read_given
from ci_nix.tools.nix import Nix, PathInfo
from ci_nix.words import count

BUNDLE_CASE = "ci-nix.bundle"  # JUnit classname of problems with the bundle as a whole
SBOM_DIR = "sbom"  # in the bundle: one CycloneDX JSON per attribute


def register(commands: Subcommands) -> None:
    parser = subparser(
        commands, "bundle", "write (or --verify) a signed airgap bundle of built closures",
        "Build the selected attributes (as `run` selects them; --all for every flake) and write "
        "their runtime closures to --output DIR as a signed file:// binary cache, with "
        "manifest.json and DEPLOY.md (how to import it). --since OLD/manifest.json writes only "
        "what the old bundle lacks. --verify DIR checks a bundle instead.",
        exit_codes((0, "the bundle was written (or verified) with every attribute"),
                   (1, "an attribute failed to build, or the bundle failed verification"),
                   (2, TOOL_ERROR), (130, INTERRUPTED)))
    add_selection(parser)
    parser.add_argument("--output", type=Path, metavar="DIR",
                        help="write the bundle here (a new or empty directory)")
    parser.add_argument("--since", type=Path, metavar="OLD/manifest.json",
                        help="a delta: leave out the paths this earlier bundle (and those it "
                        "follows) carried; with --verify: check the delta follows it")
    keys = parser.add_mutually_exclusive_group()
    keys.add_argument("--key-file", type=Path, metavar="FILE",
                      help="secret key to sign with (default: cache.secret-key-file)")
    keys.add_argument("--key-env", metavar="NAME",
                      help="environment variable holding the secret key (a CI secret)")
    parser.add_argument("--verify", type=Path, metavar="DIR",
                        help="check the bundle in DIR instead of writing one")
    parser.add_argument("--key", action="append", default=[], metavar="PUBKEY",
                        help="--verify: public key (NAME:BASE64, or a file holding it) the "
                        "bundle must be signed with (repeatable; default: Nix's "
                        "trusted-public-keys)")
    parser.add_argument("--junit", type=Path, metavar="FILE",
                        help="write a JUnit report: one test case per attribute")
    add_eval_options(parser)
    add_nix_options(parser)
    add_common(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> int:
    if args.junit is not None:
        outputs.check_writable(args.junit)
    cases: list[Case] = []
    try:
        if args.verify is not None:
            if args.output is not None:
                raise ConfigError("give either --output DIR (write a bundle) or --verify DIR "
                                  "(check one), not both")
            cases = _verify(args, environ)
        elif args.output is None:
            raise ConfigError("give --output DIR (write a bundle) or --verify DIR (check one)")
        else:
            cases = _write(args, environ)
    except CiNixError as err:
        _junit(args.junit, cases, str(err))
        raise
    _junit(args.junit, cases, None)
    return 1 if any(case.status is Status.FAILED for case in cases) else 0


def _junit(path: Path | None, cases: Sequence[Case], error: str | None) -> None:
    if path is None:
        return
    suites: dict[str, list[Case]] = {}
    for case in cases:
        suites.setdefault(case.flake, []).append(case)
    out = io.StringIO()
    junit.write_suites(list(suites.items()), out, error)
    problems = outputs.write_files([("JUnit report", path, out.getvalue())], sys.stdout)
    if problems:
        raise CiNixError(f"{problems[0]}; free some space or choose another path")


# --- writing ------------------------------------------------------------------------------------

def _write(args: argparse.Namespace, environ: Mapping[str, str]) -> list[Case]:
    from ci_nix import sbom  # CycloneDX loads only for a bundle: other commands start faster

    make.check_output(args.output)
    previous = None
    if args.since is not None:
        manifest, digest = read_manifest(args.since)
        previous = make.Previous(manifest, digest)
    options = pipeline.PlanOptions(**plan_options(args))
    planned = pipeline.plan(options, environ)
    signing = key_mod.load(args.key_file, args.key_env,
                           planned.workspace.config.cache.secret_key_file, environ,
                           [repo.path for repo in planned.workspace.repos])
    # every selected attribute is shipped, cached or not (Nix substitutes what a cache has)
    jobs = [job for e in planned.evals for job in e.jobs]
    selected = {(job.flake, job.name) for job in jobs}
    everything = replace(planned, jobs=tuple(jobs))
    decided = [case for case in planned.cases if (case.flake, case.name) not in selected]
    cases = [*decided, *everything.unsupported()]
    built = pipeline.build_jobs(planned.nix, everything.local, environ)
    passed = {(case.flake, case.name) for case in built if case.status is Status.PASSED}
    ready = [job for job in everything.local if (job.flake, job.name) in passed]
    manifest, found, infos = make.write(planned.nix, ready, args.output, signing, previous)
    written = sbom.write(planned.nix, ready, args.output / SBOM_DIR, infos,
                         planned.workspace.config.images)
    notes = [f"{count(len(written), 'SBOM')} (CycloneDX): {args.output / SBOM_DIR}"]
    bundled = {case.flake + "#" + case.name: case for case in built}
    for name, attr in manifest.attributes.items():
        bundled[name] = replace(bundled[name], output=f"bundled {attr.store_path} (closure "
                                f"{closure.human(attr.closure_size)})")
    cases += bundled.values()
    # every attribute's outcome, as `run` reports it: a failure or a skip is never silent
    text.write(RunReport(suites=planned.suites, cases=tuple(cases), notes=tuple(notes)),
               sys.stdout)
    _summary(args.output, manifest, found, infos, args.since)
    return cases


def _summary(directory: Path, manifest: Manifest, found: make.Contents,
             infos: Mapping[str, PathInfo], since: Path | None) -> None:
    on_disk = sum(file.stat().st_size for file in (directory / "nar").glob("*")
                  if file.is_file()) if (directory / "nar").is_dir() else 0
    shipped = found.nar_size(infos, found.paths)
    print(f"ci-nix: bundle {directory}: {count(len(manifest.attributes), 'attribute')}, "
          f"{count(len(found.paths), 'store path')}, {closure.human(shipped)} of NARs "
          f"({closure.human(on_disk)} compressed), signed by {log_line(manifest.key)}")
    if since is not None:
        full = found.nar_size(infos, found.closure)
        saved = 100 * (1 - shipped / full) if full else 0.0
        print(f"ci-nix: delta since {since}: {len(found.paths)} of "
              f"{count(len(found.closure), 'store path')}, {closure.human(shipped)} of "
              f"{closure.human(full)} ({saved:.0f}% smaller than a full bundle)")
    print(f"ci-nix: to import it, see {directory / 'DEPLOY.md'}")


# --- verifying ----------------------------------------------------------------------------------

def _verify(args: argparse.Namespace, environ: Mapping[str, str]) -> list[Case]:
    directory: Path = args.verify
    verify.check_directory(directory)
    manifest, _ = read_manifest(directory)
    keys = _public_keys(args.key, environ)
    previous = previous_digest = None
    if args.since is not None:
        previous, previous_digest = read_manifest(args.since)
    result = verify.verify(directory, manifest, keys, previous, previous_digest)
    cases = []
    for name, problems in result.attributes.items():
        flake, attr = split_flake_attr(name) or (BUNDLE_CASE, name)
        cases.append(Case(flake, attr, Status.FAILED, failure=Failure(
            FailureType.OTHER, "; ".join(problems[:3])
            + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""))
            ) if problems else Case(flake, attr, Status.PASSED))
        for problem in problems:
            print(f"ci-nix: {log_line(name)}: {log_line(problem)}")
    for problem in result.general:
        cases.append(Case(BUNDLE_CASE, "manifest", Status.FAILED,
                          failure=Failure(FailureType.OTHER, problem)))
        print(f"ci-nix: {log_line(problem)}")
    print(f"ci-nix: bundle {directory}: {count(len(manifest.paths), 'store path')} checked, "
          f"{count(len(result.problems), 'broken path')}; "
          f"{sum(1 for p in result.attributes.values() if not p)} of "
          f"{count(len(result.attributes), 'attribute')} verified"
          + (f" (a delta: {count(len(manifest.requires), 'path')} from earlier bundles)"
             if manifest.since is not None else ""))
    return cases


def _public_keys(given: Sequence[str], environ: Mapping[str, str]) -> list[PublicKey]:
    keys = []
    for given_key in given:
        try:
            keys.append(parse_public_key(given_key))
            continue
        except NarInfoError:
            pass
        try:
            content = read_given(given_key, 4096).decode(errors="replace")
            keys.append(parse_public_key(content))
        except (OSError, ValueError, NarInfoError):
            # named, never shown whole: it may be a secret key given by mistake
            raise ConfigError(f"--key {given_key.partition(':')[0][:80]}…: neither a public key "
                              "(NAME:BASE64, as nix-store --generate-binary-cache-key writes "
                              "it) nor a file holding one") from None
    if not keys:
        for trusted in Nix.from_env(environ).trusted_public_keys:
            try:
                keys.append(parse_public_key(trusted))
            except NarInfoError:
                continue
    if not keys:
        raise ConfigError("--verify: no public key to check signatures with; give --key "
                          "NAME:BASE64 (the bundle's DEPLOY.md names it)")
    return keys

