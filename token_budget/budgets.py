"""Budgets: which scopes apply, what each has used in its period, and the level that puts it at.

Scopes are "daily" and "monthly" (calendar periods in the configured time zone), "session", "workflow:<name>" (the
active run), the subscription's own windows "five_hour", "seven_day" and "spend_limit" (windows.py) and
"model:<key>" (per model per day; a key such as `claude-opus` matches every Opus id in any naming
style, and globs and exact ids work too). Standard library only and no Claude Code knowledge: the hook imports it.
"""

from __future__ import annotations

from . import clock
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
# the client) cannot be followed by counting requests. A team budget counts the server's figures from the team cache
# (a config stamp of the record in team mode: a sync that rewrites it ends the record) plus the local unpushed
# requests, which the new rows join.
COUNTED_SCOPES = ("daily", "monthly", "session")
COUNTED_PREFIXES = ("workflow:", "model:", "team:")
MODEL_PREFIXES = ("model:", "team:model:")


def headroom(states: Iterable[BudgetState], settings: Any, model: str | None,
             classes: Iterable[str]) -> dict[str, Any] | None:
    """How far every budget is from its next level (levels.spend_headroom takes requests off it) for a session on
    `model`: what can still be added before the next threshold that would change a decision (the next level, or in
    `auto` mode the economy trigger). None when there can be none (a scope this module does not know). `settings`:
    policy.Settings; `classes`: the token classes budgets count (config.counted_classes, with the team cache's in
    team mode).

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
        # A team workflow budget counts every request (whichever run it is in): more than it adds, never less.
        prefix = next((p for p in MODEL_PREFIXES if state.scope.startswith(p)), None)
        counts = prefix is None or model_matches(state.scope[len(prefix):], model)
        budgets.append([state.scope, tokens, micros, counts])
    return {"model": model, "classes": [c for c in ROW_CLASSES if c in set(classes)], "budgets": budgets}
