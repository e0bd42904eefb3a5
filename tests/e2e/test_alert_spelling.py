"""An alert that crosses its threshold in the real CLI reaches Slack naming the slash command of the install route
the hook ran from: `/token-budget:tokens` for the plugin, `/tokens` for a pip install (`tokens install`). The
webhook is the mock API's loopback port inside the namespace, which records the sender's POST."""

from __future__ import annotations

from pathlib import Path

import pytest

from .harness import MOCK_PORT, REPO_ROOT, ClaudeEnv
from .mock_api import text_turn
from .test_enforcement import LIMIT, budget_env, daily_config, prefill, tokens_cli
from .test_limits_hold import today

pytestmark = pytest.mark.e2e

SLACK = """alerts:
  channels:
    - type: slack
      threshold: 80%
      webhook: $SLACK_WEBHOOK
"""


@pytest.mark.parametrize(("route", "spelled"), [("plugin", "/token-budget:tokens"), ("pip", "/tokens")])
def test_the_slack_alert_names_the_slash_command_of_the_route_that_queued_it(
    claude_env: ClaudeEnv, tmp_path: Path, route: str, spelled: str
) -> None:
    env = budget_env(tmp_path, daily_config(extra=SLACK))
    env["SLACK_WEBHOOK"] = f"http://127.0.0.1:{MOCK_PORT}/slack-hook"
    data = Path(env["TOKEN_BUDGET_HOME"])
    prefill(data, LIMIT * 85 // 100)
    script = [text_turn("hi", input_tokens=100, output_tokens=5), text_turn("again", input_tokens=100, output_tokens=5)]
    if route == "pip":
        tokens_cli(claude_env, data, "install", extra_env={"CLAUDE_CONFIG_DIR": str(claude_env.config_dir)})
        res = claude_env.run("hello", script=script, env=env)
    else:
        res = claude_env.run("hello", script=script, plugin_dir=REPO_ROOT, env=env)
    [post] = [r for r in res.requests if r["path"] == "/slack-hook"]
    key = f"daily/80/{today()}"
    text = post["body"]["text"]
    assert f"tokens ack {key}   (in Claude Code: {spelled} ack {key})" in text, text
    other = "/tokens " if route == "plugin" else "/token-budget:tokens"
    assert other not in text


def test_on_screen_the_alert_shows_and_tokens_alerts_lists_its_slack_delivery(claude_env: ClaudeEnv,
                                                                              tmp_path: Path) -> None:
    from .tui import TUI

    env = budget_env(tmp_path, daily_config(extra=SLACK))
    env["SLACK_WEBHOOK"] = f"http://127.0.0.1:{MOCK_PORT}/slack-hook"
    prefill(Path(env["TOKEN_BUDGET_HOME"]), LIMIT * 85 // 100)
    script = [text_turn("never sent")]
    with TUI(claude_env, script=script, plugin_dir=REPO_ROOT, extra_env=env, label="tui-alert") as tui:
        screen = tui.wait_for("TOKEN BUDGET ALERT")  # SessionStart shows it: the prefill is past 80% already
        assert f"`/token-budget:tokens ack daily/80/{today()}`" in " ".join(screen.split()), screen
        tui.send("/token-budget:tokens alerts")
        screen = tui.wait_for("slack")
        assert f"id: daily/80/{today()}" in screen, screen
        [post] = [r for r in tui.requests() if r["path"] == "/slack-hook"]
        assert "(in Claude Code: /token-budget:tokens ack daily/80/" in post["body"]["text"]
        assert [r for r in tui.requests() if r.get("kind") == "messages"] == []  # the slash command made none
