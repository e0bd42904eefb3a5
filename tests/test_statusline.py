"""`tokens statusline`: Claude Code's statusLine JSON in, one line out; the same figures as the dashboard."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_status import CONFIG, NOW, config_file, ledger  # noqa: F401  (fixtures)

from token_budget.claude import statusline
from token_budget.config import load_cached
from token_budget.ledger import Ledger

ROOT = Path(__file__).resolve().parent.parent
PAYLOAD = {
    "session_id": "sess-1",
    "transcript_path": "/tmp/x.jsonl",
    "cwd": "/tmp/proj",
    "version": "2.1.332",
    "model": {"id": "claude-sonnet-4-5-20250929", "display_name": "Sonnet 4.5"},
    "context_window": {
        "total_input_tokens": 84000,
        "total_output_tokens": 900,
        "context_window_size": 200000,
        "used_percentage": 42.0,
        "remaining_percentage": 58.0,
        "current_usage": {
            "input_tokens": 4000,
            "output_tokens": 900,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 80000,
        },
    },
}


def line(payload: object, *args: str) -> str:
    out = io.StringIO()
    assert statusline.main(list(args), io.StringIO(json.dumps(payload)), out, now=NOW) == 0
    return out.getvalue()


def test_one_line_with_daily_workflow_model_mode_and_context(ledger: Ledger) -> None:  # noqa: F811
    assert line(PAYLOAD) == "day 75.0% │ sprint 38.0% │ Sonnet 4.5 54.0% │ auto │ ctx 42%\n"


def test_coloured_by_level_unless_no_color(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.delenv("NO_COLOR")
    assert line(PAYLOAD).startswith("\x1b[33mday 75.0%\x1b[0m │ \x1b[32msprint 38.0%\x1b[0m")


def test_context_from_current_usage_when_the_percentage_is_null(ledger: Ledger) -> None:  # noqa: F811
    payload = {**PAYLOAD, "context_window": {**PAYLOAD["context_window"], "used_percentage": None}}
    assert line(payload).endswith("ctx 42%\n")
    assert "ctx" not in line({**PAYLOAD, "context_window": {"current_usage": None, "used_percentage": None}})


def test_another_session_has_no_workflow_and_opus_has_its_own_budget(ledger: Ledger) -> None:  # noqa: F811
    payload = {
        **PAYLOAD,
        "session_id": "sess-0",
        "model": {"id": "claude-opus-4-6", "display_name": "Opus 4.6"},
    }
    assert line(payload) == "day 75.0% │ Opus 4.6 40.0% │ auto │ ctx 42%\n"


def test_no_ledger_and_bad_input_still_print_one_line_and_exit_0(data_dir: Path) -> None:
    assert line(PAYLOAD) == "tokens: no usage recorded yet │ ctx 42%\n"
    out = io.StringIO()
    assert statusline.main([], io.StringIO("not json"), out) == 0
    assert out.getvalue() == "tokens: no usage recorded yet\n"


@pytest.mark.parametrize(
    "change, mode",
    [
        (("mode: auto", "mode: economy"), "economy"),
        (("daily_limit: 1000000", "daily_limit: 900000"), "auto: economy"),  # the day at 83.3%: past 80%
        (("mode: auto", "mode: normal"), "normal"),
    ],
)
def test_mode_shows_economy_when_set_or_past_the_auto_trigger(
    ledger: Ledger,  # noqa: F811
    config_file: Path,  # noqa: F811
    change: tuple[str, str],
    mode: str,
) -> None:
    config_file.write_text(CONFIG.replace(*change))
    assert line(PAYLOAD).split(" │ ")[-2] == mode


def test_thresholds_and_usd_limits_set_the_levels(
    ledger: Ledger,  # noqa: F811
    config_file: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NO_COLOR")
    thresholds = "mode: auto\nenforcement: {thresholds: {log: 50%, block: 76%}}"
    config_file.write_text(CONFIG.replace("mode: auto", thresholds))
    assert line(PAYLOAD).startswith(
        "\x1b[33mday 75.0%\x1b[0m │ \x1b[32msprint 38.0%\x1b[0m │ \x1b[33mSonnet 4.5 54.0%"
    )
    usd = "alert_threshold: 80%, daily_limit_usd: 0.000001}"
    config_file.write_text(CONFIG.replace("alert_threshold: 80%}", usd))
    assert line(PAYLOAD).startswith("\x1b[1;31mday ")  # the dearer of tokens and USD: far past the stop


def test_without_a_session_no_workflow_is_shown(ledger: Ledger) -> None:  # noqa: F811
    payload = {k: v for k, v in PAYLOAD.items() if k != "session_id"}
    assert line(payload) == "day 75.0% │ Sonnet 4.5 54.0% │ auto │ ctx 42%\n"


def test_a_plugin_ledger_is_found_when_no_data_dir_is_set(
    ledger: Ledger,  # noqa: F811
    data_dir: Path,
    hermetic_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plugin = hermetic_env / "claude" / "plugins" / "data" / "token-budget-inline"
    plugin.parent.mkdir(parents=True)
    data_dir.rename(plugin)
    monkeypatch.delenv("TOKEN_BUDGET_HOME")
    assert statusline.find_data_dir() == str(plugin)
    assert line(PAYLOAD).startswith("day 75.0%")
    assert statusline.find_data_dir(str(data_dir)) == str(data_dir)  # --data-dir wins


def test_launcher_uses_the_hook_config_cache_and_imports_no_heavy_module(
    ledger: Ledger,  # noqa: F811
    data_dir: Path,
) -> None:
    load_cached(data_dir, "/tmp/proj")  # what the session's hooks leave behind
    env = {**os.environ, "PYTHONPATH": ""}
    proc = subprocess.run(
        [sys.executable, "-S", "-X", "importtime", str(ROOT / "token_budget/claude/run_statusline.py")],
        input=json.dumps(PAYLOAD),
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert proc.stdout.startswith("day ") and proc.stdout.count("\n") == 1
    imported = _imports(proc.stderr)
    assert "token_budget.budgets" in imported  # the core's arithmetic, not a copy of it
    assert not imported & {"click", "yaml", "jsonschema", "typing", "dataclasses"}
    hook = subprocess.run(
        [sys.executable, "-S", "-X", "importtime", str(ROOT / "token_budget/claude/run_hook.py"),
         "UserPromptSubmit"],
        input=json.dumps({"hook_event_name": "UserPromptSubmit", "session_id": "sess-1", "cwd": "/tmp/proj",
                          "prompt": "go on"}),
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    # nothing the hook does not load, but for the text it prints (safetext: a hook answering {} has none to clean)
    extra = imported - _imports(hook.stderr)
    assert "token_budget.claude.statusline" in extra and extra <= {"token_budget.claude.statusline",
                                                                  "token_budget.safetext"}


def _imports(importtime: str) -> set[str]:
    return {ln.split("|")[-1].strip() for ln in importtime.splitlines() if ln.startswith("import time:")}


def test_tokens_statusline_is_dispatched_before_click(ledger: Ledger, subprocess_env: dict) -> None:  # noqa: F811
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "token_budget", "statusline"],
        input=json.dumps(PAYLOAD),
        capture_output=True,
        text=True,
        env=subprocess_env,
        check=True,
    )
    assert proc.stdout.startswith("day ")
    assert "click" not in {ln.split("|")[-1].strip() for ln in proc.stderr.splitlines()}


@pytest.mark.parametrize("variable", ["TOKEN_BUDGET_HOME", "CLAUDE_PLUGIN_DATA"])
def test_install_pins_the_data_dir_it_knows(
    variable: str, hermetic_env: Path, claude_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from token_budget.claude.install import install, read_settings, statusline_command

    monkeypatch.delenv("TOKEN_BUDGET_HOME")
    assert "--data-dir" not in statusline_command()  # unknown: the status line resolves it when it runs
    monkeypatch.setenv(variable, str(hermetic_env / "my data"))
    path, _ = install("user", statusline=True)
    command = read_settings(path)["statusLine"]["command"]
    assert command.endswith(f"run_statusline.py --data-dir '{hermetic_env / 'my data'}'")
    assert statusline_command(data_dir="~/x").endswith(f"--data-dir {Path.home() / 'x'}")  # --data-dir wins


def test_the_ledger_is_read_only_unless_its_schema_is_behind(ledger: Ledger, data_dir: Path) -> None:  # noqa: F811
    import sqlite3

    from token_budget.migrations import MIGRATIONS

    with Ledger.open_readonly(data_dir) as reader, pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.db.execute("DELETE FROM requests")
    ledger.db.execute("PRAGMA user_version = 1")
    with Ledger.open_readonly(data_dir) as reader:  # the normal open, which brings the schema up to date
        assert reader.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
