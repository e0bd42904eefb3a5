"""Commands that steer enforcement: budget, mode, workflow start|phase|end, ack, events."""

from __future__ import annotations

import os
from typing import Any

import click

from .. import clock
from ..errors import TokenBudgetError
from ..hints import Hints
from . import Env, json_option, pass_env, print_json


@click.command()
@click.argument("scope", required=False)
@click.argument("amount", required=False)
@click.option("--session", help="The session whose session and workflow budgets to show.")
@json_option
@pass_env
def budget(env: Env, scope: str | None, amount: str | None, session: str | None, as_json: bool) -> None:
    """Show every budget, or set one: SCOPE is daily, monthly, session, a workflow or a model key.
    `tokens budget suggest` proposes budgets from your own history.

    \b
    Examples:
        tokens budget                    # every budget, used / limit, level, reset time
        tokens budget suggest            # budgets from the last 30 days (90th percentile of a day)
        tokens budget sprint 300000      # the sprint workflow's budget, per run
        tokens budget claude-opus 150k   # Opus requests per day
        tokens budget daily '$25'        # a USD limit beside the token limit
    """
    from ..budget_status import budget_status

    if scope is None:
        status = budget_status(env.ledger, env.config, session_id=session or os.environ.get("CLAUDE_CODE_SESSION_ID"))
        if as_json:
            print_json(status)
            return
        for line in render_status(status):
            click.echo(line)
        return
    if scope == "suggest" and amount is None:
        show_suggestions(env, as_json)
        return
    if amount is None:
        hints = Hints.current()
        raise TokenBudgetError(f"No amount for {scope}.", f"Run `{hints.budget(scope, 500000)}` (or `$20`), or "
                               f"`{hints.budget()}` to see every budget.")
    from ..limits import set_budget

    change = set_budget(env.ledger, env.config, env.data_dir, scope, amount)
    if as_json:
        print_json(change.as_dict())
        return
    if change.kind == "window":
        shown = "off" if change.value is False else f"{change.value} of the window"
    else:
        shown = f"${change.amount:,.2f}" if change.unit == "usd" else f"{change.amount:,} tokens"
    click.echo(f"{scope} budget set to {shown} ({'.'.join(change.keys)} in {change.file}); it applies from the next "
               "hook.")


def show_suggestions(env: Env, as_json: bool = False) -> None:
    """`tokens budget suggest`: budgets from the user's own history, next to what is enforced now."""
    from ..budget_suggest import suggest

    result = suggest(env.ledger, env.config)
    if as_json:
        print_json(result)
        return
    for line in suggestion_lines(result):
        click.echo(line)


def suggestion_lines(result: dict[str, Any]) -> list[str]:
    hints = Hints.current()
    if not result["budgets"]:
        return [f"No usage in the last {result['days']} days to suggest budgets from. Run `tokens import` to "
                "read Claude Code's transcripts, then `tokens budget suggest`."]
    lines = [f"From your last {result['days']} days ({result['active_days']} with usage; the "
             f"{result['percentile']}th percentile of a day's counted tokens):",
             f"  {'budget':<24} {'enforced now':>14} {'suggested':>14}"]
    for b in result["budgets"]:
        now = f"{b['current']:,}" if b["current"] else "none"
        lines.append(f"  {b['scope']:<24} {now:>14} {b['suggested']:>14,}")
    changes = [hints.budget(b["scope"], b["suggested"]) for b in result["budgets"] if b["suggested"] != b["current"]]
    if changes:
        lines.append("To use one, run: " + " · ".join(changes))
    return lines


def render_status(status: dict[str, Any]) -> list[str]:
    lines = []
    for b in status["budgets"]:
        usd = f"  ${b['used_usd']:,.2f} / ${b['limit_usd']:,.2f}" if b["limit_usd"] is not None else ""
        limit = f"{b['used']:>12,} / {b['limit']:<12,}" if b["limit"] else f"{'':>12}   {'':<12}"
        if "used_percentage" in b:  # a subscription window: points of the window, not tokens
            limit = f"{b['used_percentage']:>11.1f}% / {str(b['limit_percentage']) + '% win':<12}"
            limit = limit.replace(".0% win", "% win")
        resets = f"  resets {b['resets_at']}" if b["resets_at"] else ""
        lines.append(f"{b['scope']:<24} {limit} {b['percent']:>6.1f}%  {b['level']:<7}{usd}{resets}")
    if not status["budgets"]:
        lines.append("No budgets configured.")
    run = status["workflow"]
    if run:
        lines.append(f"workflow: {run['name']} (phase {run['phase'] or '-'}, priority {run['priority']}, "
                     f"{run['used']:,} tokens)")
    lines.append(f"mode: {status['mode']}" + (" (economy active)" if status["economy"] and status["mode"] != "economy"
                                                else ""))
    if status["deferred_workflows"]:
        lines.append("deferred today: " + ", ".join(status["deferred_workflows"]))
    return lines


@click.command()
@click.argument("mode", required=False, type=click.Choice(["economy", "normal", "auto"]))
@json_option
@pass_env
def mode(env: Env, mode: str | None, as_json: bool) -> None:
    """Show the mode, or set it: economy (save tokens now), normal, or auto (economy past the downgrade trigger)."""
    from ..budget_status import budget_status

    if mode is not None:
        from ..limits import set_mode

        set_mode(env.ledger, env.config, env.data_dir, mode)
        env._config = None
    status = budget_status(env.ledger, env.config)
    result = {"mode": status["mode"], "economy": status["economy"]}
    if as_json:
        print_json(result)
        return
    state = "economy measures are on" if result["economy"] else "economy measures are off"
    click.echo(f"mode: {result['mode']} ({state})" + ("; it applies from the next hook." if mode else ""))


@click.group()
def workflow() -> None:
    """Workflow runs: every request in a run counts toward its workflow budget."""


def resolve_session(env: Env, session: str | None) -> tuple[str, str]:
    """--session > $CLAUDE_CODE_SESSION_ID (set inside Claude Code) > the session of the latest recorded request."""
    from ..sessions import resolve_session as resolve

    found = resolve(env.ledger, (session, "--session"),
                    (os.environ.get("CLAUDE_CODE_SESSION_ID"), "$CLAUDE_CODE_SESSION_ID"))
    if found is None:
        raise TokenBudgetError("No session to attach the workflow to.",
                               "Run it from inside Claude Code, or pass --session ID.")
    return found


def session_option(fn: Any) -> Any:
    return click.option("--session", help="Session id (default: the current Claude Code session, else the latest).")(fn)


@workflow.command(name="start")
@click.argument("name")
@click.option("--phase", help="The first phase, e.g. PLAN or BUILD.")
@session_option
@json_option
@pass_env
def workflow_start(env: Env, name: str, phase: str | None, session: str | None, as_json: bool) -> None:
    """Start a workflow run (ending the session's current one)."""
    sid, source = resolve_session(env, session)
    with env.ledger.transaction():
        run_id = env.ledger.start_run(sid, name, clock.timestamp(), phase=phase, source="cli")
    result = {"run_id": run_id, "name": name, "phase": phase, "session_id": sid, "session_from": source}
    if as_json:
        print_json(result)
        return
    click.echo(f"Started workflow {name}" + (f" (phase {phase})" if phase else "") + f" in session {sid} "
               f"(from {source}).")


@workflow.command(name="phase")
@click.argument("phase")
@session_option
@json_option
@pass_env
def workflow_phase(env: Env, phase: str, session: str | None, as_json: bool) -> None:
    """Set the phase of the session's workflow run."""
    from ..workflows import set_phase

    sid, _ = resolve_session(env, session)
    with env.ledger.transaction():
        run = set_phase(env.ledger, sid, phase)
    if run is None:
        raise TokenBudgetError(f"Session {sid} has no workflow run.",
                               f"Start one with `{Hints.current().prefix} workflow start NAME`.")
    if as_json:
        print_json({"run_id": run["id"], "name": run["name"], "phase": phase, "session_id": sid})
        return
    click.echo(f"Workflow {run['name']} is now in phase {phase}.")


@workflow.command(name="end")
@session_option
@json_option
@pass_env
def workflow_end(env: Env, session: str | None, as_json: bool) -> None:
    """End the session's workflow run."""
    sid, _ = resolve_session(env, session)
    with env.ledger.transaction():
        ended = env.ledger.end_runs(sid, clock.timestamp())
    if as_json:
        print_json({"ended": ended, "session_id": sid})
        return
    click.echo(f"Ended the workflow run of session {sid}." if ended else f"Session {sid} had no workflow run.")


@click.command()
@click.argument("alert_id", required=False)
@json_option
@pass_env
def ack(env: Env, alert_id: str | None, as_json: bool) -> None:
    """Acknowledge an alert (or all): silences it for its period; acking a 100% block lets work go on to 110%."""
    from ..alerts import acknowledge_alerts

    with env.ledger.transaction():
        count = acknowledge_alerts(env.ledger, alert_id, clock.timestamp())
    if as_json:
        print_json({"acknowledged": count, "alert_id": alert_id})
        return
    click.echo(f"Acknowledged {count} alert{'s' if count != 1 else ''}." if count else "Nothing to acknowledge.")


@click.command()
@json_option
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True, help="How many (0 for all).")
@pass_env
def events(env: Env, as_json: bool, limit: int) -> None:
    """The events log, oldest first: thresholds crossed (70% warnings included), blocks, and every change of a
    limit, the mode or an acknowledgement, with who made it (slash command, terminal, config file) and the old and
    new value."""
    rows = env.ledger.list_events(limit=limit or None)
    if as_json:
        print_json(rows, lines=True)
        return
    if not rows:
        click.echo("No budget events yet.")
    for row in rows:
        click.echo(f"{row['created_at']}  {row['level']:<7} {row['scope'] or '-':<22} {row['message']}")
