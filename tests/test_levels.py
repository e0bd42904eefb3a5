"""Levels are defined once (token_budget.levels): thresholds, severity, percentages as written, the alert key."""

from __future__ import annotations

import pytest

from token_budget import budgets, channels, levels, models, policy, trust, windows
from token_budget.claude import enforce, messages
from token_budget.config import Config
from token_budget.levels import LEVELS, alert_key, level_for, parse_percent, severity, thresholds
from token_budget.models import Alert, BudgetState


@pytest.mark.parametrize(("value", "expected"), [
    ("80%", 80.0), ("usage > 80%", 80.0), ("usage >= 85 %", 85.0), (90, 90.0), (92.5, 92.5), ("90", 90.0),
    (None, 7.0), (True, 7.0), ("lots", 7.0),
])
def test_a_percentage_reads_the_same_wherever_it_is_written(value: object, expected: float) -> None:
    assert parse_percent(value, 7.0) == expected


def test_a_channel_threshold_is_read_by_the_same_parser() -> None:
    config = {"alerts": {"channels": [{"type": "console", "threshold": "usage > 90%"}, {"type": "console"}]}}
    assert [c.threshold for c in channels.channels(config)] == [90, 0]
    assert not hasattr(channels, "percent")


def test_thresholds_default_to_70_80_90_100_110_and_the_seed_alert_threshold_moves_the_alert() -> None:
    assert thresholds(Config({})) == {"warn": 70, "alert": 80, "suggest": 90, "block": 100, "stop": 110}
    seeded = Config({"budgets": {"global": {"alert_threshold": "75%"}}})
    assert thresholds(seeded)["alert"] == 75
    explicit = Config({"budgets": {"global": {"alert_threshold": "75%"}}, "enforcement": {"thresholds": {
        "alert": 85}}})
    assert thresholds(explicit)["alert"] == 85


def test_the_level_is_the_most_severe_threshold_reached() -> None:
    limits = thresholds(Config({}))
    assert [level_for(p, limits) for p in (0, 69.9, 70, 80, 95, 100, 110, 500)] == \
        ["ok", "ok", "warn", "alert", "suggest", "block", "stop", "stop"]
    assert [severity(level) for level in LEVELS] == list(range(6))


def test_the_block_reason_names_the_key_the_alert_is_claimed_under() -> None:
    state = BudgetState("daily", 1_000, 1_000, "block", "2026-11-30", "2026-12-01T00:00:00.000Z")
    decision = messages.with_reason(policy.evaluate([state], event_kind="prompt"), [state])
    block = next(a for a in decision.alerts if a.level == "block")
    assert block.key == alert_key("daily", 100, "2026-11-30") == "daily/100/2026-11-30"
    assert f"tokens ack {block.key}" in decision.reason
    assert Alert("workflow:x", "alert", 80, "run-3", 0, 0, "").key == "workflow:x/80/run-3"


def test_every_user_reads_levels_from_the_one_module() -> None:
    for module in (budgets, policy, trust, enforce):
        for name in ("THRESHOLD_KEYS", "parse_percent", "thresholds", "level_for", "LEVELS", "severity"):
            if hasattr(module, name):
                assert getattr(module, name) is getattr(levels, name), (module.__name__, name)
    assert not hasattr(models, "LEVELS") and not hasattr(policy, "alert_id")
    assert windows.caps(Config({"budgets": {"windows": {"five_hour": "50%"}}}))["five_hour"] == 50


def test_each_level_has_one_terminal_colour_for_the_dashboard_and_the_status_line() -> None:
    assert set(levels.COLORS) == set(LEVELS)
    assert levels.painted("90%", "suggest") == "\x1b[35m90%\x1b[0m"
    assert [levels.painted("x", level) for level in (None, "none", "unknown")] == ["x"] * 3
    assert levels.painted("", "stop") == ""
