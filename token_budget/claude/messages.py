"""What token-budget says inside Claude Code, one function per message: the block and stop reasons, the alert the
user sees (and the notice the model gets) when a threshold is crossed, and economy mode's request to the model.

These are the messages that name Claude Code's own commands and fields (`/model`, `/compact`, a subagent's
`"model"`, Read's offset/limit); the route-neutral words they share with Slack, email and the dashboard (a
budget's name, its amounts, what is left, when it resets, the raise to suggest) come from the policy.
"""

from __future__ import annotations

from ..families import family
from ..hints import budget_argument
from ..lean_datetime import datetime
from ..levels import alert_key
from ..models import Alert, BudgetState, Decision
from ..policy import (
    Settings,
    amounts,
    binds,
    cheaper_family,
    raise_command,
    remaining,
    resets,
    scope_name,
)
from ..windows import SCALE, WINDOWS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def with_reason(decision: Decision, states: list[BudgetState] | tuple[BudgetState, ...], **kwargs: Any) -> Decision:
    """The decision policy.evaluate(states, **kwargs) made, with the reason its block or stop gives the user."""
    if decision.level not in ("block", "stop"):
        return decision
    settings = kwargs.get("settings") or Settings()
    now, model = kwargs.get("now"), kwargs.get("model")
    top = next(s for s in states if s.scope == decision.scope)
    if now is None:
        from .. import clock

        now = clock.now()
    reason = (stop_reason(top, settings, now, model) if decision.level == "stop"
              else block_reason(top, settings, now, model, states))
    return Decision(**{**decision.__dict__, "reason": reason})


def block_reason(state: BudgetState, settings: Settings, now: datetime, model: str | None,
                 states: list[BudgetState] | tuple[BudgetState, ...]) -> str:
    arg = budget_argument(state.scope)
    ack = settings.hints.ack(alert_key(state.scope, int(round(settings.thresholds["block"])), state.period))
    raise_it = raise_command(state, settings)
    if state.scope.startswith("team:"):
        return (f"token-budget: the {scope_name(state.scope)} is exhausted: {amounts(state)}; "
                f"{resets(state, settings, now)}. New requests are blocked. Only a team lead can raise it "
                f"(`tokens team budget {state.scope} AMOUNT` on their machine), or acknowledge with `{ack}` to "
                f"continue on this machine up to the {settings.thresholds['stop']:g}% emergency stop.")
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
    if state.scope.startswith("team:"):
        fix = f"Only a team lead can raise it: `tokens team budget {state.scope} AMOUNT` on their machine."
    if not state.scope.startswith("team:"):
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
    if state.scope.startswith("team:"):  # set on the team server: only a lead's command changes it
        raise_it = f"a team lead's `tokens team budget {state.scope} AMOUNT`"
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


def team_stale(info: dict[str, Any]) -> str:
    """Said once per outage of the team server (team/states.stale_info)."""
    what = {"open": "team budgets are not enforced until it answers again",
            "local": "team budgets go on from the last team totals plus this machine's usage",
            "closed": "team budgets block (team.on_stale is closed) until it answers again"}[info["on_stale"]]
    why = f" ({info['error']})" if info.get("error") else ""
    return (f"token-budget: the team server has not answered for {info['minutes']:.0f} min{why}; {what}. "
            "Nothing is lost: this machine's usage is pushed once it is back.")
