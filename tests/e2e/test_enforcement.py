"""Budget enforcement end to end: the real plugin (this checkout, ``--plugin-dir``) in the real CLI.

Each scenario pre-fills the ledger to a known share of a small daily budget (rows timestamped now, from
another session), then lets the mock's usage numbers carry the session across the next threshold, and
checks four views: the ledger, the CLI's JSON output, the requests the mock received, and the transcript.

Budgets count input + output + cache-creation tokens (the packaged ``counted_token_classes``); the
scripted turns below use only input and output tokens, so the arithmetic is plain.
"""

from __future__ import annotations

import json
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hook_processes import wait_until_gone

from .harness import REPO_ROOT, ClaudeEnv, CommandResult, Result, ledger_rows, mock_usage_rows, request_text
from .mock_api import bash_turn, text_turn, tool_turn

pytestmark = pytest.mark.e2e

LIMIT = 100_000  # the daily budget of these scenarios
PREFILL_MODEL = "claude-sonnet-4-5-20250929"
BLOCKED_PROMPT = "UserPromptSubmit operation blocked by hook"


# ------------------------------------------------------------------------------------------------ helpers


def write_config(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def budget_env(tmp_path: Path, config: str | None = None) -> dict[str, str]:
    """The run's environment: this interpreter for the hooks (no bootstrap), a data dir of the test's own, and
    (unless None) a config file layered over the packaged defaults."""
    env = {"TOKEN_BUDGET_PYTHON": sys.executable, "TOKEN_BUDGET_HOME": str(tmp_path / "tb-home")}
    if config is not None:
        env["TOKEN_BUDGET_CONFIG"] = str(write_config(tmp_path / "token_budgets.yaml", config))
    return env


def daily_config(limit: int = LIMIT, extra: str = "") -> str:
    return f"timezone: UTC\nbudgets:\n  global:\n    daily_limit: {limit}\n{extra}"


def prefill(data: Path, tokens: int, *, model: str = PREFILL_MODEL) -> None:
    """One request of `tokens` input tokens, timestamped now, from another session: today's usage so far."""
    from token_budget.ledger import Ledger
    from token_budget.models import UsageEvent

    now = datetime.now(timezone.utc)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    event = UsageEvent(f"msg_prefill_{uuid.uuid4().hex[:12]}", stamp, model, input_tokens=tokens,
                       session_id="prefill-session")  # fmt: skip
    with Ledger.open(data) as ledger, ledger.transaction():
        ledger.record([event], source="import")


def tokens_cli(
    env: ClaudeEnv, data: Path, *args: str, extra_env: dict[str, str] | None = None
) -> CommandResult:
    """`tokens --data-dir DATA ARGS` from this checkout, inside a namespace (network-guarded)."""
    return env.command(
        env.python, "-m", "token_budget", "--data-dir", str(data), *args,
        env={"PYTHONPATH": str(REPO_ROOT), **(extra_env or {})}, label="tokens-" + (args[0] if args else ""),
    )  # fmt: skip


def run(env: ClaudeEnv, prompt: str, script: list[Any], run_env: dict[str, str], **kw: Any) -> Result:
    return env.run(prompt, script=script, plugin_dir=REPO_ROOT, env=run_env, **kw)


def informational(res: Result) -> list[str]:
    """The `systemMessage`s the user saw (stream-json `system`/`informational` events)."""
    return [
        e.get("content", "")
        for e in res.events
        if e.get("type") == "system" and e.get("subtype") == "informational"
    ]


def attachments(res: Result, kind: str) -> list[dict[str, Any]]:
    return [
        e["attachment"]
        for e in res.transcript_entries()
        if e.get("type") == "attachment" and (e.get("attachment") or {}).get("type") == kind
    ]


def assert_ledger_has(rows: list[dict[str, Any]], res: Result) -> None:
    """Every request the mock answered is in the ledger, once, with the mock's token counts."""
    want = mock_usage_rows(res.requests)
    got = {r["message_id"]: r for r in rows}
    assert set(want) <= set(got), (sorted(want), sorted(got))
    for mid, w in want.items():
        assert {k: got[mid][k] for k in w} == w


def no_hook_errors(data: Path) -> None:
    log = data / "hook.log"
    assert not log.exists(), log.read_text()


# ------------------------------------------------------------------------------------------------ scenarios


def test_80_percent_alerts_the_user_and_90_percent_advice_reaches_the_model(
    claude_env: ClaudeEnv, tmp_path: Path
) -> None:
    """75% before the run; the first answer carries the session past 80%, the second past 90%. Each
    threshold is announced by the hook that first sees it (the tool call of the request that crossed it),
    once."""
    env = budget_env(tmp_path, daily_config())
    data = Path(env["TOKEN_BUDGET_HOME"])
    prefill(data, 75_000)
    script = [
        bash_turn("echo one", input_tokens=6000, output_tokens=10),  # 81,010: alert
        bash_turn("echo two", input_tokens=10_000, output_tokens=10),  # 91,020: suggest
        text_turn("All done.", input_tokens=100, output_tokens=5),  # 91,125
    ]
    res = run(claude_env, "Run two commands", script, env, output_format="stream-json")
    out = res.result_event
    assert out["result"] == "All done." and out["num_turns"] == 3 and out["permission_denials"] == []

    # The user sees both, in order, each once (stream-json `informational` events).
    notes = [n for n in informational(res) if "TOKEN BUDGET ALERT" in n]
    assert len(notes) == 2, notes
    assert notes[0].startswith("PreToolUse:Bash says: ") and "81,010 / 100,000 tokens (81.0%)" in notes[0]
    assert "Acknowledge with `/token-budget:tokens ack daily/80/" in notes[0] and "Suggested" not in notes[0]
    assert "91,020 / 100,000 tokens (91.0%)" in notes[1] and "Suggested: switch to Haiku" in notes[1]
    # ... and so does the transcript.
    shown = [a["content"] for a in attachments(res, "hook_system_message")]
    assert [n.split(" says: ", 1)[1] for n in notes] == shown

    # The model gets the advice in the very next request, and only from then on.
    sent = [request_text(r) for r in res.message_requests]
    assert len(sent) == 3
    assert "Token budget notice" not in sent[0] and "Token budget notice" not in sent[1]
    assert "Token budget notice: the daily budget is at 91% (8,980 tokens left" in sent[2]
    assert "TOKEN BUDGET ALERT" not in "".join(sent)  # the user's alerts are not sent to the model
    [context] = attachments(res, "hook_additional_context")
    assert "Token budget notice" in json.dumps(context)

    rows = ledger_rows(data)
    assert_ledger_has(rows, res)
    assert sum(r["input_tokens"] + r["output_tokens"] for r in rows) == 91_125
    events = tokens_cli(claude_env, data, "events", "--json").stdout
    levels = [json.loads(ln)["level"] for ln in events.splitlines() if ln.strip()]
    assert levels == ["warn", "alert", "suggest"], events
    no_hook_errors(data)


def test_100_percent_blocks_prompts_and_denies_tools_until_the_slash_command_raises_the_budget(
    claude_env: ClaudeEnv, tmp_path: Path
) -> None:
    env = budget_env(tmp_path, daily_config())
    data = Path(env["TOKEN_BUDGET_HOME"])
    prefill(data, 95_000)

    # 1. The first answer crosses 100%: its own tool call is denied with the reason, and never runs.
    crossing = run(
        claude_env,
        "Create the marker file",
        [
            bash_turn("touch marker-1", input_tokens=6000, output_tokens=10),  # 101,010
            text_turn("Stopped: the token budget is exhausted.", input_tokens=100, output_tokens=5),
        ],
        env,
    )
    out = crossing.output
    assert out["result"] == "Stopped: the token budget is exhausted." and out["num_turns"] == 2
    [denied] = out["permission_denials"]
    assert denied["tool_name"] == "Bash" and denied["tool_input"]["command"] == "touch marker-1"
    assert not (claude_env.project / "marker-1").exists()
    reason = "token-budget: the daily budget is exhausted: 101,010 / 100,000 tokens (101.0%)"
    assert reason in request_text(crossing.message_requests[1])  # Claude reads why, in the tool result
    results = [
        c
        for e in crossing.transcript_entries()
        if e.get("type") == "user" and isinstance(e["message"]["content"], list)
        for c in e["message"]["content"]
        if c.get("type") == "tool_result"
    ]
    assert len(results) == 1 and results[0]["is_error"] and reason in json.dumps(results[0])
    rows = ledger_rows(data)
    assert_ledger_has(rows, crossing)
    assert len(rows) == 3

    # 2. The next prompt is blocked before any request.
    blocked = run(claude_env, "Try again", [text_turn("never sent")], env)
    assert blocked.output["num_turns"] == 0 and blocked.message_requests == []
    assert blocked.output["result"].startswith(BLOCKED_PROMPT)
    assert "the daily budget is exhausted: 101,115 / 100,000 tokens" in blocked.output["result"]
    assert "`/token-budget:tokens budget daily 130000`" in blocked.output["result"]  # how to adjust, as spelled here
    assert len(ledger_rows(data)) == 3

    # 3. The slash command is answered by the hook (no request) and raises the budget where the hooks read it.
    raised = run(claude_env, "/token-budget:tokens budget daily 1000000", [text_turn("never sent")], env)
    assert raised.message_requests == [] and raised.output["num_turns"] == 0  # answered by the hook, no tokens
    assert "daily budget set to 1,000,000 tokens" in raised.output["result"], raised.output["result"]
    overrides = json.loads((data / "overrides.json").read_text())
    assert overrides["budgets"]["global"]["daily_limit"] == 1_000_000

    # 4. ... which lifts the block: the following prompt goes through and its tool runs.
    after = run(
        claude_env,
        "Create the marker file now",
        [bash_turn("touch marker-2", input_tokens=500, output_tokens=5), text_turn("Created.")],
        env,
    )
    assert after.output["result"] == "Created." and after.output["permission_denials"] == []
    assert (claude_env.project / "marker-2").exists()
    assert_ledger_has(ledger_rows(data), after)
    no_hook_errors(data)


def test_110_percent_stops_the_run(claude_env: ClaudeEnv, tmp_path: Path) -> None:
    """Past 100% the user acknowledges the block (the explicit override), works on, and the answer that
    crosses 110% ends the run: `terminal_reason: "hook_stopped"`, no further request."""
    env = budget_env(tmp_path, daily_config())
    data = Path(env["TOKEN_BUDGET_HOME"])
    prefill(data, 105_000)
    blocked = run(claude_env, "hello", [text_turn("never sent")], env)
    assert blocked.output["result"].startswith(BLOCKED_PROMPT) and blocked.message_requests == []
    day = datetime.now(timezone.utc).date().isoformat()
    tokens_cli(
        claude_env,
        data,
        "ack",
        f"daily|100|{day}",
        extra_env={"TOKEN_BUDGET_CONFIG": env["TOKEN_BUDGET_CONFIG"]},
    )

    res = run(
        claude_env,
        "Create the marker file",
        [
            bash_turn("echo crossing", input_tokens=6000, output_tokens=10),  # 111,010
            text_turn("never sent", input_tokens=100, output_tokens=5),
        ],
        env,
        check=False,
    )
    out = res.output
    assert out["terminal_reason"] == "hook_stopped" and out["is_error"] is False, res.describe()
    assert len(res.message_requests) == 1  # nothing after the answer that crossed the stop
    rows = ledger_rows(data)
    assert_ledger_has(rows, res)
    assert sum(r["input_tokens"] + r["output_tokens"] for r in rows) == 111_010
    stop = "token-budget: emergency stop: the daily budget is at 111,010 / 100,000 tokens (111.0%), past the"
    assert stop in json.dumps(res.transcript_entries())  # the hook's answer, kept in the transcript

    # A new prompt at 111% never reaches the API either.
    again = run(claude_env, "hello again", [text_turn("never sent")], env)
    assert again.message_requests == [] and again.output["num_turns"] == 0
    assert again.output["result"].startswith("Operation stopped by hook: " + stop), again.output["result"]
    no_hook_errors(data)


AGENT_CALL = {
    "description": "Check the greeting",
    "prompt": "Say hi.",
    "subagent_type": "general-purpose",
    "run_in_background": False,
}


@pytest.mark.parametrize("how", ["tokens mode economy", "auto past 80%"])
def test_economy_mode_sends_the_subagent_to_the_cheaper_model(
    claude_env: ClaudeEnv, tmp_path: Path, how: str
) -> None:
    """The Agent call asks for no model (it would inherit Sonnet): the hook rewrites it to Haiku, and the
    subagent's request reaches the mock asking for a Haiku model."""
    if how == "tokens mode economy":
        env = budget_env(tmp_path, daily_config())
        data = Path(env["TOKEN_BUDGET_HOME"])
        tokens_cli(
            claude_env, data, "mode", "economy", extra_env={"TOKEN_BUDGET_CONFIG": env["TOKEN_BUDGET_CONFIG"]}
        )
    else:
        env = budget_env(tmp_path, daily_config(extra="mode: auto\n"))
        data = Path(env["TOKEN_BUDGET_HOME"])
        prefill(data, 85_000)
    script = [
        tool_turn("Agent", AGENT_CALL, input_tokens=1000, output_tokens=20),
        text_turn("hi", input_tokens=800, output_tokens=3),  # the subagent's only request
        text_turn("All done.", input_tokens=1200, output_tokens=5),
    ]
    res = run(claude_env, "Delegate a greeting", script, env)
    assert res.output["result"] == "All done." and res.output["permission_denials"] == []
    models = res.models_requested
    assert len(models) == 3 and models[0] == models[2] == PREFILL_MODEL, models
    assert "haiku" in models[1].lower(), models
    assert any("haiku" in m.lower() for m in res.output["modelUsage"]), res.output["modelUsage"]
    sub = res.message_requests[1]
    assert "Say hi." in request_text(sub)  # it is the subagent's request

    [sub_file] = [p for p in res.transcripts if "subagents" in p.parts]
    assert {a["message"]["model"] for a in res.assistant_entries(sub_file)} == {models[1]}
    rows = {r["message_id"]: r for r in ledger_rows(data)}
    assert_ledger_has(list(rows.values()), res)
    row = rows[sub["message_id"]]
    assert row["model"] == models[1] and row["agent_type"] == "general-purpose" and row["is_sidechain"] == 1

    import sqlite3

    db = sqlite3.connect(data / "ledger.db")
    downgrades = db.execute(
        "SELECT tool, from_model, to_model, detail FROM degradations WHERE kind = 'model_downgrade'"
    ).fetchall()
    assert downgrades == [("Agent", PREFILL_MODEL, "haiku", json.dumps({"reason": "economy"}))], downgrades
    no_hook_errors(data)


def test_a_sprint_command_starts_a_workflow_run_whose_budget_is_enforced(
    claude_env: ClaudeEnv, tmp_path: Path
) -> None:
    """A project command /sprint (in <project>/.claude/commands) and a project config with a 5,000-token
    sprint budget: the run's requests are attributed to "sprint", and the answer that takes the run past its
    budget has its tool call denied. The session's end closes the run; the next session is not in it."""
    project = claude_env.project
    command = (
        "---\ndescription: Run a sprint\n---\n\nSprint goal: $ARGUMENTS. Work through it step by step.\n"
    )
    write_config(project / ".claude" / "commands" / "sprint.md", command)
    write_config(project / ".claude" / "token_budgets.yaml",
                 "timezone: UTC\nbudgets:\n  per_workflow:\n    sprint: 5000\n")  # fmt: skip
    env = budget_env(tmp_path)  # no TOKEN_BUDGET_CONFIG: it would replace the project layer
    data = Path(env["TOKEN_BUDGET_HOME"])
    res = run(
        claude_env,
        "/sprint build the login page",
        [
            bash_turn("echo step-one", input_tokens=3000, output_tokens=10),  # 3,010 / 5,000: runs
            bash_turn("touch sprint-marker", input_tokens=2000, output_tokens=10),  # 5,020: blocked
            text_turn("Sprint paused.", input_tokens=100, output_tokens=5),
        ],
        env,
    )
    out = res.output
    assert out["result"] == "Sprint paused." and out["num_turns"] == 3
    assert "Sprint goal: build the login page." in request_text(res.message_requests[0])  # the command ran
    [denied] = out["permission_denials"]
    assert denied["tool_input"]["command"] == "touch sprint-marker"
    assert not (project / "sprint-marker").exists()
    reason = "token-budget: the sprint workflow budget is exhausted: 5,020 / 5,000 tokens (100.4%)"
    assert reason in request_text(res.message_requests[2])
    assert "it applies to this workflow run and ends with it" in request_text(res.message_requests[2])
    assert "step-one" in request_text(res.message_requests[1])  # the first command did run

    rows = [r for r in ledger_rows(data) if r["session_id"] == res.session_id]
    assert_ledger_has(rows, res)
    assert len(rows) == 3 and {r["workflow"] for r in rows} == {"sprint"}
    assert len({r["workflow_run_id"] for r in rows}) == 1
    import sqlite3

    db = sqlite3.connect(data / "ledger.db")
    [wf_run] = db.execute("SELECT name, source, session_id, ended_at FROM workflow_runs").fetchall()
    assert (
        wf_run[:3] == ("sprint", "prompt", res.session_id) and wf_run[3] is not None
    )  # closed at SessionEnd

    # A plain prompt in a new session is outside the sprint: not attributed, not blocked.
    plain = run(claude_env, "hello", [text_turn("Hi.", input_tokens=50, output_tokens=2)], env)
    assert plain.output["result"] == "Hi."
    [row] = [r for r in ledger_rows(data) if r["session_id"] == plain.session_id]
    assert row["workflow"] is None
    no_hook_errors(data)


def test_the_events_that_decide_nothing_run_in_the_background_and_lose_nothing(
    claude_env: ClaudeEnv, tmp_path: Path
) -> None:
    """PostToolUse, Stop and SessionEnd are async: the CLI does not wait for them, and `-p` may cancel them when
    it ends. Every request still reaches the ledger exactly (the next hook, or SessionEnd, ingests what a
    cancelled one did not), and the 80% crossed by the run's last answer, which only those events saw, is
    announced by the next hook Claude Code waits for: the next session's SessionStart."""
    env = budget_env(tmp_path, daily_config())
    data = Path(env["TOKEN_BUDGET_HOME"])
    prefill(data, 70_000)
    script = [
        bash_turn("echo one", input_tokens=3000, output_tokens=10),
        bash_turn("echo two", input_tokens=3000, output_tokens=10),
        bash_turn("echo three", input_tokens=3000, output_tokens=10),
        text_turn("All done.", input_tokens=2000, output_tokens=5),  # 81,035: past 80% with no tool call after
    ]
    res = run(claude_env, "Run three commands", script, env, output_format="stream-json")
    assert res.result_event["result"] == "All done." and res.result_event["num_turns"] == 4
    debug = res.debug_text()
    for event in ("PostToolUse:Bash", "Stop"):
        assert f"Hooks: {event} [" in debug and "moved to the background" in debug, event
    assert "PreToolUse:Bash [" in debug and "finished with status 0" in debug  # the decisions stay blocking
    assert not [n for n in informational(res) if "TOKEN BUDGET ALERT" in n]  # nothing crossed at a tool call

    rows = ledger_rows(data)
    assert_ledger_has(rows, res)
    assert sum(r["input_tokens"] + r["output_tokens"] for r in rows) == 81_035
    # Under -p, Stop answers at once and a worker of its own ingests (fastpath.detach) while SessionEnd, which the
    # CLI waits for, reads the same bytes: once the worker is done too, the ledger is the same, with no error.
    wait_until_gone(f"TOKEN_BUDGET_HOME={data}")
    assert ledger_rows(data) == rows
    no_hook_errors(data)

    nxt = run(claude_env, "hello", [text_turn("hi", input_tokens=10, output_tokens=1)], env,
              output_format="stream-json")
    shown = [a for a in attachments(nxt, "hook_system_message") if "TOKEN BUDGET ALERT" in json.dumps(a)]
    assert len(shown) == 1 and "SessionStart" in json.dumps(shown[0]), shown
    assert "81,035 / 100,000 tokens (81.0%)" in shown[0]["content"]
    assert_ledger_has(ledger_rows(data), nxt)
    no_hook_errors(data)


def test_tool_calls_far_from_every_level_are_answered_from_the_headroom_and_the_crossing_one_alerts(
    claude_env: ClaudeEnv, tmp_path: Path
) -> None:
    """72% before the run: the prompt's decision records how far the budget is from 80%; the first two tool calls'
    requests fit in it and are answered without the decision (hook._within_headroom), the third crosses 80% and
    its tool call alerts, exactly as the decision would."""
    from token_budget.claude.fastpath import MAX_AGE, STATE_DIR

    env = budget_env(tmp_path, daily_config())
    data = Path(env["TOKEN_BUDGET_HOME"])
    prefill(data, 72_000)
    script = [
        bash_turn("echo one", input_tokens=2000, output_tokens=10),  # 74,010: fits below 79.9%
        bash_turn("echo two", input_tokens=2000, output_tokens=10),  # 76,020: fits
        bash_turn("echo three", input_tokens=5000, output_tokens=10),  # 81,030: alert
        text_turn("All done.", input_tokens=100, output_tokens=5),
    ]
    res = run(claude_env, "Run three commands", script, env, output_format="stream-json")
    out = res.result_event
    assert out["result"] == "All done." and out["permission_denials"] == []
    notes = [n for n in informational(res) if "TOKEN BUDGET ALERT" in n]
    assert len(notes) == 1 and notes[0].startswith("PreToolUse:Bash says: "), notes
    assert "81,030 / 100,000 tokens (81.0%)" in notes[0]
    # The last record was written by the second tool call's headroom answer: it keeps the expiry of the record it
    # continued (a decision's record expires MAX_AGE after it was written), and the room the requests left.
    [record] = [json.loads(p.read_text()) for p in (data / "cache" / STATE_DIR).glob("*.json")]
    assert record["valid_until"] < record["written"] + MAX_AGE
    daily = next(b for b in record["headroom"]["budgets"] if b[0] == "daily")
    assert daily[1] == 79_900 - 76_020 - 1
    rows = ledger_rows(data)
    assert_ledger_has(rows, res)
    assert sum(r["input_tokens"] + r["output_tokens"] for r in rows) == 81_135
    no_hook_errors(data)
