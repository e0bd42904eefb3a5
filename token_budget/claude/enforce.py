"""Budgets inside Claude Code: session bookkeeping before the decision, and the Decision shaped as hook JSON after.

What each level does here (../shared/claude-code.md §1.7, §7):
- 80%: `systemMessage` (the user), once per scope, threshold and period: only the hook that claims the alert says it.
- 90%: `systemMessage` + `hookSpecificOutput.additionalContext` (the model), once likewise.
- 100%: UserPromptSubmit `{"decision": "block"}` (prompts running /tokens pass), PreToolUse `permissionDecision:
  "deny"`; a model's own budget blocks only sessions on that model, and subagents move to a cheaper model instead.
- 110%: `{"continue": false, "stopReason": …}` from every evaluated hook.
PostToolUse, Stop, SubagentStop, PreCompact and SessionEnd only record: they run async, so their output would
arrive late or not at all (and a Stop additionalContext would even make Claude go on). Standard library only:
this runs in every hook.
"""

from __future__ import annotations

import os

from .. import jsonlite
from .._records import factory, record
from ..budgets import budget_states
from ..lean_datetime import datetime
from ..ledger import Ledger
from ..levels import severity
from ..models import Alert, BudgetState, Decision, Degradation
from ..periods import day_bounds, iso, today, zone
from ..policy import Settings, binds, evaluate, scope_name
from .commands import is_tokens_prompt, slash_prefix, workflow_for_prompt

TYPE_CHECKING = False  # typing costs milliseconds of import on every hook; annotations are strings
if TYPE_CHECKING:
    from typing import Any

# The events evaluated (and answered) here. The others only record: they run async (hook.ASYNC_EVENTS), so an
# alert they claimed or advice they gave could arrive a turn late or, when `-p` ends, never; the next of these
# events sees the same numbers and says it at once.
EVENT_KINDS = {"SessionStart": "checkpoint", "UserPromptSubmit": "prompt", "PreToolUse": "tool"}
SUBAGENT_TOOLS = ("Agent", "Task")  # `Task` before 2.1.63, `Agent` after
CACHEABLE_TOOLS = ("Read", "WebFetch", "Grep")
MUTATING_TOOLS = ("Edit", "Write", "MultiEdit", "NotebookEdit", "Bash")
GUARDED_TOOLS = MUTATING_TOOLS  # calls that could change budgets, acks or the files enforcement reads


@record(frozen=False)
class Step:
    """Everything the answer needs, gathered once."""

    event: str
    session_id: str | None
    model: str | None
    settings: Settings
    states: list[BudgetState]
    decision: Decision
    now: datetime
    config: Any
    deferred: str | None = None  # a low-priority workflow refused in economy mode
    notes: list[str] = factory(list)
    data_dir: str = ""

    @property
    def stamp(self) -> str:
        return iso(self.now)


# -- before the decision ---------------------------------------------------------------------------------------


def record_only(event: str, payload: dict[str, Any], ledger: Ledger, now: datetime, config: Any = None) -> None:
    """Bookkeeping for events that decide nothing: a tool call that ran is remembered (economy mode's repeat
    check) or makes the session forget its searches; the session's end closes its workflow run; compaction drops
    the cached tool results (their output left the context); a model switch is remembered."""
    session = jsonlite.text(payload.get("session_id"))
    if not session:
        return
    if event == "PostToolUse":
        if config is not None:
            writes = [w for w in _tool_record(payload, config)
                      if w[0] != "forget_searches" or _searched(ledger, session)]  # no transaction for nothing
            _apply(ledger, session, writes, iso(now))
        return
    if event not in ("SessionEnd", "PreCompact"):
        return  # no write transaction for nothing
    # Nor for a session without workflow runs or remembered tool calls (most): a write renews the ledger's version,
    # which sends every session's next hook down the full path, and `-p` waits for SessionEnd before it exits.
    if event == "SessionEnd" and not ledger.has_runs(session):
        return
    if event == "PreCompact" and not ledger.has_calls(session):
        return
    with ledger.transaction():
        if event == "SessionEnd":
            ledger.end_runs(session, iso(now))
        elif event == "PreCompact":
            ledger.forget_calls(session)


def session_model(ledger: Ledger, session: str | None) -> str | None:
    """The model of the session's latest main-thread request, unless the session switched model after it."""
    if not session:
        return None
    row = ledger.latest_main_request(session)
    switched = ledger.chosen_model(session)
    if switched and switched[0] and (row is None or switched[1] >= row[1]):
        return switched[0]
    return row[0] if row else None


def _decide(states: list[BudgetState], **kwargs: Any) -> Decision:
    """policy.evaluate, plus the reason a block or a stop gives (its words are loaded only then)."""
    decision = evaluate(states, **kwargs)
    if decision.level in ("block", "stop"):
        from .messages import with_reason

        decision = with_reason(decision, states, **kwargs)
    return decision


def prepare(event: str, payload: dict[str, Any], ledger: Ledger, config: Any, now: datetime) -> Step:
    session = jsonlite.text(payload.get("session_id"))
    settings = Settings.from_config(config, command=slash_prefix())
    stamp = iso(now)
    prompt = payload.get("prompt") if event == "UserPromptSubmit" else None
    writes: list[tuple[str, Any]] = []
    if session and event == "UserPromptSubmit" and isinstance(prompt, str) and prompt.lstrip().startswith("/model "):
        chosen = prompt.split()[1:2]  # `/model ` with nothing after it names no model
        if chosen:
            writes.append(("model", chosen[0]))
    if session and event == "SessionStart":
        if jsonlite.text(payload.get("model")):
            writes.append(("model", payload["model"]))
        if payload.get("source") in ("compact", "clear"):
            writes.append(("forget_tools", None))
    env_workflow = os.environ.get("TOKEN_BUDGET_WORKFLOW", "").strip()
    if session and env_workflow and not ledger.has_runs(session):
        writes.append(("start", (env_workflow, "env")))
    if writes:
        _apply(ledger, session, writes, stamp)

    model = session_model(ledger, session)
    states = budget_states(ledger, config, now=now, session_id=session, model=model)
    deferred = None
    wanted = workflow_for_prompt(config, prompt) if session and isinstance(prompt, str) else None
    if wanted:
        probe = _decide(states, event_kind="prompt", model=model, settings=settings, now=now)
        from ..workflows import priority  # a prompt that starts a workflow only

        if probe.economy and "defer_non_critical_tasks" in probe.actions and priority(config, wanted) == "low":
            deferred = wanted
            with ledger.transaction():
                detail = jsonlite.dumps({"workflow": wanted})
                ledger.record_degradation(Degradation("defer_workflow", session, None, detail), stamp)
        else:
            _apply(ledger, session, [("start", (wanted, "prompt"))], stamp)
            states = budget_states(ledger, config, now=now, session_id=session, model=model)
    decision = _decide(states, event_kind=EVENT_KINDS.get(event, "checkpoint"), model=model, settings=settings,
                        now=now, exempt=is_tokens_prompt(prompt))
    return Step(event, session, model, settings, states, decision, now, config, deferred,
                data_dir=os.path.dirname(ledger.path))


def _apply(ledger: Ledger, session: str | None, writes: list[tuple[str, Any]], stamp: str) -> None:
    if not session or not writes:
        return
    with ledger.transaction():
        for kind, value in writes:
            if kind == "model":
                ledger.set_session_model(session, value, stamp)
            elif kind == "forget_tools":
                ledger.forget_calls(session)
            elif kind == "start":
                ledger.start_run(session, value[0], stamp, source=value[1])
            elif kind == "tool":
                ledger.remember_call(session, *value, stamp)
            elif kind == "forget_searches":
                ledger.forget_calls(session, keep_tool="Read")


def _searched(ledger: Ledger, session: str) -> bool:
    """Does the session have remembered searches (what a call that may change files makes it forget)?"""
    return ledger.has_calls(session, keep_tool="Read")


def _caching_on(config: Any) -> bool:
    caching = config.get("optimizations", "caching", default={}) or {}
    return bool(caching.get("enabled", True)) and bool(caching.get("cache_repeated_queries", True))


def _tool_record(payload: dict[str, Any], config: Any) -> list[tuple[str, Any]]:
    """After a read-only call succeeds, remember it; after a call that may change files, forget the searches."""
    if not _caching_on(config):
        return []
    tool = payload.get("tool_name")
    if tool in MUTATING_TOOLS:
        return [("forget_searches", None)]
    key = call_key(tool, payload.get("tool_input"))
    if key is None:
        return []
    return [("tool", (key[0], tool, key[1], jsonlite.text(payload.get("tool_use_id"))))]


def call_key(tool: Any, tool_input: Any) -> tuple[str, str] | None:
    """(identity, summary) of a repeatable read-only call; a Read's identity includes the file's size and mtime."""
    if tool not in CACHEABLE_TOOLS or not isinstance(tool_input, dict):
        return None
    if tool == "Read":
        path = jsonlite.text(tool_input.get("file_path"))
        if not path:
            return None
        try:
            st = os.stat(path)
        except OSError:
            return None
        ident = [path, tool_input.get("offset"), tool_input.get("limit"), tool_input.get("pages"), st.st_size,
                 st.st_mtime_ns]
        summary = f"Read of {path}"
    elif tool == "WebFetch":
        ident = [tool_input.get("url"), tool_input.get("prompt")]
        summary = f"WebFetch of {tool_input.get('url')}"
    else:
        ident = [tool_input]
        summary = f"Grep for {tool_input.get('pattern')!r}"
        if tool_input.get("path"):
            summary += f" in {tool_input['path']}"
    # The identity itself is the key (short text): a hash would cost an import on the hot path, a checksum could
    # collide and deny a call that was not a repeat.
    return jsonlite.dumps([tool, *ident], sort_keys=True, default=str), summary


# -- the claim -------------------------------------------------------------------------------------------------


def claim_alerts(ledger: Ledger, step: Step, project_dir: str | None = None) -> list[Alert]:
    """Claim every threshold crossed and not yet claimed for its period (and limit), and enqueue its deliveries in
    the same transaction, so no claim exists without its outbox rows. Most hooks find them all claimed already
    and write nothing; the writer lock makes concurrent hooks agree on one winner per alert."""
    alerts = step.decision.alerts
    if not alerts:
        return []
    known = ledger.alert_limits([a.key for a in alerts])
    fresh = [a for a in alerts if known.get(a.key) != a.limit]
    if not fresh:
        return []
    by_scope = {s.scope: s for s in step.states}
    claimed: list[Alert] = []
    with ledger.transaction():
        for alert in fresh:
            if ledger.claim_alert(alert):
                claimed.append(alert)
                state = by_scope.get(alert.scope)
                message = (f"the {scope_name(alert.scope)} crossed {alert.threshold}%: "
                           f"{alert.used:,} / {alert.limit:,} tokens"
                           + (f" (${state.used_usd:,.2f})" if state and state.used_usd else ""))
                ledger.record_event(level=alert.level, kind="threshold", message=message, created_at=step.stamp,
                                    scope=alert.scope, session_id=step.session_id, alert_key=alert.key)
        if claimed:  # rare: the outbox is imported only when something was claimed
            from ..channels import channels
            from ..outbox import enqueue_missing

            enqueue_missing(ledger, channels(step.config), project_dir=project_dir, now=step.stamp,
                            hint_prefix=slash_prefix())
    return claimed


# -- the answer ------------------------------------------------------------------------------------------------


def respond(step: Step, payload: dict[str, Any], ledger: Ledger, claimed: list[Alert],
            notices: list[str] | None = None) -> dict[str, Any]:
    """The hook's answer. `notices`: changes of limits, mode or acks not yet shown to the user (controls.py)."""
    out = _respond(step, payload, ledger, claimed)
    if notices:
        shown = "\n".join(notices)
        if step.event == "UserPromptSubmit" and out.get("decision") == "block":
            out["reason"] = f"{shown}\n\n{out['reason']}"  # a blocked prompt shows its reason, not systemMessage
        else:
            out["systemMessage"] = _join(shown, out.get("systemMessage"))
    return out


def _respond(step: Step, payload: dict[str, Any], ledger: Ledger, claimed: list[Alert]) -> dict[str, Any]:
    decision = step.decision
    user, context = _announcement(step, claimed)
    event = step.event
    if decision.action == "stop":
        stop = {"continue": False, "stopReason": decision.reason}
        if event == "PreToolUse":  # continue:false alone lets the tool it was asked about run (claude-code.md §12)
            return {**_deny(decision.reason + " Do not retry: the session is stopped.", None), **stop}
        return stop
    if event == "UserPromptSubmit":
        from . import economy  # a prompt's advice: loaded once per prompt, never by a tool call's `{}`

        if step.deferred:
            return {"decision": "block", "reason": economy.deferred_reason(step)}
        if decision.action == "block":
            return {"decision": "block", "reason": decision.reason}
        if decision.economy and not is_tokens_prompt(payload.get("prompt")):
            context = _join(context, economy.batch_once(step, ledger))
        user = _join(user, economy.compact_once(step, ledger))
        return _output(event, user, context)
    if event == "PreToolUse":
        return _pre_tool(step, payload, ledger, user, context)
    if event == "SessionStart" and decision.level in ("block",) and decision.reason and not user:
        user = decision.reason
    return _output(event, user, context)


def _announcement(step: Step, claimed: list[Alert]) -> tuple[str | None, str | None]:
    if not claimed:
        return None, None
    by_scope = {s.scope: s for s in step.states}
    top = max(claimed, key=lambda a: (severity(a.level), binds(by_scope[a.scope], step.model)))
    from .messages import announce

    return announce(top, by_scope[top.scope], step.settings, step.now, step.model, step.states)


def _join(a: str | None, b: str | None) -> str | None:
    return "\n\n".join(x for x in (a, b) if x) or None


def _output(event: str, user: str | None, context: str | None, **specific: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if user:
        out["systemMessage"] = user
    if context or specific:
        hso: dict[str, Any] = {"hookEventName": event, **specific}
        if context:
            hso["additionalContext"] = context
        out["hookSpecificOutput"] = hso
    return out


def _deny(reason: str, user: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "deny",
                                                  "permissionDecisionReason": reason}}
    if user:
        out["systemMessage"] = user
    return out


def _plain_command(tool: Any, tool_input: dict[str, Any], payload: dict[str, Any]) -> bool:
    """A Bash command without a "/" or any of the budget's words: the guard cannot find anything in it (fastpath's
    reasoning, property-tested in tests/test_fastpath.py), so it is not even loaded."""
    from .fastpath import may_touch_budget

    command = tool_input.get("command")
    return tool == "Bash" and isinstance(command, str) and "/" not in command and not may_touch_budget(payload)


def _pre_tool(step: Step, payload: dict[str, Any], ledger: Ledger, user: str | None,
              context: str | None) -> dict[str, Any]:
    decision = step.decision
    tool = payload.get("tool_name")
    tool_input = payload.get("tool_input") if isinstance(payload.get("tool_input"), dict) else {}
    if tool in GUARDED_TOOLS and not _plain_command(tool, tool_input, payload):  # at any level: the model may not
        from .guard import blocked_call  # lift its own limits

        cwd = jsonlite.text(payload.get("cwd"))
        guarded = blocked_call(tool, tool_input, step.data_dir, cwd, step.settings.command)
        if guarded:
            return _deny(guarded, _join(user, guarded))
    if decision.action == "block" and not (decision.model_only and tool in SUBAGENT_TOOLS):
        first = _first_block_today(step, ledger)
        return _deny(decision.reason + " Do not retry other tools: end the turn and tell the user.",
                     user or (decision.reason if first else None))
    if tool in SUBAGENT_TOOLS:
        from .economy import subagent_target

        target, refused = subagent_target(step, tool, tool_input, ledger)
        if refused:
            return _deny(refused, user)
        if target:  # updatedInput replaces the whole input: keep every original field (claude-code.md §7)
            return _output("PreToolUse", user, context, permissionDecision="allow",
                           updatedInput={**tool_input, "model": target})
        return _output("PreToolUse", user, context)
    if decision.economy:
        from . import economy

        key = call_key(tool, tool_input) if step.session_id and _caching_on(step.config) else None
        cached = economy.cached_call(step, tool, key, ledger) if key else None
        if cached:
            return _deny(cached, user)
        context = _join(context, economy.batch_once(step, ledger))
        limited = economy.limit_read(step, tool, tool_input, payload, ledger)
        if limited is not None:
            return _output("PreToolUse", user, context, permissionDecision="allow", updatedInput=limited)
    return _output("PreToolUse", user, context)


def _first_block_today(step: Step, ledger: Ledger) -> bool:
    """Tell the user (not only Claude) about a block once per session and day."""
    tz = zone(step.settings.timezone)
    since = day_bounds(today(tz, step.now), tz)[0]
    if ledger.has_event("block", step.session_id, since):
        return False
    with ledger.transaction():
        ledger.record_event(level="block", kind="block", message=step.decision.reason or "", created_at=step.stamp,
                            scope=step.decision.scope, session_id=step.session_id)
    return True


def idle_facts(step: Step, ledger: Ledger) -> dict[str, Any] | None:
    """For the hooks' idle fast path (fastpath.py): None when the next tool call's answer could depend on more than
    "nothing changed" (a block or stop, economy mode, a model budget that moves subagents, a deferred workflow);
    else the tools whose PostToolUse would write (record_only)."""
    decision = step.decision
    if severity(decision.level) >= severity("block") or decision.economy or decision.blocked_models or step.deferred:
        return None
    return {"post_writes": post_writes(step.session_id, step.config, ledger)}


def post_writes(session: str | None, config: Any, ledger: Ledger) -> list[str]:
    """The tools whose PostToolUse would write (record_only): remember a read-only call, or forget the searches."""
    writes: list[str] = []
    if session and _caching_on(config):
        writes.extend(CACHEABLE_TOOLS)
        if _searched(ledger, session):
            writes.extend(MUTATING_TOOLS)
    return writes
