"""The rules behind `tokens budget`, `tokens mode`, `tokens ack` and a workflow's session live in the library
(limits, alerts, sessions, usage_log, claude.sources): any caller gets the same answers as the CLI, which only
parses options and prints."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from budget_helpers import write_config

from token_budget.alerts import acknowledge_alerts
from token_budget.config import load, load_cached
from token_budget.errors import TokenBudgetError
from token_budget.ledger import Ledger
from token_budget.limits import override_keys, parse_amount, set_budget, set_mode, window_share
from token_budget.models import Alert
from token_budget.sessions import resolve_session
from token_budget.usage_log import day_range

CLI = Path(__file__).resolve().parent.parent / "token_budget" / "cli"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    write_config(tmp_path, monkeypatch, "timezone: Europe/Paris\nbudgets:\n  global: {daily_limit: 1000}\n"
                                        "  per_workflow: {sprint: 5000}\n")
    return load()


@pytest.mark.parametrize(("text", "parsed"), [("300000", ("tokens", 300_000)), ("300k", ("tokens", 300_000)),
                                              ("1.5M", ("tokens", 1_500_000)), ("1,000,000", ("tokens", 1_000_000)),
                                              ("$20", ("usd", 20.0)), ("20usd", ("usd", 20.0))])
def test_amounts_in_tokens_or_dollars(text: str, parsed: tuple) -> None:
    assert parse_amount(text) == parsed


@pytest.mark.parametrize("text", ["-5", "lots", "$-1", "nan"])
def test_a_bad_amount_says_what_to_give(text: str) -> None:
    with pytest.raises(TokenBudgetError, match="is not an amount"):
        parse_amount(text)


def test_window_shares() -> None:
    assert (window_share("80%"), window_share("80"), window_share("off")) == ("80%", "80%", False)
    with pytest.raises(TokenBudgetError):
        window_share("2000%")


def test_scopes_map_to_their_override_keys(config) -> None:
    assert override_keys(config, "daily") == (["budgets", "global", "daily_limit"], "global")
    assert override_keys(config, "sprint") == (["budgets", "per_workflow", "sprint"], "workflow")
    assert override_keys(config, "claude-opus") == (["budgets", "per_model", "claude-opus"], "model")
    assert override_keys(config, "five_hour") == (["budgets", "windows", "five_hour"], "window")
    with pytest.raises(TokenBudgetError, match="not a budget scope"):
        override_keys(config, "nonsense")


def test_set_budget_saves_the_override_and_records_who_changed_what(config, data_dir: Path) -> None:
    with Ledger.open(data_dir) as ledger:
        change = set_budget(ledger, config, data_dir, "daily", "$25")
        assert (change.keys, change.value, change.unit) == (["budgets", "global", "daily_limit_usd"], 25.0, "usd")
        workflow = set_budget(ledger, config, data_dir, "sprint", "$3")
        assert workflow.value == {"tokens": 5000, "usd": 3.0}  # beside the token limit, not instead of it
        set_mode(ledger, config, data_dir, "economy")
        set_mode(ledger, load_cached(data_dir), data_dir, "economy")  # no change, no event
        events = [(e["kind"], json.loads(e["detail"])) for e in ledger.list_events()]
    saved = json.loads((data_dir / "overrides.json").read_text())
    assert saved == {"budgets": {"global": {"daily_limit_usd": 25.0}, "per_workflow": {"sprint": {"tokens": 5000,
                                                                                                   "usd": 3.0}}},
                     "mode": "economy"}
    assert events == [
        ("limit_change", {"who": "terminal", "old": None, "new": 25.0, "subject": "daily_usd"}),
        ("limit_change", {"who": "terminal", "old": 5000, "new": {"tokens": 5000, "usd": 3.0},
                          "subject": "workflow:sprint"}),
        ("mode_change", {"who": "terminal", "old": "normal", "new": "economy", "subject": "mode"}),
    ]


def test_acknowledging_records_each_ack_and_an_unknown_key_lists_the_open_ones(data_dir: Path) -> None:
    with Ledger.open(data_dir) as ledger, ledger.transaction():
        for threshold in (80, 100):
            ledger.claim_alert(Alert(scope="daily", level="alert", threshold=threshold, period="2026-11-28", used=900,
                            limit=1000, created_at="2026-11-28T10:00:00.000Z"))
        with pytest.raises(TokenBudgetError, match="daily/100/2026-11-28"):
            acknowledge_alerts(ledger, "daily/90/2026-11-28", "2026-11-28T11:00:00.000Z")
        assert acknowledge_alerts(ledger, "daily|100|2026-11-28", "2026-11-28T11:00:00.000Z") == 1  # the old form
        assert acknowledge_alerts(ledger, None, "2026-11-28T11:00:01.000Z") == 1
        assert acknowledge_alerts(ledger, None, "2026-11-28T11:00:02.000Z") == 0
        acks = [e["message"] for e in ledger.list_events() if e["kind"] == "ack"]
    assert acks == ["the 100% alert of the daily budget (daily/100/2026-11-28) acknowledged (terminal)",
                    "the 80% alert of the daily budget (daily/80/2026-11-28) acknowledged (terminal)"]


def test_a_session_is_the_one_given_else_the_current_else_the_latest_recorded(data_dir: Path) -> None:
    with Ledger.open(data_dir) as ledger:
        db = ledger.db
        assert resolve_session(ledger, (None, "--session"), (None, "$ENV")) is None
        db.execute("INSERT INTO requests (message_id, timestamp, session_id, model, source, recorded_at) VALUES "
                   "('a', '2026-11-28T10:00:00.000Z', 's-old', 'm', 'hook', 'x'), "
                   "('b', '2026-11-28T11:00:00.000Z', 's-new', 'm', 'hook', 'x')")
        assert resolve_session(ledger, (None, "--session"), (None, "$ENV")) == ("s-new", "the latest recorded request")
        assert resolve_session(ledger, (None, "--session"), ("s-env", "$ENV")) == ("s-env", "$ENV")
        assert resolve_session(ledger, ("s-cli", "--session"), ("s-env", "$ENV")) == ("s-cli", "--session")


def test_log_days_are_local_days(config) -> None:
    assert day_range(config, date(2026, 7, 1), date(2026, 7, 2)) == ("2026-06-30T22:00:00.000Z",
                                                                      "2026-07-02T22:00:00.000Z")
    assert day_range(config, None, None) == (None, None)


def test_the_cli_holds_no_sql() -> None:
    """Every query lives in the library, where the slash command and other callers reach it too."""
    for path in CLI.glob("*.py"):
        text = path.read_text()
        assert not any(word in text for word in ("SELECT ", "UPDATE ", "INSERT ", ".execute(")), path.name
