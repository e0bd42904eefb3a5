"""Team budgets in the hook: the totals the sync last pulled (cache/team.json) plus this machine's usage the server
does not have yet (the ledger's team spool), as BudgetStates at the same levels as every other budget.

Scopes: `team:daily` and `team:monthly` (the whole team, periods in the team's time zone), `team:member:monthly`
(this member's share: every machine of theirs), `team:model:<key>` and `team:workflow:<name>` (the team's month
on one model or workflow; a hook sees them only for a session on that model or in that workflow).

When the last successful sync is older than team.max_staleness, team.on_stale decides: `local` goes on from the
last totals plus local usage, `open` stops enforcing team budgets, `closed` blocks as if they were spent.
Standard library and the core only: no socket, no psycopg.
"""

from __future__ import annotations

import os

from .. import jsonlite
from ..families import model_matches
from ..models import BudgetState
from ..periods import day_bounds, month_bounds, today, zone
from . import TeamSettings, cache_path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from datetime import datetime
    from typing import Any

    from ..ledger import Ledger

FORMAT = 1
# Sums kept per scope, in this order, in the cache and in TeamSpool.unpushed_usage's rows.
SUMS = ("input_tokens", "output_tokens", "cache_creation_5m_tokens", "cache_creation_1h_tokens",
        "cache_read_tokens", "cost_micros")
DEFAULT_CLASSES = ["input", "output", "cache_creation"]  # what team budgets count when the cache does not say
CLASS_INDEXES = {"input": (0,), "output": (1,), "cache_creation": (2, 3), "cache_read": (4,)}


def read_cache(data_dir: Any) -> dict[str, Any] | None:
    try:
        with open(cache_path(data_dir), "rb") as handle:
            data = jsonlite.loads(handle.read())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


def counted(sums: list[int], classes: list[str]) -> int:
    return sum(sums[i] for cls in classes for i in CLASS_INDEXES.get(cls, ()))


def periods(timezone: str, now: datetime) -> dict[str, tuple[str, str, str]]:
    """"day" and "month" -> (period key, start, end) in the team's time zone."""
    tz = zone(timezone)
    day = today(tz, now)
    d0, d1 = day_bounds(day, tz)
    m0, m1 = month_bounds(day.year, day.month, tz)
    return {"day": (day.isoformat(), d0, d1), "month": (day.strftime("%Y-%m"), m0, m1)}


def scope_period(scope: str) -> str:
    return "day" if scope == "team:daily" else "month"


def _local_sums(rows: list[tuple[Any, ...]], scope: str, span: str) -> list[int]:
    out = [0] * len(SUMS)
    for model, workflow, in_day, in_month, *sums in rows:
        if not (in_day if span == "day" else in_month):
            continue
        if scope.startswith("team:model:") and not model_matches(scope[len("team:model:"):], model):
            continue
        if scope.startswith("team:workflow:") and workflow != scope[len("team:workflow:"):]:
            continue
        out = [a + (b or 0) for a, b in zip(out, sums, strict=True)]
    return out


def staleness(cache: dict[str, Any], now: float) -> float:
    """Seconds since the last successful sync (since the first attempt when none has succeeded yet)."""
    since = cache.get("ok_at") or cache.get("first_attempt_at") or now
    return max(now - float(since), 0.0)


def is_stale(cache: dict[str, Any] | None, settings: TeamSettings, now: float) -> bool:
    return cache is not None and staleness(cache, now) > settings.max_staleness


def team_states(ledger: Ledger, config: Any, now: datetime, limits: dict[str, float], *,
                session_id: str | None = None, model: str | None = None,
                cache: dict[str, Any] | None = None) -> list[BudgetState]:
    """Every team budget that applies now (none before the first successful sync: the server holds them).
    `cache`: totals to use instead of the cache file's (`tokens team status` pulls its own)."""
    from ..levels import level_for

    settings = TeamSettings.from_config(config)
    cache = cache if cache is not None else read_cache(os.path.dirname(ledger.path))
    if settings is None or cache is None or not cache.get("budgets") or cache.get("team") != settings.name:
        return []
    stale = is_stale(cache, settings, now.timestamp())
    if stale and settings.on_stale == "open":
        return []
    spans = periods(cache.get("timezone") or "UTC", now)
    classes = cache.get("classes") or DEFAULT_CLASSES
    local = ledger.unpushed_usage(spans["day"][1:], spans["month"][1:])
    acked_limits = ledger.acknowledged_limits((spans["day"][0], spans["month"][0], ""))
    workflows = None
    if session_id:
        workflows = {run["name"] for run in ledger.active_runs(session_id)}
    states: list[BudgetState] = []
    for budget in cache["budgets"]:
        scope = budget["scope"]
        if session_id and scope.startswith("team:model:") and not model_matches(scope[11:], model):
            continue
        if workflows is not None and scope.startswith("team:workflow:") and scope[14:] not in workflows:
            continue
        span = scope_period(scope)
        period, _, resets = spans[span]
        pulled = (cache.get("scopes") or {}).get(scope) or {}
        server = pulled.get("sums") if pulled.get("period") == period else None  # a new day or month starts at 0
        sums = [a + b for a, b in zip(server or [0] * len(SUMS), _local_sums(local, scope, span), strict=True)]
        used, cost = counted(sums, classes), sums[-1]
        tokens, usd = int(budget.get("tokens") or 0), budget.get("usd")
        usd = float(usd) if usd is not None else None
        if stale and settings.on_stale == "closed":
            used = max(used, tokens)
            cost = max(cost, int((usd or 0) * 1_000_000))
        probe = BudgetState(scope, used, tokens, "ok", period, resets, round(cost / 1_000_000, 6), usd)
        held = tuple(sorted(t for t, at in acked_limits.get((scope, period), {}).items() if at == tokens))
        states.append(BudgetState(scope, used, tokens, level_for(probe.percent, limits), period, resets,
                                  probe.used_usd, usd, held))
    return states


def stale_info(data_dir: Any, config: Any, now: float) -> dict[str, Any] | None:
    """While the team totals are older than team.max_staleness: the outage's key (its start), how long, what
    on_stale does and the last error (redacted by the sync); else None."""
    settings = TeamSettings.from_config(config)
    cache = read_cache(data_dir)
    if settings is None or cache is None or not is_stale(cache, settings, now):
        return None
    since = cache.get("ok_at") or cache.get("first_attempt_at")
    return {"key": f"team_stale:{since}", "minutes": staleness(cache, now) / 60, "on_stale": settings.on_stale,
            "error": cache.get("error")}


def stale_at(data_dir: Any, config: Any, now: float, classes: list[str]) -> tuple[list[str], float]:
    """For a record of the hook's answer (hook._remember): the token classes local budgets count (`classes`) with
    those the team's count, and the moment the team cache turns stale (team_states and stale_info change then;
    infinity when it cannot: no cache, or stale already, which lasts until a sync rewrites the cache)."""
    settings = TeamSettings.from_config(config)
    cache = read_cache(data_dir)
    if settings is None or cache is None:
        return classes, float("inf")
    every = [*classes, *(c for c in cache.get("classes") or DEFAULT_CLASSES if c not in classes)]
    if is_stale(cache, settings, now):
        return every, float("inf")
    since = cache.get("ok_at") or cache.get("first_attempt_at")  # as staleness() reads it
    return every, min(float(since) if since else now, now) + settings.max_staleness
