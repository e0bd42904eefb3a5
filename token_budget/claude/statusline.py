"""Claude Code's status line: its statusLine JSON on stdin, one short line out (daily %, workflow %, the
current model's %, the mode, context %), coloured by level.

It runs after every assistant message, so it must cost little more than starting Python: this module imports
only json, os, sqlite3 and datetime, reads the ledger read-only and the hook's compiled config cache
(config.load_cached's file), and falls back to the full config loader only when that cache is missing or
stale.
Its arithmetic mirrors budgets.budget_states (same counted classes, periods, limits and thresholds); the tests
check the two agree, so change them together.
"""

from __future__ import annotations

import json
import os
import sys

LEVELS = ("ok", "warn", "alert", "suggest", "block", "stop")
THRESHOLD_KEYS = {
    "warn": ("log", 70.0),
    "alert": ("alert", 80.0),
    "suggest": ("suggest", 90.0),
    "block": ("block", 100.0),
    "stop": ("stop", 110.0),
}
COLORS = {"ok": "32", "warn": "33", "alert": "1;33", "suggest": "35", "block": "31", "stop": "1;31"}
CLASS_COLUMNS = {
    "input": ("input_tokens",),
    "output": ("output_tokens",),
    "cache_creation": ("cache_creation_5m_tokens", "cache_creation_1h_tokens"),
    "cache_read": ("cache_read_tokens",),
}
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
SEP = " │ "


def main(argv=None, stdin=None, stdout=None, now=None):
    """`tokens statusline [--data-dir DIR]`: always exits 0 (a failing status line only hides information)."""
    argv = sys.argv[1:] if argv is None else argv
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    try:
        explicit = argv[argv.index("--data-dir") + 1] if "--data-dir" in argv[:-1] else None
        try:
            payload = json.loads(stdin.read() or "{}")
        except ValueError:
            payload = {}
        if not isinstance(payload, dict):
            payload = {}
        line = render(payload, explicit, now=now)
    except Exception as exc:
        line = f"tokens: status unavailable ({type(exc).__name__}); run tokens doctor"
    stdout.write(line + "\n")
    stdout.flush()
    return 0


# -- where things are ----------------------------------------------------------------------------------------


def data_dir(explicit=None):
    """--data-dir > $TOKEN_BUDGET_HOME > $CLAUDE_PLUGIN_DATA > $XDG_DATA_HOME/token-budget; a status
    line set up by hand for a plugin install sees none of those, so the plugin's data folder is used."""
    env = os.environ
    chosen = explicit or env.get("TOKEN_BUDGET_HOME") or env.get("CLAUDE_PLUGIN_DATA")
    if chosen:
        return os.path.expanduser(chosen)
    xdg = env.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    default = os.path.join(xdg, "token-budget")
    if os.path.exists(os.path.join(default, "ledger.db")):
        return default
    claude = (env.get("CLAUDE_CONFIG_DIR") or "").split(",")[0].strip() or os.path.join(
        os.path.expanduser("~"), ".claude"
    )
    plugins = os.path.join(os.path.expanduser(claude), "plugins", "data")
    try:
        found = [os.path.join(plugins, d) for d in os.listdir(plugins) if d.startswith("token-budget")]
    except OSError:
        found = []
    found = [d for d in found if os.path.exists(os.path.join(d, "ledger.db"))]
    return max(found, key=lambda d: os.stat(os.path.join(d, "ledger.db")).st_mtime) if found else default


def _packaged_config_dir():
    beside = os.path.join(os.path.dirname(PACKAGE_DIR), "config")
    return beside if os.path.isdir(beside) else os.path.join(PACKAGE_DIR, "_config")


def _norm(path):
    return os.path.normpath(os.path.expanduser(path))


def _watched(project_dir, data):
    """config.layer_paths + pricing.yaml, as config.load_cached stamps them."""
    packaged = _packaged_config_dir()
    paths = [os.path.join(packaged, "token_budgets.yaml")]
    explicit = os.environ.get("TOKEN_BUDGET_CONFIG")
    if explicit:
        paths.append(_norm(explicit))
    else:
        xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
        paths.append(_norm(os.path.join(xdg, "token-budget", "token_budgets.yaml")))
        if project_dir:
            paths.append(_norm(os.path.join(project_dir, ".claude", "token_budgets.yaml")))
    paths.append(_norm(os.path.join(data, "overrides.json")))
    paths.append(os.path.join(packaged, "pricing.yaml"))
    return paths


def _stamp(path):
    try:
        st = os.stat(path)
    except OSError:
        return [path, None, None]
    return [path, st.st_mtime_ns, st.st_size]


def load_config(data, project_dir):
    """The merged config: the hook's compiled cache when fresh, else the full loader (which refreshes it)."""
    import zlib

    key = zlib.crc32(f"{project_dir}|{os.environ.get('TOKEN_BUDGET_CONFIG')}".encode())
    try:
        with open(os.path.join(data, "cache", f"config-{key:08x}.json"), "rb") as handle:
            compiled = json.loads(handle.read())
        if compiled.get("version") == 1 and compiled.get("stamps") == [
            _stamp(p) for p in _watched(project_dir, data)
        ]:
            return compiled["config"]
    except (OSError, ValueError, KeyError, AttributeError):
        pass
    from pathlib import Path

    from ..config import load_cached

    return load_cached(Path(data), project_dir).data


# -- the figures (mirrors budgets.budget_states) -------------------------------------------------------------


def get(node, *keys, default=None):
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


def parse_percent(value, default):
    if isinstance(value, bool) or value is None:
        return default
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).replace("usage", "").replace(">=", "").replace(">", "").replace("%", "").strip()
    try:
        return float(text)
    except ValueError:
        return default


def thresholds(config):
    configured = get(config, "enforcement", "thresholds", default={}) or {}
    out = {}
    for level, (key, default) in THRESHOLD_KEYS.items():
        if level == "alert" and key not in configured:
            default = parse_percent(get(config, "budgets", "global", "alert_threshold"), default)
        out[level] = parse_percent(configured.get(key), default)
    return out


def level_for(percent, limits):
    level = "ok"
    for name in LEVELS[1:]:
        if percent >= limits[name]:
            level = name
    return level


def split_limit(value):
    if isinstance(value, dict):
        return int(value.get("tokens") or 0), (float(value["usd"]) if value.get("usd") is not None else None)
    return int(value or 0), None


def budget(used, cost_micros, limit_value, usd_value=None):
    """(percent, tokens limit) like BudgetState.percent, or None when no limit is set."""
    tokens, usd = split_limit(limit_value)
    if usd_value is not None:
        usd = float(usd_value)
    if not tokens and usd is None:
        return None
    pct = 100.0 * used / tokens if tokens else 0.0
    usd_pct = 100.0 * round(cost_micros / 1_000_000, 6) / usd if usd else 0.0
    return round(max(pct, usd_pct), 1), tokens


def segments(model):
    """pricing._segments: a model id in canonical `-` segments, whatever the naming style."""
    s = model.strip().lower().split("[", 1)[0].rsplit("/", 1)[-1]
    if "anthropic." in s:
        s = s.rsplit("anthropic.", 1)[-1]
    s = s.split("@", 1)[0].split(":", 1)[0].replace(".", "-").replace("_", "-").replace(" ", "-")
    segs = [
        seg
        for seg in s.split("-")
        if seg
        and seg != "latest"
        and not (len(seg) == 8 and seg.isdigit())
        and not (seg[0] == "v" and seg[1:].isdigit())
    ]
    if len(segs) > 2 and segs[0] == "claude" and segs[1].isdigit():
        k = 2
        while k < len(segs) and segs[k].isdigit():
            k += 1
        if k < len(segs):
            segs = ["claude", segs[k], *segs[1:k], *segs[k + 1 :]]
    return segs


def model_matches(key, model):
    """budgets.model_matches."""
    if not model:
        return False
    if any(c in "*?[" for c in key):
        from fnmatch import fnmatchcase

        return fnmatchcase(model.lower(), key.lower())
    if key.lower() == model.lower():
        return True
    want, have = segments(key), segments(model)
    if want[:1] != ["claude"]:
        have = have[1:] if have[:1] == ["claude"] else have
    return bool(want) and have[: len(want)] == want


def _zone(name):
    from datetime import timezone

    if name in ("UTC", "Etc/UTC", "utc"):
        return timezone.utc
    if not name or name == "local":
        return None  # the C library's local time, which follows $TZ and /etc/localtime like periods.zone
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def _iso(moment):
    from datetime import timezone

    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def periods(tz, now):
    """UTC bounds of today and this month in the configured zone (periods.day_bounds / month_bounds)."""
    from datetime import datetime, timedelta

    local = now.astimezone(tz)
    day = local.date()

    def start(d):
        naive = datetime(d.year, d.month, d.day)
        return naive.replace(tzinfo=tz) if tz is not None else naive.astimezone()

    nxt = day.replace(day=1) + timedelta(days=32)
    return (
        _iso(start(day)),
        _iso(start(day + timedelta(days=1))),
        _iso(start(day.replace(day=1))),
        _iso(start(nxt.replace(day=1))),
    )


def figures(db, config, payload, now=None):
    """{"daily": (label, pct, level), "workflow": (…), "model": (…), "mode": str, "economy": bool}."""
    from datetime import datetime, timezone

    now = now or datetime.now(timezone.utc)
    classes = get(config, "counted_token_classes", default=("input", "output", "cache_creation"))
    counted = " + ".join(c for cls in classes for c in CLASS_COLUMNS[cls]) or "0"
    d0, d1, m0, m1 = periods(_zone(get(config, "timezone", default="local")), now)
    limits = thresholds(config)
    glob = get(config, "budgets", "global", default={}) or {}
    session = payload.get("session_id") if isinstance(payload.get("session_id"), str) else None
    model = get(payload, "model", "id")
    model = model if isinstance(model, str) else None
    out = {}
    states = []  # (percent, binds this model)

    def add(name, used, cost, limit_value, usd_value=None, label=None, binds=True):
        result = budget(used, cost, limit_value, usd_value)
        if result is None:
            return
        pct = result[0]
        states.append((pct, binds))
        if name == "model" and (not binds or ("model" in out and out["model"][1] >= pct)):
            return  # the status line shows the current model's budget (the fullest, if several keys match)
        out.setdefault(name, (label, pct, level_for(pct, limits)))
        if name == "model":
            out[name] = (label, pct, level_for(pct, limits))

    by_model = db.execute(
        f"SELECT model, COALESCE(SUM({counted}), 0), COALESCE(SUM(cost_micros), 0) FROM requests "
        "WHERE timestamp >= ? AND timestamp < ? GROUP BY model",
        (d0, d1),
    ).fetchall()
    add(
        "daily",
        sum(r[1] for r in by_model),
        sum(r[2] for r in by_model),
        glob.get("daily_limit"),
        glob.get("daily_limit_usd"),
        label="day",
    )
    if glob.get("monthly_limit") or glob.get("monthly_limit_usd") is not None:
        used, cost = db.execute(
            f"SELECT COALESCE(SUM({counted}), 0), COALESCE(SUM(cost_micros), 0) FROM requests "
            "WHERE timestamp >= ? AND timestamp < ?",
            (m0, m1),
        ).fetchone()
        add("monthly", used, cost, glob.get("monthly_limit"), glob.get("monthly_limit_usd"), label="month")
    per_session = get(config, "budgets", "per_session")
    if session and per_session:
        used, cost = db.execute(
            f"SELECT COALESCE(SUM({counted}), 0), COALESCE(SUM(cost_micros), 0) FROM requests "
            "WHERE session_id = ?",
            (session,),
        ).fetchone()
        add("session", used, cost, per_session, label="session")
    per_workflow = get(config, "budgets", "per_workflow", default={}) or {}
    if session:
        run = db.execute(
            "SELECT id, name FROM workflow_runs WHERE ended_at IS NULL AND session_id = ? "
            "ORDER BY started_at DESC, id DESC LIMIT 1",
            (session,),
        ).fetchone()
        if run and run[1] in per_workflow:
            used, cost = db.execute(
                f"SELECT COALESCE(SUM({counted}), 0), COALESCE(SUM(cost_micros), 0) "
                "FROM requests WHERE workflow_run_id = ?",
                (run[0],),
            ).fetchone()
            add("workflow", used, cost, per_workflow[run[1]], label=run[1])
    for key, value in (get(config, "budgets", "per_model", default={}) or {}).items():
        used = cost = 0
        for row_model, row_used, row_cost in by_model:
            if model_matches(key, row_model):
                used += row_used
                cost += row_cost
        add("model", used, cost, value, label=key, binds=model_matches(key, model))
    mode = get(config, "mode", default="normal") or "normal"
    downgrade = get(config, "optimizations", "model_downgrade", default={}) or {}
    economy = mode == "economy" or (
        mode == "auto"
        and bool(downgrade.get("enabled", True))
        and any(pct >= parse_percent(downgrade.get("trigger"), 80.0) for pct, binds in states if binds)
    )
    out["mode"] = mode
    out["economy"] = economy
    return out


# -- the line ------------------------------------------------------------------------------------------------


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
    if not color or level is None or level == "none":
        return text
    return f"\x1b[{COLORS[level]}m{text}\x1b[0m"


def render(payload, explicit=None, now=None):
    data = data_dir(explicit)
    ledger = os.path.join(data, "ledger.db")
    color = not os.environ.get("NO_COLOR")
    parts = []  # (text, level)
    if not os.path.exists(ledger):
        parts.append(("tokens: no usage recorded yet", None))
    else:
        import sqlite3

        cwd = payload.get("cwd") if isinstance(payload.get("cwd"), str) and payload.get("cwd") else None
        config = load_config(data, cwd)
        path = ledger.replace("%", "%25").replace("?", "%3f").replace("#", "%23")
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
        try:
            fig = figures(db, config, payload, now)
        finally:
            db.close()
        for name in ("daily", "workflow", "model"):
            if name in fig:
                label, pct, level = fig[name]
                if name == "model":
                    label = get(payload, "model", "display_name") or label
                parts.append((f"{label} {pct:.1f}%", level))
        mode = fig["mode"]
        if fig["economy"]:
            mode = "economy" if mode == "economy" else f"{mode}: economy"
        parts.append((mode, "warn" if fig["economy"] else None))
    ctx = context_percent(payload)
    if ctx is not None:
        parts.append((f"ctx {ctx:.0f}%", "suggest" if ctx >= 90 else "warn" if ctx >= 70 else None))
    return SEP.join(paint(text, level, color) for text, level in parts)
