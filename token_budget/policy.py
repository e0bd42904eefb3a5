"""The policy: budget states in, a Decision out. Pure (no I/O, no clock of its own) and free of Claude Code terms.

Levels, most severe wins: warn 70% (logged), alert 80% (the user is told once), suggest 90% (the user and the model
get concrete advice once), block 100% (no new request: prompts and tool calls are refused) and stop 110% (everything
stops). A model's own budget binds only requests on that model. `tokens ack` on a 100% block lets work go on up to
the 110% stop. Economy mode (set, or `auto` past the model_downgrade trigger) enables the degradation steps.

The words at the end (a budget's name, amounts, what is left, when it resets, the raise) name no Claude Code command:
the messages that do (a block's reason, an alert with `/model` and `/compact`) are the adapter's, claude/messages.py.
"""

from __future__ import annotations

from . import clock
from ._records import factory, record
from .families import DOWNGRADE_ORDER, family, model_matches
from .lean_datetime import datetime
from .levels import LEVELS, THRESHOLD_KEYS, parse_percent, severity, thresholds
from .models import Alert, BudgetState, Decision
from .periods import iso, parse, zone
from .windows import SCALE, WINDOWS, describe

TYPE_CHECKING = False  # typing costs milliseconds of import on every hook; annotations are strings
if TYPE_CHECKING:
    from typing import Any

    from .hints import Hints

STRATEGIES = ("switch_to_cheaper_model", "reduce_context_window", "batch_remaining_work", "defer_non_critical_tasks")
EVENT_KINDS = ("prompt", "tool", "checkpoint")


@record
class Settings:
    """The parts of the config the policy reads, as plain data."""

    thresholds: dict[str, float] = factory(lambda: {k: v[1] for k, v in THRESHOLD_KEYS.items()})
    mode: str = "normal"
    economy_trigger: float = 80.0
    auto_economy: bool = True
    strategies: tuple[str, ...] = STRATEGIES
    downgrade_from: str = "sonnet"
    downgrade_to: str = "haiku"
    timezone: str = "UTC"
    command: str | None = None  # how hints spell `tokens`: None is the terminal's; the adapter sets the slash form

    @property
    def hints(self) -> Hints:
        from .hints import Hints

        return Hints(self.command) if self.command else Hints()

    @classmethod
    def from_config(cls, config: Any, command: str | None = None) -> Settings:
        downgrade = config.get("optimizations", "model_downgrade", default={}) or {}
        strategies = config.get("degradation_strategy", "on_budget_exceeded", default=list(STRATEGIES))
        return cls(
            thresholds=thresholds(config),
            mode=config.get("mode", default="normal") or "normal",
            economy_trigger=parse_percent(downgrade.get("trigger"), 80.0),
            auto_economy=bool(downgrade.get("enabled", True)),
            strategies=tuple(strategies or ()),
            downgrade_from=family(downgrade.get("from") or "claude-sonnet") or "sonnet",
            downgrade_to=family(downgrade.get("to") or "claude-haiku") or "haiku",
            timezone=config.timezone,
            command=command,
        )


def binds(state: BudgetState, model: str | None) -> bool:
    """Does this budget constrain a request on `model`? Every non-model budget does."""
    if not state.scope.startswith("model:"):
        return True
    return model_matches(state.scope[len("model:"):], model)


def effective_level(state: BudgetState, settings: Settings) -> str:
    """The level after acknowledgements: an acknowledged 100% block lets work go on (as a 90% suggest) until 110%."""
    if state.level == "block" and int(round(settings.thresholds["block"])) in state.acked:
        return "suggest"
    return state.level


def economy_active(states: list[BudgetState] | tuple[BudgetState, ...], settings: Settings,
                   model: str | None = None) -> bool:
    if settings.mode == "economy":
        return True
    if settings.mode != "auto" or not settings.auto_economy:
        return False
    return any(s.percent >= settings.economy_trigger for s in states if binds(s, model))


def evaluate(states: list[BudgetState] | tuple[BudgetState, ...], *, mode: str | None = None, event_kind: str,
             model: str | None = None, settings: Settings | None = None, now: datetime | None = None,
             exempt: bool = False) -> Decision:
    """Decide for the next step of a session on `model`. `event_kind`: "prompt" (a new prompt), "tool" (a tool
    call about to run) or "checkpoint" (anything else). `exempt` marks a step that must always pass (the user
    adjusting budgets)."""
    settings = settings or Settings()
    if mode is not None and mode != settings.mode:
        settings = Settings(**{**settings.__dict__, "mode": mode})
    now = now or clock.now()
    created = iso(now)
    alerts: list[Alert] = []
    for state in states:
        for level in LEVELS[1 : severity(state.level) + 1]:
            alerts.append(Alert(state.scope, level, int(round(settings.thresholds[level])), state.period, state.used,
                                state.limit, created, _workflow_of(state)))
    # Most severe wins; on a tie a budget that binds everything beats a model's own (it blocks more).
    ranked = sorted(
        ((effective_level(s, settings), s) for s in states if binds(s, model)),
        key=lambda pair: (severity(pair[0]), not pair[1].scope.startswith("model:")),
        reverse=True,
    )
    blocked_models = tuple(s.scope[len("model:"):] for s in states if s.scope.startswith("model:")
                           and severity(effective_level(s, settings)) >= severity("block"))
    economy = economy_active(states, settings, model)
    actions = tuple(a for a in settings.strategies if a in STRATEGIES) if economy else ()
    if not ranked or ranked[0][0] == "ok":
        return Decision(alerts=tuple(alerts), economy=economy, blocked_models=blocked_models, states=tuple(states),
                        actions=actions)
    level, top = ranked[0]
    action = "allow"
    if level == "stop":
        action = "stop"
    elif level == "block":
        action = "block" if event_kind in ("prompt", "tool") else "allow"
    if exempt:
        action = "allow"
    return Decision(level=level, scope=top.scope, action=action, alerts=tuple(alerts),
                    economy=economy, blocked_models=blocked_models, states=tuple(states), actions=actions)


def _workflow_of(state: BudgetState) -> str | None:
    return state.scope.split(":", 1)[1] if state.scope.startswith("workflow:") else None


def cheaper_family(states: list[BudgetState] | tuple[BudgetState, ...], current: str | None, settings: Settings,
                   *, prefer: str | None = None) -> str | None:
    """The first family cheaper than `current` (or `prefer`, if cheaper) whose own budgets are not exhausted."""
    start = DOWNGRADE_ORDER.index(current) + 1 if current in DOWNGRADE_ORDER else 0
    candidates = list(DOWNGRADE_ORDER[start:])
    if prefer in candidates:
        candidates.remove(prefer)
        candidates.insert(0, prefer)
    for name in candidates:
        if not family_blocked(states, name, settings):
            return name
    return None


def family_blocked(states: list[BudgetState] | tuple[BudgetState, ...], name: str, settings: Settings) -> bool:
    probe = f"claude-{name}"
    return any(s.scope.startswith("model:") and model_matches(s.scope[6:], probe)
               and severity(effective_level(s, settings)) >= severity("block") for s in states)


# -- words every route shares -----------------------------------------------------------------------------------


TEAM_SCOPE_NAMES = {"team:daily": "team's daily budget", "team:monthly": "team's monthly budget",
                    "team:member:monthly": "your monthly share of the team budget"}


def scope_name(scope: str) -> str:
    if scope.startswith("team:"):  # team budgets (token_budget/team/): set on the team server by its lead
        if scope in TEAM_SCOPE_NAMES:
            return TEAM_SCOPE_NAMES[scope]
        kind, _, name = scope[5:].partition(":")
        return f"team's {name} {kind} budget (this month)"
    if scope in WINDOWS:
        return f"{WINDOWS[scope]} budget"
    if scope.startswith("workflow:"):
        return f"{scope[9:]} workflow budget"
    if scope.startswith("model:"):
        return f"{scope[6:]} model budget (today)"
    return f"{scope} budget"


def amounts(state: BudgetState) -> str:
    if state.scope in WINDOWS:
        return describe(state)
    parts = []
    if state.limit:
        parts.append(f"{state.used:,} / {state.limit:,} tokens")
    if state.limit_usd is not None:
        parts.append(f"${state.used_usd or 0:,.2f} / ${state.limit_usd:,.2f}")
    return " and ".join(parts) + f" ({state.percent:.1f}%)"


def remaining(state: BudgetState) -> str:
    if state.scope in WINDOWS:
        return f"{max(state.limit - state.used, 0) / SCALE:.1f} points of the window left"
    if state.limit:
        return f"{state.remaining:,} tokens left"
    return f"${max((state.limit_usd or 0) - (state.used_usd or 0), 0):,.2f} left"


def resets(state: BudgetState, settings: Settings, now: datetime) -> str:
    if state.scope.startswith("workflow:"):
        return f"it applies to this workflow run and ends with it (`{settings.hints.command('workflow', 'end')}`)"
    if state.scope == "session":
        return "it applies to this session only"
    if not state.resets_at:
        return "it does not reset"
    moment = parse(state.resets_at)
    local = moment.astimezone(zone(settings.timezone))
    minutes = max(int((moment - now).total_seconds() // 60), 0)
    return f"resets {local:%Y-%m-%d %H:%M} {local.tzname()} (in {minutes // 60}h {minutes % 60:02d}m)"


def suggested_limit(state: BudgetState) -> str:
    """The same raise the alert channels suggest (hints.suggested_amount)."""
    from .hints import suggested_amount, suggested_usd

    if state.limit or state.scope in WINDOWS:
        return suggested_amount(state.scope, state.used, state.limit)
    return suggested_usd(state.used_usd or 0.0, state.limit_usd or 0.0)


def raise_command(state: BudgetState, settings: Settings) -> str:
    return settings.hints.budget(state.scope, suggested_limit(state))
