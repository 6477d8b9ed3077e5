"""The stage that delivers container images: after the build, each attribute `images:` names is
recognised (OCI layout, oci-archive, docker-archive, a streamLayeredImage script) and pushed
with skopeo to `registry/repository:tag`, unless the registry already has that image under that
tag. A failed push is a `ci-nix.images` JUnit case and never loses the build results.

Where a secret goes is the trusted config's (`registry`, `repository`, `token-env`, `push`);
what the pull request controls (attribute names, versions, branch names) only fills tag
templates, cleaned to the characters a tag may hold.
"""

from __future__ import annotations

import fnmatch
import logging
import lzma
import os
import re
import tarfile
import tempfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from ci_nix import trust
from ci_nix.cache.skip import CACHED
from ci_nix.changes import parse_drv_name, store_name
from ci_nix.ci import CiEnv
from ci_nix.config import ImagePush, ImagesConfig
from ci_nix.errors import ConfigError, ToolError, ToolTimeout
from ci_nix.mask import add_secret, mask, secret_from_env
from ci_nix.models import Case, Failure, FailureType, Job, Status
from ci_nix.tools import files, proc
from ci_nix.tools.nix import Nix, NixCommandError, last_error_line
from ci_nix.tools.skopeo import Manifest, Skopeo, auth_file
from ci_nix.words import count

log = logging.getLogger(__name__)

IMAGES_CLASSNAME = "ci-nix.images"  # README "Delivering": image push problems


class Format(StrEnum):
    """How a build output holds an image, as skopeo's transport names it."""

    OCI = "oci"  # an OCI image layout directory
    OCI_ARCHIVE = "oci-archive"
    DOCKER_ARCHIVE = "docker-archive"  # dockerTools.buildImage / buildLayeredImage
    STREAM = "stream"  # dockerTools.streamLayeredImage: a script that writes a docker-archive


# an image archive holds a few files per layer; a real one unpacks to a few times its size
_TAR_MEMBERS = 10_000
_TAR_RATIO = 100


def recognise(path: Path) -> Format | None:
    """The image format of a build output, or None when it holds no image; ImageError for an
    archive past the bounds it is read within."""
    if path.is_dir():
        found = (path / "oci-layout").is_file() and (path / "index.json").is_file()
        return Format.OCI if found else None
    if not path.is_file():
        return None
    with open(path, "rb") as f:
        head = f.read(2)
    if head == b"#!":
        return Format.STREAM if os.access(path, os.X_OK) else None
    oci: set[str] = set()
    try:
        for name in files.tar_names(path, _TAR_MEMBERS, _TAR_RATIO):
            name = name.removeprefix("./")
            if name == "manifest.json":  # whatever else it holds (docker save's OCI files)
                return Format.DOCKER_ARCHIVE
            if name in ("oci-layout", "index.json"):
                oci.add(name)
    except files.PastBound as err:
        raise ImageError(f"{path}: not read as an image further: {err} (ci-nix reads at most "
                         f"{_TAR_MEMBERS} members, {_TAR_RATIO} times the file's size "
                         "unpacked)") from None
    except (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError):
        return None
    return Format.OCI_ARCHIVE if len(oci) == 2 else None


def is_image(config: ImagesConfig, job: Job) -> bool:
    """Whether `images:` names this attribute (a glob over the name `nix build` takes)."""
    return any(fnmatch.fnmatchcase(job.name, pattern) for pattern in config.attrs)


# what a registry accepts as a tag (distribution's reference grammar)
_TAG_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_REPOSITORY = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
                         r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_FIELDS = ("sha", "short_sha", "branch", "attr", "version", "system")


def tag_value(text: str) -> str:
    """Text a pull request may control (a branch, an attribute name) as part of a tag."""
    return _TAG_CHARS.sub("-", text).lstrip(".-")[:128]


@dataclass(frozen=True)
class Revision:
    """What the tags of this run's images are made of besides the attribute."""

    sha: str | None
    branch: str | None


def tags(templates: Sequence[str], job: Job, revision: Revision) -> list[str]:
    """The tags of an image, from `images.tags` templates; ValueError naming the problem."""
    version = parse_drv_name(store_name(job.drv_path))[1]
    values = {"sha": revision.sha, "short_sha": revision.sha[:12] if revision.sha else None,
              "branch": revision.branch, "attr": job.attr[-1] if job.attr else None,
              "version": version or None, "system": job.system}
    result = []
    for template in templates:
        fields = re.findall(r"\{([^{}]*)\}", template)
        unknown = [f for f in fields if f not in _FIELDS]
        if unknown:
            raise ValueError(f"images.tags {template!r}: unknown placeholder {{{unknown[0]}}}; "
                             "known: " + ", ".join(f"{{{f}}}" for f in _FIELDS))
        missing = [f for f in fields if not values[f]]
        if missing:
            raise ValueError(f"images.tags {template!r}: no {{{missing[0]}}} for this run "
                             "(no commit, no branch, or a name without a version)")
        tag = template
        for name in fields:
            tag = tag.replace(f"{{{name}}}", tag_value(str(values[name])))
        if not _TAG.match(tag):
            raise ValueError(f"images.tags {template!r} gives {tag!r}, which is no valid tag "
                             "(letters, digits, _ . - and at most 128 characters)")
        result.append(tag)
    return list(dict.fromkeys(result))


def push_decision(config: ImagesConfig, override: bool | None, ci: CiEnv,
                  pull_request: bool) -> tuple[bool, str]:
    """Whether this run pushes images, and why (for the notes)."""
    if override is not None:
        return override, "--push-images" if override else "--no-push-images"
    if config.push is ImagePush.NEVER:
        return False, "images.push: never"
    if config.push is ImagePush.ALWAYS:
        return True, "images.push: always"
    if pull_request:
        return False, "a pull request (images.push: default-branch)"
    if ci.branch is None or ci.default_branch is None:
        return False, ("not a CI pipeline on a branch whose default branch CI names "
                       "(images.push: default-branch; --push-images pushes)")
    if ci.branch != ci.default_branch:
        return False, f"branch {ci.branch}, not the default branch {ci.default_branch}"
    return True, f"the default branch {ci.default_branch}"


@dataclass(frozen=True)
class Registry:
    """Where images go: `host[:port]` (TLS unless the config said `http://`)."""

    host: str
    repository: str
    tls: bool

    @classmethod
    def of(cls, config: ImagesConfig) -> Registry:
        if not config.registry or not config.repository:
            missing = "images.registry" if not config.registry else "images.repository"
            raise ConfigError(f"{missing} is not set: say where images are pushed, e.g. "
                              "registry: ghcr.io, repository: my-org/app")
        host = config.registry
        tls = not host.startswith("http://")
        host = host.removeprefix("http://").removeprefix("https://").rstrip("/")
        if not host or "/" in host or "@" in host:
            raise ConfigError(f"images.registry {config.registry!r}: give a host[:port], e.g. "
                              "ghcr.io (credentials come from images.token-env)")
        repository = config.repository.strip("/")
        if not _REPOSITORY.match(repository):
            raise ConfigError(f"images.repository {config.repository!r}: lower-case path "
                              "components of letters, digits and . _ - (e.g. my-org/app)")
        return cls(host, repository, tls)

    def ref(self, tag: str) -> str:
        return f"{self.host}/{self.repository}:{tag}"


@dataclass(frozen=True)
class Delivered:
    """The run's cases with each delivered image's digest, plus ci-nix.images failures."""

    cases: tuple[Case, ...]
    failures: tuple[Case, ...] = ()
    notes: tuple[str, ...] = ()


class ImageError(Exception):
    """One image could not be delivered; the message is one line, `log` the tool's text."""

    def __init__(self, message: str, log: str = "") -> None:
        super().__init__(message)
        self.log = log


class Unanswered(ImageError):
    """The registry did not answer a manifest query in time: the other images are not tried
    (each would wait as long again)."""


def deliver(config: ImagesConfig, override: bool | None, jobs: Sequence[Job],
            cases: Sequence[Case], nix: Nix, revision: Revision, *, pull_request: bool,
            environ: Mapping[str, str] = os.environ) -> Delivered:
    """Recognise and push the images among the jobs that passed."""
    images = [job for job in jobs if is_image(config, job)]
    if not images:
        return Delivered(tuple(cases))
    by_key = {(c.flake, c.name, c.system): c for c in cases}
    status = {job: _ready(by_key.get((job.flake, job.name, job.system))) for job in images}
    ci = CiEnv.detect(environ)
    if ci.github:
        ci = replace(ci, default_branch=trust.github_default_branch(environ))
    pushing, why = push_decision(config, override, ci, pull_request)
    # an image not built in this run (cached, unchanged) is fetched only to be pushed
    built = [job for job in images if status[job] == "built"
             or (pushing and status[job] == "elsewhere")]
    if not built:
        return Delivered(tuple(cases), notes=("images: none built in this run",))
    failures: list[Case] = []
    done: dict[tuple[str, str, str | None], tuple[str, tuple[str, ...]]] = {}
    notes = [] if pushing else [f"images: not pushed ({why})"]
    registry = credentials = None
    if pushing:
        try:
            registry = Registry.of(config)
            credentials = _credentials(config, environ)
        except ConfigError as err:
            failures += [_failure(job, str(err)) for job in built]
            built = []
    fetch = [job for job in built if status[job] == "elsewhere"]
    if fetch:
        failures += _fetch(nix, fetch)
        failed = {f.name for f in failures}
        built = [job for job in built if f"{job.flake}#{job.name}" not in failed]
    skopeo = Skopeo.from_env(environ)
    shared = _shared_tags(config.tags, built, revision) if pushing else {}
    unanswered: str | None = None  # the registry hung for this image: not asked again
    for job in built:
        if job in shared:
            failures.append(_failure(job, shared[job]))
            continue
        if unanswered is not None:
            failures.append(_failure(job, f"not pushed: {unanswered}"))
            continue
        with tempfile.TemporaryDirectory(prefix="ci-nix-image-") as scratch:
            try:
                source = _source(nix, job, Path(scratch), run_script=pushing)
                if pushing:
                    assert registry is not None
                    image_tags = tags(config.tags, job, revision)
                    # a registry may take minutes to answer: say what is being waited for
                    log.info("images: delivering %s#%s to %s as %s", job.flake, job.name,
                             registry.host, ", ".join(image_tags))
                    done[(job.flake, job.name, job.system)] = _push(
                        skopeo, source, registry, credentials, image_tags)
            except (ImageError, ValueError, ToolError) as err:
                failures.append(_failure(job, str(err), getattr(err, "log", "")))
                if isinstance(err, Unanswered) and registry is not None:
                    unanswered = (f"{registry.host} did not answer for {job.flake}#{job.name} "
                                  "in this run, so it was not asked again")
    if pushing:
        notes.append(f"images: {count(len(done), 'image')} delivered to "
                     f"{registry.host if registry else '?'} ({why})")
        notes += [f"image {flake}#{name}: {digest} as {', '.join(refs)}"
                  for (flake, name, _), (digest, refs) in done.items()]
    result = tuple(replace(c, digest=done[k][0], images=done[k][1])
                   if (k := (c.flake, c.name, c.system)) in done else c for c in cases)
    return Delivered(result, tuple(failures), tuple(notes))


def _shared_tags(templates: Sequence[str], jobs: Sequence[Job],
                 revision: Revision) -> dict[Job, str]:
    """The images whose tags another image of this run also gets (`{attr}` alone cannot tell
    packages.x86_64-linux.image from packages.aarch64-linux.image, or two flakes' `image`):
    none of them is pushed, since whichever came last would silently own the tag."""
    owners: dict[str, list[Job]] = {}
    for job in jobs:
        try:
            for tag in tags(templates, job, revision):
                owners.setdefault(tag, []).append(job)
        except ValueError:
            continue  # said when this image's turn comes
    shared: dict[Job, str] = {}
    for tag, jobs_of_tag in owners.items():
        for job in jobs_of_tag if len(jobs_of_tag) > 1 else ():
            others = ", ".join(f"{o.flake}#{o.name}" for o in jobs_of_tag if o is not job)
            shared.setdefault(job, f"not pushed: tag {tag!r} would also be {others}'s in this "
                              "run; make images.tags tell them apart (e.g. add {system} or "
                              "{version})")
    return shared


def _ready(case: Case | None) -> str | None:
    """`built` in this run, `elsewhere` (cached, or unchanged since the base: its output is
    in a cache or this store, not necessarily here), or None (failed, not selected, foreign)."""
    if case is None:
        return None
    if case.status is Status.PASSED:
        return "built"
    reason = case.skip_reason or ""
    if case.status is Status.SKIPPED and (reason.startswith(CACHED)
                                          or reason.startswith("unchanged")):
        return "elsewhere"
    return None


def _fetch(nix: Nix, jobs: Sequence[Job]) -> list[Case]:
    """Substitute the outputs of images this run did not build (never build them: --max-jobs
    0); an image that is in no cache is a failure naming why."""
    failures = []
    for job in jobs:
        result = nix.run(["build", "--no-link", "--max-jobs", "0",
                          nix.drv_installable(job.drv_path)])
        if not result.ok:
            failures.append(_failure(
                job, "not built in this run and not in a binary cache Nix substitutes from: "
                f"{last_error_line(result.stderr)}; build it (e.g. without --skip-unchanged) "
                "to deliver it", result.stderr))
    return failures


def _credentials(config: ImagesConfig, environ: Mapping[str, str]) -> str | None:
    if not config.token_env:
        return None
    value = secret_from_env(environ, config.token_env)
    if not value:
        raise ConfigError(f"${config.token_env} (images.token-env) is not set: not pushing "
                          "images (as in a pull request from a fork)")
    add_secret(value.partition(":")[2])  # the password alone, should a tool print it
    return value


def _source(nix: Nix, job: Job, scratch: Path, *, run_script: bool = True) -> str:
    """The image as a skopeo source reference (`oci:DIR`, `docker-archive:FILE`, ...).
    A stream script is the build's own program running outside the sandbox: only run when
    the image is pushed (a pushing run is the trusted side's decision), never just to look."""
    out = dict(job.outputs).get("out") or (job.out_paths[0] if job.out_paths else None)
    if out is None:
        raise ImageError("the attribute has no output to push")
    try:
        path = nix.local_copy(out, scratch / "image")
    except NixCommandError as err:
        raise ImageError(str(err), err.stderr) from None
    found = recognise(path)
    if found is None:
        raise ImageError(f"{out} is not a container image (an OCI layout directory, an "
                         "oci-archive or docker-archive tarball, or a streamLayeredImage script); "
                         "check images.attrs")
    if found is Format.STREAM and not run_script:
        return f"{found}:{path}"
    if found is Format.STREAM:
        stream = scratch / "stream.tar"
        # the build's own program: it gets none of ci-nix's environment (tokens)
        result = proc.run([str(path)], output=stream, inherit_env=False,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(scratch),
                               "TMPDIR": str(scratch)},
                          timeout=3600, tool_hint="the image script must be executable")
        if not result.ok:
            raise ImageError(f"{out} (a streamLayeredImage script) failed: "
                             f"{last_error_line(result.stderr)}", result.stderr)
        return f"{Format.DOCKER_ARCHIVE}:{stream}"
    return f"{found}:{path}"


def _push(skopeo: Skopeo, source: str, registry: Registry, credentials: str | None,
          tags: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """Push source under each tag the registry does not already hold it under: (digest, refs)."""
    local = skopeo.inspect_raw(source)
    if not local.ok:
        raise ImageError(f"skopeo cannot read {source}: {_line(local)}", local.stderr)
    image_id = Manifest.parse(local.stdout).config
    digest = ""
    refs = []
    with auth_file(registry.host, credentials) as auth:
        for tag in tags:
            ref = registry.ref(tag)
            try:
                remote = skopeo.inspect_raw(f"docker://{ref}", auth, tls_verify=registry.tls)
            except ToolTimeout as err:
                raise Unanswered(f"cannot read {ref}: {err}") from None
            if remote.ok and image_id and Manifest.parse(remote.stdout).config == image_id:
                log.info("images: %s already holds this image; not pushed again", ref)
                digest = digest or Manifest.parse(remote.stdout).digest
                refs.append(ref)
                continue
            if not remote.ok and not _absent(remote):
                raise ImageError(f"cannot read {ref}: {_line(remote)}", mask(remote.stderr))
            digestfile = auth.parent / "digest"
            copied = skopeo.copy(source, f"docker://{ref}", auth, digestfile,
                                 tls_verify=registry.tls)
            if not copied.ok:
                raise ImageError(f"pushing to {ref} failed: {_line(copied)}", mask(copied.stderr))
            digest = digestfile.read_text().strip() if digestfile.exists() else digest
            log.info("images: pushed %s (%s)", ref, digest)
            refs.append(ref)
    return digest, tuple(refs)


# a tag the registry does not have (yet): push it; anything else (unauthorized, a refused
# connection, a TLS problem) is a failure that names skopeo's words
_ABSENT = re.compile(r"manifest unknown|not found|name unknown|no such image|\b404\b",
                     re.IGNORECASE)
_REFUSED = re.compile(r"unauthori[sz]ed|denied|\b40[13]\b", re.IGNORECASE)


def _absent(result: proc.Result) -> bool:
    text = result.stderr
    return bool(_ABSENT.search(text)) and not _REFUSED.search(text)


# skopeo logs its fatal error as a logrus record: time="..." level=fatal msg="..."
_MSG = re.compile(r'level=fatal msg="((?:[^"\\]|\\.)*)"')


def _line(result: proc.Result) -> str:
    text = mask(result.stderr.strip() or result.stdout.strip())
    found = _MSG.findall(text)
    if found:
        return str(found[-1]).replace('\\"', '"')
    return last_error_line(text) if text else f"exit code {result.returncode}"


def _failure(job: Job, message: str, text: str = "") -> Case:
    return Case(IMAGES_CLASSNAME, f"{job.flake}#{job.name}", Status.FAILED, system=job.system,
                drv_path=job.drv_path,
                failure=Failure(FailureType.OTHER, mask(message), log=mask(text)[-4000:],
                                hint="the build results stand; only the image was not delivered"))
