"""Subscription windows as budgets: the status line input's `rate_limits` (Pro/Max) recorded when they change, shown
in `tokens status` and the status line, and enforced with the usual levels, as the exact hook JSON.

The payloads are built like Claude Code 2.1.332's status line input: `resets_at` in epoch seconds,
`used_percentage` 0-100 (the CLI derives them from the `anthropic-ratelimit-unified-{5h,7d,overage}-utilization`
and `-reset` response headers, and only for subscription logins: an API-key session gets no `rate_limits`, which is
why no real-CLI run can show them offline).
"""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone
from pathlib import Path

import jsonschema
import pytest
from budget_helpers import NOW, Session, write_config
from click.testing import CliRunner

from token_budget.claude.statusline import main as statusline
from token_budget.cli import cli
from token_budget.config import load
from token_budget.dashboard import render_dashboard, status
from token_budget.ledger import Ledger
from token_budget.windows import parse

RESET_5H = int(datetime(2026, 11, 28, 17, 0, tzinfo=timezone.utc).timestamp())  # NOW + 2h
RESET_7D = int(datetime(2026, 12, 2, 9, 0, tzinfo=timezone.utc).timestamp())
RESET_SPEND = int(datetime(2026, 12, 1, 0, 0, tzinfo=timezone.utc).timestamp())


def payload(five: float | None = 40.0, seven: float | None = 12.5, spend: float | None = None, **extra) -> dict:
    limits: dict = {}
    if five is not None:
        limits["five_hour"] = {"used_percentage": five, "resets_at": RESET_5H}
    if seven is not None:
        limits["seven_day"] = {"used_percentage": seven, "resets_at": RESET_7D}
    if spend is not None:
        limits["spend_limit"] = {"used_percentage": spend, "resets_at": RESET_SPEND, "used_usd": spend / 2,
                                 "limit_usd": 50.0, "period": "monthly"}
    data = {"session_id": "sess-1", "transcript_path": "/tmp/x.jsonl", "cwd": "/tmp/proj", "version": "2.1.332",
            "model": {"id": "claude-sonnet-4-5-20250929", "display_name": "Sonnet 4.5"},
            "cost": {"total_cost_usd": 0.01}, "rate_limits": limits}
    data.update(extra)
    return data


def show(data: dict) -> str:
    out = io.StringIO()
    assert statusline([], io.StringIO(json.dumps(data)), out, now=NOW) == 0
    return out.getvalue().strip()


CONFIG = """
timezone: UTC
budgets:
  global: {{daily_limit: 0, monthly_limit: 0}}
  per_workflow: {{}}
  per_model: {{}}
  windows: {{five_hour: {cap}, seven_day: false, spend_limit: false}}
{extra}"""


@pytest.fixture
def windowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, claude_dir: Path):
    def make(cap: str = "50%", extra: str = "") -> Session:
        write_config(tmp_path, monkeypatch, CONFIG.format(cap=cap, extra=extra))
        session = Session(claude_dir)
        session.spend(10)
        assert session.hook("Stop") == (0, {})  # the ledger exists: the status line records into it
        return session

    return make


def test_rate_limits_are_read_as_claude_code_sends_them() -> None:
    found = {w.name: w for w in parse(payload(spend=30.0)["rate_limits"])}
    assert (found["five_hour"].used_percentage, found["five_hour"].resets_at) == (40.0, "2026-11-28T17:00:00.000Z")
    assert (found["spend_limit"].used_usd, found["spend_limit"].limit_usd, found["spend_limit"].period) == (
        15.0, 50.0, "monthly")
    assert parse(None) == parse({"five_hour": None}) == parse({"five_hour": {"used_percentage": "x"}}) == []


def test_the_status_line_records_the_windows_only_when_they_change(windowed, data_dir: Path) -> None:
    windowed("100%")
    show(payload())
    with Ledger.open(data_dir) as ledger:
        first = ledger.db.execute("SELECT name, used_percentage, observed_at FROM subscription_windows "
                                  "ORDER BY name").fetchall()
        version = ledger.db.execute("PRAGMA data_version").fetchone()[0]
        assert [(n, u) for n, u, _ in first] == [("five_hour", 40.0), ("seven_day", 12.5)]
        show(payload())  # the same values: nothing written
        assert ledger.db.execute("PRAGMA data_version").fetchone()[0] == version
        show(payload(five=41.0))
        assert ledger.db.execute("PRAGMA data_version").fetchone()[0] != version
        assert ledger.db.execute("SELECT used_percentage FROM subscription_windows WHERE name = 'five_hour'"
                                 ).fetchone()[0] == 41.0


def test_the_status_line_shows_each_window_with_its_reset(windowed) -> None:
    windowed("100%")
    line = show(payload(five=85.0))
    assert "5h 85% ↻2h00m" in line  # 85% of a whole-window budget: the alert level
    assert "7d" not in line  # the weekly window's budget is off in this config


def dashboard(data_dir: Path, now: datetime = NOW) -> dict:
    with Ledger.open(data_dir) as ledger:
        return status(ledger, load(), now=now)


def test_tokens_status_draws_the_windows_with_reset_times(windowed, data_dir: Path) -> None:
    windowed("100%")
    show(payload(five=62.5, seven=12.5, spend=30.0))
    data = dashboard(data_dir)
    assert [(w["name"], w["used_percentage"], w["resets_at"], w["stale"]) for w in data["windows"]] == [
        ("five_hour", 62.5, "2026-11-28T17:00:00.000Z", False), ("seven_day", 12.5, "2026-12-02T09:00:00.000Z", False),
        ("spend_limit", 30.0, "2026-12-01T00:00:00.000Z", False)]
    schema = json.loads((Path(__file__).parents[1] / "schemas" / "status.schema.json").read_text())
    jsonschema.validate(json.loads(json.dumps(data)), schema)
    five = next(b for b in data["budgets"] if b["scope"] == "five_hour")
    assert (five["percent"], five["used_percentage"], five["limit_percentage"], five["unit"]) == (
        62.5, 62.5, 100.0, "hundredths_of_window_percent")
    text = render_dashboard(data, width=80)
    assert ("│ Subscription windows:" in text and
            "│   5-hour        [██████████████████████████░░░░░░░░░░░░░░░░]  62.5%          │" in text and
            "│                 resets 17:00 UTC (in 2h 00m)                                 │" in text and
            "│                 $15.00 / $50.00 · resets Dec 01 00:00 UTC (in 2d 9h)         │" in text), text
    assert "5-hour" in text and "62.5%" in text and "Weekly" in text and "Spend limit" in text
    assert "$15.00 / $50.00" in text and "resets" in text


LEVELS = {"ok": 20.0, "warn": 35.0, "alert": 40.0, "suggest": 45.0, "block": 50.0, "stop": 55.0}  # of a 50% budget
RESETS = "resets 2026-11-28 17:00 UTC (in 2h 00m)"
KEY = "five_hour/{}/2026-11-28T17:00:00.000Z"  # alert ids carry no shell metacharacter


def expected(level: str) -> dict:
    used = LEVELS[level]
    amounts = f"{used:.1f}% of the 5-hour window ({used * 2:.1f}% of its 50% budget)"
    left = f"{50 - used:.1f} points of the window left"
    name = "5-hour window budget"
    if level in ("ok", "warn"):
        return {}
    if level == "alert":
        return {"systemMessage": f"⚠️ TOKEN BUDGET ALERT: the {name} is at {amounts}; {left}; {RESETS}. Acknowledge "
                                 f"with `/tokens ack {KEY.format(80)}` or adjust with `/tokens budget five_hour 100%`."}
    if level == "suggest":
        return {
            "systemMessage": f"⚠️ TOKEN BUDGET ALERT: the {name} is at {amounts}; {left}; {RESETS}. Suggested: "
                             "switch to Haiku for the remaining tasks (`/model haiku`); run `/compact` to shrink the "
                             "context every request resends; or raise the budget with "
                             "`/tokens budget five_hour 100%`.",
            "hookSpecificOutput": {
                "hookEventName": "UserPromptSubmit",
                "additionalContext": f"Token budget notice: the {name} is at 90% ({left}; {RESETS}). Work "
                                     "economically from here: batch the remaining edits, do not re-read files already "
                                     "in context, use narrow Grep patterns and Read with offset/limit, keep answers "
                                     'short and give subagents `"model": "haiku"`. At 100% new requests will be '
                                     "blocked.",
            },
        }
    if level == "block":
        return {"decision": "block", "reason": (
            f"token-budget: the {name} is exhausted: {amounts}; {RESETS}. New requests are blocked. To go on, allow "
            f"the whole window with `/tokens budget five_hour 100%`, or acknowledge with `/tokens ack "
            f"{KEY.format(100)}` to continue up to the 110% emergency stop.")}
    return {"continue": False, "stopReason": (
        f"token-budget: emergency stop: the {name} is at {amounts}, past the 110% hard limit; {RESETS}. Raise it "
        "with `/tokens budget five_hour 100%`, then continue.")}


@pytest.mark.parametrize("level", list(LEVELS))
def test_user_prompt_submit_answers_each_level_of_the_5_hour_window(windowed, level: str) -> None:
    session = windowed("50%")
    show(payload(five=LEVELS[level], seven=None))
    assert session.hook("UserPromptSubmit", prompt="go on") == (0, expected(level))


def test_a_whole_window_budget_at_100_percent_blocks_and_offers_to_turn_it_off(windowed) -> None:
    session = windowed("100%")
    show(payload(five=100.0, seven=None))
    code, out = session.hook("UserPromptSubmit", prompt="go on")
    assert out["decision"] == "block"
    assert out["reason"].startswith("token-budget: the 5-hour window budget is exhausted: 100.0% of the 5-hour "
                                    f"window; {RESETS}. New requests are blocked. To go on, turn this budget off with "
                                    "`/tokens budget five_hour off`")


def test_economy_starts_at_80_percent_of_the_5_hour_window_in_auto_mode(windowed) -> None:
    session = windowed("100%", extra="mode: auto\n")
    agent = {"description": "d", "prompt": "p"}
    show(payload(five=79.0, seven=None))
    assert "updatedInput" not in json.dumps(session.hook("PreToolUse", tool_name="Agent", tool_input=agent))
    show(payload(five=80.0, seven=None))
    out = session.hook("PreToolUse", tool_name="Agent", tool_input=agent)[1]
    assert out["hookSpecificOutput"]["updatedInput"] == {**agent, "model": "haiku"}


def test_a_window_that_has_reset_since_it_was_reported_no_longer_binds(windowed, data_dir: Path) -> None:
    session = windowed("50%")
    show(payload(five=55.0, seven=None))
    assert session.hook("UserPromptSubmit", prompt="go on")[1].get("continue") is False
    after = datetime(2026, 11, 28, 17, 1, tzinfo=timezone.utc)
    later = Session(session.path.parents[2], now=after)
    assert later.hook("UserPromptSubmit", prompt="go on") == (0, {})
    data = dashboard(data_dir, after)
    assert "five_hour" not in [b["scope"] for b in data["budgets"]]
    assert [(w["name"], w["stale"]) for w in data["windows"]] == [("five_hour", True)]
    assert "reset since it was reported" in render_dashboard(data, width=80)


def test_tokens_budget_sets_a_windows_share(windowed, data_dir: Path) -> None:
    windowed("100%")
    runner = CliRunner()
    result = runner.invoke(cli, ["budget", "five_hour", "80%", "--json"])
    assert json.loads(result.output)["value"] == "80%"
    assert json.loads(runner.invoke(cli, ["budget", "seven_day", "off", "--json"]).output)["value"] is False
    bad = runner.invoke(cli, ["budget", "five_hour", "lots"])
    assert bad.exit_code == 2 and "not a share of the window" in bad.output


def test_slack_and_email_say_percentage_points_of_the_window_not_tokens() -> None:
    from token_budget.alert_render import alert_content
    from token_budget.models import Alert

    alert = Alert("five_hour", "alert", 80, "2026-11-28T17:00:00.000Z", 4000, 5000, "2026-11-28T15:00:00.000Z")
    content = alert_content(alert)
    assert ("Current Usage", "40.0% / 50% of the 5-hour window (80%)") in content["facts"]
    assert ("Remaining", "10.0 points of the window") in content["facts"]
    assert content["commands"]["budget"] == "tokens budget five_hour 100%"
    assert "tokens" not in content["subject"].split("(")[-1]


def test_tokens_budget_lists_a_window_in_points_of_the_window(windowed, data_dir: Path) -> None:
    from token_budget.budget_status import budget_status
    from token_budget.cli.budgets import render_status

    windowed("50%")
    show(payload(five=40.0, seven=None))
    with Ledger.open(data_dir) as ledger:
        data = budget_status(ledger, load(), now=NOW)
    (line,) = [ln for ln in render_status(data) if ln.startswith("five_hour")]
    assert "40.0% / 50% win" in line and "80.0%" in line and "alert" in line
