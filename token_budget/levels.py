"""Levels: warn 70% (logged), alert 80% (told once), suggest 90% (advice once), block 100% (no new request), stop
110% (everything stops). The thresholds a config sets, reading a percentage as written, the level a percentage
puts a budget at, what requests just recorded leave of a budget's headroom (budgets.headroom), and the key an
alert is claimed and acknowledged under, each defined here once.

Standard library only and nothing imported: the hook, budgets, the policy, the outbox and the status line use it.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs milliseconds of import on every hook; annotations are strings
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

LEVELS = ("ok", "warn", "alert", "suggest", "block", "stop")  # in rising severity: 70/80/90/100/110 %

# level → (threshold key in enforcement.thresholds, default percent)
THRESHOLD_KEYS = {"warn": ("log", 70.0), "alert": ("alert", 80.0), "suggest": ("suggest", 90.0),
                  "block": ("block", 100.0), "stop": ("stop", 110.0)}


# The terminal colour of each level (ANSI SGR codes), for the dashboard and the status line.
COLORS = {"ok": "32", "warn": "33", "alert": "1;33", "suggest": "35", "block": "31", "stop": "1;31"}


def painted(text: str, level: str | None) -> str:
    """`text` in its level's terminal colour; unchanged for no level (None, "none") or empty text."""
    code = COLORS.get(level) if level else None
    return f"\x1b[{code}m{text}\x1b[0m" if code and text else text


def severity(level: str) -> int:
    return LEVELS.index(level)


def parse_percent(value: Any, default: float) -> float:
    """`80%`, `usage > 80%`, `80` → 80.0; anything unreadable → default (the schema has already rejected it)."""
    if isinstance(value, bool) or value is None:
        return default
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).replace("usage", "").replace(">=", "").replace(">", "").replace("%", "").strip()
    try:
        return float(text)
    except ValueError:
        return default


def thresholds(config: Any) -> dict[str, float]:
    """Percent at which each level starts. The alert level falls back to the seed's `budgets.global.alert_threshold`."""
    configured = config.get("enforcement", "thresholds", default={}) or {}
    out = {}
    for level, (key, default) in THRESHOLD_KEYS.items():
        if level == "alert" and key not in configured:
            default = parse_percent(config.get("budgets", "global", "alert_threshold"), default)
        out[level] = parse_percent(configured.get(key), default)
    return out


def level_for(percent: float, limits: dict[str, float]) -> str:
    """The most severe level whose threshold `percent` has reached."""
    level = "ok"
    for name in LEVELS[1:]:
        if percent >= limits[name]:
            level = name
    return level


def alert_key(scope: str, threshold: int, period: str) -> str:
    """The id an alert is claimed under and `tokens ack` takes: no shell metacharacter in it
    (`daily/100/2026-11-30`)."""
    return f"{scope}/{threshold}/{period}"

# -- headroom: how much more each budget can take before its next level ------------------------------------------
#
# A decision that changed nothing (no alert to claim, nothing blocked, economy mode off) stays the same decision as
# long as no budget reaches a new level. budgets.headroom says, per budget, how many tokens (and micro-USD where a
# cost limit is set) can still be added before the next threshold that would change anything; `spend_headroom`
# takes requests just recorded away from it: what they add, subtracted from every budget they could count against,
# must fit inside each, or the decision has to be made again. The hooks keep it in the session's record
# (claude/hook.py), so a tool call that records one small request far from every threshold is answered without the
# decision; `spend_headroom` runs on that path, which loads none of budgets, policy, windows or families (this
# module is loaded by every ingest already).

ROW_CLASSES = ("input", "output", "cache_creation", "cache_read")  # models.TOKEN_CLASSES: a request row's counts


def spend_headroom(headroom: dict[str, Any], rows: Iterable[tuple[Any, ...]]) -> dict[str, Any] | None:
    """The headroom left after the request rows just written, each (model, input, output, cache creation and cache
    read tokens, cost in micro-USD, cost status); None when they do not fit in every budget, or when what they add
    cannot be known exactly: a request on another model than the session's while model budgets exist (which of them
    it counts against is not recorded), or one not priced exactly while a cost limit exists. Each row counts whole
    (its counted classes) against each budget it may count against, whatever its day, session or workflow run: at
    least what the upsert added to any budget (a row written again replaces what it held, which leaves wherever it
    counted, and taking use away can only move a budget away from its next level)."""
    model, budgets = headroom["model"], headroom["budgets"]
    counted = [1 + ROW_CLASSES.index(c) for c in headroom["classes"]]
    per_model = any(b[0].startswith(("model:", "team:model:")) for b in budgets)
    priced = any(b[2] is not None for b in budgets)
    tokens = micros = 0
    for row in rows:
        if (per_model and row[0] != model) or (priced and row[6] != "priced"):
            return None
        tokens += sum(row[i] for i in counted)
        micros += row[5]
    left = []
    for scope, room_tokens, room_micros, counts in budgets:
        if counts:
            room_tokens = None if room_tokens is None else room_tokens - tokens
            room_micros = None if room_micros is None else room_micros - micros
            if (room_tokens is not None and room_tokens < 0) or (room_micros is not None and room_micros < 0):
                return None
        left.append([scope, room_tokens, room_micros, counts])
    return {**headroom, "budgets": left}
