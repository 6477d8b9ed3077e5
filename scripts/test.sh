#!/usr/bin/env bash
# Set up everything the test suite needs and run it, on Debian's Nix 2.8 and, where
# ../shared/tools/nix-modern exists, on Nix 2.26 too.
set -euo pipefail
cd "$(dirname "$0")/.."
# gitlab-ci-local (npm) installs while pip fills the venv (where npm is there already: two
# apt-gets at once would fight over dpkg's lock)
if command -v npm >/dev/null; then
  npm_log=$(mktemp)
  bash scripts/ci-tools.sh gitlab-ci-local >"$npm_log" 2>&1 &
  npm_job=$!
fi
# sshd: test_remote_ssh.py; registry, skopeo, htpasswd: test_images.py
bash scripts/setup.sh openssh-server docker-registry skopeo apache2-utils
if [[ -n ${npm_job:-} ]] && ! wait "$npm_job"; then
  cat "$npm_log" >&2
  echo "test: npm install gitlab-ci-local failed" >&2
  exit 1
fi
bash scripts/ci-tools.sh # act, gitlab-ci-local, validators: tests/test_ci_definitions.py

modern=../shared/tools/nix-modern
if [[ -x $modern ]]; then
  "$modern" setup
fi
export NIX_CONFIG=$'substituters =\nsandbox = false\nbuild-users-group ='
# Python keeps the bytecode it compiles (beside the modules, as it does by default): under a
# development shell's PYTHONDONTWRITEBYTECODE=1 every `python -m ci_nix` the suite starts (the
# bench, act and gitlab-ci-local jobs, signal tests) compiled all of ci-nix again
unset PYTHONDONTWRITEBYTECODE
# mypy's incremental cache outside the checkout, beside the wheelhouse: test_lint's strict check
# of ci_nix, tests, bench and fixtures is ~8.5 CPU-s in a fresh clone's empty .mypy_cache, ~2
# from another clone's cache (another venv: its third-party modules are checked again), ~0.3
# from the same venv's; mypy re-checks what changed by each file's hash, so any clone may use it
export MYPY_CACHE_DIR=${MYPY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ci-nix/mypy}
# One pytest worker more than there are cores (CI_NIX_TEST_WORKERS=N sets it, 0 runs serially):
# a good part of the suite's time is spent waiting (for a hanging server's timeout, a process
# to start, a signal to land), which a third worker on 2 cores fills with another test's work.
# A test file stays on one worker, in order, so files that share a fake server are not split,
# but each `slow` test is handed out on its own, first (tests/conftest.py's
# pytest_collection_modifyitems orders them).
workers=${CI_NIX_TEST_WORKERS:-$(($(nproc) + 1))}
exec .venv/bin/python -m pytest -q -p no:cacheprovider -n "$workers" \
  --dist loadgroup --no-loadscope-reorder "$@"
