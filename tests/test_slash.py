"""`tokens slash`: the entry behind Claude Code's /tokens command. It always exits 0, since a non-zero `!`
line
aborts the whole command in Claude Code, and answers anything it does not know with the help."""

from __future__ import annotations

import os
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


def _bang_line(plugin_data: Path, arguments: str) -> str:
    """The `!` line of commands/tokens.md as Claude Code runs it: placeholders substituted as text, and neither
    CLAUDE_PLUGIN_ROOT nor CLAUDE_PLUGIN_DATA in the environment (shared/claude-code.md §3)."""
    text = (ROOT / "commands" / "tokens.md").read_text()
    line = text.split("```!\n", 1)[1].split("\n```", 1)[0].strip()
    return (line.replace("${CLAUDE_PLUGIN_ROOT}", str(ROOT)).replace("${CLAUDE_PLUGIN_DATA}", str(plugin_data))
            .replace("$ARGUMENTS", arguments))


def test_the_slash_command_writes_budgets_where_the_hooks_read_them(tmp_path: Path, subprocess_env: dict) -> None:
    """With TOKEN_BUDGET_HOME set, the hooks use it (scripts/hook.sh, paths.data_dir); the command passed the plugin
    data dir as --data-dir, which outranks it, so `/tokens budget daily N` never lifted a block (the e2e 100%
    scenario caught it). Without TOKEN_BUDGET_HOME, the plugin data dir is the place."""
    env = {k: v for k, v in subprocess_env.items() if k not in ("TOKEN_BUDGET_HOME", "CLAUDE_PLUGIN_DATA")}
    env["TOKEN_BUDGET_PYTHON"] = sys.executable
    plugin_data, home = tmp_path / "plugin-data", tmp_path / "tb-home"
    line = _bang_line(plugin_data, "budget daily 5000")
    proc = subprocess.run(["sh", "-c", line], capture_output=True, text=True,
                          env={**env, "TOKEN_BUDGET_HOME": str(home)})
    assert proc.returncode == 0 and f"in {home / 'overrides.json'}" in proc.stdout, (proc.stdout, proc.stderr)
    assert not (plugin_data / "overrides.json").exists()
    proc = subprocess.run(["sh", "-c", line], capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and f"in {plugin_data / 'overrides.json'}" in proc.stdout, (proc.stdout, proc.stderr)
