"""Team budgets in the real CLI (the plugin from this checkout, ``--plugin-dir``), offline in its namespace.

The team's totals come from the real PostgreSQL fixture, pulled by a sync run outside the namespace (as the member's
sync had done before the session); inside it the server is out of reach, as on a plane: the hooks enforce from the
last totals plus this machine's own usage, and the syncs they start fail quietly into team.log."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from team_helpers import Machine, TeamDb, sync_once

from .harness import ClaudeEnv, request_text
from .mock_api import bash_turn, text_turn
from .test_enforcement import BLOCKED_PROMPT, prefill, run

pytestmark = pytest.mark.e2e


def team_of_two(postgres, tmp_path: Path, *, bob_used: int, alice_used: int) -> tuple[TeamDb, Machine, dict]:  # type: ignore[no-untyped-def]
    """A team with a 100,000-token month: bob's usage pushed from his machine, alice's from hers, alice's cache
    pulled; and the environment of alice's Claude Code."""
    team = TeamDb(postgres)
    team.set_budget("team:monthly", 100_000)
    bob = Machine(tmp_path / "bob", "bob@example.com", team.member("bob@example.com"))
    prefill(bob.data_dir, bob_used)
    assert sync_once(bob)["pushed"] == 1
    alice = Machine(tmp_path / "alice", "alice@example.com", team.member("alice@example.com"))
    prefill(alice.data_dir, alice_used)
    assert sync_once(alice)["ok"]
    env = {"TOKEN_BUDGET_PYTHON": sys.executable, "TOKEN_BUDGET_HOME": str(alice.data_dir),
           "TOKEN_BUDGET_CONFIG": str(alice.config), "TOKEN_BUDGET_TEAM_DSN": alice.dsn}
    return team, alice, env


def test_a_team_limit_reached_on_other_machines_denies_the_tool_and_blocks_the_next_prompt(
        claude_env: ClaudeEnv, postgres, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    team, alice, env = team_of_two(postgres, tmp_path, bob_used=60_000, alice_used=35_000)  # the team at 95,000

    crossing = run(claude_env, "Create the marker file",
                   [bash_turn("touch marker-1", input_tokens=6000, output_tokens=10),
                    text_turn("Stopped: the team budget is exhausted.", input_tokens=100, output_tokens=5)], env)
    [denied] = crossing.output["permission_denials"]
    assert denied["tool_input"]["command"] == "touch marker-1" and not (claude_env.project / "marker-1").exists()
    reason = "token-budget: the team's monthly budget is exhausted: 101,010 / 100,000 tokens (101.0%)"
    assert reason in request_text(crossing.message_requests[1])

    blocked = run(claude_env, "Try again", [text_turn("never sent")], env)
    assert blocked.output["num_turns"] == 0 and blocked.message_requests == []
    assert blocked.output["result"].startswith(BLOCKED_PROMPT)
    assert "Only a team lead can raise it (`tokens team budget team:monthly AMOUNT`" in blocked.output["result"]

    team.set_budget("team:monthly", 1_000_000)  # the lead raises it; alice's next sync (outside) learns it
    result = sync_once(alice)
    assert result["ok"] and result["pushed"] == 2  # the session's requests, spooled while the server was away
    after = run(claude_env, "Create the marker file now",
                [bash_turn("touch marker-2", input_tokens=500, output_tokens=5), text_turn("Created.")], env)
    assert after.output["result"] == "Created." and (claude_env.project / "marker-2").exists()
    assert not (alice.data_dir / "hook.log").exists()
    log = (alice.data_dir / "team.log").read_text()
    assert "sync failed" in log and alice.dsn not in log and alice.dsn.split(":")[2].split("@")[0] not in log
    print(json.dumps(blocked.output["result"]))


def test_in_the_tui_the_team_section_shows_and_a_spent_team_budget_blocks_the_prompt(
        claude_env: ClaudeEnv, postgres, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from .harness import REPO_ROOT
    from .tui import TUI

    _, _, env = team_of_two(postgres, tmp_path, bob_used=99_000, alice_used=2_000)  # the team at 101,000
    with TUI(claude_env, script=[text_turn("never sent")], plugin_dir=REPO_ROOT, extra_env=env,
             label="tui-team") as tui:
        tui.send("/token-budget:tokens status")
        screen = tui.wait_for("Team acme")
        assert "Team month" in screen and "bob 99,000" in screen
        tui.send("Summarise the repository")
        screen = tui.wait_for("Only a team lead can raise it")
        assert "the team's monthly budget is exhausted: 101,000 / 100,000 tokens" in " ".join(screen.split())
        assert [r for r in tui.requests() if r.get("kind") == "messages"] == []
        (tmp_path / "tui-team-screen.txt").write_text(screen)


def until_input(tui, wanted: Callable[[str], bool], timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    """Wait until the TUI's input box (the last line starting with ❯) holds text that `wanted` accepts."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [line.replace("\xa0", " ").strip() for line in tui.screen().splitlines()]
        box = [line[1:].strip() for line in lines if line.startswith("❯")][-1:]
        if box and wanted(box[0]):
            return
        assert time.monotonic() < deadline, f"the input box holds {box!r}"
        time.sleep(0.2)


@pytest.mark.parametrize("route", ["plugin", "pip"])
def test_in_the_tui_the_crossing_tool_call_is_denied_the_next_prompt_blocked_and_status_shows_the_team(
        claude_env: ClaudeEnv, postgres, tmp_path: Path, route: str) -> None:  # type: ignore[no-untyped-def]
    """Both install routes, the team block in the user's own config (~/.config, a fresh HOME): the team at 95% from
    another member's machine, the tool call that crosses 100% is denied with the team's message, the next prompt is
    blocked on screen with no request, and the slash command's status shows the Team section with no request."""
    from .harness import REPO_ROOT
    from .test_enforcement import tokens_cli
    from .tui import TUI

    _, alice, env = team_of_two(postgres, tmp_path, bob_used=60_000, alice_used=35_000)  # the team at 95,000
    user_config = claude_env.home / ".config" / "token-budget" / "token_budgets.yaml"
    user_config.parent.mkdir(parents=True)
    user_config.write_text(alice.config.read_text())
    env.pop("TOKEN_BUDGET_CONFIG")
    if route == "pip":
        installed = tokens_cli(claude_env, alice.data_dir, "install")
        assert installed.returncode == 0, installed.stderr
        hooks = json.loads((claude_env.config_dir / "settings.json").read_text())["hooks"]
        assert "token_budget" in hooks["PreToolUse"][0]["hooks"][0]["command"]
        assert (claude_env.config_dir / "commands" / "tokens.md").exists()
        env.pop("TOKEN_BUDGET_PYTHON")  # the hooks run the interpreter `tokens install` wrote into settings.json
    slash = "/tokens" if route == "pip" else "/token-budget:tokens"
    script = [bash_turn("touch marker-1", input_tokens=6000, output_tokens=10),
              text_turn("Stopped: the team budget is exhausted.", input_tokens=100, output_tokens=5),
              text_turn("never sent")]
    with TUI(claude_env, script=script, plugin_dir=REPO_ROOT if route == "plugin" else None, extra_env=env,
             label=f"tui-team-{route}") as tui:
        def messages() -> int:
            return len([r for r in tui.requests() if r.get("kind") == "messages"])

        tui.send("Create the marker file")
        crossing = tui.wait_for("Stopped: the team budget is exhausted.")
        flat = " ".join(crossing.split())
        assert "the team's monthly budget is exhausted: 101,010 / 100,000 tokens" in flat
        assert not (claude_env.project / "marker-1").exists() and messages() == 2

        tui.send("Try again")
        blocked = tui.wait_for("Original prompt: Try again")
        block = " ".join(blocked.rsplit(BLOCKED_PROMPT + ":", 1)[1].split())
        assert block.startswith("token-budget: the team's monthly budget is exhausted: 101,115 / 100,000 tokens")
        assert "Only a team lead can raise it (`tokens team budget team:monthly AMOUNT`" in block
        assert messages() == 2
        # Claude Code hands a blocked prompt back to the input box: cleared as a user would before the command
        until_input(tui, lambda text: text == "Try again")
        tui.key("C-u")
        until_input(tui, lambda text: text == "")

        tui.send(f"{slash} status")
        status = tui.wait_for("Team acme")
        assert "Team month" in status and "bob 60,000" in status
        assert messages() == 2
    for name, screen in (("crossing", crossing), ("blocked", blocked), ("status", status)):
        (tmp_path / f"tui-team-{route}-{name}.txt").write_text(screen)
        print(f"----- {route} {name}\n{screen}")
