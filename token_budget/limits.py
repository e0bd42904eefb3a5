"""Setting a limit or the mode: the rules behind `tokens budget SCOPE AMOUNT` and `tokens mode`, for the CLI, the
slash command (which runs the same commands inside the hook) and any other caller.

A change is saved as an override (config.save_override; the user's YAML is never rewritten) and recorded as a
control event (controls.record_change: who, the old and the new value) in one ledger transaction, so a hook that
reads the new override finds its event and never takes the change for an edit of the config file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import clock
from .errors import TokenBudgetError
from .hints import Hints

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

    from .config import Config
    from .storage import Storage

GLOBAL_SCOPES = {"daily": "daily_limit", "monthly": "monthly_limit"}


def parse_amount(text: str) -> tuple[str, float | int]:
    """`300000`, `300k`, `1.5M`, `1,000,000` → ("tokens", n); `$20` or `20usd` → ("usd", 20.0)."""
    raw = text.strip().lower().replace(",", "").replace("_", "")
    try:
        if raw.startswith("$") or raw.endswith("usd"):
            value = float(raw.lstrip("$").removesuffix("usd"))
            if value < 0:
                raise ValueError
            return "usd", value
        scale = {"k": 1_000, "m": 1_000_000}.get(raw[-1:], 1)
        number = float(raw[:-1] if scale > 1 else raw)
        if number < 0 or number != number:
            raise ValueError
        return "tokens", int(round(number * scale))
    except ValueError:
        raise TokenBudgetError(f"{text!r} is not an amount.",
                               "Give tokens (500000, 500k, 1.5M) or dollars ($20); 0 turns the budget off.") from None


def window_share(text: str) -> str | bool:
    """`80%` or `80` → "80%" (that share of a subscription window is the limit); `off` or `0` → False."""
    raw = text.strip().lower().removesuffix("%").strip()
    if raw in ("off", "0", "false", "none"):
        return False
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 1000:
        raise TokenBudgetError(f"{text!r} is not a share of the window.",
                               "Give a percentage such as 80% (that much of the window is the limit), or off.")
    return f"{value:g}%"


def override_keys(config: Config, scope: str) -> tuple[list[str], str]:
    """Where `tokens budget SCOPE …` is kept, and what kind of budget it is."""
    from .windows import WINDOWS

    budgets = config.get("budgets", default={}) or {}
    if scope in WINDOWS:
        return ["budgets", "windows", scope], "window"
    if scope in GLOBAL_SCOPES:
        return ["budgets", "global", GLOBAL_SCOPES[scope]], "global"
    if scope == "session":
        return ["budgets", "per_session"], "session"
    if scope.startswith("workflow:") or scope in (budgets.get("per_workflow") or {}) or \
            scope in (config.get("workflows", default={}) or {}):
        name = scope.removeprefix("workflow:")
        return ["budgets", "per_workflow", name], "workflow"
    if scope.startswith("model:") or scope in (budgets.get("per_model") or {}) or scope.startswith("claude") or \
            any(c in scope for c in "*?["):
        return ["budgets", "per_model", scope.removeprefix("model:")], "model"
    known = set(budgets.get("per_workflow") or {}) | set(config.get("workflows", default={}) or {})
    workflows = ", ".join(sorted(known))
    raise TokenBudgetError(
        f"{scope!r} is not a budget scope.",
        f"Use daily, monthly, session, a workflow ({workflows or 'none configured'}) or a model key such as "
        "claude-opus (or model:<key>, workflow:<name> for a new one).",
    )


def subject_of(keys: list[str]) -> str:
    """The name controls.limits() gives this override: daily, monthly_usd, session, workflow:x, model:x."""
    if keys[:2] == ["budgets", "global"]:
        return keys[2].replace("_limit", "")
    if keys[:2] == ["budgets", "per_session"]:
        return "session"
    if keys[:2] == ["budgets", "windows"]:
        return keys[2]  # five_hour, seven_day, spend_limit
    return {"per_workflow": "workflow:", "per_model": "model:"}[keys[1]] + keys[2]


@dataclass(frozen=True)
class BudgetChange:
    """What `set_budget` did: the override's keys and stored value, the file, and the amount as given."""

    scope: str
    keys: list[str]
    value: Any
    file: Path
    kind: str  # window, global, session, workflow or model
    unit: str  # tokens, usd or share (a window's)
    amount: float | int | str | bool

    def as_dict(self) -> dict[str, Any]:
        return {"scope": self.scope, "set": ".".join(self.keys), "value": self.value, "file": str(self.file)}


def stored_value(config: Config, keys: list[str], kind: str, amount: str) -> tuple[list[str], Any, str, Any]:
    """(keys, the value to store, unit, the amount parsed) for `tokens budget SCOPE AMOUNT`. A USD amount goes
    beside the token limit: `daily_limit_usd` for a global budget, `{tokens, usd}` for a workflow or model."""
    if kind == "window":
        share = window_share(amount)
        return keys, share, "share", share
    unit, value = parse_amount(amount)
    if kind == "global":
        return (keys[:-1] + [keys[-1] + "_usd"] if unit == "usd" else keys), value, unit, value
    if kind == "session":
        if unit == "usd":
            raise TokenBudgetError("The session budget is in tokens only.",
                                   f"Run `{Hints.current().budget('session', 200000)}`.")
        return keys, value, unit, value
    current = config.get(*keys)
    tokens = current.get("tokens") if isinstance(current, dict) else current
    usd = current.get("usd") if isinstance(current, dict) else None
    if unit == "usd":
        usd = value
    else:
        tokens = value
    stored: Any = {k: v for k, v in (("tokens", tokens), ("usd", usd)) if v is not None}
    if list(stored) == ["tokens"]:
        stored = stored["tokens"]
    return keys, stored, unit, value


def set_budget(ledger: Storage, config: Config, data_dir: Path | str, scope: str, amount: str) -> BudgetChange:
    """Set one budget from what the user typed (`300k`, `$20`, `80%` of a window) and record the change."""
    keys, kind = override_keys(config, scope)
    keys, stored, unit, parsed = stored_value(config, keys, kind, amount)
    subject = subject_of(keys)
    path = save_change(ledger, data_dir, keys, stored, kind="limit_change", subject=subject, old=config.get(*keys),
                       new=stored, scope=subject)
    return BudgetChange(scope, keys, stored, path, kind, unit, parsed)


def set_mode(ledger: Storage, config: Config, data_dir: Path | str, mode: str) -> Path:
    """Set the mode (economy, normal, auto); a change is recorded, setting the same mode again is not."""
    old = config.get("mode", default="normal") or "normal"
    change = {"kind": "mode_change", "subject": "mode", "old": old, "new": mode} if old != mode else {}
    return save_change(ledger, data_dir, ["mode"], mode, **change)


def save_change(ledger: Storage, data_dir: Path | str, keys: list[str], value: Any, **change: Any) -> Path:
    """Save an override and record the change as an event (who made it, the old and the new value; the next hook
    shows it to the user), in one ledger transaction: a hook that reads the new override waits for the event, so
    it never takes the change for a config file edit."""
    from .config import save_override
    from .controls import actor, record_change, shown_already

    with ledger.transaction():
        path = save_override(data_dir, keys, value)
        if change:
            record_change(ledger, who=actor(), created_at=clock.timestamp(), shown=shown_already(), **change)
    return path
