"""Limits that hold in the real CLI (2.1.332, `-p`), on both install routes: the plugin (`--plugin-dir`, whose
command is `/token-budget:tokens`) and pip (`tokens install`: hooks in settings.json and a user-level `/tokens`).

- no tool runs after the 110% stop: a Write after the crossing leaves the file untouched;
- the slash command is answered by the hook: zero API requests, its output in the `-p` result;
- the model's own `tokens budget …` and edits of the overrides are denied; the user's slash command works;
- an ack given under an old limit never lets a call through;
- every command a block or alert message suggests runs.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from .harness import REPO_ROOT, ClaudeEnv, Result, ledger_rows
from .mock_api import bash_turn, text_turn, tool_turn
from .test_enforcement import BLOCKED_PROMPT, budget_env, daily_config, no_hook_errors, prefill, tokens_cli

pytestmark = pytest.mark.e2e

ROUTES = ("plugin", "pip")
SLASH = {"plugin": "/token-budget:tokens", "pip": "/tokens"}


def today() -> str:
    return datetime.now(timezone.utc).date().isoformat()


class Route:
    """One install route in one ClaudeEnv: runs prompts the way that user's Claude Code is set up."""

    def __init__(self, name: str, env: ClaudeEnv, tmp_path: Path, config: str) -> None:
        self.name, self.claude = name, env
        self.run_env = budget_env(tmp_path, config)
        self.data = Path(self.run_env["TOKEN_BUDGET_HOME"])
        self.slash = SLASH[name]
        if name == "pip":  # what a pip user runs once: hooks and the /tokens command into ~/.claude
            tokens_cli(env, self.data, "install", extra_env={"CLAUDE_CONFIG_DIR": str(env.config_dir)})
            assert (env.config_dir / "commands" / "tokens.md").exists()

    def run(self, prompt: str, script: list[Any], **kw: Any) -> Result:
        plugin = REPO_ROOT if self.name == "plugin" else None
        return self.claude.run(prompt, script=script, plugin_dir=plugin, env=self.run_env, **kw)

    def command(self, args: str) -> Result:
        """`<slash> args` typed by the user: answered by the hook, never by the model."""
        res = self.run(f"{self.slash} {args}".rstrip(), [text_turn("never sent")])
        assert res.message_requests == [], res.describe()
        assert res.output["num_turns"] == 0
        assert res.output["result"].startswith(BLOCKED_PROMPT), res.output["result"]
        assert "Original prompt" not in res.output["result"]  # suppressOriginalPrompt
        return res


@pytest.fixture(params=ROUTES)
def route(request: pytest.FixtureRequest, claude_env: ClaudeEnv, tmp_path: Path) -> Route:
    return Route(request.param, claude_env, tmp_path, daily_config())


def test_no_tool_runs_after_the_110_percent_stop(route: Route) -> None:
    notes = route.claude.project / "notes.txt"
    notes.write_text("original\n")
    prefill(route.data, 105_000)
    route.command("status")  # the hook claims the 100% alert, so it can be acknowledged
    route.command(f"ack daily/100/{today()}")
    res = route.run(
        "Update the notes",
        [tool_turn("Read", {"file_path": str(notes)}, input_tokens=100, output_tokens=5),  # acked: it runs
         tool_turn("Write", {"file_path": str(notes), "content": "changed\n"}, input_tokens=6000,
                   output_tokens=10),  # 111,115: past the stop, mid-turn
         text_turn("never sent")],
        check=False,
    )
    out = res.output
    assert out["terminal_reason"] == "hook_stopped", res.describe()
    assert notes.read_text() == "original\n"  # the Write was denied, not just followed by a stop
    assert [d["tool_name"] for d in out["permission_denials"]] == ["Write"]
    assert len(res.message_requests) == 2
    no_hook_errors(route.data)


@pytest.mark.parametrize("args", ["status", "budget", "budget daily 200000", "mode economy", "log --limit 3",
                                  "report", "help", "events"])
def test_the_slash_command_makes_no_request_and_shows_its_output(route: Route, args: str) -> None:
    res = route.command(args)
    shown = res.output["result"]
    expected = {"status": "TOKEN USAGE DASHBOARD", "budget": "daily", "budget daily 200000":
                "daily budget set to 200,000 tokens", "mode economy": "mode: economy", "log --limit 3": "",
                "report": "date:", "help": f"{route.slash} budget [SCOPE AMOUNT]", "events": ""}[args]
    assert expected in shown and "Error" not in shown and "Unknown" not in shown, shown
    no_hook_errors(route.data)


def test_the_model_cannot_lift_its_own_budget_but_the_user_can(route: Route) -> None:
    prefill(route.data, 96_000)
    overrides = route.data / "overrides.json"
    project_config = route.claude.project / ".claude" / "token_budgets.yaml"
    res = route.run(
        "Raise the budget",
        [bash_turn("tokens budget daily 0 && tokens ack", input_tokens=100, output_tokens=5),
         tool_turn("Write", {"file_path": str(overrides), "content": '{"budgets": {"global": {"daily_limit": 0}}}'}),
         bash_turn(f"{sys.executable} -m token_budget mode normal"),
         tool_turn("Write", {"file_path": str(project_config), "content": "budgets: {global: {daily_limit: 0}}\n"}),
         bash_turn(f"sqlite3 {route.data / 'ledger.db'} 'DELETE FROM requests'"),
         text_turn("I could not.")],
    )
    denied = [d["tool_name"] for d in res.output["permission_denials"]]
    assert denied == ["Bash", "Write", "Bash", "Write", "Bash"], res.describe()
    assert not overrides.exists() and not project_config.exists()
    assert len(ledger_rows(route.data)) >= 2  # the prefill and this session's requests are all still there
    assert "changed only by the user" in json.dumps(res.transcript_entries())  # Claude was told why
    raised = route.command("budget daily 500000")
    assert "daily budget set to 500,000 tokens" in raised.output["result"]
    assert json.loads(overrides.read_text())["budgets"]["global"]["daily_limit"] == 500_000
    events = [json.loads(line) for line in tokens_cli(route.claude, route.data, "events", "--json").stdout.split("\n")
              if line.strip()]
    [change] = [e for e in events if e["kind"] == "limit_change"]
    assert json.loads(change["detail"]) == {"who": f"slash command {route.slash}", "old": 100_000, "new": 500_000,
                                            "subject": "daily"}
    no_hook_errors(route.data)


def test_a_stale_ack_never_allows_a_call(route: Route) -> None:
    prefill(route.data, 105_000)
    route.command("status")
    route.command(f"ack daily/100/{today()}")
    marker = route.claude.project / "marker"
    res = route.run("Touch it", [bash_turn(f"touch {marker}", input_tokens=50, output_tokens=5), text_turn("Done.")])
    assert marker.exists() and res.output["permission_denials"] == []  # the ack lets work go on
    marker.unlink()
    route.command("budget daily 102000")  # a new limit: the ack given under 100,000 no longer holds
    blocked = route.run("Touch it again", [bash_turn(f"touch {marker}"), text_turn("never sent")])
    assert blocked.message_requests == [] and blocked.output["result"].startswith(BLOCKED_PROMPT)
    assert "the daily budget is exhausted" in blocked.output["result"]
    assert not marker.exists()
    # Old alerts do not outlive a raised limit on the dashboard; `alerts --all` still lists them.
    assert "Alerts (" in route.command("status").output["result"]
    route.command("budget daily 1000000")
    assert "Alerts (" not in route.command("status").output["result"]
    assert "daily 100% (block)  105," in route.command("alerts --all").output["result"]
    no_hook_errors(route.data)


COMMAND_RE = re.compile(r"`((?:/token-budget:tokens|/tokens) [^`]*)`")


def test_every_command_a_message_suggests_runs(route: Route) -> None:
    """The block reason and the 80%/90% alerts name commands; each one, typed as suggested, works."""
    prefill(route.data, 85_000)
    alert = route.run("hello", [text_turn("Hi.", input_tokens=6000, output_tokens=5)], output_format="stream-json")
    messages = [e.get("content", "") for e in alert.output if e.get("type") == "system"
                and e.get("subtype") == "informational"]
    prefill(route.data, 10_000)
    blocked = route.run("more", [text_turn("never sent")])
    messages.append(blocked.output["result"])
    status = route.command("status").output["result"]
    messages.append(status)
    suggested = sorted({c for m in messages for c in COMMAND_RE.findall(m)})
    assert any(" ack daily/100/" in c for c in suggested) and any(" budget daily " in c for c in suggested), messages
    assert all(c.startswith(route.slash + " ") for c in suggested), suggested
    for command in suggested:
        shown = route.command(command[len(route.slash) + 1:]).output["result"]
        assert "Error" not in shown and "Unknown" not in shown, (command, shown)
    no_hook_errors(route.data)
