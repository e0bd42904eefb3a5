"""Limits in the interactive TUI (tmux, offline), on both install routes: the slash command's output on screen
with no API request, the 110% stop that keeps a Write from running, and the model's own lift denied."""

from __future__ import annotations

from pathlib import Path

import pytest

from .harness import REPO_ROOT, ClaudeEnv
from .mock_api import text_turn, tool_turn
from .test_enforcement import budget_env, daily_config, prefill, tokens_cli
from .test_limits_hold import today
from .tui import TUI

pytestmark = pytest.mark.e2e


def messages(tui: TUI) -> list[dict]:
    return [r for r in tui.requests() if r.get("kind") == "messages"]


def test_plugin_slash_commands_answer_on_screen_and_the_stop_keeps_a_write_from_running(
    claude_env: ClaudeEnv, tmp_path: Path
) -> None:
    env = budget_env(tmp_path, daily_config())
    data = Path(env["TOKEN_BUDGET_HOME"])
    prefill(data, 105_000)
    notes = claude_env.project / "notes.txt"
    notes.write_text("original\n")
    script = [tool_turn("Read", {"file_path": str(notes)}, input_tokens=100, output_tokens=5),
              tool_turn("Write", {"file_path": str(notes), "content": "changed\n"}, input_tokens=6000,
                        output_tokens=10),
              text_turn("never sent")]
    with TUI(claude_env, script=script, plugin_dir=REPO_ROOT, extra_env=env, label="tui-plugin") as tui:
        for command, shown in (("status", "TOKEN USAGE DASHBOARD"), ("help", "/token-budget:tokens budget [SCOPE"),
                               ("log --limit 2", "msg_prefill"), ("report", "total_tokens"),
                               (f"ack daily/100/{today()}", "Acknowledged 1 alert.")):
            tui.send(f"/token-budget:tokens {command}")
            tui.wait_for(shown)
        assert messages(tui) == []  # five commands, no request
        tui.send("Update the notes")
        tui.wait_for("hook stopped Claude")
        screen = tui.wait_for("Do not retry: the session is stopped.")  # the deny, not only the stop
        assert "token-budget: emergency stop: the daily budget is at 111,115 / 100,000 tokens" in screen
        assert notes.read_text() == "original\n"
        assert len(messages(tui)) == 2
        tui.send("/token-budget:tokens budget daily 200000")
        tui.wait_for("daily budget set to 200,000 tokens")
        assert len(messages(tui)) == 2


def test_pip_route_slash_command_and_a_denied_lift(claude_env: ClaudeEnv, tmp_path: Path) -> None:
    env = budget_env(tmp_path, daily_config())
    data = Path(env["TOKEN_BUDGET_HOME"])
    tokens_cli(claude_env, data, "install", extra_env={"CLAUDE_CONFIG_DIR": str(claude_env.config_dir)})
    prefill(data, 96_000)
    script = [tool_turn("Bash", {"command": "tokens budget daily 0 && tokens ack", "description": "lift"}),
              text_turn("You can raise it with /tokens budget.")]
    with TUI(claude_env, script=script, extra_env=env, label="tui-pip") as tui:
        tui.send("/tokens budget")
        tui.wait_for("daily")
        tui.send("/tokens mode economy")
        tui.wait_for("mode: economy")
        assert messages(tui) == []
        tui.send("Raise my budget")
        screen = tui.wait_for("You can raise it with /tokens budget.")
        assert "`tokens budget daily 0` changes what token-budget enforces" in screen
        assert "daily_limit" not in (data / "overrides.json").read_text()
