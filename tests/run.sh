#!/usr/bin/env bash
# Install everything the tests need and run the whole suite: system packages (as root, with apt-get), a private
# virtual environment with the package and its test extras (unless one is active: Debian's and Ubuntu's python3
# refuse pip installs outside one), the pinned Claude Code CLI and ccusage from npm; then lint with ruff and run
# pytest. README.md and .ci/run both call this.
#
# Outside CI a missing system prerequisite is reported and the tests that need it are skipped, each saying why.
# Under CI (CI set, as .ci/run does) any missing prerequisite fails the run before a test starts, and so does any
# skipped test (tests/conftest.py).
set -euo pipefail
cd "$(dirname "$0")/.."

fail_or_warn() {
  if [ -n "${CI:-}" ]; then
    echo "tests/run.sh: $1" >&2
    exit 1
  fi
  echo "tests/run.sh: warning: $1; the tests that need it will be skipped" >&2
}

# strace, iproute2 and util-linux: the real-CLI tests (network guard, namespace); chromium: the HTML report;
# faketime: the suite's run under a shifted clock; npm: installs the pinned Claude Code CLI and ccusage;
# postgresql: the team tests start a throw-away cluster of their own on loopback (tests/postgres.py).
packages=(strace iproute2 util-linux chromium faketime npm postgresql)
missing=()
for p in "${packages[@]}"; do
  if [ "$p" = npm ] && command -v npm >/dev/null; then continue; fi
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
      || fail_or_warn "apt-get could not install: ${missing[*]}"
  else
    fail_or_warn "please install (as root): apt-get install ${missing[*]}"
  fi
fi

if [ -z "${VIRTUAL_ENV:-}" ]; then
  venv="${TOKEN_BUDGET_TEST_VENV:-.venv}"
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" || { echo "tests/run.sh: python3 -m venv failed: apt-get install python3-venv" >&2; exit 1; }
  fi
  # shellcheck disable=SC1091
  . "$venv/bin/activate"
fi
python -m pip install -q --disable-pip-version-check -e '.[test]'
python -m ruff check token_budget tests benchmarks scripts  # the lint gate: a finding fails the run
if command -v npm >/dev/null; then
  bash tests/e2e/install.sh >/dev/null
else
  fail_or_warn "npm is missing, so the real Claude Code CLI cannot be installed"
fi
exec python -m pytest -q -p no:cacheprovider -rs "$@"
