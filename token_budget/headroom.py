"""Headroom: how much more each budget can take before it reaches its next level.

A decision that changed nothing (no alert to claim, nothing blocked, economy mode off) stays the same decision as
long as no budget reaches a new level. `room` says, per budget, how many tokens (and micro-USD where a cost limit is
set) can still be added before the next threshold that would change anything: the next level (70/80/90/100/110% by
default) or, in `auto` mode, the economy trigger. `spend` takes requests just recorded away from it: what they add,
subtracted from every budget they could count against, must fit inside each, or the decision has to be made again.

The hooks keep this in the session's record (claude/hook.py), so a tool call that records one small request far
from every threshold is answered without the decision. Standard library only, nothing imported at the top: `spend`
runs on that path, which loads none of budgets, policy, windows or families.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs milliseconds of import on every hook; annotations are strings
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    from .models import BudgetState

# Percentage points kept back below a threshold: BudgetState.percent is rounded to a tenth, so a budget can reach a
# level's threshold 0.05 points before its exact share does.
MARGIN = 0.1
# The scopes whose use the ledger's request rows make; any other scope (the subscription's windows are reported by
# the client, team budgets come from the server) cannot be followed by counting requests.
COUNTED = ("daily", "monthly", "session")
COUNTED_PREFIXES = ("workflow:", "model:")


def room(states: Iterable[BudgetState], settings: Any, model: str | None,
         classes: Iterable[str]) -> dict[str, Any] | None:
    """The headroom of every budget for a session on `model`, or None when there can be none (a team budget, or a
    scope this module does not know). `settings`: policy.Settings (thresholds, mode, the economy trigger);
    `classes`: the token classes budgets count (config.counted_classes).

    Each budget is [scope, tokens left or None (no token limit), micro-USD left or None (no cost limit), whether a
    request on `model` counts against it]; a budget the requests cannot move (a subscription window) has none."""
    from .families import model_matches
    from .windows import is_window

    levels = sorted({*settings.thresholds.values(),
                     *((settings.economy_trigger,) if settings.mode == "auto" and settings.auto_economy else ())})
    budgets = []
    for state in states:
        if is_window(state.scope):
            continue  # its figures change only when the client reports them (a ledger write)
        if state.scope not in COUNTED and not state.scope.startswith(COUNTED_PREFIXES):
            return None
        nxt = next((t for t in levels if t > state.percent), None)
        tokens = micros = None
        if nxt is not None and state.limit:
            tokens = max(int((nxt - MARGIN) * state.limit / 100) - state.used - 1, -1)
        if nxt is not None and state.limit_usd:
            used = round((state.used_usd or 0.0) * 1_000_000)
            micros = max(int((nxt - MARGIN) * state.limit_usd * 10_000) - used - 1, -1)
        counts = not state.scope.startswith("model:") or model_matches(state.scope[len("model:"):], model)
        budgets.append([state.scope, tokens, micros, counts])
    return {"model": model, "classes": [c for c in CLASSES if c in set(classes)], "budgets": budgets}


CLASSES = ("input", "output", "cache_creation", "cache_read")  # models.TOKEN_CLASSES: the order of a row's counts


def spend(headroom: dict[str, Any], rows: Iterable[tuple[Any, ...]]) -> dict[str, Any] | None:
    """The headroom left after the request rows just written, each (model, input, output, cache creation and cache
    read tokens, cost in micro-USD, cost status); None when they do not fit in every budget, or when what they add
    cannot be known exactly: a request on another model than the session's while model budgets exist (which of them
    it counts against is not recorded), or one not priced exactly while a cost limit exists. Each row counts whole
    (its counted classes) against each budget it may count against, whatever its day, session or workflow run: at
    least what the upsert added to any budget (a row written again replaces what it held, which leaves wherever it
    counted, and taking use away can only move a budget away from its next level)."""
    model, budgets = headroom["model"], headroom["budgets"]
    counted = [1 + CLASSES.index(c) for c in headroom["classes"]]
    per_model = any(b[0].startswith("model:") for b in budgets)
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
