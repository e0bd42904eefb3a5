"""What the team looks like from this machine: the Team section of `tokens status`, and `tokens team status`.

From the cache the sync last wrote (no network), or from totals just pulled (`tokens team status` reads the
server's hourly rollup, so it costs the same at 10M requests as at 10k).
"""

from __future__ import annotations

from ..budget_status import state_json
from . import TeamSettings
from .states import is_stale, read_cache, staleness, team_states

TYPE_CHECKING = False
if TYPE_CHECKING:
    from datetime import datetime
    from typing import Any

    from ..ledger import Ledger


def summary(ledger: Ledger, config: Any, now: datetime, cache: dict[str, Any] | None = None) -> dict[str, Any]:
    """The team's budgets (cached totals + this machine's unpushed usage), your share, the top members, and how
    fresh it all is."""
    import os

    from ..levels import thresholds

    settings = TeamSettings.from_config(config)
    assert settings is not None
    cache = cache if cache is not None else read_cache(os.path.dirname(ledger.path))
    states = [state_json(s) for s in team_states(ledger, config, now, thresholds(config), cache=cache)]
    out: dict[str, Any] = {"team": settings.name, "member": settings.member, "budgets": states,
                           "unpushed": ledger.unpushed_count(),
                           "synced": cache is not None and bool(cache.get("ok_at")),
                           "on_stale": settings.on_stale, "max_staleness": settings.max_staleness}
    if cache is None:
        return out
    month = cache.get("month") or {}
    me = cache.get("me") or {}
    classes = cache.get("classes") or []
    out.update(
        member=cache.get("member") or settings.member,
        timezone=cache.get("timezone"),
        synced_at=cache.get("ok_at"),
        age_seconds=round(staleness(cache, now.timestamp()), 1),
        stale=is_stale(cache, settings, now.timestamp()),
        error=cache.get("error"),
        month={"period": month.get("period"), "tokens": month.get("tokens", 0), "requests": month.get("requests", 0),
               "cost_usd": round((month.get("sums") or [0])[-1] / 1_000_000, 6)},
        day={"period": (cache.get("day") or {}).get("period"), "tokens": (cache.get("day") or {}).get("tokens", 0)},
        my_tokens=me.get("tokens", 0),
        share=round(100.0 * me.get("tokens", 0) / month["tokens"], 1) if month.get("tokens") else 0.0,
        top_members=cache.get("members") or [],
        member_count=cache.get("member_count", 0),
    )
    out["classes"] = classes
    return out
