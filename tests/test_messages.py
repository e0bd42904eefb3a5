"""What the user reads in Claude Code is worded by the adapter (token_budget.claude.messages); the policy only decides.
Every channel suggests the same raise."""

from __future__ import annotations

from datetime import datetime, timezone

from token_budget import alert_render, policy
from token_budget.claude import messages
from token_budget.claude.commands import command_of, workflow_for_prompt
from token_budget.models import Alert, BudgetState
from token_budget.policy import Settings

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
RESETS = "2026-12-01T00:00:00.000Z"


def test_the_policy_decides_and_the_adapter_words_the_block() -> None:
    opus = BudgetState("model:claude-opus", 1_000, 1_000, "block", "2026-11-30", RESETS)
    kwargs = {"event_kind": "prompt", "model": "claude-opus-4-6", "settings": Settings(command="/tokens"), "now": NOW}
    decision = policy.evaluate([opus], **kwargs)
    assert (decision.level, decision.action, decision.reason) == ("block", "block", None)
    worded = messages.with_reason(decision, [opus], **kwargs)
    assert "switch with `/model sonnet` (it has budget left)" in worded.reason
    assert "`/tokens ack model:claude-opus/100/2026-11-30`" in worded.reason
    assert worded.action == decision.action and worded.alerts == decision.alerts


def test_a_stop_on_a_model_budget_offers_another_model() -> None:
    state = BudgetState("model:claude-fable", 1_200, 1_000, "stop", "2026-11-30", RESETS)
    kwargs = {"event_kind": "tool", "model": "claude-fable-5", "now": NOW}
    reason = messages.with_reason(policy.evaluate([state], **kwargs), [state], **kwargs).reason
    assert reason.startswith("token-budget: emergency stop: the claude-fable model budget (today)")
    assert "Switch to another model with `/model`" in reason


def test_the_90_percent_notice_names_the_cheaper_family_for_the_user_and_for_subagents() -> None:
    daily = BudgetState("daily", 910, 1_000, "suggest", "2026-11-30", RESETS)
    alert = Alert("daily", "suggest", 90, "2026-11-30", 910, 1_000, "")
    user, context = messages.announce(alert, daily, Settings(), NOW, "claude-sonnet-4-5", [daily])
    assert "switch to Haiku for the remaining tasks (`/model haiku`)" in user and "`/compact`" in user
    assert 'give subagents `"model": "haiku"`' in context


def test_the_hook_and_the_alert_channels_suggest_the_same_raise() -> None:
    state = BudgetState("daily", 1_234_567, 1_000_000, "block", "2026-11-30", RESETS)
    kwargs = {"event_kind": "prompt", "settings": Settings(), "now": NOW}
    reason = messages.with_reason(policy.evaluate([state], **kwargs), [state], **kwargs).reason
    alert = Alert("daily", "block", 100, "2026-11-30", state.used, state.limit, "")
    slack = alert_render.commands(alert, "/tokens")["budget"]
    assert slack == "tokens budget daily 1500000"
    assert f"`{slack}`" in reason


def test_slash_commands_are_parsed_by_the_adapter() -> None:
    class Config:
        def get(self, *keys: str, default: object = None) -> object:
            return {"sprint": {"commands": ["sprint", "go-fast"]}} if keys == ("workflows",) else default

    assert command_of("/token-budget:sprint now") == ("sprint", "now")
    assert command_of("plain words") is None
    assert workflow_for_prompt(Config(), "/go-fast\nmore") == "sprint"
    assert workflow_for_prompt(Config(), "/other") is None
