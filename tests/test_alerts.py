"""Alerts: channels from the config, the outbox written with the claim, the message format, `tokens alerts`, doctor.

Delivery over real servers is in test_alerts_delivery.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from token_budget.alert_render import alert_content, slack_payload
from token_budget.channels import AlertConfigError, Channel, channel_problems, channels, expand, redact
from token_budget.cli import cli
from token_budget.ledger import Ledger
from token_budget.models import Alert
from token_budget.outbox import alerts_with_deliveries, enqueue, enqueue_missing

SEED_CHANNELS = {
    "alerts": {
        "channels": [
            {"type": "console", "threshold": "70%"},
            {"type": "slack", "threshold": "90%", "webhook": "$SLACK_WEBHOOK"},
            {"type": "email", "threshold": "100%", "to": "admin@company.com"},
        ]
    }
}


def make_alert(**overrides: object) -> Alert:
    values: dict = {
        "scope": "workflow:sprint",
        "level": "suggest",
        "threshold": 90,
        "period": "run-7",
        "used": 450_000,
        "limit": 500_000,
        "created_at": "2026-11-28T10:30:00.000000Z",
    }
    values.update(overrides)
    return Alert(**values)


@pytest.fixture
def ledger(data_dir: Path) -> Ledger:
    with Ledger.open(data_dir) as opened:
        yield opened


def delivery_states(ledger: Ledger) -> dict[tuple[str, str], str]:
    return {(k, c): s for k, c, s in ledger.db.execute("SELECT alert_key, channel, state FROM deliveries")}


# -- config ------------------------------------------------------------------------------------------------------


def test_channels_follow_the_seed_block() -> None:
    assert channels(SEED_CHANNELS) == [
        Channel("console", "console", 70),
        Channel("slack", "slack", 90, webhook="$SLACK_WEBHOOK"),
        Channel("email", "email", 100, to=("admin@company.com",)),
    ]


def test_a_repeated_channel_type_is_numbered() -> None:
    config = {
        "alerts": {"channels": [{"type": "slack", "webhook": "$A"}, {"type": "slack", "webhook": "$B"}]}
    }
    assert [c.name for c in channels(config)] == ["slack", "slack.2"]


def test_expand_names_the_missing_variable_and_never_a_value() -> None:
    assert expand("${SLACK_WEBHOOK_OPS}", "slack webhook", {"SLACK_WEBHOOK_OPS": "https://h"}) == "https://h"
    assert expand("$HOOK", "slack webhook", {"HOOK": "https://h"}, allowed=["HOOK"]) == "https://h"
    with pytest.raises(AlertConfigError, match="whole value"):
        expand("${SLACK_WEBHOOK}/x", "slack webhook", {"SLACK_WEBHOOK": "https://h"})
    with pytest.raises(AlertConfigError, match=r"\$HOOK is not a variable alerts may read"):
        expand("$HOOK", "slack webhook", {"HOOK": "https://h"})
    with pytest.raises(AlertConfigError, match=r"slack webhook: \$SLACK_WEBHOOK is not set"):
        expand("$SLACK_WEBHOOK", "slack webhook", {})


def test_redact_removes_secrets_and_url_paths() -> None:
    text = "posting to https://hooks.slack.com/services/T1/B2/abc failed; password hunter2"
    assert (
        redact(text, ["hunter2"])
        == "posting to https://hooks.slack.com/[redacted] failed; password [redacted]"
    )


def test_channel_problems_lists_what_stops_each_channel() -> None:
    problems = channel_problems(channels(SEED_CHANNELS), {})
    assert [p.message for p in problems] == [
        "slack webhook: $SLACK_WEBHOOK is not set in the environment",
        "email: SMTP_HOST is not set in the environment",
    ]
    assert (
        channel_problems(channels(SEED_CHANNELS), {"SLACK_WEBHOOK": "https://x", "SMTP_HOST": "mail"}) == []
    )


# -- the outbox -------------------------------------------------------------------------------------------------


def test_claim_enqueues_one_delivery_per_channel_at_or_below_the_threshold(ledger: Ledger) -> None:
    with ledger.transaction():
        assert ledger.claim_alert(make_alert(threshold=90))
        assert (
            enqueue(ledger, "workflow:sprint/90/run-7", 90, channels(SEED_CHANNELS), now="2026-11-28T10:30:00Z")
            == 1
        )
    assert delivery_states(ledger) == {
        ("workflow:sprint/90/run-7", "console"): "delivered",  # the hook showed it as a systemMessage
        ("workflow:sprint/90/run-7", "slack"): "pending",
    }


def test_claims_made_without_channels_are_enqueued_later(ledger: Ledger) -> None:
    with ledger.transaction():
        ledger.claim_alert(make_alert(threshold=100, level="block"))
    with ledger.transaction():
        assert enqueue_missing(ledger, channels(SEED_CHANNELS), project_dir=None, now="2026-11-28T10:31:00Z") == 2
    with ledger.transaction():
        assert enqueue_missing(ledger, channels(SEED_CHANNELS), project_dir=None, now="2026-11-28T10:32:00Z") == 0
    assert sorted(c for _, c in delivery_states(ledger)) == ["console", "email", "slack"]


def test_the_outbox_never_holds_an_expanded_secret(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_WEBHOOK", "https://hooks.slack.com/services/T/B/SECRET1")
    literal = {
        "alerts": {
            "channels": [
                {"type": "slack", "webhook": "https://hooks.slack.com/services/T/B/SECRET2"},
                {"type": "slack", "webhook": "$SLACK_WEBHOOK"},
            ]
        }
    }
    with ledger.transaction():
        ledger.claim_alert(make_alert())
        enqueue_missing(ledger, channels(literal), project_dir=None, now="2026-11-28T10:31:00Z")
    ledger.db.commit()
    raw = Path(ledger.path).read_bytes() + Path(ledger.path + "-wal").read_bytes()
    assert b"SECRET" not in raw
    assert b"$SLACK_WEBHOOK" in raw


# -- the message ------------------------------------------------------------------------------------------------


def test_text_follows_the_seed_alert_format() -> None:
    # queued by a plugin install's hook: its slash command is namespaced
    assert alert_content(make_alert(), prefix="/token-budget:tokens")["text"] == (
        "⚠️ TOKEN BUDGET ALERT\n"
        "\n"
        "Workflow: sprint\n"
        "Current Usage: 450,000 / 500,000 (90%)\n"
        "Remaining: 50,000 tokens\n"
        "Level: suggest (90% threshold, period run-7)\n"
        "\n"
        "Recommendation:\n"
        "- Switch to Haiku for remaining tasks\n"
        "- Or request budget increase\n"
        "\n"
        "Action Required: Acknowledge or Adjust\n"
        "- Acknowledge: tokens ack workflow:sprint/90/run-7"
        "   (in Claude Code: /token-budget:tokens ack workflow:sprint/90/run-7)\n"
        "- Adjust: tokens budget sprint 600000   (in Claude Code: /token-budget:tokens budget sprint 600000)\n"
    )


def test_email_subject_names_scope_and_level() -> None:
    alert = make_alert(scope="daily", level="block", threshold=100, used=1_000_000, limit=1_000_000)
    assert (
        alert_content(alert)["subject"]
        == "[token-budget] BLOCK: budget daily at 100% (1,000,000 / 1,000,000 tokens)"
    )


def test_slack_payload_has_text_and_blocks_with_markup_escaped() -> None:
    payload = slack_payload(make_alert(scope="workflow:a&b<c>", recommendation="Use <haiku> & batch"))
    assert "a&amp;b&lt;c&gt;" in payload["text"]
    assert payload["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "⚠️ TOKEN BUDGET ALERT", "emoji": True},
    }
    mrkdwn = "\n".join(b["text"]["text"] for b in payload["blocks"][1:])
    assert "*Workflow:* a&amp;b&lt;c&gt;" in mrkdwn
    assert "• Use &lt;haiku&gt; &amp; batch" in mrkdwn
    assert "*Action Required: Acknowledge or Adjust*" in mrkdwn
    assert "<" not in mrkdwn.replace("&lt;", "")


# -- the CLI ----------------------------------------------------------------------------------------------------


def test_tokens_alerts_lists_delivery_state_per_channel(ledger: Ledger) -> None:
    with ledger.transaction() as db:
        ledger.claim_alert(make_alert())
        enqueue(
            ledger, "workflow:sprint/90/run-7", 90, channels(SEED_CHANNELS), now="2026-11-28T10:30:00.000000Z"
        )
        db.execute(
            "UPDATE deliveries SET attempts = 2, last_error = 'slack: HTTP 500 from http://127.0.0.1:9/[redacted]' "
            "WHERE channel = 'slack'"
        )
    result = CliRunner().invoke(cli, ["alerts"], catch_exceptions=False)
    assert result.exit_code == 0
    assert re.sub(r"next \d{4}-\S+Z\)", "next <time>)", result.output) == (
        "2026-11-28T10:30:00Z  workflow:sprint 90% (suggest)  450,000 / 500,000 (90%)  period run-7\n"
        "  id: workflow:sprint/90/run-7\n"
        "  console   delivered 2026-11-28T10:30:00Z\n"
        "  slack     pending (2 attempts; next <time>): slack: HTTP 500 from http://127.0.0.1:9/[redacted]\n"
        "1 pending; the sender is not running (the next hook starts it).\n"
    )


def test_tokens_alerts_json(ledger: Ledger) -> None:
    with ledger.transaction():
        ledger.claim_alert(make_alert())
        enqueue(
            ledger, "workflow:sprint/90/run-7", 90, channels(SEED_CHANNELS), now="2026-11-28T10:30:00.000000Z"
        )
    result = CliRunner().invoke(cli, ["alerts", "--json"], catch_exceptions=False)
    data = json.loads(result.output)
    assert data["sender_running"] is False
    [alert] = data["alerts"]
    assert {k: alert[k] for k in ("id", "scope", "threshold", "used", "limit", "percent", "acked_at")} == {
        "id": "workflow:sprint/90/run-7",
        "scope": "workflow:sprint",
        "threshold": 90,
        "used": 450_000,
        "limit": 500_000,
        "percent": 90.0,
        "acked_at": None,
    }
    assert [(d["channel"], d["state"], d["attempts"]) for d in alert["deliveries"]] == [
        ("console", "delivered", 0),
        ("slack", "pending", 0),
    ]
    assert alerts_with_deliveries(Ledger.open(Path(ledger.path).parent)) == data["alerts"]


def test_tokens_alerts_test_with_an_unset_webhook_says_what_to_export() -> None:
    result = CliRunner().invoke(cli, ["alerts", "test", "slack"])
    assert result.exit_code == 2
    assert "Error: slack webhook: $SLACK_WEBHOOK is not set in the environment" in result.output
    assert "Export SLACK_WEBHOOK" in result.output


def test_tokens_alerts_test_unknown_channel() -> None:
    result = CliRunner().invoke(cli, ["alerts", "test", "pager"])
    assert result.exit_code == 2
    assert "Error: No alert channel named 'pager' (configured: console, slack, email)." in result.output


def test_doctor_fails_when_a_configured_channel_lacks_its_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "mine.yaml"
    config.write_text(
        "alerts:\n  allowed_env: [TEAM_HOOK]\n"
        "  channels:\n    - type: slack\n      threshold: 90%\n      webhook: $TEAM_HOOK\n"
    )
    monkeypatch.setenv("TOKEN_BUDGET_CONFIG", str(config))
    result = CliRunner().invoke(cli, ["doctor", "--json"])
    check = next(c for c in json.loads(result.output)["checks"] if c["name"] == "alert channels")
    assert check["status"] == "fail"
    assert check["detail"] == "slack webhook: $TEAM_HOOK is not set in the environment"
    assert result.exit_code == 2
    monkeypatch.setenv("TEAM_HOOK", "https://hooks.slack.com/services/T/B/C")
    result = CliRunner().invoke(cli, ["doctor", "--json"])
    check = next(c for c in json.loads(result.output)["checks"] if c["name"] == "alert channels")
    assert check == {"name": "alert channels", "status": "ok", "detail": "slack", "fix": None}


def test_doctor_only_warns_about_the_packaged_example_channels() -> None:
    result = CliRunner().invoke(cli, ["doctor", "--json"])
    check = next(c for c in json.loads(result.output)["checks"] if c["name"] == "alert channels")
    assert check["status"] == "warn"
    assert check["detail"].startswith(
        "packaged example channels inactive: slack webhook: $SLACK_WEBHOOK is not set"
    )


def test_a_hook_claims_and_enqueues_in_one_transaction(data_dir: Path, claude_dir: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Even if the hook dies right after its claim commits (kick never runs), the outbox already holds the send."""
    from budget_helpers import Session, write_config

    from token_budget import delivery

    write_config(tmp_path, monkeypatch, "timezone: UTC\nbudgets:\n  global: {daily_limit: 1000, monthly_limit: 0}\n"
                 "alerts:\n  channels:\n    - {type: slack, threshold: 80%, webhook: $SLACK_WEBHOOK}\n")
    monkeypatch.setattr(delivery, "kick", lambda *args, **kwargs: False)
    session = Session(claude_dir)
    session.spend(850)
    assert session.hook("UserPromptSubmit", prompt="go")[0] == 0
    with Ledger.open(data_dir) as ledger:
        rows = ledger.db.execute("SELECT d.channel, d.state FROM deliveries d JOIN alerts a ON a.key = d.alert_key"
                                 ).fetchall()
    assert rows == [("slack", "pending")]
