#!/usr/bin/env bash
# Install everything the tests need (system packages, the package with its test extras, the pinned Claude Code
# CLI and ccusage from npm), lint with ruff and run the whole suite. README.md and .ci/run both call this.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(strace iproute2 util-linux chromium)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "tests/run.sh: please install: ${missing[*]} (needs root)" >&2
  fi
fi

python3 -m pip install -q --disable-pip-version-check -e '.[test]'
python3 -m ruff check token_budget tests benchmarks scripts  # the lint gate: a finding fails the run
bash tests/e2e/install.sh >/dev/null
exec python3 -m pytest -q -p no:cacheprovider "$@"
