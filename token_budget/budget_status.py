"""The budgets as `tokens status --json` and the dashboard show them: every budget, the active workflow run, the
mode and the deferred workflows (budgets.budget_states' figures). Loaded by the CLI and the dashboard, never by a
hook's decision.
"""

from __future__ import annotations

from . import clock, jsonlite
from .budgets import budget_states
from .periods import day_bounds, today, zone

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .config import Config
    from .lean_datetime import datetime
    from .models import BudgetState
    from .storage import Storage


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
