"""Levels: warn 70% (logged), alert 80% (told once), suggest 90% (advice once), block 100% (no new request), stop
110% (everything stops). The thresholds a config sets, reading a percentage as written, the level a percentage
puts a budget at, and the key an alert is claimed and acknowledged under, each defined here once.

Standard library only and nothing imported: the hook, budgets, the policy, the outbox and the status line use it.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs milliseconds of import on every hook; annotations are strings
if TYPE_CHECKING:
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
