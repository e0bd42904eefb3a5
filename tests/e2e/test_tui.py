"""What a user sees in the real TUI (tmux, offline, against the mock): the plugin's own words on screen."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from .harness import PLUGIN_NAME, REPO_ROOT, ClaudeEnv, ledger_rows, plugin_data_dir
from .mock_api import text_turn
from .tui import TUI

pytestmark = pytest.mark.e2e


def test_a_prompt_is_answered_on_screen(claude_env: ClaudeEnv) -> None:
    with TUI(claude_env, script=[text_turn("Hello from the mock.", input_tokens=10, output_tokens=5)],
             plugin_dir=REPO_ROOT, extra_env={"TOKEN_BUDGET_PYTHON": sys.executable}) as tui:
        tui.send("say hello")
        tui.wait_for("Hello from the mock.")
        assert len(tui.requests()) >= 1


def test_the_plugins_first_session_is_recorded_and_the_next_session_says_so(claude_env: ClaudeEnv,
                                                                            wheelhouse: Path) -> None:
    claude_env.install_plugin(REPO_ROOT)
    data = plugin_data_dir(claude_env, f"{PLUGIN_NAME}@{PLUGIN_NAME}")
    env = {"TOKEN_BUDGET_WHEELHOUSE": str(wheelhouse)}
    with TUI(claude_env, script=[text_turn("First answer.", input_tokens=300, output_tokens=7)], model=None,
             extra_env=env, label="first") as tui:
        tui.send("first prompt")
        tui.wait_for("setting up its Python environment")
        tui.wait_for("First answer.")
    log = data / "bootstrap.log"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not (log.exists() and "catch-up import" in log.read_text()):
        time.sleep(0.2)
    with TUI(claude_env, script=[text_turn("Second answer.", input_tokens=200, output_tokens=5)], model=None,
             extra_env=env, label="second") as tui:
        tui.send("second prompt")
        screen = tui.wait_for("Second answer.")
        assert "token-budget is ready: it recorded 1 request from 1 transcript" in screen, screen
        deadline = time.monotonic() + 30  # the turn's Stop hook records the second answer
        while len(ledger_rows(data)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
    assert sorted(r["input_tokens"] for r in ledger_rows(data)) == [200, 300]  # both sessions, each once


def test_async_hooks_in_the_tui_the_alert_on_screen_and_every_request_recorded(claude_env: ClaudeEnv,
                                                                               tmp_path: Path) -> None:
    """Interactive session, 75% of the day used: the answer that crosses 80% is announced on screen by the blocking
    PreToolUse of its tool call; the async hooks (PostToolUse, Stop) show no error and record the rest."""
    from .mock_api import bash_turn
    from .test_enforcement import budget_env, daily_config, prefill

    env = budget_env(tmp_path, daily_config())
    data = Path(env["TOKEN_BUDGET_HOME"])
    prefill(data, 75_000)
    script = [bash_turn("echo one", input_tokens=6000, output_tokens=10),  # 81,010: alert
              bash_turn("echo two", input_tokens=1000, output_tokens=10),
              text_turn("All done here.", input_tokens=100, output_tokens=5)]
    with TUI(claude_env, script=script, plugin_dir=REPO_ROOT, extra_env=env) as tui:
        tui.send("run two commands")
        screen = tui.wait_for("All done here.")
        said = screen.split("PreToolUse:Bash says:", 1)
        assert len(said) == 2 and "TOKEN BUDGET ALERT: the daily budget is at 81,010 / 100,000" in said[1], screen
        assert "hook error" not in screen and "cancelled" not in screen, screen
        deadline = time.monotonic() + 30  # the turn's Stop hook (async) records the last answer
        while len(ledger_rows(data)) < 4 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(tui.requests()) == 3
    rows = ledger_rows(data)
    assert sum(r["input_tokens"] + r["output_tokens"] for r in rows) == 82_125
    assert not (data / "hook.log").exists()


def test_tool_calls_answered_from_the_headroom_then_the_crossing_alert_on_screen(claude_env: ClaudeEnv,
                                                                                tmp_path: Path) -> None:
    """Interactive session, 72% of the day used: the first two tool calls' requests stay below 80% and are answered
    from the headroom (nothing on screen), the third crosses 80% and its PreToolUse shows the alert, once."""
    import json

    from token_budget.claude.fastpath import MAX_AGE, STATE_DIR

    from .mock_api import bash_turn
    from .test_enforcement import budget_env, daily_config, prefill

    env = budget_env(tmp_path, daily_config())
    data = Path(env["TOKEN_BUDGET_HOME"])
    prefill(data, 72_000)
    script = [bash_turn("echo one", input_tokens=2000, output_tokens=10),  # 74,010
              bash_turn("echo two", input_tokens=2000, output_tokens=10),  # 76,020
              bash_turn("echo three", input_tokens=5000, output_tokens=10),  # 81,030: alert
              text_turn("All done here.", input_tokens=100, output_tokens=5)]
    with TUI(claude_env, script=script, plugin_dir=REPO_ROOT, extra_env=env) as tui:
        tui.send("run three commands")
        screen = tui.wait_for("All done here.")
        said = screen.split("PreToolUse:Bash says:")
        assert len(said) == 2 and "TOKEN BUDGET ALERT: the daily budget is at 81,030 / 100,000" in said[1], screen
        assert "hook error" not in screen and "cancelled" not in screen, screen
        assert len(tui.requests()) == 4
    [record] = [json.loads(p.read_text()) for p in (data / "cache" / STATE_DIR).glob("*.json")]
    assert record["valid_until"] < record["written"] + MAX_AGE  # written by a headroom answer (it keeps the expiry)
    assert not (data / "hook.log").exists()
