"""Alert delivery against real loopback servers: an http.server standing in for Slack, an aiosmtpd mail relay.

The outage tests run the real detached sender process (the one hooks start) and play a webhook and SMTP outage.
"""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

import pytest
from alert_servers import MailServer, SlackServer, wait_for
from click.testing import CliRunner

from token_budget import clock, delivery
from token_budget.channels import channels
from token_budget.cli import cli
from token_budget.delivery import DeliverySettings, Sender, kick, sender_running
from token_budget.ledger import Ledger
from token_budget.models import Alert
from token_budget.outbox import enqueue

# aiosmtpd warns (UserWarning) when AUTH is offered without TLS, which these loopback tests do on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

FAST = DeliverySettings(timeout=0.5, retry_base=0.05, retry_max=0.2, give_up_after=3600)


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch):
    server = SlackServer().start()
    monkeypatch.setenv("SLACK_WEBHOOK", server.url)
    yield server
    server.stop()


@pytest.fixture
def mail(monkeypatch: pytest.MonkeyPatch):
    server = MailServer(login=("bot", "s3cret-pw")).start()
    for name, value in {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(server.port),
        "SMTP_USERNAME": "bot",
        "SMTP_PASSWORD": "s3cret-pw",
        "SMTP_FROM": "Token Budget <budget@example.com>",
        "SMTP_STARTTLS": "0",
    }.items():
        monkeypatch.setenv(name, value)
    yield server
    server.stop()


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    data = {
        "alerts": {
            "channels": [
                {"type": "console", "threshold": "70%"},
                {"type": "slack", "threshold": "80%", "webhook": "$SLACK_WEBHOOK"},
                {"type": "email", "threshold": "80%", "to": ["admin@company.com", "ops@company.com"]},
            ]
        }
    }
    import yaml

    path = tmp_path / "alerts.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("TOKEN_BUDGET_CONFIG", str(path))
    return data


@pytest.fixture
def ledger(data_dir: Path):
    with Ledger.open(data_dir) as opened:
        yield opened


@pytest.fixture(autouse=True)
def no_stray_senders():
    yield
    for child in list(delivery._children):
        if child.poll() is None:
            child.kill()
        child.wait(10)
        delivery._children.remove(child)


def alert_for(n: int, threshold: int = 90) -> Alert:
    return Alert(
        scope=f"workflow:w{n}",
        level="suggest",
        threshold=threshold,
        period=f"run-{n}",
        used=450_000 + n,
        limit=500_000,
        created_at="2026-11-28T10:30:00.000000Z",
        workflow=f"w{n}",
    )


def claim_and_enqueue(ledger: Ledger, config: dict, alert: Alert) -> None:
    with ledger.transaction():
        assert ledger.claim_alert(alert)
        enqueue(ledger, alert.key, alert.threshold, channels(config), now=clock.timestamp())


def run_sender(data_dir: Path, settings: DeliverySettings = FAST) -> int:
    fd = os.open(data_dir / delivery.LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        sender = Sender(data_dir, settings)
        sent = sender.run(fd)
        sender.ledger.close()
        return sent
    finally:
        os.close(fd)


def states(data_dir: Path) -> dict[tuple[str, str], tuple[str, int]]:
    db = sqlite3.connect(data_dir / "ledger.db")
    try:
        return {
            (k, c): (s, a)
            for k, c, s, a in db.execute("SELECT alert_key, channel, state, attempts FROM deliveries")
        }
    finally:
        db.close()


def attempt_outcomes(data_dir: Path, channel: str) -> list[tuple[str, str | None]]:
    db = sqlite3.connect(data_dir / "ledger.db")
    try:
        return db.execute(
            "SELECT a.outcome, a.error FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id "
            "WHERE d.channel = ? ORDER BY a.id",
            (channel,),
        ).fetchall()
    finally:
        db.close()


# -- Slack ------------------------------------------------------------------------------------------------------


def test_slack_receives_text_and_blocks(
    slack: SlackServer, mail: MailServer, config: dict, ledger: Ledger, data_dir: Path
) -> None:
    claim_and_enqueue(ledger, config, alert_for(1))
    assert run_sender(data_dir) == 2
    [post] = slack.posts
    assert post["text"].startswith(
        "⚠️ TOKEN BUDGET ALERT\n\nWorkflow: w1\nCurrent Usage: 450,001 / 500,000 (90%)\n"
    )
    assert [b["type"] for b in post["blocks"]] == ["header", "section", "section", "section"]
    assert "`tokens ack workflow:w1/90/run-1`" in post["blocks"][3]["text"]["text"]
    assert states(data_dir)[("workflow:w1/90/run-1", "slack")] == ("delivered", 1)
    assert attempt_outcomes(data_dir, "slack") == [("ok", None)]


def test_slack_500_is_retried_until_it_succeeds(
    slack: SlackServer, config: dict, ledger: Ledger, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SMTP_HOST", raising=False)
    slack.script = ["500", "500"]
    claim_and_enqueue(ledger, config, alert_for(1))
    run_sender(data_dir)
    assert len(slack.posts) == 1
    assert attempt_outcomes(data_dir, "slack") == [
        ("error", f"slack: HTTP 500 from http://127.0.0.1:{slack.port}/[redacted] (internal_error)"),
        ("error", f"slack: HTTP 500 from http://127.0.0.1:{slack.port}/[redacted] (internal_error)"),
        ("ok", None),
    ]


def test_a_stalled_webhook_times_out_and_is_retried(
    slack: SlackServer, config: dict, ledger: Ledger, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SMTP_HOST", raising=False)
    slack.script = ["stall"]
    claim_and_enqueue(ledger, config, alert_for(1))
    run_sender(data_dir)
    assert len(slack.posts) == 1
    assert attempt_outcomes(data_dir, "slack") == [
        ("error", f"slack: http://127.0.0.1:{slack.port}/[redacted] unreachable: timed out"),
        ("ok", None),
    ]


def test_a_wrong_webhook_fails_at_once_without_leaking_it(
    slack: SlackServer, config: dict, ledger: Ledger, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SMTP_HOST", raising=False)
    monkeypatch.setenv("SLACK_WEBHOOK", f"http://127.0.0.1:{slack.port}/services/T000/B000/WRONGSECRET")
    claim_and_enqueue(ledger, config, alert_for(1))
    run_sender(data_dir)
    assert states(data_dir)[("workflow:w1/90/run-1", "slack")] == ("failed", 1)
    assert attempt_outcomes(data_dir, "slack") == [
        ("error", f"slack: HTTP 404 from http://127.0.0.1:{slack.port}/[redacted] (no_service)")
    ]
    assert b"WRONGSECRET" not in (data_dir / "alerts.log").read_bytes()


def test_a_missing_variable_fails_the_delivery_and_logs_a_warning(
    config: dict, ledger: Ledger, data_dir: Path
) -> None:
    claim_and_enqueue(ledger, config, alert_for(1))
    run_sender(data_dir)
    assert states(data_dir)[("workflow:w1/90/run-1", "slack")] == ("failed", 1)
    log = (data_dir / "alerts.log").read_text()
    assert (
        "warning: alert workflow:w1/90/run-1 via slack, attempt 1: slack webhook: $SLACK_WEBHOOK is not set"
        in log
    )


# -- email ------------------------------------------------------------------------------------------------------


def test_email_has_subject_headers_and_a_plain_and_html_body(
    mail: MailServer, config: dict, ledger: Ledger, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLACK_WEBHOOK", raising=False)
    claim_and_enqueue(ledger, config, alert_for(1, threshold=100))
    run_sender(data_dir)
    [received] = mail.messages
    assert received["mail_from"] == "budget@example.com"
    assert received["rcpt_tos"] == ["admin@company.com", "ops@company.com"]
    msg = received["message"]
    assert msg["Subject"] == "[token-budget] SUGGEST: workflow w1 at 90% (450,001 / 500,000 tokens)"
    assert msg["From"] == "Token Budget <budget@example.com>"
    assert msg["To"] == "admin@company.com, ops@company.com"
    assert msg["X-Token-Budget-Alert"] == "workflow:w1/100/run-1"
    assert msg["Message-ID"].endswith("@token-budget>")
    plain = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert plain.startswith("⚠️ TOKEN BUDGET ALERT\n\nWorkflow: w1\nCurrent Usage: 450,001 / 500,000 (90%)\n")
    assert (
        "Action Required: Acknowledge or Adjust\n- Acknowledge: tokens ack workflow:w1/100/run-1" in plain
    )
    assert "<code>tokens budget w1 600000</code>" in msg.get_body(("html",)).get_content()
    assert mail.auths == ["LOGIN:bot:ok"] or mail.auths == ["PLAIN:bot:ok"]


def test_starttls_is_required_by_default(
    mail: MailServer, config: dict, ledger: Ledger, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLACK_WEBHOOK", raising=False)
    monkeypatch.delenv("SMTP_STARTTLS")
    claim_and_enqueue(ledger, config, alert_for(1))
    run_sender(data_dir)
    assert mail.messages == []
    assert attempt_outcomes(data_dir, "email") == [
        ("error", f"email: 127.0.0.1:{mail.port} does not offer STARTTLS")
    ]


def test_a_wrong_smtp_password_fails_without_showing_it(
    mail: MailServer, config: dict, ledger: Ledger, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLACK_WEBHOOK", raising=False)
    monkeypatch.setenv("SMTP_PASSWORD", "not-the-password")
    claim_and_enqueue(ledger, config, alert_for(1))
    run_sender(data_dir)
    [(outcome, error)] = attempt_outcomes(data_dir, "email")
    assert outcome == "error" and error.startswith(f"email: 127.0.0.1:{mail.port} answered 535")
    assert b"not-the-password" not in (data_dir / "alerts.log").read_bytes()


# -- tokens alerts test -----------------------------------------------------------------------------------------


def test_tokens_alerts_test_sends_through_one_channel(
    slack: SlackServer, mail: MailServer, config: dict
) -> None:
    result = CliRunner().invoke(cli, ["alerts", "test", "slack"], catch_exceptions=False)
    assert result.exit_code == 0
    assert result.stdout == f"OK: slack: posted to http://127.0.0.1:{slack.port}/[redacted].\n"
    assert slack.posts[0]["blocks"][0]["text"]["text"] == "⚠️ TOKEN BUDGET ALERT (test)"
    result = CliRunner().invoke(cli, ["alerts", "test", "email"], catch_exceptions=False)
    assert result.exit_code == 0
    assert (
        result.stdout
        == f"OK: email: mailed admin@company.com, ops@company.com through 127.0.0.1:{mail.port}.\n"
    )
    assert mail.messages[0]["message"]["Subject"].startswith(
        "[test] [token-budget] ALERT: budget daily at 80%"
    )


def test_tokens_alerts_test_reports_a_failure_with_exit_2(slack: SlackServer, config: dict) -> None:
    slack.mode = "500"
    result = CliRunner().invoke(cli, ["alerts", "test", "slack"])
    assert result.exit_code == 2
    assert (
        f"Error: slack: HTTP 500 from http://127.0.0.1:{slack.port}/[redacted] (internal_error)"
        in result.output
    )
    assert "XXSECRETXX" not in result.output


# -- the detached sender: outages, crashes, one at a time ---------------------------------------------------------


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKEN_BUDGET_ALERT_TIMEOUT", "0.5")
    monkeypatch.setenv("TOKEN_BUDGET_ALERT_RETRY_BASE", "0.05")
    monkeypatch.setenv("TOKEN_BUDGET_ALERT_RETRY_MAX", "0.3")


def test_an_outage_loses_and_doubles_nothing(
    slack: SlackServer, mail: MailServer, config: dict, ledger: Ledger, data_dir: Path, fast_retries: None
) -> None:
    slack.stop()
    mail.stop()
    for n in range(1, 4):  # three hooks claim alerts during the outage; each kicks, one sender runs
        claim_and_enqueue(ledger, config, alert_for(n))
        kick(ledger, data_dir)
    assert wait_for(lambda: sender_running(data_dir))
    assert wait_for(lambda: all(a >= 2 for (_, c), (_, a) in states(data_dir).items() if c != "console"))
    [alive] = [c for c in delivery._children if c.poll() is None]  # kicks racing its start-up exited at once

    # The sender dies mid-outage (kill -9): the next hook starts another.
    alive.send_signal(signal.SIGKILL)
    alive.wait(10)
    assert not sender_running(data_dir)
    claim_and_enqueue(ledger, config, alert_for(4))
    assert kick(ledger, data_dir) is True
    assert wait_for(lambda: sender_running(data_dir))

    slack.start()
    mail.start()
    assert wait_for(lambda: all(s == "delivered" for s, _ in states(data_dir).values()))
    assert sorted(p["blocks"][1]["text"]["text"].split("\n")[0] for p in slack.posts) == [
        f"*Workflow:* w{n}" for n in range(1, 5)
    ]
    assert sorted(m["message"]["X-Token-Budget-Alert"] for m in mail.messages) == [
        f"workflow:w{n}/90/run-{n}" for n in range(1, 5)
    ]
    assert wait_for(lambda: not sender_running(data_dir))  # nothing pending: the sender exits


def test_a_new_alert_while_the_sender_sleeps_is_picked_up(
    slack: SlackServer,
    config: dict,
    ledger: Ledger,
    data_dir: Path,
    fast_retries: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SMTP_HOST", raising=False)
    slack.mode = "500"
    claim_and_enqueue(ledger, config, alert_for(1))
    assert kick(ledger, data_dir) is True
    assert wait_for(lambda: slack.hits >= 2)
    claim_and_enqueue(ledger, config, alert_for(2))
    assert kick(ledger, data_dir) is False  # one sender at a time: the running one takes it
    slack.mode = "ok"
    assert wait_for(lambda: len(slack.posts) == 2)
    assert wait_for(lambda: not sender_running(data_dir))
    assert len(slack.posts) == 2


def test_a_second_sender_exits_at_once(data_dir: Path, ledger: Ledger) -> None:
    fd = os.open(data_dir / delivery.LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX)
        assert sender_running(data_dir)
        assert delivery.main([str(data_dir)]) == 0
    finally:
        os.close(fd)
    assert not sender_running(data_dir)


# -- the command spelling of the install route that queued the alert ------------------------------------------


@pytest.mark.parametrize(("route", "other_env", "spelled"), [
    ("plugin", None, "/token-budget:tokens"),  # queued by the plugin's hook, sent by a process outside it
    ("pip", "/plugin", "/tokens"),  # queued by a pip install's hook, sent where CLAUDE_PLUGIN_ROOT happens to be set
])
def test_slack_and_email_name_the_slash_command_of_the_hook_that_queued_the_alert(
    slack: SlackServer, mail: MailServer, tmp_path: Path, claude_dir: Path, data_dir: Path,
    monkeypatch: pytest.MonkeyPatch, route: str, other_env: str | None, spelled: str,
) -> None:
    import yaml
    from budget_helpers import Session

    path = tmp_path / "budgets.yaml"
    path.write_text(yaml.safe_dump({"timezone": "UTC", "budgets": {"global": {"daily_limit": 1000}}, "alerts": {
        "channels": [{"type": "slack", "threshold": "80%", "webhook": "$SLACK_WEBHOOK"},
                     {"type": "email", "threshold": "80%", "to": ["admin@company.com"]}]}}))
    monkeypatch.setenv("TOKEN_BUDGET_CONFIG", str(path))
    if route == "plugin":
        monkeypatch.setenv("CLAUDE_PLUGIN_ROOT", "/plugin")
    else:
        monkeypatch.delenv("CLAUDE_PLUGIN_ROOT", raising=False)
    real_spawn = delivery.spawn
    monkeypatch.setattr(delivery, "spawn", lambda data_dir: None)  # the hook queues; the sender runs below
    session = Session(claude_dir, now=clock.now())
    session.spend(850)
    session.hook("PreToolUse", tool_name="Read", tool_input={"file_path": "/tmp/proj/notes.md"})
    key = f"daily/80/{session.now.date().isoformat()}"
    assert set(states(data_dir)) == {(key, "slack"), (key, "email")}

    # The real detached sender, in an environment that says the other route: what it renders comes from the queue.
    if other_env:
        monkeypatch.setenv("CLAUDE_PLUGIN_ROOT", other_env)
    else:
        monkeypatch.delenv("CLAUDE_PLUGIN_ROOT")
    real_spawn(data_dir)
    assert wait_for(lambda: slack.posts and mail.messages)
    assert wait_for(lambda: not sender_running(data_dir))
    assert {state for state, _ in states(data_dir).values()} == {"delivered"}

    ack, adjust = f"{spelled} ack {key}", f"{spelled} budget daily 1200"
    [post] = slack.posts
    action = post["blocks"][-1]["text"]["text"]
    assert f"`tokens ack {key}` (in Claude Code: `{ack}`)" in action
    assert f"`tokens budget daily 1200` (in Claude Code: `{adjust}`)" in action
    assert f"(in Claude Code: {ack})" in post["text"]
    [mailed] = mail.messages
    text = mailed["message"].get_body(("plain",)).get_content()
    html = mailed["message"].get_body(("html",)).get_content()
    assert f"- Acknowledge: tokens ack {key}   (in Claude Code: {ack})" in text
    assert f"- Adjust: tokens budget daily 1200   (in Claude Code: {adjust})" in text
    assert f"(in Claude Code: <code>{ack}</code>)" in html
    wrong = "/tokens " if route == "plugin" else "/token-budget:tokens"
    assert wrong not in action + post["text"] + text + html


def test_an_alert_queued_without_a_spelling_names_the_terminal_commands_only(
    slack: SlackServer, mail: MailServer, config: dict, ledger: Ledger, data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLAUDE_PLUGIN_ROOT", "/plugin")  # the sender's environment is not where the spelling comes from
    claim_and_enqueue(ledger, config, alert_for(1))  # queued by no client (as rows from before the spelling was kept)
    assert run_sender(data_dir) == 2
    [post] = slack.posts
    assert "`tokens ack workflow:w1/90/run-1`" in post["blocks"][-1]["text"]["text"]
    [mailed] = mail.messages
    assert "in Claude Code" not in post["text"] + mailed["message"].get_body(("plain",)).get_content()
