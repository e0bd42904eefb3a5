"""`tokens slash`: the entry behind Claude Code's /tokens command. It always exits 0, since a non-zero `!`
line
aborts the whole command in Claude Code, and answers anything it does not know with the help."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from token_budget.cli import cli

ROOT = Path(__file__).resolve().parent.parent


def slash(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, ["slash", *args], catch_exceptions=False)


def test_unknown_subcommand_prints_the_help_and_exits_0() -> None:
    result = slash("bogus", "x")
    assert result.exit_code == 0
    assert result.output.startswith("Unknown /tokens subcommand 'bogus'.\n\n/tokens: token budgets")
    assert "/tokens budget [SCOPE AMOUNT]" in result.output


def test_help_lists_every_subcommand() -> None:
    result = slash("help")
    assert result.exit_code == 0
    from token_budget.cli.status import SLASH_COMMANDS

    for name in (*SLASH_COMMANDS, "help"):  # import included: it recovers sessions no hook recorded
        assert f"/tokens {name}" in result.output


def test_no_arguments_shows_the_dashboard_without_colour(data_dir: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("NO_COLOR")
    result = slash()
    assert result.exit_code == 0
    assert "TOKEN USAGE DASHBOARD" in result.output and "\x1b[" not in result.output


def test_subcommands_run_through_the_cli(data_dir: Path) -> None:
    assert "sprint budget set to 300,000 tokens" in slash("budget", "sprint", "300000").output
    assert slash("mode", "economy").exit_code == 0
    assert '"mode": "economy"' in slash("status", "--json").output


def test_errors_are_printed_and_exit_0() -> None:
    result = slash("mode", "cheapest")
    assert result.exit_code == 0
    # what the error means, not click's wording of it (which changes between click releases)
    assert "Usage: /tokens mode" in result.output and "Error:" in result.output
    assert all(word in result.output for word in ("cheapest", "economy", "normal", "auto"))
    assert slash("budget", "daily", "lots").exit_code == 0


def test_the_plugin_script_runs_it_with_the_data_dir_argument(tmp_path: Path, subprocess_env: dict) -> None:
    env = {k: v for k, v in subprocess_env.items() if k != "TOKEN_BUDGET_HOME"}
    env["TOKEN_BUDGET_PYTHON"] = sys.executable
    data = tmp_path / "plugin-data"
    proc = subprocess.run(
        [str(ROOT / "scripts" / "tokens"), "--data-dir", str(data), "slash", "nope"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Unknown /tokens subcommand 'nope'" in proc.stdout
    proc = subprocess.run(
        [str(ROOT / "scripts" / "tokens"), "--data-dir", str(data), "slash", "status"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0 and "TOKEN USAGE DASHBOARD" in proc.stdout
    assert (data / "ledger.db").exists() and os.stat(data).st_mode & 0o777 == 0o700


def test_the_command_file_runs_no_shell_line() -> None:
    """The hook answers the command; the file's body is a fallback for the model and never runs `$ARGUMENTS`
    through a shell (`;`, `$(…)` typed by the user used to run)."""
    text = (ROOT / "commands" / "tokens.md").read_text()
    assert "```!" not in text and "!`" not in text and "$ARGUMENTS" not in text and "allowed-tools" not in text


def _plugin_hook(prompt: str, env: dict, cwd: Path) -> dict:
    """scripts/hook.sh as the plugin's hooks.json runs it, for a UserPromptSubmit of `prompt`."""
    payload = json.dumps({"hook_event_name": "UserPromptSubmit", "session_id": "s1", "cwd": str(cwd),
                          "prompt": prompt})
    proc = subprocess.run(["/bin/sh", str(ROOT / "scripts" / "hook.sh"), "UserPromptSubmit"], input=payload,
                          capture_output=True, text=True, env=env, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_slash_command_writes_budgets_where_the_hooks_read_them(tmp_path: Path, subprocess_env: dict) -> None:
    """With TOKEN_BUDGET_HOME set, the hooks use it (scripts/hook.sh, paths.data_dir), and so does the command the
    hook answers; without it, the plugin data dir is the place."""
    env = {k: v for k, v in subprocess_env.items() if k not in ("TOKEN_BUDGET_HOME", "CLAUDE_PLUGIN_DATA")}
    env.update(TOKEN_BUDGET_PYTHON=sys.executable, CLAUDE_PLUGIN_ROOT=str(ROOT))
    plugin_data, home = tmp_path / "plugin-data", tmp_path / "tb-home"
    env["CLAUDE_PLUGIN_DATA"] = str(plugin_data)
    out = _plugin_hook("/token-budget:tokens budget daily 5000", {**env, "TOKEN_BUDGET_HOME": str(home)}, tmp_path)
    assert out["decision"] == "block" and f"in {home / 'overrides.json'}" in out["reason"], out
    assert not (plugin_data / "overrides.json").exists()
    out = _plugin_hook("/token-budget:tokens budget daily 5000", env, tmp_path)
    assert f"in {plugin_data / 'overrides.json'}" in out["reason"], out
    assert out["hookSpecificOutput"] == {"hookEventName": "UserPromptSubmit", "suppressOriginalPrompt": True}


def test_while_the_plugin_sets_up_the_command_says_so_instead_of_reaching_the_model(tmp_path: Path,
                                                                                   subprocess_env: dict) -> None:
    env = {k: v for k, v in subprocess_env.items() if k not in ("TOKEN_BUDGET_PYTHON",)}
    tools = tmp_path / "bin"  # the shell tools hook.sh uses, and no python3: the environment is never ready
    tools.mkdir()
    for tool in ("cat", "sed", "grep", "dirname", "mkdir", "chmod"):
        found = shutil.which(tool)
        assert found
        (tools / tool).symlink_to(found)
    env.update(TOKEN_BUDGET_HOME=str(tmp_path / "fresh"), PATH=str(tools))
    out = _plugin_hook("/token-budget:tokens status", env, tmp_path)
    assert out["decision"] == "block" and "needs Python 3.10" in out["reason"]
    assert _plugin_hook("hello", env, tmp_path) == {"systemMessage": out["reason"]}


def test_the_command_is_its_first_line_only() -> None:
    """After a blocked prompt Claude Code restores it in the input box: the command typed before it arrives with
    the old prompt on the next line, which is not an argument."""
    from token_budget.claude.commands import arguments

    assert arguments("/tokens status\nTry again") == ["status"]
    assert arguments("/token-budget:tokens budget daily 2000000\r\nplease") == ["budget", "daily", "2000000"]
    assert arguments("/tokens log --limit 'two words'") == ["log", "--limit", "two words"]
