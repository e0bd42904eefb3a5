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

from token_budget.budgets import budget_states, model_matches
from token_budget.claude import statusline
from token_budget.config import load, load_cached
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
    "model",
    [
        "claude-sonnet-4-5-20250929",
        "claude-3-5-sonnet-20241022",
        "claude-opus-4-6",
        "us.anthropic.claude-haiku-4-5-20251001-v1:0",
        "claude-opus-4-1@20250805",
        "gpt-4o",
        "claude-sonnet-4-5[1m]",
    ],
)
@pytest.mark.parametrize("key", ["claude-sonnet", "claude-opus-4", "claude-haiku", "*sonnet*", "opus"])
def test_model_matching_agrees_with_the_budgets(key: str, model: str) -> None:
    assert statusline.model_matches(key, model) == model_matches(key, model)


@pytest.mark.parametrize(
    "change",
    [
        ("", ""),
        ("timezone: UTC", "timezone: America/New_York"),
        ("alert_threshold: 80%}", "alert_threshold: 80%, daily_limit_usd: 1.5}"),
        ("mode: auto", "mode: economy\nenforcement: {thresholds: {log: 50%, block: 76%}}"),
    ],
)
def test_status_line_figures_agree_with_budget_states(
    ledger: Ledger,  # noqa: F811
    data_dir: Path,
    config_file: Path,  # noqa: F811
    change: tuple[str, str],
) -> None:
    config_file.write_text(CONFIG.replace(*change))
    config = load(None, data_dir=data_dir)
    states = {s.scope: s for s in budget_states(ledger, config, now=NOW, session_id="sess-1")}
    fig = statusline.figures(ledger.db, config.data, PAYLOAD, NOW)
    assert fig["daily"][1:] == (states["daily"].percent, states["daily"].level)
    assert fig["workflow"][1:] == (states["workflow:sprint"].percent, states["workflow:sprint"].level)
    assert fig["model"][1:] == (states["model:claude-sonnet"].percent, states["model:claude-sonnet"].level)


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
    imported = {ln.split("|")[-1].strip() for ln in proc.stderr.splitlines() if ln.startswith("import time:")}
    assert not imported & {
        "token_budget.config",
        "token_budget.ledger",
        "click",
        "yaml",
        "jsonschema",
        "typing",
        "dataclasses",
        "pathlib",
    }


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
