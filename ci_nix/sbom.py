"""A CycloneDX SBOM of an attribute's runtime closure (README "SBOM").

Every store path in the closure belongs to a component: the derivation that built it (its
outputs together), named and versioned as `builtins.parseDrvName` splits the derivation's name;
a path no known derivation built (a source added by `builtins.path`) is a component of its
own, named from the path. A component lists its output paths and, where the derivation says so,
its sources: the fixed-output derivations it takes as input (their `url`/`urls` and hash), and
its own fixed-output hash when it is a download itself. Runtime references become the
dependency graph.
"""

from __future__ import annotations

import hashlib
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cyclonedx.model import (
    ExternalReference,
    ExternalReferenceType,
    HashAlgorithm,
    HashType,
    Property,
    XsUri,
)
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6

from ci_nix import __version__, outputs
from ci_nix import closure as closure_mod
from ci_nix.changes import parse_drv_name, store_name
from ci_nix.config import ImagesConfig
from ci_nix.errors import CiNixError
from ci_nix.images import is_image
from ci_nix.models import Job
from ci_nix.tools.nix import Derivation, FixedOutput, Nix, PathInfo

SUFFIX = ".cdx.json"
_ALGORITHMS = {"sha256": HashAlgorithm.SHA_256, "sha1": HashAlgorithm.SHA_1,
               "sha512": HashAlgorithm.SHA_512, "md5": HashAlgorithm.MD5}
_HEX = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True)
class Source:
    """A download a component is built from (a fixed-output derivation)."""

    drv: str
    name: str
    fixed: FixedOutput


def filename(name: str) -> str:
    """A file name for `<flake>#<attr>`: readable, one per attribute (percent-encoding keeps
    two different names apart), never a path (`/`), never longer than a file system allows."""
    safe = urllib.parse.quote(name, safe="#+-._=@")
    if safe.startswith("."):
        safe = "%2E" + safe[1:]
    if len(safe) > 200:
        safe = safe[:180] + "-" + hashlib.sha256(name.encode()).hexdigest()[:16]
    return safe + SUFFIX


def document(name: str, job: Job, infos: Mapping[str, PathInfo],
             drvs: Mapping[str, Derivation], image: bool = False) -> str:
    """The SBOM of job's runtime closure (infos: path-info of it, recursive; drvs: its
    derivation graph, recursive) as CycloneDX 1.6 JSON; image: `images:` names it."""
    found = closure_mod.of(infos, job.out_paths)
    built_by = {out: drv for drv, d in drvs.items() for out in d.outputs}
    groups: dict[str, list[str]] = {}  # component ref -> its paths in the closure
    for path, _ in sorted(found.paths):
        groups.setdefault(built_by.get(path) or infos[path].deriver or path, []).append(path)
    root_ref = built_by.get(job.out_paths[0]) if job.out_paths else None
    components: dict[str, Component] = {}
    for ref, paths in groups.items():
        kind = _root_kind(job, image) if ref == root_ref else ComponentType.LIBRARY
        components[ref] = _component(ref, paths, drvs, infos, kind)
    bom = Bom()
    root = components.get(root_ref or "")
    if root is not None:
        bom.metadata.component = root
    bom.metadata.properties.add(Property(name="ci-nix:attribute", value=name))
    bom.metadata.properties.add(Property(name="ci-nix:version", value=__version__))
    for component in components.values():
        if component is not root:
            bom.components.add(component)
    owner = {path: ref for ref, paths in groups.items() for path in paths}
    for ref, paths in groups.items():
        deps = {owner[dep] for path in paths for dep in infos[path].references
                if dep in owner and owner[dep] != ref}
        bom.register_dependency(components[ref], [components[d] for d in sorted(deps)])
    return JsonV1Dot6(bom).output_as_string(indent=2) + "\n"


def _root_kind(job: Job, image: bool) -> ComponentType:
    if image:
        return ComponentType.CONTAINER
    if job.attr[:1] == ("nixosConfigurations",):
        return ComponentType.OPERATING_SYSTEM
    return ComponentType.APPLICATION


def _component(ref: str, paths: Sequence[str], drvs: Mapping[str, Derivation],
               infos: Mapping[str, PathInfo], kind: ComponentType) -> Component:
    drv = drvs.get(ref)
    pname, version = parse_drv_name(drv.name if drv is not None and drv.name
                                    else store_name(ref))
    properties = [Property(name="nix:output_path", value=path) for path in paths]
    properties += [Property(name="nix:nar_hash", value=infos[path].nar_hash) for path in paths
                   if infos[path].nar_hash]
    if ref.endswith(".drv"):
        properties.insert(0, Property(name="nix:drv_path", value=ref))
    sources = []
    if drv is not None:
        if drv.fixed is not None:
            sources.append(Source(ref, drv.name, drv.fixed))
        sources += [Source(dep, found.name, found.fixed) for dep in drv.inputs
                    if (found := drvs.get(dep)) is not None and found.fixed is not None]
    references = []
    for source in sources:
        properties.append(Property(name="nix:source", value=source.drv))
        digest = _hash(source.fixed)
        if source.fixed.recursive and digest is not None:
            # a hash of the unpacked tree's NAR: not what the URL serves, so not a file hash
            properties.append(Property(name="nix:source_nar_hash",
                                       value=f"{source.fixed.algo}:{digest.content}"))
        for url in source.fixed.urls:
            try:
                uri = XsUri(url)
            except ValueError:
                continue
            references.append(ExternalReference(
                type=ExternalReferenceType.DISTRIBUTION, url=uri, comment=source.name,
                hashes=[digest] if digest is not None and not source.fixed.recursive else None))
    return Component(name=pname or store_name(ref), version=version or None, type=kind,
                     bom_ref=ref, properties=properties, external_references=references)


def _hash(fixed: FixedOutput) -> HashType | None:
    algorithm = _ALGORITHMS.get(fixed.algo)
    size = {"sha256": 64, "sha1": 40, "sha512": 128, "md5": 32}.get(fixed.algo)
    if algorithm is None or len(fixed.hash) != size or not _HEX.fullmatch(fixed.hash):
        return None  # Nix prints it in hex; anything else is not a hash CycloneDX takes
    return HashType(alg=algorithm, content=fixed.hash)


def write(nix: Nix, jobs: Sequence[Job], directory: Path,
          infos: Mapping[str, PathInfo] | None = None,
          images: ImagesConfig | None = None) -> list[Path]:
    """One SBOM per job (its outputs must be in the store) in directory; the files written.
    infos: the jobs' closures' path-info when the caller has them already; images: which
    attributes are container images (ci-nix.yaml's `images:`)."""
    if not jobs:
        return []
    if infos is None:
        infos = nix.path_infos([p for job in jobs for p in job.out_paths], recursive=True)
    drvs = nix.derivations([job.drv_path for job in jobs], recursive=True)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for job in jobs:
        name = f"{job.flake}#{job.name}"
        target = directory / filename(name)
        image = images is not None and is_image(images, job)
        problem = outputs.write_file(target, document(name, job, infos, drvs, image))
        if problem is not None:
            raise CiNixError(f"cannot write {target}: {problem}")
        written.append(target)
    return written
