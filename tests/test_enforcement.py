"""Every level of every scope, as the exact hook JSON Claude Code receives (the real adapter, a built transcript)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from budget_helpers import Session, write_config

from token_budget.ledger import Ledger

BASE = """
timezone: UTC
budgets:
  global: {{daily_limit: {daily}, monthly_limit: {monthly}}}
  per_workflow: {{sprint: {sprint}}}
  per_model: {{claude-opus: {opus}}}
  {session}
"""

# scope → (config values, what the messages call it, `tokens budget` argument, reset words, period, model spent on)
SCOPES = {
    "daily": (dict(daily=1000, monthly=0, sprint=500000, opus=200000, session=""), "daily budget", "daily",
              "resets 2026-11-29 00:00 UTC (in 9h 00m)", "2026-11-28", "claude-sonnet-4-5-20250929"),
    "monthly": (dict(daily=0, monthly=1000, sprint=500000, opus=200000, session=""), "monthly budget", "monthly",
                "resets 2026-12-01 00:00 UTC (in 57h 00m)", "2026-11", "claude-sonnet-4-5-20250929"),
    "session": (dict(daily=0, monthly=0, sprint=500000, opus=200000, session="per_session: 1000"), "session budget",
                "session", "it applies to this session only", "sess-1", "claude-sonnet-4-5-20250929"),
    "workflow:sprint": (dict(daily=0, monthly=0, sprint=1000, opus=200000, session=""), "sprint workflow budget",
                        "sprint", "it applies to this workflow run and ends with it (`/tokens workflow end`)", "run-1",
                        "claude-sonnet-4-5-20250929"),
    "model:claude-opus": (dict(daily=0, monthly=0, sprint=500000, opus=1000, session=""),
                          "claude-opus model budget (today)", "claude-opus", "resets 2026-11-29 00:00 UTC (in 9h 00m)",
                          "2026-11-28", "claude-opus-4-6"),
}


def expected(scope: str, level: str) -> dict:
    _, name, arg, resets, period, model = SCOPES[scope]
    used = {"ok": 500, "warn": 700, "alert": 800, "suggest": 900, "block": 1000, "stop": 1100}[level]
    amounts = f"{used:,} / 1,000 tokens ({used / 10:.1f}%)"
    left = f"{1000 - used:,} tokens left"
    if level in ("ok", "warn"):
        return {}
    if level == "alert":
        return {"systemMessage": f"⚠️ TOKEN BUDGET ALERT: the {name} is at {amounts}; {left}; {resets}. Acknowledge "
                                 f"with `/tokens ack {scope}/80/{period}` or adjust with `/tokens budget {arg} 1200`."}
    if level == "suggest":
        switch = "" if scope == "model:claude-opus" else ""
        return {
            "systemMessage": f"⚠️ TOKEN BUDGET ALERT: the {name} is at {amounts}; {left}; {resets}. Suggested: "
                             f"switch to Haiku for the remaining tasks (`/model haiku`){switch}; run `/compact` to "
                             "shrink the context every request resends; or raise the budget with "
                             f"`/tokens budget {arg} 1200`.",
            "hookSpecificOutput": {
                "hookEventName": "UserPromptSubmit",
                "additionalContext": f"Token budget notice: the {name} is at 90% ({left}; {resets}). Work "
                                     "economically from here: batch the remaining edits, do not re-read files already "
                                     "in context, use narrow Grep patterns and Read with offset/limit, keep answers "
                                     'short and give subagents `"model": "haiku"`. At 100% new requests will be '
                                     "blocked.",
            },
        }
    if level == "block":
        if scope.startswith("model:"):
            reason = (f"token-budget: the {name} is exhausted: {amounts}; {resets}. Requests on {model} are blocked; "
                      f"switch with `/model sonnet` (it has budget left), raise it with `/tokens budget {arg} 1200`, "
                      f"or acknowledge with `/tokens ack {scope}/100/{period}` to go on up to the 110% stop.")
        else:
            reason = (f"token-budget: the {name} is exhausted: {amounts}; {resets}. New requests are blocked. To go "
                      f"on, raise it with `/tokens budget {arg} 1200`, or acknowledge with "
                      f"`/tokens ack {scope}/100/{period}` to continue up to the 110% emergency stop.")
        return {"decision": "block", "reason": reason}
    fix = f"`/tokens budget {arg} 1400`, then continue."
    fix = f"Switch to another model with `/model`, or raise it with {fix}" if scope.startswith("model:") else \
        f"Raise it with {fix}"
    return {"continue": False, "stopReason": f"token-budget: emergency stop: the {name} is at {amounts}, past the "
                                             f"110% hard limit; {resets}. {fix}"}


@pytest.fixture
def scoped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, claude_dir: Path):
    def make(scope: str) -> Session:
        values = SCOPES[scope][0]
        write_config(tmp_path, monkeypatch, BASE.format(**values))
        session = Session(claude_dir)
        if scope.startswith("workflow:"):
            assert session.hook("UserPromptSubmit", prompt="/sprint build the thing") == (0, {})
        return session

    return make


@pytest.mark.parametrize("level", ["ok", "warn", "alert", "suggest", "block", "stop"])
@pytest.mark.parametrize("scope", list(SCOPES))
def test_user_prompt_submit_answers_each_level_of_each_scope(scoped, scope: str, level: str) -> None:
    session = scoped(scope)
    used = {"ok": 500, "warn": 700, "alert": 800, "suggest": 900, "block": 1000, "stop": 1100}[level]
    timestamp = "2026-11-03T12:00:00.000Z" if scope == "monthly" else None
    session.spend(used, model=SCOPES[scope][5], timestamp=timestamp)
    assert session.hook("UserPromptSubmit", prompt="go on") == (0, expected(scope, level))


@pytest.mark.parametrize("scope", list(SCOPES))
def test_an_alert_is_shown_once_per_period_then_stays_quiet(scoped, scope: str) -> None:
    session = scoped(scope)
    session.spend(800, model=SCOPES[scope][5], timestamp="2026-11-03T12:00:00.000Z" if scope == "monthly" else None)
    assert session.hook("PostToolUse") == (0, {})  # async: it only records; the next blocking hook tells
    assert session.hook("PreToolUse")[1] == {"systemMessage": expected(scope, "alert")["systemMessage"]}
    assert session.hook("PreToolUse") == (0, {})
    assert session.hook("UserPromptSubmit", prompt="next") == (0, {})


def test_seventy_percent_is_only_logged_in_the_events_table(scoped, data_dir: Path) -> None:
    session = scoped("daily")
    session.spend(700)
    assert session.hook("PreToolUse") == (0, {})
    with Ledger.open(data_dir) as ledger:
        rows = ledger.db.execute("SELECT level, kind, scope, alert_key, message FROM events").fetchall()
    assert rows == [("warn", "threshold", "daily", "daily/70/2026-11-28",
                     "the daily budget crossed 70%: 700 / 1,000 tokens ($0.00)")]


def test_crossing_several_thresholds_at_once_shows_the_highest_and_claims_the_rest(scoped, data_dir: Path) -> None:
    session = scoped("daily")
    session.spend(950)
    code, out = session.hook("PreToolUse")
    assert out["systemMessage"].startswith("⚠️ TOKEN BUDGET ALERT: the daily budget is at 950 / 1,000 tokens (95.0%)")
    assert out["hookSpecificOutput"]["hookEventName"] == "PreToolUse"
    with Ledger.open(data_dir) as ledger:
        keys = [r[0] for r in ledger.db.execute("SELECT key FROM alerts ORDER BY threshold")]
    assert keys == ["daily/70/2026-11-28", "daily/80/2026-11-28", "daily/90/2026-11-28"]


def test_pre_tool_use_denies_at_100_percent_and_tells_the_user_once(scoped) -> None:
    session = scoped("daily")
    session.spend(1000)
    reason = expected("daily", "block")["reason"]
    deny = {"hookEventName": "PreToolUse", "permissionDecision": "deny",
            "permissionDecisionReason": reason + " Do not retry other tools: end the turn and tell the user."}
    assert session.hook("PreToolUse") == (0, {"hookSpecificOutput": deny, "systemMessage": reason})
    assert session.hook("PreToolUse") == (0, {"hookSpecificOutput": deny})


def test_stop_at_110_percent_from_every_evaluated_event(scoped) -> None:
    session = scoped("daily")
    session.spend(1100)
    stop = expected("daily", "stop")
    for event in ("SessionStart", "UserPromptSubmit"):  # PreToolUse also denies: see the next test
        assert session.hook(event) == (0, stop), event
    for event in ("PostToolUse", "Stop", "SubagentStop", "PreCompact", "SessionEnd"):
        assert session.hook(event) == (0, {}), event  # async: only recorded, the next blocking hook stops


def test_the_stop_also_denies_the_tool_call_it_was_asked_about(scoped) -> None:
    """continue:false alone lets the current tool run (claude-code.md §12): the PreToolUse answer also denies it."""
    session = scoped("daily")
    session.spend(1100)
    stop = expected("daily", "stop")
    deny = {"hookEventName": "PreToolUse", "permissionDecision": "deny",
            "permissionDecisionReason": stop["stopReason"] + " Do not retry: the session is stopped."}
    for tool in ("Write", "Read", "Bash", "Agent"):
        assert session.hook("PreToolUse", tool_name=tool) == (0, {**stop, "hookSpecificOutput": deny}), tool


@pytest.mark.parametrize(("level", "used"), [("block", 1000), ("stop", 1100)])
@pytest.mark.parametrize("tool", ["Read", "Write", "Edit", "Bash", "Grep", "WebFetch", "Agent", "mcp__x__y"])
def test_from_100_percent_on_every_tool_call_is_denied(scoped, tool: str, level: str, used: int) -> None:
    session = scoped("daily")
    session.spend(used)
    out = session.hook("PreToolUse", tool_name=tool)[1]
    assert out["hookSpecificOutput"]["permissionDecision"] == "deny"
    assert out["hookSpecificOutput"]["permissionDecisionReason"].startswith("token-budget: ")
    assert out.get("continue") is (False if level == "stop" else None)


@pytest.mark.parametrize(("prompt", "shown"), [
    ("/tokens budget daily 5000", "daily budget set to 5,000 tokens"),
    ("/token-budget:tokens status", "TOKEN USAGE DASHBOARD"),
    ("/tokens", "TOKEN USAGE DASHBOARD"),
])
def test_prompts_running_tokens_are_answered_here_even_when_blocked_or_stopped(scoped, prompt: str,
                                                                              shown: str) -> None:
    session = scoped("daily")
    for spend in (1000, 100):
        session.spend(spend)
        code, out = session.hook("UserPromptSubmit", prompt=prompt)
        assert code == 0 and out["decision"] == "block" and shown in out["reason"], out
        assert out["hookSpecificOutput"] == {"hookEventName": "UserPromptSubmit", "suppressOriginalPrompt": True}
        assert "continue" not in out


def test_a_block_acknowledged_lets_work_go_on_until_the_stop(scoped, data_dir: Path) -> None:

    session = scoped("daily")
    session.spend(1000)
    assert session.hook("UserPromptSubmit", prompt="go")[1]["decision"] == "block"
    with Ledger.open(data_dir) as ledger, ledger.transaction():
        assert ledger.acknowledge("daily/100/2026-11-28", "2026-11-28T15:00:00.000Z") == 1
    assert session.hook("UserPromptSubmit", prompt="go") == (0, {})
    assert session.hook("PreToolUse") == (0, {})
    session.spend(100)
    assert session.hook("UserPromptSubmit", prompt="go") == (0, expected("daily", "stop"))


def test_stop_and_session_end_events_only_record(scoped) -> None:
    session = scoped("daily")
    session.spend(1100)
    for event in ("Stop", "SubagentStop", "PreCompact", "SessionEnd"):
        assert session.hook(event) == (0, {}), event


# -- a model's own budget ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["claude-opus-4-6", "claude-3-opus-20240229", "claude-opus-4-1-20250805",
                                   "us.anthropic.claude-opus-4-20250514-v1:0"])
def test_a_model_budget_blocks_only_sessions_on_that_model(scoped, claude_dir: Path, model: str) -> None:
    session = scoped("model:claude-opus")
    session.spend(1000, model=model)
    assert session.hook("UserPromptSubmit", prompt="go")[1]["decision"] == "block"
    other = Session(claude_dir, "sess-2")
    other.spend(10)  # a sonnet session is not bound by the Opus budget
    assert other.hook("UserPromptSubmit", prompt="go") == (0, {})


def test_switching_model_with_slash_model_lifts_a_model_block(scoped) -> None:
    session = scoped("model:claude-opus")
    session.spend(1000, model="claude-opus-4-6")
    assert session.hook("UserPromptSubmit", prompt="go")[1]["decision"] == "block"
    assert session.hook("UserPromptSubmit", prompt="/model sonnet") == (0, {})
    assert session.hook("UserPromptSubmit", prompt="go") == (0, {})


def test_a_subagent_is_moved_to_a_cheaper_model_with_budget_left_instead_of_denied(scoped, data_dir: Path) -> None:
    session = scoped("model:claude-opus")
    session.spend(1000, model="claude-opus-4-6")
    session.hook("UserPromptSubmit", prompt="go")  # claims (and shows) the block alert
    tool_input = {"description": "Explore", "prompt": "Find the config loader", "subagent_type": "Explore",
                  "run_in_background": False}
    code, out = session.hook("PreToolUse", tool_name="Agent", tool_input=tool_input)
    assert (code, out) == (0, {"hookSpecificOutput": {
        "hookEventName": "PreToolUse", "permissionDecision": "allow",
        "updatedInput": {**tool_input, "model": "sonnet"}}})
    with Ledger.open(data_dir) as ledger:
        row = ledger.db.execute("SELECT kind, tool, from_model, to_model FROM degradations").fetchone()
    assert row == ("model_downgrade", "Agent", "claude-opus-4-6", "sonnet")


def test_a_subagent_is_denied_when_no_cheaper_model_has_budget(tmp_path: Path, monkeypatch, claude_dir: Path) -> None:
    write_config(tmp_path, monkeypatch, "timezone: UTC\nbudgets:\n  global: {daily_limit: 0, monthly_limit: 0}\n"
                 "  per_model: {claude-opus: 1000, claude-sonnet: 10, claude-haiku: 10}\n")
    session = Session(claude_dir)
    session.spend(20, model="claude-haiku-4-5")
    session.spend(20, model="claude-sonnet-4-5")
    session.spend(1000, model="claude-opus-4-6")
    out = session.hook("PreToolUse", tool_name="Task", tool_input={"description": "d", "prompt": "p"})[1]
    assert out["hookSpecificOutput"]["permissionDecision"] == "deny"


def test_a_global_block_denies_subagents_too(scoped) -> None:
    session = scoped("daily")
    session.spend(1000)
    out = session.hook("PreToolUse", tool_name="Agent", tool_input={"description": "d", "prompt": "p"})[1]
    assert out["hookSpecificOutput"]["permissionDecision"] == "deny"


# -- the workflow run ------------------------------------------------------------------------------------------


def test_requests_record_the_workflow_and_phase_of_their_run(scoped, data_dir: Path) -> None:
    session = scoped("workflow:sprint")
    session.spend(100)
    assert session.hook("PostToolUse") == (0, {})
    with Ledger.open(data_dir) as ledger:
        assert ledger.db.execute("SELECT workflow, workflow_run_id FROM requests").fetchall() == [("sprint", 1)]
    assert session.hook("SessionEnd", reason="exit") == (0, {})
    with Ledger.open(data_dir) as ledger:
        assert ledger.db.execute("SELECT ended_at FROM workflow_runs").fetchone()[0] == "2026-11-28T15:00:00.000Z"


def test_plugin_qualified_workflow_commands_start_a_run(scoped, data_dir: Path) -> None:
    session = scoped("daily")
    session.hook("UserPromptSubmit", prompt="/acme:code-review the diff")
    with Ledger.open(data_dir) as ledger:
        assert ledger.db.execute("SELECT name, source FROM workflow_runs").fetchall() == [("code_review", "prompt")]


def test_the_workflow_env_var_starts_a_run_once(scoped, data_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv("TOKEN_BUDGET_WORKFLOW", "orchestrate")
    session = scoped("daily")
    session.hook("SessionStart", source="startup")
    session.hook("PreToolUse")
    with Ledger.open(data_dir) as ledger:
        assert ledger.db.execute("SELECT name, source FROM workflow_runs").fetchall() == [("orchestrate", "env")]


# -- economy mode ------------------------------------------------------------------------------------------------


@pytest.fixture
def economy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, claude_dir: Path) -> Session:
    write_config(tmp_path, monkeypatch, BASE.format(daily=100000, monthly=0, sprint=500000, opus=200000, session="")
                 + "mode: economy\n")
    return Session(claude_dir)


BATCH = ("Token budget economy mode is on (the daily budget is at 0%, 99,900 tokens left). Batch the remaining "
         "work: plan it in one pass, make related edits together, avoid re-reading files already in context, read "
         'large files with offset/limit, delegate exploration to subagents with "model": "haiku", and keep answers '
         "short.")


def test_economy_asks_claude_to_batch_once_per_day(economy: Session) -> None:
    economy.spend(100)
    assert economy.hook("UserPromptSubmit", prompt="go") == (0, {"hookSpecificOutput": {
        "hookEventName": "UserPromptSubmit", "additionalContext": BATCH}})
    assert economy.hook("UserPromptSubmit", prompt="go") == (0, {})


def test_economy_moves_sonnet_subagents_to_haiku(economy: Session) -> None:
    economy.spend(100)
    economy.hook("UserPromptSubmit", prompt="go")
    tool_input = {"description": "d", "prompt": "p", "model": "opus"}
    assert economy.hook("PreToolUse", tool_name="Agent", tool_input=tool_input) == (0, {"hookSpecificOutput": {
        "hookEventName": "PreToolUse", "permissionDecision": "allow",
        "updatedInput": {**tool_input, "model": "haiku"}}})
    haiku = {"description": "d", "prompt": "p", "model": "haiku"}
    assert economy.hook("PreToolUse", tool_name="Agent", tool_input=haiku) == (0, {})


def test_economy_limits_reads_of_large_files_inside_the_project(economy: Session, tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    big = project / "big.log"
    big.write_text("x" * 100 + "\n" * 1000 + "y" * 50_000)
    small = project / "small.py"
    small.write_text("print(1)\n")
    economy.spend(100)
    economy.hook("UserPromptSubmit", prompt="go", cwd=str(project))
    read = {"file_path": str(big)}
    assert economy.hook("PreToolUse", tool_name="Read", tool_input=read, cwd=str(project)) == (0, {
        "hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "allow",
                               "updatedInput": {"file_path": str(big), "limit": 400}}})
    assert economy.hook("PreToolUse", tool_name="Read", tool_input={"file_path": str(small)},
                        cwd=str(project)) == (0, {})
    outside = tmp_path / "elsewhere.log"
    outside.write_text("z" * 60_000)
    assert economy.hook("PreToolUse", tool_name="Read", tool_input={"file_path": str(outside)},
                        cwd=str(project)) == (0, {})


def test_economy_denies_an_identical_repeated_read_with_a_pointer(economy: Session, tmp_path: Path) -> None:
    target = tmp_path / "a.py"
    target.write_text("print(1)\n")
    economy.spend(100)
    economy.hook("UserPromptSubmit", prompt="go")
    read = {"file_path": str(target)}
    assert economy.hook("PreToolUse", tool_name="Read", tool_input=read) == (0, {})
    economy.hook("PostToolUse", tool_name="Read", tool_input=read, tool_use_id="toolu_first",
                 tool_response={"type": "text"})
    assert economy.hook("PreToolUse", tool_name="Read", tool_input=read) == (0, {"hookSpecificOutput": {
        "hookEventName": "PreToolUse", "permissionDecision": "deny",
        "permissionDecisionReason": f"token-budget economy mode: this exact Read of {target} (the file is unchanged "
                                    "since) already ran in this session at 2026-11-28T15:00:00.000Z (tool_use_id "
                                    "toolu_first). Use that earlier result instead of repeating the call."}})
    target.write_text("print(2)\n")  # changed: reading it again is not a repeat
    assert economy.hook("PreToolUse", tool_name="Read", tool_input=read) == (0, {})


def test_grep_results_are_forgotten_after_an_edit_and_all_after_compaction(economy: Session) -> None:
    grep = {"pattern": "def main", "path": "/tmp/proj"}
    economy.spend(100)
    economy.hook("UserPromptSubmit", prompt="go")
    economy.hook("PostToolUse", tool_name="Grep", tool_input=grep, tool_use_id="toolu_g")
    assert economy.hook("PreToolUse", tool_name="Grep", tool_input=grep)[1]["hookSpecificOutput"][
        "permissionDecision"] == "deny"
    economy.hook("PostToolUse", tool_name="Edit", tool_input={"file_path": "/tmp/proj/x.py"})
    assert economy.hook("PreToolUse", tool_name="Grep", tool_input=grep) == (0, {})
    economy.hook("PostToolUse", tool_name="WebFetch", tool_input={"url": "https://x.test", "prompt": "p"})
    economy.hook("PreCompact", trigger="manual")
    assert economy.hook("PreToolUse", tool_name="WebFetch",
                        tool_input={"url": "https://x.test", "prompt": "p"}) == (0, {})


def test_normal_mode_never_denies_repeats(tmp_path: Path, monkeypatch, claude_dir: Path) -> None:
    write_config(tmp_path, monkeypatch, BASE.format(daily=100000, monthly=0, sprint=1, opus=1, session=""))
    session = Session(claude_dir)
    grep = {"pattern": "x"}
    session.hook("PostToolUse", tool_name="Grep", tool_input=grep)
    assert session.hook("PreToolUse", tool_name="Grep", tool_input=grep) == (0, {})


def test_auto_mode_turns_economy_on_at_the_downgrade_trigger(tmp_path: Path, monkeypatch, claude_dir: Path) -> None:
    write_config(tmp_path, monkeypatch, BASE.format(daily=1000, monthly=0, sprint=1, opus=1, session="")
                 + "mode: auto\n")
    session = Session(claude_dir)
    tool_input = {"description": "d", "prompt": "p"}
    session.spend(790)
    assert "updatedInput" not in json.dumps(session.hook("PreToolUse", tool_name="Agent", tool_input=tool_input))
    session.spend(10)
    out = session.hook("PreToolUse", tool_name="Agent", tool_input=tool_input)[1]
    assert out["hookSpecificOutput"]["updatedInput"] == {**tool_input, "model": "haiku"}


def test_low_priority_workflows_are_deferred_in_economy(economy: Session, data_dir: Path) -> None:
    economy.spend(100)
    code, out = economy.hook("UserPromptSubmit", prompt="/test-backend all")
    assert (code, out) == (0, {"decision": "block", "reason": (
        "token-budget: the test_backend workflow has low priority and is deferred while economy mode is on (the "
        "daily budget is at 0%). Run it after the budget resets, or force it now with `/tokens mode normal`.")})
    with Ledger.open(data_dir) as ledger:
        from token_budget.budget_status import budget_status
        from token_budget.config import load

        assert budget_status(ledger, load(), now=economy.now)["deferred_workflows"] == ["test_backend"]
        assert ledger.db.execute("SELECT COUNT(*) FROM workflow_runs").fetchone()[0] == 0


def test_compact_is_suggested_once_when_the_context_is_large(tmp_path: Path, monkeypatch, claude_dir: Path) -> None:
    write_config(tmp_path, monkeypatch, BASE.format(daily=200000, monthly=0, sprint=1, opus=1, session=""))
    session = Session(claude_dir)
    session.spend(130_000)  # 65% of the daily budget, and 65% of a 200K window
    out = session.hook("UserPromptSubmit", prompt="go")[1]
    assert out["systemMessage"] == (
        "token-budget: this conversation's context is 130,000 tokens (65% of the 200,000-token window) and every "
        "request resends it, with the daily budget at 65%. Run `/compact` to summarize the older context.")
    assert session.hook("UserPromptSubmit", prompt="go") == (0, {})
