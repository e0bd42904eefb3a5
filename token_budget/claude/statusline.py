"""Claude Code's status line: its statusLine JSON on stdin, one short line out (daily %, workflow %, the
current model's %, the subscription windows on Pro/Max, the mode, context %), coloured by level. It also keeps the
windows' latest values (`rate_limits`) in the ledger, writing only when one changed.

It runs after every assistant message, so it must cost little more than starting Python. The figures are
the core's: budgets.budget_states on the ledger opened read-only, the config from config.load_cached (the
hook's compiled cache) and the policy's economy rule; it imports nothing the hook does not (no click, yaml
or jsonschema unless the config cache is stale).
"""

from __future__ import annotations

import os
import sys

from .. import jsonlite
from ..levels import painted

SEP = " │ "


def main(argv=None, stdin=None, stdout=None, now=None):
    """`tokens statusline [--data-dir DIR]`: always exits 0 (a failing status line only hides information)."""
    argv = sys.argv[1:] if argv is None else argv
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    try:
        explicit = argv[argv.index("--data-dir") + 1] if "--data-dir" in argv[:-1] else None
        try:
            payload = jsonlite.loads(stdin.read() or "{}")
        except ValueError:
            payload = {}
        if not isinstance(payload, dict):
            payload = {}
        line = status_line(payload, explicit, now=now)
    except Exception as exc:
        line = f"tokens: status unavailable ({type(exc).__name__}); run tokens doctor"
    stdout.write(line + "\n")
    stdout.flush()
    return 0


def find_data_dir(explicit=None):
    """The data dir of paths.data_dir's rule (given $CLAUDE_PLUGIN_DATA), except that a status line set up by hand
    for a plugin install is given none of its names: when nothing names a data dir and the default one holds no
    ledger, it looks for the plugin data folder with the newest ledger."""
    from ..paths import LEDGER_NAME, default_data_dir, named_data_dir
    from . import plugin_data

    named = named_data_dir(explicit, plugin_data())
    if named:
        return named
    chosen = default_data_dir()
    if os.path.exists(os.path.join(chosen, LEDGER_NAME)):
        return chosen
    claude = (os.environ.get("CLAUDE_CONFIG_DIR") or "").split(",")[0].strip() or os.path.join("~", ".claude")
    plugins = os.path.join(os.path.expanduser(claude), "plugins", "data")
    try:
        found = [os.path.join(plugins, d, LEDGER_NAME) for d in os.listdir(plugins)
                 if d.startswith("token-budget")]
    except OSError:
        return chosen
    found = [f for f in found if os.path.exists(f)]
    return os.path.dirname(max(found, key=os.path.getmtime)) if found else chosen


def figures(ledger, config, payload, now=None):
    """{"daily"/"workflow"/"model": (label, percent, level), "mode": str, "economy": bool}."""
    from ..budgets import budget_states
    from ..policy import Settings, binds, economy_active

    session = jsonlite.text(payload.get("session_id"))
    model = payload.get("model")
    model = jsonlite.text(model.get("id")) if isinstance(model, dict) else None
    states = budget_states(ledger, config, now=now, session_id=session)
    if session is None:  # without a session no open run is this one's
        states = [s for s in states if not s.scope.startswith("workflow:")]
    out = {}
    for state in states:
        if state.scope == "daily":
            out["daily"] = ("day", state.percent, state.level)
        elif state.scope.startswith("workflow:") and "workflow" not in out:
            out["workflow"] = (state.scope[len("workflow:"):], state.percent, state.level)
        elif state.scope.startswith("model:") and binds(state, model) and (
            "model" not in out or state.percent > out["model"][1]  # the fullest, if several keys match
        ):
            out["model"] = (state.scope[len("model:"):], state.percent, state.level)
    out["windows"] = window_figures(states, now)
    settings = Settings.from_config(config)
    out["mode"] = settings.mode
    out["economy"] = economy_active(states, settings, model)
    return out


WINDOW_LABELS = {"five_hour": "5h", "seven_day": "7d", "spend_limit": "spend"}


def note_windows(ledger, data, payload, now=None):
    """Keep the subscription windows of the payload's `rate_limits` (Pro/Max only) in the ledger, writing only
    when a value changed since the last status line: most runs cost one small read."""
    from ..windows import changed, parse, record_windows

    reported = parse(payload.get("rate_limits"))
    if not reported:
        return
    fresh = changed(ledger, reported)
    if not fresh:
        return
    from .. import clock
    from ..ledger import Ledger

    with Ledger.open(data) as writer, writer.transaction():
        record_windows(writer, fresh, clock.timestamp(now), jsonlite.text(payload.get("session_id")))


def window_figures(states, now=None):
    """(label, percent of the window, level, time to reset) per window budget, for the line."""
    from .. import clock
    from ..periods import parse
    from ..windows import SCALE

    now = now or clock.now()
    out = []
    for state in states:
        if state.scope not in WINDOW_LABELS:
            continue
        resets = None
        if state.resets_at:
            minutes = max(int((parse(state.resets_at) - now).total_seconds() // 60), 0)
            days, rest = divmod(minutes, 1440)
            resets = f"{days}d{rest // 60}h" if days else f"{rest // 60}h{rest % 60:02d}m"
        out.append((WINDOW_LABELS[state.scope], state.used / SCALE, state.level, resets))
    return out


def context_percent(payload):
    window = payload.get("context_window")
    if not isinstance(window, dict):
        return None
    used = window.get("used_percentage")
    if isinstance(used, (int, float)) and not isinstance(used, bool):
        return float(used)
    usage, size = window.get("current_usage"), window.get("context_window_size")
    if isinstance(usage, dict) and isinstance(size, int) and size > 0:
        tokens = sum(
            usage.get(k) or 0
            for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        )
        return 100.0 * tokens / size
    return None


def paint(text, level, color):
    return painted(text, level) if color else text


def status_line(payload, explicit=None, now=None):
    from ..paths import LEDGER_NAME

    data = find_data_dir(explicit)
    color = not os.environ.get("NO_COLOR")
    parts = []  # (text, level)
    if not os.path.exists(os.path.join(data, LEDGER_NAME)):
        parts.append(("tokens: no usage recorded yet", None))
    else:
        from ..config import load_cached
        from ..ledger import Ledger

        config = load_cached(data, jsonlite.text(payload.get("cwd")))
        with Ledger.open_readonly(data) as ledger:
            try:
                note_windows(ledger, data, payload, now)
            except Exception:  # a ledger it cannot write (permissions, a full disk): show the line anyway
                pass
            fig = figures(ledger, config, payload, now)
        for name in ("daily", "workflow", "model"):
            if name in fig:
                label, pct, level = fig[name]
                if name == "model":
                    label = payload["model"].get("display_name") or label  # a model figure implies a model id
                parts.append((f"{label} {pct:.1f}%", level))
        for label, pct, level, resets in fig.get("windows", ()):
            parts.append((f"{label} {pct:.0f}%" + (f" ↻{resets}" if resets else ""), level))
        mode = fig["mode"]
        if fig["economy"]:
            mode = "economy" if mode == "economy" else f"{mode}: economy"
        parts.append((mode, "warn" if fig["economy"] else None))
    ctx = context_percent(payload)
    if ctx is not None:
        parts.append((f"ctx {ctx:.0f}%", "suggest" if ctx >= 90 else "warn" if ctx >= 70 else None))
    from ..safetext import printable

    # Labels are workflow and model names from the config, transcripts and the payload: no control characters.
    return SEP.join(paint(printable(text), level, color) for text, level in parts)
