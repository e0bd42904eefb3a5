#!/usr/bin/env bash
# Install the pinned Claude Code CLI and ccusage (tests/e2e/package.json + package-lock.json) with `npm ci`
# into a cache folder OUTSIDE the repository, then print the paths of the two native binaries:
#
#   CLAUDE_BIN=/…/node_modules/@anthropic-ai/claude-code-linux-x64/claude
#   CCUSAGE_BIN=/…/node_modules/@ccusage/ccusage-linux-x64/bin/ccusage
#
# (`eval "$(bash tests/e2e/install.sh)"` sets both.) Idempotent: when the cache already holds an install of the
# same lock file (sha256 of package.json + package-lock.json) and both binaries are there, it does nothing.
#
# Env: TOKEN_BUDGET_E2E_CACHE (default ~/.cache/token-budget-e2e). Only the npm registry is contacted, and
# with --ignore-scripts no install script of any package runs.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${TOKEN_BUDGET_E2E_CACHE:-$HOME/.cache/token-budget-e2e}"

case "$(uname -m)" in
  x86_64|amd64) arch=x64 ;;
  aarch64|arm64) arch=arm64 ;;
  *) echo "install.sh: unsupported machine $(uname -m)" >&2; exit 1 ;;
esac
case "$(uname -s)" in
  Linux) os=linux ;;
  Darwin) os=darwin ;;
  *) echo "install.sh: unsupported OS $(uname -s)" >&2; exit 1 ;;
esac

claude_bin="$cache/node_modules/@anthropic-ai/claude-code-$os-$arch/claude"
ccusage_bin="$cache/node_modules/@ccusage/ccusage-$os-$arch/bin/ccusage"

want="$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -d' ' -f1)"

installed_ok() {
  [[ -f "$cache/.lock-sha256" && "$(cat "$cache/.lock-sha256")" == "$want" && -x "$claude_bin" && -x "$ccusage_bin" ]]
}

mkdir -p "$cache"
exec 9>"$cache/.install.lock"
flock 9   # one installer at a time; a second one waits, then finds the install done

if ! installed_ok; then
  echo "install.sh: installing into $cache (lock sha256 ${want:0:12})" >&2
  rm -rf "$cache/node_modules" "$cache/.lock-sha256"
  cp "$here/package.json" "$here/package-lock.json" "$cache/"
  (cd "$cache" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
  # The ccusage native package ships its binary without the exec bit (its JS wrapper chmods it at run time).
  [[ -f "$ccusage_bin" ]] && chmod +x "$ccusage_bin"
  if [[ ! -x "$claude_bin" ]]; then
    echo "install.sh: npm ci finished but $claude_bin is missing" >&2; exit 1
  fi
  if [[ ! -x "$ccusage_bin" ]]; then
    echo "install.sh: npm ci finished but $ccusage_bin is missing" >&2; exit 1
  fi
  echo "$want" > "$cache/.lock-sha256"
fi

echo "CLAUDE_BIN=$claude_bin"
echo "CCUSAGE_BIN=$ccusage_bin"
