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
