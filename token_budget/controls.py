"""Changes to what is enforced: every limit change, mode change and acknowledgement is an event (who made it, the old
and the new value), listed by `tokens events` and shown to the user once, at the next hook.

Who: a user command (the slash command, answered by the hook), the terminal (`tokens …`), or a config file edit,
which the hooks notice by comparing the limits they enforce with the ones they enforced last time (per project).
Standard library only: the hook calls `notice_config_changes` and `take_unshown` on every evaluated event.
"""

from __future__ import annotations

import os

from . import jsonlite

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from .storage import Storage

ACTOR_ENV = "TOKEN_BUDGET_ACTOR"  # set by the slash command handler; a terminal leaves it unset
TERMINAL = "terminal"
CONFIG_FILE = "config file"
KINDS = ("limit_change", "mode_change", "ack")  # control events: shown to the user once, by the next hook


def actor() -> str:
    return os.environ.get(ACTOR_ENV) or TERMINAL


def shown_already() -> bool:
    """A change made with the slash command is on the user's screen already: no need to show it again."""
    return bool(os.environ.get(ACTOR_ENV))


def limits(config: Any) -> dict[str, Any]:
    """The enforced limits and mode as a flat mapping: {"daily": 1000000, "model:claude-opus": 200000, …}."""
    out: dict[str, Any] = {"mode": config.get("mode", default="normal") or "normal"}
    glob = config.get("budgets", "global", default={}) or {}
    for key, name in (("daily_limit", "daily"), ("monthly_limit", "monthly"), ("daily_limit_usd", "daily_usd"),
                      ("monthly_limit_usd", "monthly_usd")):
        if glob.get(key) is not None:
            out[name] = glob[key]
    if config.get("budgets", "per_session") is not None:
        out["session"] = config.get("budgets", "per_session")
    for group, prefix in (("per_workflow", "workflow:"), ("per_model", "model:")):
        for name, value in (config.get("budgets", group, default={}) or {}).items():
            out[prefix + str(name)] = value
    return out


def describe(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return jsonlite.dumps(value) if isinstance(value, dict) else str(value)
    return "0 (no limit)" if value == 0 else f"{value:,}"


def record_change(store: Storage, *, kind: str, subject: str, old: Any, new: Any, who: str,
                  created_at: str, shown: bool = False, scope: str | None = None) -> None:
    """One control event. `shown`: the user already saw it (they made it with the slash command)."""
    what = {"limit_change": f"the {subject} budget", "mode_change": "the mode", "ack": subject}[kind]
    if kind == "ack":
        message = f"{what} acknowledged ({who})"
    else:
        message = f"{what} changed from {describe(old)} to {describe(new)} ({who})"
    store.record_event(level="info", kind=kind, message=message, created_at=created_at, scope=scope,
                       detail=jsonlite.dumps({"who": who, "old": old, "new": new, "subject": subject}),
                       shown_at=created_at if shown else None)


def notice_config_changes(ledger: Storage, config: Any, project: str | None, now: str,
                          reload: Callable[[], Any] | None = None) -> None:
    """Record limit and mode changes nobody recorded (an edited config file) since the hooks last looked.

    `reload` reads the config again: when this hook's copy differs from what was seen last, it may be older than
    a change another process has made since, so the comparison is made on a fresh read, under the ledger's write
    lock (which `tokens budget` and `tokens mode` hold while they save and record a change)."""
    current = limits(config)
    text = jsonlite.dumps(current, sort_keys=True)
    key = project or ""
    if ledger.seen_limits(key) == text:
        return
    with ledger.transaction():
        if reload is not None:
            current = limits(reload())
            text = jsonlite.dumps(current, sort_keys=True)
        seen = ledger.seen_limits(key)
        if seen == text:
            return
        before = jsonlite.loads(seen) if seen is not None else None
        ledger.remember_limits(key, text, now)
        if before is None:
            return  # the first look: nothing to compare with
        for name in sorted(set(before) | set(current)):
            old, new = before.get(name), current.get(name)
            if old == new or _already_recorded(ledger, name, new):
                continue
            kind = "mode_change" if name == "mode" else "limit_change"
            record_change(ledger, kind=kind, subject=name, old=old, new=new, who=CONFIG_FILE, created_at=now,
                          scope=None if name == "mode" else name)


def _already_recorded(store: Storage, name: str, new: Any) -> bool:
    """A command recorded this change itself (the overrides it wrote are what changed the config)."""
    detail = store.last_change_detail(name)
    return detail is not None and jsonlite.loads(detail).get("new") == new


def take_unshown(ledger: Storage, now: str) -> list[str]:
    """The control events nobody has shown the user yet; this call shows them (one hook wins each)."""
    return [f"token-budget: {message}." for message in ledger.take_unshown(now)]
