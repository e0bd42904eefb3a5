"""The daily report through the alert channels marked `reports: true`, against the real loopback servers of
test_alerts_delivery (an http.server standing in for Slack, an aiosmtpd relay), by the same outbox and sender."""

from __future__ import annotations

import sqlite3
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import test_alerts_delivery as alert_tests
import yaml
from alert_servers import SlackServer, wait_for
from click.testing import CliRunner
from test_reports import DAY, fixed_events, start_run

from token_budget import clock
from token_budget.channels import channels
from token_budget.cli import cli
from token_budget.config import load
from token_budget.daily_report import write_daily_if_due
from token_budget.delivery import sender_running
from token_budget.ledger import Ledger
from token_budget.models import UsageEvent
from token_budget.outbox import enqueue_report
from token_budget.report_render import render_yaml
from token_budget.reports import build_report, day_period

# The real servers, the fast retry settings and the stray-sender cleanup of the alert delivery tests.
slack, mail, fast_retries, no_stray_senders = (
    alert_tests.slack, alert_tests.mail, alert_tests.fast_retries, alert_tests.no_stray_senders
)
run_sender = alert_tests.run_sender
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

NEXT_MORNING = datetime(2026, 11, 28, 7, 0, tzinfo=timezone.utc)
WORKFLOW = "sprint <b>&co"  # Slack must get it escaped


@pytest.fixture
def other_slack(monkeypatch: pytest.MonkeyPatch):
    server = SlackServer().start()
    monkeypatch.setenv("OTHER_WEBHOOK", server.url)
    yield server
    server.stop()


def write_config(hermetic_env: Path, monkeypatch: pytest.MonkeyPatch, chans: list[dict]) -> None:
    path = hermetic_env / "config.yaml"
    # OTHER_WEBHOOK is no default name (SLACK_WEBHOOK*): alerts read it only because the user lists it.
    alerts = {"allowed_env": ["OTHER_WEBHOOK"], "channels": chans}
    path.write_text(yaml.safe_dump({"timezone": "UTC", "alerts": alerts}))
    monkeypatch.setenv("TOKEN_BUDGET_CONFIG", str(path))


REPORT_CHANNELS = [
    {"type": "console", "threshold": "70%", "reports": True},  # nowhere to send a report: skipped
    {"type": "slack", "threshold": "80%", "webhook": "$SLACK_WEBHOOK", "reports": True},
    {"type": "email", "threshold": "80%", "to": ["admin@company.com"], "reports": True},
    {"type": "slack", "threshold": "80%", "webhook": "$OTHER_WEBHOOK"},  # alerts only
]


@pytest.fixture
def config(hermetic_env: Path, monkeypatch: pytest.MonkeyPatch):
    write_config(hermetic_env, monkeypatch, REPORT_CHANNELS)
    return load()


@pytest.fixture
def ledger(data_dir: Path, config):
    with Ledger.open(data_dir) as opened:
        with opened.transaction():
            start_run(opened, "s1", WORKFLOW, f"{DAY}T08:00:00.000Z", f"{DAY}T10:30:00.000Z")
            opened.record(fixed_events(), source="test", prices=config.price_table())
        yield opened


def deliveries(data_dir: Path) -> list[tuple[str, str, str, str, int]]:
    db = sqlite3.connect(data_dir / "ledger.db")
    try:
        return db.execute(
            "SELECT kind, alert_key, channel, state, attempts FROM deliveries ORDER BY channel"
        ).fetchall()
    finally:
        db.close()


def test_the_report_is_delivered_once_to_each_reports_channel(
    slack: SlackServer, other_slack: SlackServer, mail, config, ledger: Ledger, data_dir: Path
) -> None:
    path = write_daily_if_due(ledger, config, data_dir, now=NEXT_MORNING)
    assert path == data_dir / "reports" / f"{DAY}.yaml"
    assert deliveries(data_dir) == [
        ("report", f"report:{DAY}", "email", "pending", 0),
        ("report", f"report:{DAY}", "slack", "pending", 0),
    ]
    assert run_sender(data_dir) == 2

    [post] = slack.posts
    assert post["text"] == (
        f"📊 Token budget daily report {DAY}\n\n"
        "Total: 27,700 tokens, $0.15 (5 requests)\n"
        "Efficiency (cache share): 55.6%\n"
        "Optimization savings: 38.4% ($0.09 saved)\n"
        "Top workflows: sprint &lt;b&gt;&amp;co 20,000; (none) 7,700\n"
        "Top models: claude-sonnet-4-5-20250929 16,000 ($0.08); claude-haiku-4-5-20251001 5,500 ($0.01); "
        "claude-opus-4-5-20251101 4,000 ($0.05)\n"
        "Unpriced models: gpt-5-codex\n"
    )
    assert [b["type"] for b in post["blocks"]] == ["header", "section", "context"]
    assert "*Top workflows:* sprint &lt;b&gt;&amp;co 20,000" in post["blocks"][1]["text"]["text"]
    assert other_slack.hits == 0  # no `reports: true`: alerts only

    [received] = mail.messages
    msg = received["message"]
    assert received["rcpt_tos"] == ["admin@company.com"]
    assert msg["Subject"] == f"[token-budget] Daily report {DAY}: 27,700 tokens, $0.15"
    assert msg["X-Token-Budget-Report"] == DAY
    plain = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert plain == path.read_text()  # the YAML report itself
    assert yaml.safe_load(plain)["daily_report"]["total_tokens"] == 27_700
    assert "sprint &lt;b&gt;&amp;co" in msg.get_body(("html",)).get_content()

    assert [(c, s, a) for _, _, c, s, a in deliveries(data_dir)] == [
        ("email", "delivered", 1),
        ("slack", "delivered", 1),
    ]
    assert write_daily_if_due(ledger, config, data_dir, now=NEXT_MORNING) is None  # once a day
    assert run_sender(data_dir) == 0
    assert len(slack.posts) == len(mail.messages) == 1

    result = CliRunner().invoke(cli, ["alerts"], catch_exceptions=False)
    assert result.exit_code == 0
    assert f"Daily reports:\n{DAY}  report (reports/{DAY}.yaml)\n  slack     delivered" in result.stdout
    listed = CliRunner().invoke(cli, ["alerts", "--json"], catch_exceptions=False)
    assert '"id": "report:2026-11-27"' in listed.stdout


def test_channels_without_reports_get_nothing(
    hermetic_env: Path, monkeypatch: pytest.MonkeyPatch, slack: SlackServer, data_dir: Path
) -> None:
    alerts_only = [{"type": "slack", "threshold": "80%", "webhook": "$SLACK_WEBHOOK"}]
    write_config(hermetic_env, monkeypatch, alerts_only)
    config = load()
    with Ledger.open(data_dir) as ledger:
        assert write_daily_if_due(ledger, config, data_dir, now=NEXT_MORNING) is not None
    assert deliveries(data_dir) == []
    assert run_sender(data_dir) == 0
    assert slack.hits == 0


def test_enqueuing_a_day_again_adds_no_second_delivery(config, ledger: Ledger, data_dir: Path) -> None:
    # A crash after the enqueue committed but before the file was written: the next hook enqueues again.
    report = build_report(ledger, config, day_period(date(2026, 11, 27), config))
    for _ in range(2):
        with ledger.transaction():
            enqueue_report(ledger, report, render_yaml(report), channels(config), now=clock.timestamp())
    rows = [(kind, state) for kind, _, _, state, _ in deliveries(data_dir)]
    assert rows == [("report", "pending"), ("report", "pending")]


def test_a_webhook_outage_delays_the_report_and_never_doubles_it(
    slack: SlackServer, hermetic_env: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch, fast_retries
) -> None:
    from builders import hook_payload, response, transcript_path, write_lines

    from token_budget.claude.hook import handle

    write_config(hermetic_env, monkeypatch, REPORT_CHANNELS[1:2])
    slack.stop()
    transcript = transcript_path(hermetic_env / "claude")
    path = write_lines(transcript, response(timestamp=f"{DAY}T09:00:00.000Z"))
    # The first hook of the day writes the report, enqueues it and starts the real detached sender.
    handle("SessionStart", hook_payload("SessionStart", path), data_dir, now=NEXT_MORNING)
    assert (data_dir / "reports" / f"{DAY}.yaml").exists()
    assert wait_for(lambda: any(a >= 2 for *_, a in deliveries(data_dir)))  # retried while it is down
    handle("Stop", hook_payload("Stop", path), data_dir, now=NEXT_MORNING)  # later hooks add nothing
    slack.start()
    assert wait_for(lambda: [s for _, _, _, s, _ in deliveries(data_dir)] == ["delivered"])
    assert wait_for(lambda: not sender_running(data_dir))
    [post] = slack.posts
    assert post["text"].startswith(f"📊 Token budget daily report {DAY}\n\nTotal: 150 tokens")
    assert len(deliveries(data_dir)) == 1


# -- tokens alerts test CHANNEL --report --------------------------------------------------------------------------


def test_tokens_alerts_test_report_sends_todays_report_so_far_as_the_daily_report_is_sent(
    slack: SlackServer, other_slack: SlackServer, mail, config, data_dir: Path
) -> None:
    now = datetime.now(timezone.utc)
    today = now.date().isoformat()
    sonnet = UsageEvent(message_id="t1", timestamp=clock.timestamp(), model="claude-sonnet-4-5-20250929",
                        session_id="s1", input_tokens=100_000, output_tokens=10_000)  # 100000x3 + 10000x15 = $0.45
    with Ledger.open(data_dir) as ledger, ledger.transaction():
        ledger.record([sonnet], source="test", prices=config.price_table())

    def alerts_test(*args: str):
        return CliRunner().invoke(cli, ["alerts", "test", *args, "--report"], catch_exceptions=False)

    result = alerts_test("slack")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"OK: slack: posted to http://127.0.0.1:{slack.port}/[redacted].\n"
    [post] = slack.posts  # the daily report's Slack message, marked as a test
    assert post["text"].startswith(f"📊 Token budget daily report {today} (test)\n\n"
                                   "Total: 110,000 tokens, $0.45 (1 requests)\n")
    assert [b["type"] for b in post["blocks"]] == ["header", "section", "context"]

    assert alerts_test("email").exit_code == 0
    [received] = mail.messages
    msg = received["message"]
    assert msg["Subject"] == f"[test] [token-budget] Daily report {today}: 110,000 tokens, $0.45"
    assert msg["X-Token-Budget-Report"] == today
    report = CliRunner().invoke(cli, ["report"], catch_exceptions=False).stdout
    assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n") == report  # today's `tokens report`

    # A channel without `reports: true` can be tried too; it is told it gets no daily report.
    result = alerts_test("slack.2")
    assert result.exit_code == 0
    assert "Note: slack.2 has no `reports: true`, so it gets no daily report" in result.stderr
    assert other_slack.hits == 1

    # A test is no delivery: nothing waits in the outbox, and tomorrow the real report of today still goes out.
    assert deliveries(data_dir) == []
    with Ledger.open(data_dir) as ledger:
        assert write_daily_if_due(ledger, config, data_dir, now=now + timedelta(days=1)) is not None
    assert run_sender(data_dir) == 2
    assert slack.posts[-1]["text"].startswith(f"📊 Token budget daily report {today}\n\nTotal: 110,000 tokens")
    assert len(mail.messages) == 2


def test_tokens_alerts_test_report_fails_with_exit_2(slack: SlackServer, config) -> None:
    slack.mode = "500"
    result = CliRunner().invoke(cli, ["alerts", "test", "slack", "--report"])
    assert result.exit_code == 2
    assert f"Error: slack: HTTP 500 from http://127.0.0.1:{slack.port}/[redacted] (internal_error)" in result.output
