"""`tokens status`: the dashboard box (golden files at 60 and 80 columns, with and without colour, fixed
clock)
and its --json, validated against schemas/status.schema.json; figures agree with `tokens log`."""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from token_budget.cli import cli
from token_budget.config import load
from token_budget.dashboard import render_dashboard, status
from token_budget.ledger import Ledger
from token_budget.models import Alert, Degradation, UsageEvent

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "fixtures" / "status"
NOW = datetime(2026, 11, 28, 15, 30, tzinfo=timezone.utc)
CONFIG = """\
timezone: UTC
counted_token_classes: [input, output, cache_creation]
mode: auto
budgets:
  global: {daily_limit: 1000000, monthly_limit: 25000000, alert_threshold: 80%}
  per_workflow: {sprint: 500000}
  per_model: {claude-opus: 200000, claude-sonnet: 500000, claude-haiku: 1000000}
optimizations:
  model_downgrade: {enabled: true, trigger: usage > 80%, from: claude-sonnet, to: claude-haiku}
"""


def event(
    n: int, at: str, model: str, tokens: int, session: str = "sess-1", cache_read: int = 0
) -> UsageEvent:
    return UsageEvent(
        f"msg_{n:03d}",
        at,
        model,
        input_tokens=tokens - tokens // 10,
        output_tokens=tokens // 10,
        cache_read_tokens=cache_read,
        session_id=session,
        request_id=f"req_{n:03d}",
    )


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "token_budgets.yaml"
    path.write_text(CONFIG)
    monkeypatch.setenv("TOKEN_BUDGET_CONFIG", str(path))
    return path


@pytest.fixture
def ledger(data_dir: Path, config_file: Path, set_clock) -> Ledger:
    """The seed's picture: 750,000 of the daily budget, a sprint run at 190,000, three models, an alert."""
    set_clock(NOW)
    config = load(None, data_dir=data_dir)
    with Ledger.open(data_dir) as led, led.transaction() as db:
        led.start_run("sess-1", "sprint", "2026-11-28T13:00:00.000Z", phase="BUILD")
        led.record(
            [
                event(
                    1, "2026-11-27T12:00:00.000Z", "claude-sonnet-4-5-20250929", 40_000
                ),  # yesterday: month only
                event(2, "2026-11-28T09:00:00.000Z", "claude-opus-4-6", 80_000, session="sess-0"),
                event(3, "2026-11-28T10:00:00.000Z", "claude-haiku-4-5-20251001", 400_000, session="sess-0"),
                event(4, "2026-11-28T12:00:00.000Z", "claude-sonnet-4-5-20250929", 80_000, cache_read=9_999),
                event(5, "2026-11-28T14:45:00.000Z", "claude-sonnet-4-5-20250929", 150_000),
                event(6, "2026-11-28T15:15:00.000Z", "claude-sonnet-4-5-20250929", 40_000),
            ],
            source="test",
            prices=config.prices,
        )
        led.claim_alert(Alert("daily", "alert", 80, "2026-11-28", 790_000, 1_000_000, "2026-11-28T15:15:01.000Z"))
        led.claim_alert(Alert("daily", "warn", 70, "2026-11-28", 750_000, 1_000_000, "2026-11-28T14:45:01.000Z"))
        db.execute("UPDATE alerts SET acked_at = '2026-11-28T15:00:00.000Z' WHERE threshold = 70")
        led.record_degradation(
            Degradation("defer_workflow", "sess-1", detail=json.dumps({"workflow": "test_backend"})),
            "2026-11-28T15:16:00.000Z",
        )
    return Ledger.open(data_dir)


def data(ledger: Ledger, data_dir: Path, **kw):  # type: ignore[no-untyped-def]
    return status(ledger, load(None, data_dir=data_dir), now=NOW, **kw)


@pytest.mark.parametrize("width", [60, 80])
@pytest.mark.parametrize("color", [False, True])
def test_dashboard_matches_golden(ledger: Ledger, data_dir: Path, width: int, color: bool) -> None:
    text = render_dashboard(data(ledger, data_dir, session_id="sess-1"), width=width, color=color)
    golden = GOLDEN / f"dashboard-{width}{'-color' if color else ''}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text + "\n", encoding="utf-8")
    assert text + "\n" == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("width", [60, 70, 80])
def test_every_line_is_exactly_the_width(ledger: Ledger, data_dir: Path, width: int) -> None:
    lines = render_dashboard(data(ledger, data_dir), width=width).splitlines()
    assert {len(line) for line in lines} == {width}


def test_colour_codes_do_not_change_the_layout(ledger: Ledger, data_dir: Path) -> None:
    d = data(ledger, data_dir)
    plain = render_dashboard(d, color=False)
    assert re.sub(r"\x1b\[[0-9;]*m", "", render_dashboard(d, color=True)) == plain
    assert "\x1b[" not in plain


def test_narrow_and_wide_terminals_clamp_to_60_and_80(ledger: Ledger, data_dir: Path) -> None:
    d = data(ledger, data_dir)
    assert render_dashboard(d, width=40) == render_dashboard(d, width=60)
    assert render_dashboard(d, width=200) == render_dashboard(d, width=80)


def test_burn_rate_projects_when_the_daily_budget_runs_out(ledger: Ledger, data_dir: Path) -> None:
    burn = data(ledger, data_dir)["burn_rate"]
    # 150,000 + 40,000 counted in the last hour; 250,000 left of 1,000,000 → 1.316 h after 15:30
    assert burn["tokens_per_hour"] == 190_000
    assert burn["daily_exhausted_at"] == "2026-11-28T16:48:56.842Z"
    assert burn["before_reset"] is True


def test_only_unacknowledged_alerts_are_listed(ledger: Ledger, data_dir: Path) -> None:
    alerts = data(ledger, data_dir)["alerts"]
    assert [(a["scope"], a["threshold"]) for a in alerts] == [("daily", 80)]


def test_status_json_is_valid_against_the_schema(ledger: Ledger) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    result = CliRunner().invoke(cli, ["status", "--json", "--session", "sess-1"], catch_exceptions=False)
    assert result.exit_code == 0
    out = json.loads(result.output)
    schema = json.loads((ROOT / "schemas" / "status.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(out, schema)
    assert out["mode"] == "auto"
    assert out["workflow"]["name"] == "sprint" and out["workflow"]["phase"] == "BUILD"
    assert out["deferred_workflows"] == ["test_backend"]


def test_status_figures_agree_with_tokens_log(ledger: Ledger, data_dir: Path) -> None:
    """The dashboard's daily figure is the running daily total `tokens log` gives the day's last request."""
    d = data(ledger, data_dir)
    log = [
        json.loads(ln)
        for ln in CliRunner().invoke(cli, ["log", "--json", "--limit", "0"]).output.splitlines()
    ]
    daily = next(b for b in d["budgets"] if b["scope"] == "daily")
    assert daily["used"] == log[-1]["cumulative"]["daily"] == 750_000  # cache reads are not counted
    sprint = next(b for b in d["budgets"] if b["scope"] == "workflow:sprint")
    assert sprint["used"] == log[-1]["cumulative"]["workflow"] == 190_000


def test_status_text_through_the_cli_uses_columns_and_no_colour_off_a_tty(ledger: Ledger) -> None:
    result = CliRunner().invoke(cli, ["status"], env={"COLUMNS": "60"}, catch_exceptions=False)
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[1].startswith("│ TOKEN USAGE DASHBOARD") and {len(ln) for ln in lines} == {60}
    assert "750,000 / 1,000,000" in result.output and "\x1b[" not in result.output


def test_status_on_an_empty_ledger_says_how_to_set_a_budget(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "none.yaml"
    path.write_text("timezone: UTC\nbudgets: {global: {daily_limit: 0, monthly_limit: 0}, per_model: {}}\n")
    monkeypatch.setenv("TOKEN_BUDGET_CONFIG", str(path))
    result = CliRunner().invoke(cli, ["status"], catch_exceptions=False)
    assert result.exit_code == 0
    assert "No daily or monthly budget set" in result.output


def test_a_daily_limit_far_beyond_the_pace_does_not_overflow(ledger: Ledger, data_dir: Path) -> None:
    from token_budget.dashboard import burn_rate

    budgets = [{"scope": "daily", "used": 10, "limit": 10**15, "resets_at": "2026-11-29T00:00:00.000Z"}]
    out = burn_rate(ledger, ("input",), NOW, budgets)
    assert out["tokens_per_hour"] > 0 and out["daily_exhausted_at"] is None and out["before_reset"] is False
