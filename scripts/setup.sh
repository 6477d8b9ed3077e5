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
# The dependencies as wheels, kept per pyproject.toml outside the checkout: a fresh clone on this
# machine installs from them without asking the index about each package again (4x faster here);
# the first clone fills them. CI_NIX_WHEELHOUSE=DIR moves them.
wheels=${CI_NIX_WHEELHOUSE:-${XDG_CACHE_HOME:-$HOME/.cache}/ci-nix/wheels}/$stamp
echo "setup: pip install -e '.[test]' into .venv (ci-nix and its test tools; log: .venv/pip.log)"
# pip's output goes to a log, shown only when the install fails
pip=(.venv/bin/pip --disable-pip-version-check -q)
if [[ ! -f $wheels/complete ]]; then
  rm -rf "$wheels.tmp" && mkdir -p "$wheels.tmp"
  if "${pip[@]}" wheel --wheel-dir "$wheels.tmp" '.[test]' setuptools wheel >.venv/pip.log 2>&1
  then
    rm -f "$wheels.tmp"/ci_nix-*.whl # ci-nix itself comes from the checkout
    touch "$wheels.tmp/complete" && rm -rf "$wheels" && mv "$wheels.tmp" "$wheels"
  fi
fi
if [[ -f $wheels/complete ]]; then
  from=(--no-index --find-links "$wheels")
else
  from=() # no wheelhouse (a failed download above): the index, as before
fi
if ! "${pip[@]}" install "${from[@]}" -e '.[test]' >>.venv/pip.log 2>&1; then
  tail -40 .venv/pip.log
  echo "setup: pip install failed; the whole log is in .venv/pip.log" >&2
  exit 1
fi
# tests/test_ci_definitions.py installs ci-nix in each act/gitlab-ci-local job from these too
[[ -f $wheels/complete ]] && ln -sfn "$wheels" .venv/wheelhouse
echo "$stamp" >.venv/setup.stamp
