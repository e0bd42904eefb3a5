"""Subscription windows as budgets: the provider's own 5-hour and weekly windows and spend limit.

Pro/Max subscriptions are limited by usage windows, not dollars. The client reports how full each one is (Claude
Code's status line input carries `rate_limits.five_hour` / `seven_day` / `spend_limit` with `used_percentage` and
`resets_at`); the latest values are kept in the ledger, written only when one changes, and become budget scopes
with the usual levels: by default the whole window is the limit, so 70/80/90 % warn, alert and advise (economy
mode from 80 % in `auto`), and 100 % blocks; `budgets.windows.<name>: 80%` makes 80 % of the window the limit.
Standard library only and no Claude Code knowledge: the status line and the hook import it.
"""

from __future__ import annotations

from ._records import record

TYPE_CHECKING = False  # typing costs milliseconds of import on every hook; annotations are strings
if TYPE_CHECKING:
    from datetime import datetime
    from typing import Any

    from .storage import Storage

WINDOWS = {"five_hour": "5-hour window", "seven_day": "weekly window", "spend_limit": "spend limit"}
SCALE = 100  # BudgetState counts hundredths of a percentage point, so percent stays exact to 0.01


@record
class Window:
    """One window as last reported: `used_percentage` 0-100, `resets_at` ISO UTC (or None)."""

    name: str
    used_percentage: float
    resets_at: str | None = None
    used_usd: float | None = None
    limit_usd: float | None = None
    period: str | None = None


def is_window(scope: str) -> bool:
    return scope in WINDOWS


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value < 0:
        return None
    return float(value)


def _moment(value: Any) -> str | None:
    """resets_at: epoch seconds (what Claude Code sends) or an ISO timestamp → canonical ISO UTC."""
    from .periods import iso, normalize

    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1e11:
        from .lean_datetime import datetime, timezone

        return iso(datetime.fromtimestamp(value, timezone.utc))
    if isinstance(value, str) and value:
        try:
            return normalize(value)
        except ValueError:
            return None
    return None


def parse(rate_limits: Any) -> list[Window]:
    """The windows in a status line's `rate_limits` (absent, null or malformed parts are skipped)."""
    if not isinstance(rate_limits, dict):
        return []
    found = []
    for name in WINDOWS:
        part = rate_limits.get(name)
        used = _number(part.get("used_percentage")) if isinstance(part, dict) else None
        if used is None:
            continue
        found.append(Window(name, min(used, 1000.0), _moment(part.get("resets_at")), _number(part.get("used_usd")),
                            _number(part.get("limit_usd")),
                            part.get("period") if isinstance(part.get("period"), str) else None))
    return found


def latest(store: Storage) -> dict[str, Window]:
    """The last reported value of each window (a ledger from before the windows existed has none)."""
    return {r[0]: Window(*r[:6]) for r in store.window_rows()}


def changed(store: Storage, windows: list[Window]) -> list[Window]:
    """The windows whose values differ from what the ledger holds: the status line writes only these."""
    held = latest(store)
    return [w for w in windows if held.get(w.name) != w]


def record_windows(store: Storage, windows: list[Window], observed_at: str, session_id: str | None = None) -> int:
    """Store the windows (inside the caller's transaction); returns how many were written."""
    store.record_windows([(w.name, w.used_percentage, w.resets_at, w.used_usd, w.limit_usd, w.period)
                          for w in windows], observed_at, session_id)
    return len(windows)


def caps(config: Any) -> dict[str, float]:
    """Window name → the percentage of the window that is the budget's limit (100 by default; 0 or false: off)."""
    from .levels import parse_percent

    configured = config.get("budgets", "windows", default=None)
    configured = configured if isinstance(configured, dict) else {}
    out = {}
    for name in WINDOWS:
        value = configured.get(name, 100)
        cap = 0.0 if value is False or value is None else parse_percent(value, 100.0)
        if cap > 0:
            out[name] = cap
    return out


def window_states(store: Storage, config: Any, now: datetime, level_for: Any) -> list[Any]:
    """A BudgetState per window that was reported and has not reset since (a past reset means the window
    started over and its figure is stale). `used` and `limit` count hundredths of a percentage point."""
    from .models import BudgetState
    from .periods import iso

    moment = iso(now)
    states = []
    limits = caps(config)
    windows = latest(store)
    acked = store.acknowledged_thresholds(tuple(WINDOWS)) if windows else {}
    for name, window in windows.items():
        cap = limits.get(name)
        if cap is None or (window.resets_at is not None and window.resets_at <= moment):
            continue
        used, limit = int(round(window.used_percentage * SCALE)), int(round(cap * SCALE))
        period = window.resets_at or "open"  # one alert per threshold per window instance
        # Dollars of a spend limit only while the whole limit is the budget: percent takes the larger of the two.
        dollars = (window.used_usd, window.limit_usd) if cap <= 100 else (None, None)
        probe = BudgetState(name, used, limit, "ok", period, window.resets_at)
        states.append(BudgetState(name, used, limit, level_for(probe.percent), period, window.resets_at, *dollars,
                                  tuple(sorted(acked.get((name, period), ())))))
    return states


def describe(state: Any) -> str:
    """`62.5% of the 5-hour window`, with the dollars of a spend limit, and how full the budget is when the budget
    is only a share of the window: `40.0% of the 5-hour window (80.0% of its 50% budget)`."""
    text = f"{state.used / SCALE:.1f}% of the {WINDOWS.get(state.scope, state.scope)}"
    if state.used_usd is not None and state.limit_usd is not None:
        text += f", ${state.used_usd:,.2f} of ${state.limit_usd:,.2f}"
    if state.limit != 100 * SCALE:
        text += f" ({state.percent:.1f}% of its {state.limit / SCALE:g}% budget)"
    return text
