"""The policy: budget states in, a Decision out. Pure (no I/O, no clock of its own) and free of Claude Code terms.

Levels, most severe wins: warn 70% (logged), alert 80% (the user is told once), suggest 90% (the user and the model
get concrete advice once), block 100% (no new request: prompts and tool calls are refused) and stop 110% (everything
stops). A model's own budget binds only requests on that model. `tokens ack` on a 100% block lets work go on up to
the 110% stop. Economy mode (set, or `auto` past the model_downgrade trigger) enables the degradation steps.
"""

from __future__ import annotations

from datetime import datetime

from . import clock
from ._records import factory, record
from .families import DOWNGRADE_ORDER, family, model_matches
from .hints import TERMINAL, Hints, budget_argument, suggested_amount, suggested_usd
from .levels import LEVELS, THRESHOLD_KEYS, alert_key, parse_percent, severity, thresholds
from .models import Alert, BudgetState, Decision
from .periods import iso, parse, zone
from .windows import SCALE, WINDOWS, describe

TYPE_CHECKING = False  # typing costs milliseconds of import on every hook; annotations are strings
if TYPE_CHECKING:
    from typing import Any

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
    command: str = TERMINAL  # how hints spell `tokens` for this user (the Claude Code adapter sets the slash form)

    @property
    def hints(self) -> Hints:
        return Hints(self.command)

    @classmethod
    def from_config(cls, config: Any, command: str = TERMINAL) -> Settings:
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
    action, reason = "allow", None
    if level == "stop":
        action, reason = "stop", stop_reason(top, settings, now, model)
    elif level == "block":
        action = "block" if event_kind in ("prompt", "tool") else "allow"
        reason = block_reason(top, settings, now, model, states)
    if exempt:
        action = "allow"
    return Decision(level=level, scope=top.scope, action=action, reason=reason, alerts=tuple(alerts),
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


# -- words -----------------------------------------------------------------------------------------------------


def scope_name(scope: str) -> str:
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
    if state.limit or state.scope in WINDOWS:
        return suggested_amount(state.scope, state.used, state.limit)
    return suggested_usd(state.used_usd or 0.0, state.limit_usd or 0.0)


def raise_command(state: BudgetState, settings: Settings) -> str:
    return settings.hints.budget(state.scope, suggested_limit(state))


def block_reason(state: BudgetState, settings: Settings, now: datetime, model: str | None,
                 states: list[BudgetState] | tuple[BudgetState, ...]) -> str:
    arg = budget_argument(state.scope)
    ack = settings.hints.ack(alert_key(state.scope, int(round(settings.thresholds["block"])), state.period))
    raise_it = raise_command(state, settings)
    if state.scope.startswith("model:"):
        other = cheaper_family(states, family(model), settings)
        switch = f"switch with `/model {other}` (it has budget left), " if other else "switch with `/model`, "
        return (f"token-budget: the {scope_name(state.scope)} is exhausted: {amounts(state)}; "
                f"{resets(state, settings, now)}. Requests on {model or arg} are blocked; {switch}"
                f"raise it with `{raise_it}`, or acknowledge with `{ack}` to go on up to the "
                f"{settings.thresholds['stop']:g}% stop.")
    if state.scope in WINDOWS:
        widen = "allow the whole window" if state.limit < 100 * SCALE else "turn this budget off"
        return (f"token-budget: the {scope_name(state.scope)} is exhausted: {amounts(state)}; "
                f"{resets(state, settings, now)}. New requests are blocked. To go on, {widen} with `{raise_it}`, "
                f"or acknowledge with `{ack}` to continue up to the {settings.thresholds['stop']:g}% emergency stop.")
    return (f"token-budget: the {scope_name(state.scope)} is exhausted: {amounts(state)}; "
            f"{resets(state, settings, now)}. New requests are blocked. To go on, raise it with `{raise_it}`, "
            f"or acknowledge with `{ack}` to continue up to the {settings.thresholds['stop']:g}% emergency stop.")


def stop_reason(state: BudgetState, settings: Settings, now: datetime, model: str | None) -> str:
    fix = f"`{raise_command(state, settings)}`, then continue."
    fix = (f"Switch to another model with `/model`, or raise it with {fix}" if state.scope.startswith("model:")
           else f"Raise it with {fix}")
    return (f"token-budget: emergency stop: the {scope_name(state.scope)} is at {amounts(state)}, past the "
            f"{settings.thresholds['stop']:g}% hard limit; {resets(state, settings, now)}. {fix}")


def announce(alert: Alert, state: BudgetState, settings: Settings, now: datetime, model: str | None,
             states: list[BudgetState] | tuple[BudgetState, ...] = ()) -> tuple[str | None, str | None]:
    """(message for the user, context for the model) for a newly claimed alert. 70% is only logged."""
    level = alert.level
    if level == "warn":
        return None, None
    head = f"⚠️ TOKEN BUDGET ALERT: the {scope_name(state.scope)} is at {amounts(state)}; {remaining(state)}; " \
           f"{resets(state, settings, now)}."
    ack = f"`{settings.hints.ack(alert.key)}`"
    raise_it = f"`{raise_command(state, settings)}`"
    if level == "alert":
        return f"{head} Acknowledge with {ack} or adjust with {raise_it}.", None
    if level == "suggest":
        current = family(model)
        cheaper = cheaper_family(states, current, settings, prefer=settings.downgrade_to)
        steps = []
        if cheaper and cheaper != current:
            steps.append(f"switch to {cheaper.title()} for the remaining tasks (`/model {cheaper}`)")
        steps += ["run `/compact` to shrink the context every request resends", f"or raise the budget with {raise_it}"]
        user = f"{head} Suggested: " + "; ".join(steps) + "."
        delegate = f' and give subagents `"model": "{cheaper}"`' if cheaper and cheaper != current else ""
        context = (f"Token budget notice: the {scope_name(state.scope)} is at {state.percent:.0f}% "
                   f"({remaining(state)}; {resets(state, settings, now)}). Work economically from here: batch the "
                   "remaining edits, do not re-read files already in context, use narrow Grep patterns and Read "
                   f"with offset/limit, keep answers short{delegate}. At "
                   f"{settings.thresholds['block']:g}% new requests will be blocked.")
        return user, context
    if level == "block":
        return block_reason(state, settings, now, model, states), None
    return stop_reason(state, settings, now, model), None


def economy_context(states: list[BudgetState] | tuple[BudgetState, ...], settings: Settings,
                    model: str | None) -> str:
    """What economy mode asks of the model, once per session and day."""
    tight = max((s for s in states if binds(s, model)), key=lambda s: s.percent, default=None)
    where = f" (the {scope_name(tight.scope)} is at {tight.percent:.0f}%, {remaining(tight)})" if tight else ""
    return ("Token budget economy mode is on" + where + ". Batch the remaining work: plan it in one pass, make "
            "related edits together, avoid re-reading files already in context, read large files with offset/limit, "
            f"delegate exploration to subagents with \"model\": \"{settings.downgrade_to}\", and keep answers short.")
