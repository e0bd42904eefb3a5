"""A repository's config file is untrusted: it may tighten the user's budgets, never loosen them.

Anyone can commit `.claude/token_budgets.yaml` to a repository the user then opens. From that file only what makes
enforcement stricter is taken: a lower limit, a new limit, a lower threshold (never 0, which would mean "off" or
"always"), a stricter mode, and workflow definitions (new workflows, more commands, a lower priority). Everything
else (alerts, pricing, on_error, counted_token_classes, timezone, optimizations, degradation_strategy) is ignored,
unless the user's own config lists the project under `trusted_projects`; then the file is layered like the user's.
"""

from __future__ import annotations

import os

from . import nested
from .budgets import split_limit
from .levels import THRESHOLD_KEYS, parse_percent, thresholds

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MODE_STRICTNESS = {"normal": 0, "auto": 1, "economy": 2}
PRIORITY_STRICTNESS = {"critical": 0, "normal": 1, "low": 2}
GLOBAL_LIMITS = ("daily_limit", "monthly_limit", "daily_limit_usd", "monthly_limit_usd")


def is_trusted(project_dir: str | None, user: dict[str, Any]) -> bool:
    """True when the user's own config lists `project_dir` (or a folder above it) under trusted_projects."""
    if not project_dir:
        return False
    listed = user.get("trusted_projects") or []
    real = os.path.realpath(project_dir)
    for entry in listed:
        if not isinstance(entry, str) or not entry.strip():
            continue
        root = os.path.realpath(os.path.expanduser(entry))
        if real == root or real.startswith(root.rstrip(os.sep) + os.sep):
            return True
    return False


class _View:
    """The `get` of a Config over a plain dict, so levels.thresholds can read a layer being merged."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def get(self, *keys: str, default: Any = None) -> Any:
        return nested.get(self.data, *keys, default=default)


def restrict(base: dict[str, Any], layer: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The part of a project `layer` that only tightens `base` (the merged trusted layers), and what was ignored.

    The result is merged over `base` as a layer; each ignored setting is one phrase for the user."""
    accepted: dict[str, Any] = {}
    ignored: list[str] = []
    for key in layer:
        if key not in ("budgets", "enforcement", "workflows", "mode"):
            ignored.append(key)
    budgets = layer.get("budgets")
    if isinstance(budgets, dict):
        out = _budgets(base.get("budgets") or {}, budgets, ignored)
        if out:
            accepted["budgets"] = out
    enforcement = layer.get("enforcement")
    if isinstance(enforcement, dict):
        for key in enforcement:
            if key != "thresholds":
                ignored.append(f"enforcement.{key}")
        levels = _thresholds(base, enforcement.get("thresholds"), ignored)
        if levels:
            accepted["enforcement"] = {"thresholds": levels}
    if "mode" in layer:
        mine, theirs = base.get("mode") or "normal", layer["mode"]
        if MODE_STRICTNESS.get(theirs, -1) > MODE_STRICTNESS.get(mine, 0):
            accepted["mode"] = theirs
        elif theirs != mine:
            ignored.append(f"mode {theirs} (less strict than your {mine})")
    workflows = layer.get("workflows")
    if isinstance(workflows, dict):
        accepted["workflows"] = _workflows(base.get("workflows") or {}, workflows, ignored)
    return accepted, ignored


def _stricter_count(mine: Any, theirs: Any) -> bool:
    """A positive limit that is lower than the user's, or the user has none (0 and None mean none)."""
    if isinstance(theirs, bool) or not isinstance(theirs, (int, float)) or theirs <= 0:
        return False
    return not mine or theirs < mine


def _budgets(mine: dict[str, Any], theirs: dict[str, Any], ignored: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in theirs.items():
        if key == "global" and isinstance(value, dict):
            glob = _global(mine.get("global") or {}, value, ignored)
            if glob:
                out["global"] = glob
        elif key in ("per_workflow", "per_model") and isinstance(value, dict):
            limits = {}
            for name, limit in value.items():
                tighter = _tighter_limit((mine.get(key) or {}).get(name), limit)
                if tighter is None:
                    ignored.append(f"budgets.{key}.{name} {_show(limit)} (not below yours)")
                else:
                    limits[name] = tighter
            if limits:
                out[key] = limits
        elif key == "per_session":
            if _stricter_count(mine.get("per_session"), value):
                out["per_session"] = value
            else:
                ignored.append(f"budgets.per_session {_show(value)} (not below yours)")
        else:
            ignored.append(f"budgets.{key}")
    return out


def _global(mine: dict[str, Any], theirs: dict[str, Any], ignored: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in theirs.items():
        if key in GLOBAL_LIMITS:
            if _stricter_count(mine.get(key), value):
                out[key] = value
            else:
                ignored.append(f"budgets.global.{key} {_show(value)} (not below yours)")
        elif key == "alert_threshold":
            theirs_pct = parse_percent(value, 0.0)
            if 0 < theirs_pct < parse_percent(mine.get("alert_threshold"), THRESHOLD_KEYS["alert"][1]):
                out[key] = value
            else:
                ignored.append(f"budgets.global.alert_threshold {_show(value)} (not below yours)")
        else:
            ignored.append(f"budgets.global.{key}")
    return out


def _tighter_limit(mine: Any, theirs: Any) -> Any:
    """The stricter of two limits (a token count or {tokens, usd}), or None when `theirs` tightens nothing."""
    my_tokens, my_usd = split_limit(mine) if mine is not None else (0, None)
    their_tokens, their_usd = split_limit(theirs)
    tokens = their_tokens if _stricter_count(my_tokens, their_tokens) else None
    usd = their_usd if their_usd is not None and _stricter_count(my_usd, their_usd) else None
    if tokens is None and usd is None:
        return None
    tokens = tokens if tokens is not None else my_tokens
    usd = usd if usd is not None else my_usd
    return {"tokens": tokens, "usd": usd} if usd is not None else tokens


def _thresholds(base: dict[str, Any], theirs: Any, ignored: list[str]) -> dict[str, Any]:
    if not isinstance(theirs, dict):
        return {}
    current = {THRESHOLD_KEYS[level][0]: pct for level, pct in thresholds(_View(base)).items()}  # by config key
    out = {}
    for level, value in theirs.items():
        pct = parse_percent(value, 0.0)
        if level in current and 0 < pct < current[level]:
            out[level] = value
        else:
            ignored.append(f"enforcement.thresholds.{level} {_show(value)} (not below yours)")
    return out


def _workflows(mine: dict[str, Any], theirs: dict[str, Any], ignored: list[str]) -> dict[str, Any]:
    """New workflows as written; for the user's own, more commands and a lower priority only."""
    out: dict[str, Any] = {}
    for name, spec in theirs.items():
        if not isinstance(spec, dict):
            continue
        own = mine.get(name)
        if not isinstance(own, dict):
            out[name] = spec
            continue
        merged = dict(own)
        commands = [c for c in spec.get("commands") or [] if c not in (own.get("commands") or [])]
        if commands:
            merged["commands"] = [*(own.get("commands") or []), *commands]
        priority = spec.get("priority")
        if priority is not None:
            if PRIORITY_STRICTNESS.get(priority, -1) > PRIORITY_STRICTNESS.get(own.get("priority", "normal"), 1):
                merged["priority"] = priority
            elif priority != own.get("priority", "normal"):
                ignored.append(f"workflows.{name}.priority {priority} (higher than yours)")
        out[name] = merged
    return out


def _show(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:37] + "..."
