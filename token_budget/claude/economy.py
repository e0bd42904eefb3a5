"""Economy mode and model budgets inside Claude Code: what a tool call or a prompt is answered beyond "allowed".

A repeated read-only call refused (its earlier result is in the context), a large Read limited, batching and
`/compact` advice given once, a subagent moved to a cheaper model, a low-priority workflow deferred. Each is
recorded as a degradation. Loaded by enforce.py only when one can apply (economy mode, a subagent, a prompt): the
common answer of a tool call, `{}`, never loads it. Standard library only: this runs in hooks.
"""

from __future__ import annotations

import os

from .. import jsonlite
from ..families import DOWNGRADE_ORDER, family
from ..levels import parse_percent
from ..models import Degradation
from ..periods import day_bounds, today, zone
from ..policy import binds, cheaper_family, family_blocked, scope_name

TYPE_CHECKING = False  # typing costs milliseconds of import on every hook; annotations are strings
if TYPE_CHECKING:
    from typing import Any

    from ..ledger import Ledger
    from ..models import BudgetState
    from .enforce import Step

DEFAULT_WINDOW, LONG_WINDOW = 200_000, 1_000_000


def subagent_target(step: Step, tool: str, tool_input: dict[str, Any], ledger: Ledger) -> tuple[str | None, str | None]:
    """Move a subagent to a cheaper model that has budget left, rather than deny it: (the model to run it on, or
    None to leave it as asked; the reason to deny it, when no cheaper model has budget left)."""
    decision, settings = step.decision, step.settings
    requested = family(jsonlite.text(tool_input.get("model"))) or family(step.model)
    target = None
    if requested and family_blocked(step.states, requested, settings):
        target = cheaper_family(step.states, requested, settings)  # the next cheaper: keep as much quality
        if target is None:
            return None, (f"token-budget: the {requested} model budget is exhausted and no cheaper model has budget "
                          "left; do the work in this conversation or tell the user.")
        why = "model_budget"
    elif decision.economy and "switch_to_cheaper_model" in decision.actions and requested in DOWNGRADE_ORDER and \
            DOWNGRADE_ORDER.index(requested) <= DOWNGRADE_ORDER.index(settings.downgrade_from):
        target = cheaper_family(step.states, requested, settings, prefer=settings.downgrade_to)
        why = "economy"
    if not target or target == requested:
        return None, None
    with ledger.transaction():
        why_json = jsonlite.dumps({"reason": why})
        ledger.record_degradation(Degradation("model_downgrade", step.session_id, tool, why_json,
                                              jsonlite.text(tool_input.get("model")) or step.model, target), step.stamp)
    return target, None


def cached_call(step: Step, tool: Any, key: tuple[str, str], ledger: Ledger) -> str | None:
    """The refusal of a call that already ran in this session (`key`: enforce.call_key's), else None."""
    row = ledger.recall_call(step.session_id, key[0])
    if row is None:
        return None
    with ledger.transaction():
        ledger.record_degradation(Degradation("cache_hit", step.session_id, str(tool),
                                              jsonlite.dumps({"summary": row[0], "earlier": row[1]})), step.stamp)
    unchanged = " (the file is unchanged since)" if tool == "Read" else ""
    return (f"token-budget economy mode: this exact {row[0]}{unchanged} already ran in this session at {row[2]} "
            f"(tool_use_id {row[1] or 'unknown'}). Use that earlier result instead of repeating the call.")


def limit_read(step: Step, tool: Any, tool_input: dict[str, Any], payload: dict[str, Any],
               ledger: Ledger) -> dict[str, Any] | None:
    if tool != "Read" or "reduce_context_window" not in step.decision.actions or tool_input.get("limit"):
        return None
    path = jsonlite.text(tool_input.get("file_path"))
    cwd = jsonlite.text(payload.get("cwd"))
    reduce = step.config.get("optimizations", "reduce_context", default={}) or {}
    if not path or not cwd or not reduce.get("enabled", True):
        return None
    # Only inside the project: an "allow" here must not approve a read Claude Code would have asked about.
    real, root = os.path.realpath(path), os.path.realpath(cwd)
    if os.path.commonpath([real, root]) != root:
        return None
    try:
        size = os.stat(real).st_size
    except OSError:
        return None
    if size <= int(reduce.get("large_file_bytes", 40_000)):
        return None
    limit = int(reduce.get("read_limit", 400))
    with ledger.transaction():
        ledger.record_degradation(Degradation("read_limit", step.session_id, "Read",
                                              jsonlite.dumps({"file": path, "bytes": size, "limit": limit})),
                                  step.stamp)
    return {**tool_input, "limit": limit}


def batch_once(step: Step, ledger: Ledger) -> str | None:
    if "batch_remaining_work" not in step.decision.actions or not step.session_id:
        return None
    tz = zone(step.settings.timezone)
    since = day_bounds(today(tz, step.now), tz)[0]
    if ledger.has_degradation(step.session_id, "batch_request", since):
        return None
    with ledger.transaction():
        ledger.record_degradation(Degradation("batch_request", step.session_id), step.stamp)
    from .messages import economy_context

    return economy_context(step.states, step.settings, step.model)


def compact_once(step: Step, ledger: Ledger) -> str | None:
    """Past the context_compression trigger, with a large context, suggest /compact once per session (no hook
    can compact: claude-code.md §7)."""
    binding = _compression_due(step)
    if not binding:
        return None
    compression = step.config.get("optimizations", "context_compression", default={}) or {}
    row = ledger.latest_main_request(step.session_id)
    context = row[2] if row else 0
    window = LONG_WINDOW if context > DEFAULT_WINDOW else DEFAULT_WINDOW
    if context < window * parse_percent(compression.get("min_context"), 50.0) / 100:
        return None
    if ledger.has_degradation(step.session_id, "compact_suggestion"):
        return None
    with ledger.transaction():
        ledger.record_degradation(Degradation("compact_suggestion", step.session_id, None,
                                              jsonlite.dumps({"context_tokens": context, "window": window})),
                                  step.stamp)
    tight = max(binding, key=lambda s: s.percent)
    return (f"token-budget: this conversation's context is {context:,} tokens ({100 * context / window:.0f}% of the "
            f"{window:,}-token window) and every request resends it, with the {scope_name(tight.scope)} at "
            f"{tight.percent:.0f}%. Run `/compact` to summarize the older context.")


def _compression_due(step: Step) -> list[BudgetState]:
    """The budgets binding this session, when one is past the context_compression trigger; else []."""
    compression = step.config.get("optimizations", "context_compression", default={}) or {}
    if not compression.get("enabled", True) or not step.session_id:
        return []
    trigger = parse_percent(compression.get("trigger"), 60.0)
    binding = [s for s in step.states if binds(s, step.model)]
    return binding if binding and max(s.percent for s in binding) >= trigger else []


def deferred_reason(step: Step) -> str:
    tight = max((s for s in step.states if binds(s, step.model)), key=lambda s: s.percent, default=None)
    why = f" (the {scope_name(tight.scope)} is at {tight.percent:.0f}%)" if tight else ""
    return (f"token-budget: the {step.deferred} workflow has low priority and is deferred while economy mode is on"
            f"{why}. Run it after the budget resets, or force it now with `{step.settings.hints.mode('normal')}`.")
