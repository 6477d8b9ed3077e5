#!/usr/bin/env bash
# Install what ci-nix needs on a fresh Debian machine (as root): Nix, git, a venv with ci-nix.
# Idempotent; quiet when everything is there already.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v nix >/dev/null || need+=(nix-bin)
command -v git >/dev/null || need+=(git)
for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg"); done
if ((${#need[@]})); then
  echo "setup: apt-get install ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

[[ -x .venv/bin/python ]] || python3 -m venv .venv
# ci-nix is installed editable: only a changed pyproject.toml needs pip again (its hash is kept)
stamp=$(sha256sum pyproject.toml | cut -d' ' -f1)
[[ -f .venv/setup.stamp && $(cat .venv/setup.stamp) == "$stamp" ]] && exit 0
echo "setup: pip install -e '.[test]' into .venv (ci-nix and its test tools; log: .venv/pip.log)"
# pip's output goes to a log, shown only when the install fails
if ! .venv/bin/pip install -q --disable-pip-version-check -e '.[test]' >.venv/pip.log 2>&1; then
  tail -40 .venv/pip.log
  echo "setup: pip install failed; the whole log is in .venv/pip.log" >&2
  exit 1
fi
echo "$stamp" >.venv/setup.stamp
