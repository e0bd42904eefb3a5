#!/bin/sh
# token-budget hook launcher for plugin installs: finds (or starts building) the plugin's Python environment and
# runs the hook. It exits 0, or 2 when the hook blocks: never 1 or 127, which Claude Code treats as a non-blocking
# error, silently switching enforcement off.
event="$1"
root="${CLAUDE_PLUGIN_ROOT:-$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)}"
data="${TOKEN_BUDGET_HOME:-${CLAUDE_PLUGIN_DATA:-${XDG_DATA_HOME:-$HOME/.local/share}/token-budget}}"
py="${TOKEN_BUDGET_PYTHON:-}"
# -x too: a venv whose base interpreter was removed (a Python upgrade) keeps its marker but its python link dangles;
# treat it as not ready so bootstrap.py rebuilds it, instead of failing with exit 127 on every event from then on.
if [ -z "$py" ] && [ -f "$data/venv/.token-budget-ready" ] && [ -x "$data/venv/bin/python" ]; then
  py="$data/venv/bin/python"
fi

say() {  # one hook JSON object carrying a message for the user; stdin is drained so Claude Code never blocks on it
  payload=$(cat 2>/dev/null)
  text=$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')
  # The /tokens slash command is answered by the hook; until the hook can, say why instead of letting the prompt
  # reach the model (the command file's body is only a fallback).
  if [ "$event" = UserPromptSubmit ] && printf '%s' "$payload" | grep -Eq '"prompt" *: *" *(/tokens|/token-budget:tokens)'; then
    printf '{"decision": "block", "reason": "%s"}\n' "$text"
    exit 0
  fi
  case "$event" in
    SessionStart|UserPromptSubmit)
      printf '{"systemMessage": "%s"}\n' "$text" ;;
    *) printf '{}\n' ;;
  esac
  exit 0
}

if [ -z "$py" ]; then
  sys_py=$(command -v python3 2>/dev/null)
  [ -n "$sys_py" ] || say "token-budget needs Python 3.10 or newer as python3 on PATH; budgets are not enforced until then."
  mkdir -p "$data" 2>/dev/null && chmod 700 "$data" 2>/dev/null
  # Build the environment in the background (its own process session, so Claude Code does not wait for it).
  (setsid "$sys_py" "$root/scripts/bootstrap.py" --data "$data" </dev/null >/dev/null 2>&1 &) 2>/dev/null \
    || ("$sys_py" "$root/scripts/bootstrap.py" --data "$data" </dev/null >/dev/null 2>&1 &)
  say "token-budget is setting up its Python environment in $data/venv (first run only); budgets are enforced once it is ready. Progress: $data/bootstrap.log"
fi

case "$event" in
  PostToolUse|Stop|SubagentStop|SessionEnd|PreCompact)
    # Registered async (hooks.json, with `exec`): Claude Code signals one still running when it ends (-p) and
    # waits for it. Python must be that very process, so the CLI waits only for the work left (the hook lets it
    # finish): with a shell in between, which does not die of the signal, the CLI waits about 1.5 s every time.
    exec "$py" -S "$root/token_budget/claude/run_hook.py" "$event" ;;
esac
"$py" -S "$root/token_budget/claude/run_hook.py" "$event"
status=$?
case "$status" in
  0|2) exit "$status" ;;
  *) printf '{"systemMessage": "token-budget: the hook could not run (exit %s); this event was not enforced. Run: tokens doctor"}\n' "$status"
     exit 0 ;;
esac
