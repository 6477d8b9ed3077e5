"""DEPLOY.md: how to check and import a bundle on the far side, written into every bundle."""

from __future__ import annotations

import base64

from ci_nix.bundle.manifest import Manifest
from ci_nix.narinfo import PublicKey
from ci_nix.report.untrusted import md_code

DEPLOY = "DEPLOY.md"
# manifest.json's `paths`, one a line, for the shell: `nix copy --all` on a file:// cache does not
# know the paths' names, so with --no-recursive it cannot order them (Nix 2.8 and 2.26 alike).
# It is not signed: the import command puts it after `--`, so a word in it is only ever a path
# (an added `--no-check-sigs` would otherwise turn require-sigs off), and --verify checks it
# lists exactly the signed manifest's paths.
STORE_PATHS = "store-paths"


def public_key_text(key: PublicKey) -> str:
    """A public key as `trusted-public-keys` lists it."""
    return f"{key.name}:{base64.b64encode(key.key).decode()}"


def text(manifest: Manifest, key: PublicKey) -> str:
    public = public_key_text(key)
    lines = [
        "# Importing this bundle", "",
        f"A signed Nix binary cache (`file://`) of {len(manifest.attributes)} attributes' "
        f"runtime closures: {len(manifest.paths)} store paths, signed by `{key.name}`.", "",
    ]
    if manifest.since is not None:
        lines += [
            f"This is a **delta**: it leaves out {len(manifest.requires)} paths that the bundle "
            f"whose manifest.json has sha256 `{manifest.since}` (or one before it) carried. "
            "Import that one first.", "",
        ]
    lines += [
        "Copy this directory to the target machine, then, in it:", "",
        "```sh",
        "# optional: check the NARs, signatures and closure (needs ci-nix)",
        f"ci-nix bundle --verify . --key '{public}'", "",
        *(["# import: only paths signed by this key are accepted (require-sigs stays on)",
            "nix --extra-experimental-features nix-command copy --no-recursive --from "
            f"\"file://$PWD\" --option extra-trusted-public-keys '{public}' -- "
            f"$(cat {STORE_PATHS})"] if manifest.paths else
          # `nix copy` without paths would copy the flake in the current directory
          ["# nothing to import: every store path is in the earlier bundles"]),
        "```", "",
        "`--option extra-trusted-public-keys` counts only for root or a `trusted-users` member "
        "on a multi-user (daemon) install; anyone else is told the paths lack a valid "
        "signature. There, trust the key in the daemon's configuration instead.", "",
        "Or trust the key for good in `/etc/nix/nix.conf` (restart nix-daemon on a "
        "multi-user install):", "",
        "```", f"extra-trusted-public-keys = {public}", "```", "",
        "Then activate what arrived, e.g. for a NixOS host "
        "`nix-env -p /nix/var/nix/profiles/system --set PATH && PATH/bin/switch-to-configuration "
        "switch`, or load an image with `docker load < PATH`.", "",
        "| attribute | store path |", "|---|---|",
    ]
    lines += [f"| {md_code(name, table=True)} | {md_code(attr.store_path, table=True)} |"
              for name, attr in sorted(manifest.attributes.items())]
    return "\n".join(lines) + "\n"
