"""`tokens alerts`: alerts and daily reports with their delivery per channel; `tokens alerts test CHANNEL
[--report]`."""

from __future__ import annotations

import sys
from typing import Any

import click

from . import Env, UserError, json_option, pass_env, print_json


@click.group(invoke_without_command=True)
@json_option
@click.option(
    "--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Show this many alerts."
)
@click.option("--all", "show_all", is_flag=True,
              help="Also alerts of limits changed since they fired.")
@click.pass_context
def alerts(ctx: click.Context, as_json: bool, limit: int, show_all: bool) -> None:
    """List alerts, newest first, with their delivery state per channel; then the daily reports sent through
    channels with `reports: true`.

    \b
    Example:
        tokens alerts                 # what fired, and whether Slack and email got it
        tokens alerts test slack      # send a test alert through the slack channel now
        tokens alerts test email --report   # send today's daily report so far through email now
    """
    if ctx.invoked_subcommand is not None:
        return
    from ..delivery import sender_running
    from ..outbox import alerts_with_deliveries, reports_with_deliveries

    env: Env = ctx.find_object(Env)
    items = alerts_with_deliveries(env.ledger, limit=None if not show_all else limit)
    hidden = 0
    if not show_all:
        from ..budget_status import state_json
        from ..budgets import budget_states
        from ..dashboard import superseded

        budgets = [state_json(s) for s in budget_states(env.ledger, env.config)]
        current = [i for i in items if not superseded(i, budgets)]
        hidden, items = len(items) - len(current), current[:limit]
    reports = reports_with_deliveries(env.ledger, limit=limit)
    running = sender_running(env.data_dir)
    if as_json:
        print_json({"alerts": items, "reports": reports, "sender_running": running})
        return
    if not items:
        click.echo("No alerts of the current limits." if hidden else "No alerts yet.")
    for item in items:
        acked = f"  acknowledged {item['acked_at'][:19]}Z" if item["acked_at"] else ""
        click.echo(
            f"{item['created_at'][:19]}Z  {item['scope']} {item['threshold']}% ({item['level']})  "
            f"{item['used']:,} / {item['limit']:,} ({item['percent']:g}%)  period {item['period']}{acked}"
        )
        click.echo(f"  id: {item['id']}")
        for d in item["deliveries"]:
            click.echo(f"  {d['channel']:<9} {_state(d)}")
        if not item["deliveries"]:
            click.echo("  (no channel at this threshold)")
    if reports:
        click.echo("Daily reports:")
    for report in reports:
        click.echo(f"{report['date']}  report (reports/{report['date']}.yaml)")
        for d in report["deliveries"]:
            click.echo(f"  {d['channel']:<9} {_state(d)}")
    if hidden:
        click.echo(f"{hidden:,} older alert{'s' if hidden != 1 else ''} of limits changed since: tokens alerts --all")
    pending = sum(d["state"] == "pending" for i in items + reports for d in i["deliveries"])
    if pending:
        click.echo(
            f"{pending} pending; the sender is {'running' if running else 'not running (the next hook starts it)'}."
        )


def _state(delivery: dict) -> str:
    tries = f"{delivery['attempts']} attempt{'s' if delivery['attempts'] != 1 else ''}"
    if delivery["state"] == "delivered":
        when = f" {delivery['delivered_at'][:19]}Z" if delivery["delivered_at"] else ""
        return f"delivered{when}" + (f" ({tries})" if delivery["attempts"] else "")
    if delivery["state"] == "pending":
        text = f"pending ({tries}; next {delivery['next_attempt_at'][:19]}Z)"
    else:
        text = f"failed ({tries})"
    return text + (f": {delivery['last_error']}" if delivery["last_error"] else "")


@alerts.command(name="test")
@click.argument("channel")
@click.option("--report", "daily_report", is_flag=True,
              help="Send today's daily report so far, as the daily report is sent, instead of a test alert.")
@pass_env
def test_channel(env: Env, channel: str, daily_report: bool) -> None:
    """Send a test alert (or, with --report, today's daily report) through CHANNEL (console, slack, email, or
    slack.2 …) now; exit 2 if it fails."""
    from .. import clock
    from ..channels import channels, find_channel
    from ..config import load_cached
    from ..models import Alert

    # secrets=True: a literal webhook URL is not in the compiled cache, only in the config file itself.
    configured = channels(load_cached(env.data_dir, env.project_dir, env.config_option, secrets=True))
    chosen = find_channel(configured, channel)
    if chosen is None:
        names = ", ".join(c.name for c in configured) or "none"
        raise UserError(
            f"No alert channel named {channel!r} (configured: {names}).\n"
            "Add it under alerts.channels in token_budgets.yaml."
        )
    if daily_report:
        _test_report(env, chosen)
        return
    alert = Alert(
        scope="daily",
        level="alert",
        threshold=80,
        period="test",
        used=800_000,
        limit=1_000_000,
        created_at=clock.timestamp(),
    )
    if chosen.type == "console":
        from ..alert_render import alert_content
        from ..claude.commands import slash_prefix

        click.echo(alert_content(alert, test=True, prefix=slash_prefix())["text"])
        click.echo("console: OK (the hook shows alerts like this as a systemMessage).")
        return
    click.echo(f"Sending a test alert through {chosen.describe()} …", err=True)
    _send_test(chosen, alert)


def _test_report(env: Env, chosen: Any) -> None:
    """Today's report so far, built and sent as the hook and the sender send a day's report, marked as a test.

    It goes straight to the channel rather than through an outbox row: the row's key is the day's, so a test
    delivery would stand in for the real report of that day (one delivery per report and channel), and a
    failed test would keep being retried in the background."""
    from ..alert_render import report_summary
    from ..outbox import report_message
    from ..report_render import render_yaml
    from ..reports import build_report, resolve_period

    report = build_report(env.ledger, env.config, resolve_period(env.config))
    message = report_message(report, render_yaml(report))
    if chosen.type == "console":
        click.echo(report_summary(message, test=True)["text"])
        click.echo("console: OK (daily reports go to slack and email channels with `reports: true`, not the console).")
        return
    if not chosen.reports:
        click.echo(f"Note: {chosen.name} has no `reports: true`, so it gets no daily report; add it to the channel "
                   "in alerts.channels for one each day.", err=True)
    click.echo(f"Sending the daily report of {message.period} so far through {chosen.describe()} …", err=True)
    _send_test(chosen, message)


def _send_test(chosen: Any, item: Any) -> None:
    """Send an alert or a report message, marked as a test, through one channel; a failure exits 2."""
    from ..claude.commands import slash_prefix
    from ..delivery import DeliveryError, DeliverySettings, send

    try:
        result = send(chosen, item, DeliverySettings.from_env(), test=True, prefix=slash_prefix())
    except DeliveryError as exc:
        raise UserError(f"{exc}" + (f"\n{exc.hint}" if exc.hint else "")) from None
    click.echo(f"OK: {result}.")
    sys.stdout.flush()
