"""Every billed token, with the real CLI: a request that is in no transcript is counted from Claude Code's totals.

A `type: "prompt"` UserPromptSubmit hook (in the user's settings) makes Claude Code ask the model whether the prompt
may go on: a real API request, billed and counted in the CLI's `total_cost_usd` / `modelUsage` and in the
transcript's cost-state line, but written to no transcript. (Title generation, the other auxiliary request the
issue names, does not run in `-p` mode, and `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC` must stay set offline:
without it the CLI also looks up api.anthropic.com through the host resolver; see the README, "Accuracy".)

The mock answers the hook's request first, then the session's. Token counts give whole micro-dollars per request
(5m writes in multiples of 4, reads in multiples of 10), so the ledger's integer micro-USD can equal the CLI's float
total exactly.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from .harness import REPO_ROOT, ClaudeEnv, ledger_rows
from .mock_api import bash_turn, text_turn
from .test_capture import tokens

pytestmark = pytest.mark.e2e

MODEL = "claude-sonnet-4-5-20250929"
PROMPT_HOOK = {"hooks": {"UserPromptSubmit": [{"hooks": [
    {"type": "prompt", "prompt": "Answer {\"ok\": true} if this prompt is fine: $ARGUMENTS"}]}]}}


def hook_answer(**usage: int) -> dict:
    return text_turn('{"ok": true}', **usage)


def session_sums(rows: list[dict], session: str | None = None) -> dict[str, int]:
    keep = [r for r in rows if session is None or r["session_id"] == session]
    return {
        "inputTokens": sum(r["input_tokens"] for r in keep),
        "outputTokens": sum(r["output_tokens"] for r in keep),
        "cacheCreationInputTokens": sum(r["cache_creation_5m_tokens"] + r["cache_creation_1h_tokens"] for r in keep),
        "cacheReadInputTokens": sum(r["cache_read_tokens"] for r in keep),
        "cost_micros": sum(r["cost_micros"] for r in keep),
    }


def cli_figures(result: dict) -> dict[str, int]:
    (usage,) = result["modelUsage"].values()
    return {k: usage[k] for k in ("inputTokens", "outputTokens", "cacheCreationInputTokens",
                                  "cacheReadInputTokens")} | {"cost_micros": round(result["total_cost_usd"] * 1e6)}


def test_a_prompt_hooks_request_is_in_no_transcript_yet_the_ledger_equals_the_clis_total(
        claude_env: ClaudeEnv, tmp_path: Path) -> None:
    data = tmp_path / "tb-home"
    env = {"TOKEN_BUDGET_PYTHON": sys.executable, "TOKEN_BUDGET_HOME": str(data)}
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps(PROMPT_HOOK))
    args = ["--settings", str(settings)]
    first = claude_env.run("please say hi with bash", plugin_dir=REPO_ROOT, env=env, extra_args=args, script=[
        hook_answer(input_tokens=320, output_tokens=9),
        bash_turn("echo hi", input_tokens=1200, cache_creation_input_tokens=400, cache_read_input_tokens=3000,
                  output_tokens=40),
        text_turn("All done.", input_tokens=1300, cache_creation_input_tokens=80, cache_read_input_tokens=3400,
                  output_tokens=12),
    ])
    answered = first.message_requests
    assert len(answered) == 3
    in_transcript = {a["message"]["id"] for a in first.assistant_entries()}
    hook_request = answered[0]["message_id"]
    assert hook_request not in in_transcript, "the prompt hook's request is in the transcript: nothing to prove"
    assert {r["message_id"] for r in answered[1:]} <= in_transcript
    cost_states = [e for e in first.transcript_entries() if e.get("type") == "cost-state"]
    assert cost_states and cost_states[-1]["totalCostUSD"] == first.output["total_cost_usd"]

    # The hooks alone (SessionEnd reads the final cost-state line) bring the ledger to the CLI's own figures.
    rows = ledger_rows(data)
    extra = [r for r in rows if r["source"] == "reconciled"]
    assert [(r["model"], r["input_tokens"], r["output_tokens"], r["session_id"]) for r in extra] == [
        (MODEL, 320, 9, first.session_id)]
    assert session_sums(rows, first.session_id) == cli_figures(first.output)

    # A resume (same file, cumulative figures) and a fork (new file, copied lines, figures that start from the
    # parent's), each with its own prompt-hook request: every request once, the hook requests included.
    second = claude_env.run("again", plugin_dir=REPO_ROOT, env=env, extra_args=args, resume=first.session_id,
                            script=[hook_answer(input_tokens=410, output_tokens=7),
                                    text_turn("two", input_tokens=1400, output_tokens=4,
                                              cache_read_input_tokens=3800)])
    assert second.session_id == first.session_id
    assert session_sums(ledger_rows(data), first.session_id) == cli_figures(second.output)
    forked = claude_env.run("fork", plugin_dir=REPO_ROOT, env=env, extra_args=args, resume=first.session_id,
                            fork=True, script=[hook_answer(input_tokens=230, output_tokens=5),
                                               text_turn("three", input_tokens=1500, output_tokens=6,
                                                         cache_creation_input_tokens=8)])
    assert forked.session_id != first.session_id
    rows = ledger_rows(data)
    # The fork's figures cover everything (they start from the parent's): so does the whole ledger, once.
    assert session_sums(rows) == cli_figures(forked.output)
    assert sorted((r["session_id"] == forked.session_id, r["input_tokens"]) for r in rows
                  if r["source"] == "reconciled") == [(False, 320), (False, 410), (True, 230)]

    # Re-reading every file from the start adds nothing; doctor reports the sessions, and no drift.
    imported = tokens(claude_env, data, "import", "--rescan", "--claude-dir", str(claude_env.config_dir),
                      "--json").json()
    assert imported["requests_added"] == 0 and imported["sessions_reconciled"] >= 2, imported
    assert ledger_rows(data) == rows
    doctor = tokens(claude_env, data, "doctor", "--json", "--claude-dir", str(claude_env.config_dir),
                    check=False).json()
    check = next(c for c in doctor["checks"] if c["name"] == "reconciliation")
    assert check["status"] == "ok" and "2 sessions checked" in check["detail"], check
