"""Budgets suggested from the user's own history (`tokens budget suggest`, `tokens setup`): the 90th percentile of
a day's counted tokens over the last 30 days with usage. Never loaded by a hook.
"""

from __future__ import annotations

from . import clock
from .budgets import split_limit
from .families import model_matches
from .periods import day_bounds, today, zone

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .config import Config
    from .lean_datetime import datetime
    from .storage import Storage

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
