"""Usage capture end to end: the real plugin (this checkout) in the real Claude Code CLI, against the mock.

Every scenario checks the ledger against what the mock actually answered (one row per /v1/messages request,
per class exact), and most check the CLI's own view (`tokens log --json`, `tokens import`) and ccusage's.

Token counts are chosen so that each request costs a whole number of micro-dollars (5m cache writes in
multiples of 4, cache reads in multiples of 10): the ledger stores integer micro-USD per request, so only then
can its sum equal ccusage's float total to 1e-9 (otherwise they differ by up to 0.5 µ$ per request, by
design).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .harness import (
    LEDGER_CLASS_COLUMNS,
    PLUGIN_NAME,
    REPO_ROOT,
    ClaudeEnv,
    CommandResult,
    Result,
    ledger_rows,
    mock_usage_rows,
    plugin_data_dir,
)
from .mock_api import bash_turn, text_turn, tool_turn

pytestmark = pytest.mark.e2e

MARKETPLACE_ID = f"{PLUGIN_NAME}@{PLUGIN_NAME}"  # the repo is its own marketplace, named like the plugin
INLINE_ID = f"{PLUGIN_NAME}@inline"  # what --plugin-dir loads it as
# Skip the bootstrap: the test interpreter has the dependencies (the bootstrap itself has its own test).
FAST_PYTHON = {"TOKEN_BUDGET_PYTHON": sys.executable}
READY_MARKER = ".token-budget-ready"

TOOL_THEN_TEXT = [
    bash_turn(
        "echo hi",
        input_tokens=1200,
        cache_creation_input_tokens=400,
        ephemeral_1h_input_tokens=100,  # 300 5m + 100 1h writes
        cache_read_input_tokens=3000,
        output_tokens=40,
    ),
    text_turn(
        "All done.",
        input_tokens=1300,
        cache_creation_input_tokens=80,
        cache_read_input_tokens=3400,
        output_tokens=12,
    ),
]


# ------------------------------------------------------------------------------------------------ helpers


def tokens(env: ClaudeEnv, data_dir: Path, *args: str, check: bool = True) -> CommandResult:
    """`tokens --data-dir DIR ARGS` from this checkout, inside the run's namespace (network-guarded)."""
    return env.command(
        env.python,
        "-m",
        "token_budget",
        "--data-dir",
        str(data_dir),
        *args,
        env={"PYTHONPATH": str(REPO_ROOT)},
        check=check,
        label="tokens-" + (args[0] if args else ""),
    )


def assert_ledger_matches_mock(
    rows: list[dict[str, Any]], runs: list[Result], sources: tuple[str, ...] = ("hook",)
) -> None:
    """Exactly one ledger row per request the mock answered, with its ids and every token class."""
    want = mock_usage_rows(r for run in runs for r in run.requests)
    assert want, "the mock answered no request"
    got = {r["message_id"]: r for r in rows}
    assert len(got) == len(rows)
    assert sorted(got) == sorted(want), "ledger rows != the mock's requests"
    for mid, w in want.items():
        row = got[mid]
        assert {k: row[k] for k in w} == w, mid
        assert row["total_tokens"] == sum(row[c] for c in LEDGER_CLASS_COLUMNS)
        assert row["cost_status"] == "priced" and row["cost_micros"] > 0
        assert row["source"] in sources, row


def assert_ccusage_agrees(env: ClaudeEnv, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """ccusage 20.0.24 over the same HOME: the same tokens per class, and the same cost to 1e-9."""
    daily = env.ccusage("daily", "--json", "--offline").json()
    t = daily["totals"]
    assert (t["inputTokens"], t["outputTokens"], t["cacheCreationTokens"], t["cacheReadTokens"]) == (
        sum(r["input_tokens"] for r in rows),
        sum(r["output_tokens"] for r in rows),
        sum(r["cache_creation_5m_tokens"] + r["cache_creation_1h_tokens"] for r in rows),
        sum(r["cache_read_tokens"] for r in rows),
    )
    assert abs(t["totalCost"] - sum(r["cost_micros"] for r in rows) / 1e6) < 1e-9, (t, rows)
    return t


def hook_responses(res: Result) -> list[dict[str, Any]]:
    return [e for e in res.events if e.get("type") == "system" and e.get("subtype") == "hook_response"]


def no_hook_errors(data_dir: Path) -> None:
    log = data_dir / "hook.log"
    assert not log.exists(), log.read_text()


# ------------------------------------------------------------------------------------------------ scenarios


def test_plugin_validate_passes_on_the_checkout(claude_env: ClaudeEnv) -> None:
    """`claude plugin validate` on the repo (marketplace + plugin) and, strictly, on plugin.json."""
    res = claude_env.command(*claude_env.claude_argv("plugin", "validate", str(REPO_ROOT), "--json"))
    out = res.json()
    assert out["success"] is True and out["manifest"]["errors"] == [], out
    hooks = {h["event"] for h in out["provides"]["hooks"]}
    assert {"SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop", "SubagentStop",
            "SessionEnd"} <= hooks  # fmt: skip
    strict = claude_env.command(
        *claude_env.claude_argv(
            "plugin", "validate", str(REPO_ROOT / ".claude-plugin" / "plugin.json"), "--strict", "--json"
        )
    ).json()
    assert strict["success"] is True and strict["manifest"]["errors"] == [], strict


def test_two_turns_and_one_tool_call_marketplace_install(claude_env: ClaudeEnv) -> None:
    """Installed as users do; CLAUDE_PLUGIN_DATA decides the data dir. The ledger holds exactly the mock's
    requests; `tokens log --json` shows them; the cost equals ccusage's for the same transcript."""
    res = claude_env.run(
        "Please say hi using bash",
        script=TOOL_THEN_TEXT,
        marketplace=REPO_ROOT,
        env=FAST_PYTHON,
        output_format="stream-json",
        extra_args=["--include-hook-events"],
    )
    assert res.result_event["result"] == "All done." and res.result_event["num_turns"] == 2
    assert len(res.message_requests) == 2

    # Every plugin hook Claude Code waited for answered exit 0 with a JSON object, blocking nothing and reporting
    # no failure. The async ones (PostToolUse, Stop) may be cancelled when `-p` ends: nothing depends on them
    # (the ledger below is exact because the next hook, or SessionEnd, ingests what they did not).
    responses = hook_responses(res)
    seen = {h["hook_event"] for h in responses}
    assert {"SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop"} <= seen, seen
    for h in responses:
        if h["hook_event"] in ("PostToolUse", "Stop") and h["outcome"] == "cancelled":
            continue
        assert h["exit_code"] == 0 and h["outcome"] == "success", h
        answer = json.loads(h["stdout"])
        assert isinstance(answer, dict) and answer.get("decision") != "block", h
        assert not any(w in answer.get("systemMessage", "") for w in ("skipped", "could not run")), h

    data = plugin_data_dir(claude_env, MARKETPLACE_ID)
    rows = ledger_rows(data)
    assert_ledger_matches_mock(rows, [res])
    for row in rows:
        assert row["session_id"] == res.session_id and row["agent_id"] is None and row["is_sidechain"] == 0
        assert row["cwd"] == str(claude_env.project) and row["project"] == res.transcript.parent.name
    no_hook_errors(data)

    # The ledger's ids are the transcript's (message.id, requestId) pairs.
    assert {(a["message"]["id"], a["requestId"]) for a in res.assistant_entries()} == {
        (r["message_id"], r["request_id"]) for r in rows
    }

    out = tokens(claude_env, data, "log", "--json").stdout
    log = [json.loads(ln) for ln in out.splitlines() if ln.strip()]
    assert [e["request_id"] for e in log] == [f"{r['message_id']}:{r['request_id']}" for r in rows]
    for e, r in zip(log, rows, strict=True):
        tk = e["tokens"]
        assert (tk["input"], tk["output"], tk["cache_creation"], tk["cache_read"]) == (
            r["input_tokens"],
            r["output_tokens"],
            r["cache_creation_5m_tokens"] + r["cache_creation_1h_tokens"],
            r["cache_read_tokens"],
        )
        assert tk["total"] == r["total_tokens"]
        assert e["cost_usd"] == pytest.approx(r["cost_micros"] / 1e6, abs=1e-12)
        assert e["session_id"] == res.session_id and e["model"] == r["model"]

    assert_ccusage_agrees(claude_env, rows)
    # ... and so does the CLI itself (its result's cost covers exactly these two requests)
    assert abs(res.result_event["total_cost_usd"] - sum(r["cost_micros"] for r in rows) / 1e6) < 1e-9

    # A backfill over the same transcripts finds nothing new: the hooks already recorded everything.
    imported = tokens(claude_env, data, "import", "--claude-dir", str(claude_env.config_dir), "--json").json()
    assert imported["requests_added"] == 0 and imported["requests_updated"] == 0, imported
    assert ledger_rows(data) == rows


def test_subagent_requests_are_attributed_to_the_subagent(claude_env: ClaudeEnv) -> None:
    """--plugin-dir (data in plugins/data/token-budget-inline): an Agent call whose subagent makes two
    requests (one Bash call). Its rows carry agent_id, agent_type from the meta file, and is_sidechain=1."""
    script = [
        tool_turn(
            "Agent",
            {
                "description": "Say hi",
                "prompt": "Run `echo sub` and report.",
                "subagent_type": "general-purpose",
                "run_in_background": False,
            },
            input_tokens=1000,
            cache_creation_input_tokens=40,
            cache_read_input_tokens=1000,
            output_tokens=30,
        ),
        # the subagent's own requests (it runs in the foreground, so they come next)
        bash_turn(
            "echo sub",
            input_tokens=2000,
            cache_creation_input_tokens=20,
            ephemeral_1h_input_tokens=20,
            cache_read_input_tokens=500,
            output_tokens=11,
        ),
        text_turn("sub done", input_tokens=2100, output_tokens=5, cache_read_input_tokens=520),
        # the parent's final answer
        text_turn("All done.", input_tokens=3000, output_tokens=9, cache_read_input_tokens=1500),
    ]
    res = claude_env.run("Delegate a greeting", script=script, plugin_dir=REPO_ROOT, env=FAST_PYTHON)
    assert res.output["result"] == "All done."
    assert [r["turn_index"] for r in res.message_requests] == [0, 1, 2, 3]
    assert "echo sub" in json.dumps(res.message_requests[1]["body"]["messages"])  # the subagent's prompt

    [sub_file] = [p for p in res.transcripts if "subagents" in p.parts]
    agent_id = sub_file.stem.removeprefix("agent-")
    meta = json.loads(sub_file.with_name(sub_file.stem + ".meta.json").read_text())
    assert meta["agentType"] == "general-purpose"

    data = plugin_data_dir(claude_env, INLINE_ID)
    rows = ledger_rows(data)
    assert_ledger_matches_mock(rows, [res])
    by_id = {r["message_id"]: r for r in rows}
    ids = [r["message_id"] for r in res.message_requests]
    for mid in (ids[0], ids[3]):  # the parent's
        row = by_id[mid]
        assert (row["agent_id"], row["agent_type"], row["is_sidechain"]) == (None, None, 0)
    for mid in ids[1:3]:  # the subagent's
        row = by_id[mid]
        assert (row["agent_id"], row["agent_type"], row["is_sidechain"]) == (agent_id, "general-purpose", 1)
        assert row["session_id"] == res.session_id  # subagent files carry the parent's session id
    # The subagent's own hooks (its Bash call's PreToolUse/PostToolUse carry agent_id) read its transcript:
    # its first request was in the ledger before its second one was even answered.
    assert by_id[ids[1]]["recorded_at"] < by_id[ids[2]]["timestamp"], (by_id[ids[1]], by_id[ids[2]])
    no_hook_errors(data)
    assert_ccusage_agrees(claude_env, rows)


def test_resume_and_fork_count_nothing_twice(claude_env: ClaudeEnv, tmp_path: Path) -> None:
    """--plugin-dir with TOKEN_BUDGET_HOME set: a session, a --resume of it (same file, appended), and a
    --resume --fork-session (a new file copying the history with the same message and request ids)."""
    data = tmp_path / "tb-home"
    env = {**FAST_PYTHON, "TOKEN_BUDGET_HOME": str(data)}
    first = claude_env.run("first", script=TOOL_THEN_TEXT, plugin_dir=REPO_ROOT, env=env)
    second = claude_env.run(
        "second",
        script=[text_turn("two", input_tokens=1400, output_tokens=4, cache_read_input_tokens=3800)],
        plugin_dir=REPO_ROOT,
        env=env,
        resume=first.session_id,
    )
    assert second.session_id == first.session_id
    forked = claude_env.run(
        "third",
        script=[text_turn("three", input_tokens=1500, output_tokens=6, cache_creation_input_tokens=8)],
        plugin_dir=REPO_ROOT,
        env=env,
        resume=first.session_id,
        fork=True,
    )
    assert forked.session_id != first.session_id
    runs = [first, second, forked]

    # The fork's file does copy the earlier requests (so there is something to count twice) ...
    fork_ids = {a["message"]["id"] for a in forked.assistant_entries()}
    earlier = {r["message_id"] for run in (first, second) for r in run.message_requests}
    assert earlier <= fork_ids

    # ... yet the ledger holds each request once, attributed to the session that made it.
    rows = ledger_rows(data)
    assert_ledger_matches_mock(rows, runs)
    assert len(rows) == 4
    session_of = {r["message_id"]: r["session_id"] for r in rows}
    for run in runs:
        for r in run.message_requests:
            assert session_of[r["message_id"]] == run.session_id
    # The data went to TOKEN_BUDGET_HOME, not to CLAUDE_PLUGIN_DATA.
    assert not (plugin_data_dir(claude_env, INLINE_ID) / "ledger.db").exists()
    no_hook_errors(data)

    assert_ccusage_agrees(claude_env, rows)
    imported = tokens(claude_env, data, "import", "--claude-dir", str(claude_env.config_dir), "--json").json()
    assert imported["requests_added"] == 0 and imported["requests_updated"] == 0, imported
    assert len(ledger_rows(data)) == 4


def test_bootstrap_builds_the_environment_offline_from_a_wheelhouse(
    claude_env: ClaudeEnv, wheelhouse: Path
) -> None:
    """A user's first session with nothing pip-installed: the hook fails open with a systemMessage while
    scripts/bootstrap.py builds <CLAUDE_PLUGIN_DATA>/venv from TOKEN_BUDGET_WHEELHOUSE, inside the namespace
    (so pip provably reaches nothing). The first session ends before the environment is ready; once it is, the
    bootstrap imports it, and the second session's first hook says so: both sessions are in the ledger exactly,
    with no action from the user."""
    env = {"TOKEN_BUDGET_WHEELHOUSE": str(wheelhouse)}
    data = plugin_data_dir(claude_env, MARKETPLACE_ID)
    first = claude_env.run(
        "first session",
        script=TOOL_THEN_TEXT,
        marketplace=REPO_ROOT,
        env=env,
        output_format="stream-json",
    )
    assert first.result_event["result"] == "All done."  # the session itself is unaffected
    notes = [
        e.get("content", "")
        for e in first.events
        if e.get("type") == "system" and e.get("subtype") == "informational"
    ]
    assert any("setting up its Python environment" in n and str(data / "venv") in n for n in notes), notes
    for h in hook_responses(first):
        assert h["exit_code"] == 0, h  # never 1 or 127, which would silently disable the hooks
    first_ids = {r["message_id"] for r in first.message_requests}

    marker = data / "venv" / READY_MARKER
    log_path = data / "bootstrap.log"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not (log_path.exists() and "catch-up import" in log_path.read_text()):
        time.sleep(0.1)
    log = log_path.read_text() if log_path.exists() else "(no bootstrap.log)"
    assert marker.exists(), log
    assert "ready" in log and "failed" not in log and "catch-up import (exit 0)" in log, log
    venv_python = data / "venv" / "bin" / "python"
    probe = claude_env.command(str(venv_python), "-c", "import click, yaml, jsonschema, filelock")
    assert probe.returncode == 0
    assert {r["message_id"] for r in ledger_rows(data)} == first_ids  # no hook of the first session recorded it

    second = claude_env.run(
        "second session",
        script=[text_turn("Second.", input_tokens=900, output_tokens=3, cache_read_input_tokens=100)],
        marketplace=REPO_ROOT,
        env=env,
        output_format="stream-json",
    )
    assert not [e for e in second.events if "setting up its Python environment" in json.dumps(e)]
    # Said once: normally at the second session's first hook; on a machine fast enough to finish the environment
    # before the first session's last hook, there.
    texts = [json.dumps(e) for e in first.events + second.events]
    told = [t for t in texts if "token-budget is ready: it recorded" in t]
    assert len(told) == 1 and f"recorded {len(first_ids)} request" in told[0], texts
    rows = ledger_rows(data)
    assert_ledger_matches_mock(rows, [first, second], sources=("hook", "import"))

    # The plugin's own `tokens` launcher (what the slash command runs) uses the same environment; a manual
    # import now finds nothing left to add.
    imported = claude_env.command(
        "sh", str(REPO_ROOT / "scripts" / "tokens"), "--data-dir", str(data),
        "import", "--claude-dir", str(claude_env.config_dir), "--json",
    ).json()  # fmt: skip
    assert imported["requests_added"] == 0, imported

    # The base interpreter goes away (a Python upgrade): the venv keeps its marker, but its python link
    # dangles. The hooks must notice and rebuild, not fail with exit 127 on every event from then on.
    for name in ("python", "python3"):
        (data / "venv" / "bin" / name).unlink()
    (data / "venv" / "bin" / "python3").symlink_to("/nonexistent/python3.0")
    (data / "venv" / "bin" / "python").symlink_to("python3")
    third = claude_env.run(
        "third session",
        script=[text_turn("Third.", input_tokens=700, output_tokens=2)],
        marketplace=REPO_ROOT,
        env=env,
        output_format="stream-json",
    )
    texts = [json.dumps(e) for e in third.events]
    assert not [t for t in texts if "could not run" in t], texts
    assert [t for t in texts if "setting up its Python environment" in t]
    deadline = time.monotonic() + 120
    while not (marker.exists() and os.access(venv_python, os.X_OK)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marker.exists() and os.access(venv_python, os.X_OK), (data / "bootstrap.log").read_text()
    claude_env.command(
        "sh", str(REPO_ROOT / "scripts" / "tokens"), "--data-dir", str(data),
        "import", "--claude-dir", str(claude_env.config_dir),
    )  # fmt: skip
    assert_ledger_matches_mock(ledger_rows(data), [first, second, third], sources=("hook", "import"))

