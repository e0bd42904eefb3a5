"""Budgets: which scopes apply, what each has used in its period, and the level that puts it at.

Scopes are "daily" and "monthly" (calendar periods in the configured time zone), "session", "workflow:<name>" (the
active run), the subscription's own windows "five_hour", "seven_day" and "spend_limit" (windows.py) and
"model:<key>" (per model per day; a key such as `claude-opus` matches every Opus id in any naming
style, and globs and exact ids work too). Standard library only and no Claude Code knowledge: the hook imports it.
"""

from __future__ import annotations

from . import clock, jsonlite
from .families import model_matches
from .lean_datetime import datetime
from .levels import ROW_CLASSES, level_for, thresholds
from .models import BudgetState
from .periods import day_bounds, month_bounds, today, zone

TYPE_CHECKING = False  # typing costs milliseconds of import on every hook; annotations are strings
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    from .config import Config
    from .storage import Storage



def split_limit(value: Any) -> tuple[int, float | None]:
    """A limit is a token count or {tokens: N, usd: X}; returns (tokens or 0, usd or None)."""
    if isinstance(value, dict):
        return int(value.get("tokens") or 0), (float(value["usd"]) if value.get("usd") is not None else None)
    return int(value or 0), None


# -- the states ------------------------------------------------------------------------------------------------


def budget_states(ledger: Storage, config: Config, *, now: datetime | None = None, session_id: str | None = None,
                  model: str | None = None) -> list[BudgetState]:
    """Every budget that applies now: daily, monthly, the session's, its active workflow run's, and each model's.

    Every configured model budget is returned so that dashboards and alerts see them all (the policy decides which
    bind a session); `model` only narrows the team's model budgets to the session's (team/states.py).
    """
    now = now or clock.now()
    tz = zone(config.timezone)
    limits = thresholds(config)
    classes = config.counted_classes
    day = today(tz, now)
    d0, d1 = day_bounds(day, tz)
    m0, m1 = month_bounds(day.year, day.month, tz)
    glob = config.get("budgets", "global", default={}) or {}
    acked = ledger.acknowledged_limits((day.isoformat(), day.strftime("%Y-%m"), session_id or ""))
    states: list[BudgetState] = []

    def add(scope: str, used: int, cost_micros: int, limit_value: Any, period: str, resets: str | None,
            usd_value: Any = None) -> None:
        tokens, usd = split_limit(limit_value)
        if usd_value is not None:
            usd = float(usd_value)
        if not tokens and usd is None:
            return
        used_usd = round(cost_micros / 1_000_000, 6)
        probe = BudgetState(scope, used, tokens, "ok", period, resets, used_usd, usd)
        # An ack holds only for the limit it was given under: after a change it no longer counts.
        held = tuple(sorted(t for t, acked_limit in acked.get((scope, period), {}).items() if acked_limit == tokens))
        states.append(BudgetState(scope, used, tokens, level_for(probe.percent, limits), period, resets, used_usd,
                                  usd, held))

    by_model = ledger.totals_by_model(classes, d0, d1)
    day_used = sum(r[1] for r in by_model)
    day_cost = sum(r[2] for r in by_model)
    add("daily", day_used, day_cost, glob.get("daily_limit"), day.isoformat(), d1, glob.get("daily_limit_usd"))
    if glob.get("monthly_limit") or glob.get("monthly_limit_usd") is not None:
        month = ledger.totals_by_model(classes, m0, m1)
        used, cost = sum(r[1] for r in month), sum(r[2] for r in month)
        add("monthly", used, cost, glob.get("monthly_limit"), day.strftime("%Y-%m"), m1,
            glob.get("monthly_limit_usd"))
    per_session = config.get("budgets", "per_session")
    if session_id and per_session:
        used, cost = ledger.session_totals(classes, session_id)
        add("session", used, cost, per_session, session_id, None)
    per_workflow = config.get("budgets", "per_workflow", default={}) or {}
    if per_workflow:
        for run in ledger.active_runs(session_id):
            if run["name"] not in per_workflow:
                continue
            used, cost = ledger.run_totals(classes, run["id"])
            add(f"workflow:{run['name']}", used, cost, per_workflow[run["name"]], f"run-{run['id']}", None)
    for key, value in (config.get("budgets", "per_model", default={}) or {}).items():
        used = cost = 0
        for row_model, row_used, row_cost in by_model:
            if model_matches(key, row_model):
                used += row_used
                cost += row_cost
        add(f"model:{key}", used, cost, value, day.isoformat(), d1)
    from .windows import window_states

    states += window_states(ledger, config, now, lambda percent: level_for(percent, limits))
    if config.get("team"):  # team budgets: only a user config with `team:` loads their module
        from .team.states import team_states

        states += team_states(ledger, config, now, limits, session_id=session_id, model=model)
    return states


# -- headroom ----------------------------------------------------------------------------------------------------

# Percentage points kept back below a threshold: BudgetState.percent is rounded to a tenth, so a budget can reach a
# level's threshold 0.05 points before its exact share does.
HEADROOM_MARGIN = 0.1
# The scopes whose use the ledger's request rows make; any other scope (the subscription's windows are reported by
# the client, team budgets come from the server) cannot be followed by counting requests.
COUNTED_SCOPES = ("daily", "monthly", "session")
COUNTED_PREFIXES = ("workflow:", "model:")


def headroom(states: Iterable[BudgetState], settings: Any, model: str | None,
             classes: Iterable[str]) -> dict[str, Any] | None:
    """How far every budget is from its next level (levels.spend_headroom takes requests off it) for a session on
    `model`: what can still be added before the next threshold that would change a decision (the next level, or in
    `auto` mode the economy trigger). None when there can be none (a team budget, or a scope this module does not
    know). `settings`: policy.Settings; `classes`: the token classes budgets count (config.counted_classes).

    Each budget is [scope, tokens left or None (no token limit), micro-USD left or None (no cost limit), whether a
    request on `model` counts against it]; a budget the requests cannot move (a subscription window) has none."""
    from .windows import is_window

    levels = sorted({*settings.thresholds.values(),
                     *((settings.economy_trigger,) if settings.mode == "auto" and settings.auto_economy else ())})
    budgets = []
    for state in states:
        if is_window(state.scope):
            continue  # its figures change only when the client reports them (a ledger write)
        if state.scope not in COUNTED_SCOPES and not state.scope.startswith(COUNTED_PREFIXES):
            return None
        nxt = next((t for t in levels if t > state.percent), None)
        tokens = micros = None
        if nxt is not None and state.limit:
            tokens = max(int((nxt - HEADROOM_MARGIN) * state.limit / 100) - state.used - 1, -1)
        if nxt is not None and state.limit_usd:
            used = round((state.used_usd or 0.0) * 1_000_000)
            micros = max(int((nxt - HEADROOM_MARGIN) * state.limit_usd * 10_000) - used - 1, -1)
        counts = not state.scope.startswith("model:") or model_matches(state.scope[len("model:"):], model)
        budgets.append([state.scope, tokens, micros, counts])
    return {"model": model, "classes": [c for c in ROW_CLASSES if c in set(classes)], "budgets": budgets}


def state_json(state: BudgetState) -> dict[str, Any]:
    """One budget in `tokens status --json`. A subscription window's used and limit are hundredths of a percentage
    point of the window (its `unit` says so), never tokens."""
    data = {
        "scope": state.scope, "used": state.used, "limit": state.limit, "percent": state.percent,
        "level": state.level, "resets_at": state.resets_at, "period": state.period, "remaining": state.remaining,
        "used_usd": state.used_usd, "limit_usd": state.limit_usd, "acknowledged": list(state.acked),
    }
    from .windows import SCALE, is_window

    if is_window(state.scope):
        data.update(unit="hundredths_of_window_percent", used_percentage=state.used / SCALE,
                    limit_percentage=state.limit / SCALE)
    return data


def budget_status(ledger: Storage, config: Config, *, now: datetime | None = None,
                  session_id: str | None = None) -> dict[str, Any]:
    """The budget part of `tokens status --json`: every budget, the active workflow run, the mode, deferrals."""
    from .policy import Settings, economy_active
    from .workflows import priority

    now = now or clock.now()
    states = budget_states(ledger, config, now=now, session_id=session_id)
    settings = Settings.from_config(config)
    runs = ledger.active_runs(session_id)
    workflow = None
    if runs:
        run = runs[0]
        scope = f"workflow:{run['name']}"
        state = next((s for s in states if s.scope == scope), None)
        workflow = {"name": run["name"], "phase": run["phase"], "run_id": run["id"], "session_id": run["session_id"],
                    "started_at": run["started_at"], "priority": priority(config, run["name"]),
                    "used": state.used if state else _run_used(ledger, config, run["id"]),
                    "limit": state.limit if state else None}
    tz = zone(config.timezone)
    since = day_bounds(today(tz, now), tz)[0]
    deferred = sorted({jsonlite.loads(d["detail"] or "{}").get("workflow") for d in
                       ledger.list_degradations(since=since, kind="defer_workflow")} - {None})
    return {
        "budgets": [state_json(s) for s in states],
        "workflow": workflow,
        "mode": settings.mode,
        "economy": economy_active(states, settings),
        "deferred_workflows": deferred,
        "timezone": config.timezone,
        "thresholds": settings.thresholds,
    }


def _run_used(ledger: Storage, config: Config, run_id: int) -> int:
    return ledger.run_totals(config.counted_classes, run_id)[0]


# -- suggestions from history ----------------------------------------------------------------------------------

SUGGEST_DAYS = 30
SUGGEST_PERCENTILE = 90


def round_up(value: float) -> int:
    """Up to two significant figures: 183,456 → 190,000."""
    value = round(value, 6)  # 600000.0000000001 from the interpolation is 600,000
    if value <= 0:
        return 0
    step = 10 ** max(len(str(int(value))) - 2, 0)
    return int(-(-value // step) * step)


def percentile(values: list[int], pct: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def suggest(ledger: Storage, config: Config, *, now: datetime | None = None,
            days: int = SUGGEST_DAYS) -> dict[str, Any]:
    """Budgets from the user's own history: the 90th percentile of daily counted tokens over the last `days` full
    days with any usage (as Claude-Code-Usage-Monitor sets its limits), for the daily budget and for each
    per-model budget; the monthly one is the last `days` days' total. Rounded up to two significant figures."""
    from .lean_datetime import timedelta

    now = now or clock.now()
    tz = zone(config.timezone)
    per_model = config.get("budgets", "per_model", default={}) or {}
    daily: list[int] = []
    by_key: dict[str, list[int]] = {k: [] for k in per_model}
    first = today(tz, now) - timedelta(days=days)
    for offset in range(days):
        start, end = day_bounds(first + timedelta(days=offset), tz)
        rows = ledger.totals_by_model(config.counted_classes, start, end)
        total = sum(r[1] for r in rows)
        if not total:
            continue
        daily.append(total)
        for key in per_model:
            by_key[key].append(sum(used for model, used, _ in rows if model_matches(key, model)))
    glob = config.get("budgets", "global", default={}) or {}
    out: list[dict[str, Any]] = []
    if daily:
        out.append({"scope": "daily", "current": split_limit(glob.get("daily_limit"))[0],
                    "suggested": round_up(percentile(daily, SUGGEST_PERCENTILE))})
        out.append({"scope": "monthly", "current": split_limit(glob.get("monthly_limit"))[0],
                    "suggested": round_up(sum(daily) * 30 / days)})
        for key, values in by_key.items():
            if any(values):
                out.append({"scope": f"model:{key}", "current": split_limit(per_model[key])[0],
                            "suggested": round_up(percentile(values, SUGGEST_PERCENTILE))})
    return {"days": days, "active_days": len(daily), "percentile": SUGGEST_PERCENTILE, "budgets": out}
