#!/usr/bin/env bash
# Set up, build the bundled fixture workspace with `ci-nix run --all`, and say where the report is.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

# This machine is offline: no binary cache to ask, and Debian's Nix runs without a sandbox.
export NIX_CONFIG=$'substituters =\nsandbox = false'
out=$(mktemp -d /tmp/ci-nix-demo.XXXXXX)
ws=$(.venv/bin/python fixtures/make_workspace.py "$out/workspace")
echo "demo: fixture workspace in $ws"
set +e
.venv/bin/ci-nix run --all "$ws" --junit "$out/report.xml" --json "$out/report.json"
code=$?
set -e
echo "demo: ci-nix exited $code; JUnit report: $out/report.xml, JSON: $out/report.json"
# The fixtures contain failing attributes on purpose, so 1 is the expected result.
[[ $code == 1 ]] && exit 0
exit "$code"
