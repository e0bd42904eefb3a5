"""Commands that steer enforcement: budget, mode, workflow start|phase|end, ack, events."""

from __future__ import annotations

import os
from typing import Any

import click

from .. import clock
from ..errors import TokenBudgetError
from . import Env, json_option, pass_env, print_json

GLOBAL_SCOPES = {"daily": "daily_limit", "monthly": "monthly_limit"}


def parse_amount(text: str) -> tuple[str, float | int]:
    """`300000`, `300k`, `1.5M`, `1,000,000` → ("tokens", n); `$20` or `20usd` → ("usd", 20.0)."""
    raw = text.strip().lower().replace(",", "").replace("_", "")
    try:
        if raw.startswith("$") or raw.endswith("usd"):
            value = float(raw.lstrip("$").removesuffix("usd"))
            if value < 0:
                raise ValueError
            return "usd", value
        scale = {"k": 1_000, "m": 1_000_000}.get(raw[-1:], 1)
        number = float(raw[:-1] if scale > 1 else raw)
        if number < 0 or number != number:
            raise ValueError
        return "tokens", int(round(number * scale))
    except ValueError:
        raise TokenBudgetError(f"{text!r} is not an amount.",
                               "Give tokens (500000, 500k, 1.5M) or dollars ($20); 0 turns the budget off.") from None


def override_keys(env: Env, scope: str) -> tuple[list[str], str]:
    """Where `tokens budget SCOPE …` is kept, and what kind of budget it is."""
    budgets = env.config.get("budgets", default={}) or {}
    if scope in GLOBAL_SCOPES:
        return ["budgets", "global", GLOBAL_SCOPES[scope]], "global"
    if scope == "session":
        return ["budgets", "per_session"], "session"
    if scope.startswith("workflow:") or scope in (budgets.get("per_workflow") or {}) or \
            scope in (env.config.get("workflows", default={}) or {}):
        name = scope.removeprefix("workflow:")
        return ["budgets", "per_workflow", name], "workflow"
    if scope.startswith("model:") or scope in (budgets.get("per_model") or {}) or scope.startswith("claude") or \
            any(c in scope for c in "*?["):
        return ["budgets", "per_model", scope.removeprefix("model:")], "model"
    known = set(budgets.get("per_workflow") or {}) | set(env.config.get("workflows", default={}) or {})
    workflows = ", ".join(sorted(known))
    raise TokenBudgetError(
        f"{scope!r} is not a budget scope.",
        f"Use daily, monthly, session, a workflow ({workflows or 'none configured'}) or a model key such as "
        "claude-opus (or model:<key>, workflow:<name> for a new one).",
    )


@click.command()
@click.argument("scope", required=False)
@click.argument("amount", required=False)
@click.option("--session", help="The session whose session and workflow budgets to show.")
@json_option
@pass_env
def budget(env: Env, scope: str | None, amount: str | None, session: str | None, as_json: bool) -> None:
    """Show every budget, or set one: SCOPE is daily, monthly, session, a workflow or a model key.

    \b
    Examples:
        tokens budget                    # every budget, used / limit, level, reset time
        tokens budget sprint 300000      # the sprint workflow's budget, per run
        tokens budget claude-opus 150k   # Opus requests per day
        tokens budget daily '$25'        # a USD limit beside the token limit
    """
    from ..budgets import budget_status
    from ..config import save_override

    if scope is None:
        status = budget_status(env.ledger, env.config, session_id=session or os.environ.get("CLAUDE_CODE_SESSION_ID"))
        if as_json:
            print_json(status)
            return
        for line in render_status(status):
            click.echo(line)
        return
    if amount is None:
        raise TokenBudgetError(f"No amount for {scope}.", f"Run `tokens budget {scope} 500000` (or `$20`), or "
                               "`tokens budget` to see every budget.")
    keys, kind = override_keys(env, scope)
    unit, value = parse_amount(amount)
    if kind == "global":
        if unit == "usd":
            keys[-1] += "_usd"
        stored: Any = value
    elif kind == "session":
        if unit == "usd":
            raise TokenBudgetError("The session budget is in tokens only.", "Run `tokens budget session 200000`.")
        stored = value
    else:
        current = env.config.get(*keys)
        tokens = current.get("tokens") if isinstance(current, dict) else current
        usd = current.get("usd") if isinstance(current, dict) else None
        if unit == "usd":
            usd = value
        else:
            tokens = value
        stored = {k: v for k, v in (("tokens", tokens), ("usd", usd)) if v is not None}
        if list(stored) == ["tokens"]:
            stored = stored["tokens"]
    path = save_override(env.data_dir, keys, stored)
    result = {"scope": scope, "set": ".".join(keys), "value": stored, "file": str(path)}
    if as_json:
        print_json(result)
        return
    shown = f"${value:,.2f}" if unit == "usd" else f"{value:,} tokens"
    click.echo(f"{scope} budget set to {shown} ({result['set']} in {path}); it applies from the next hook.")


def render_status(status: dict[str, Any]) -> list[str]:
    lines = []
    for b in status["budgets"]:
        usd = f"  ${b['used_usd']:,.2f} / ${b['limit_usd']:,.2f}" if b["limit_usd"] is not None else ""
        limit = f"{b['used']:>12,} / {b['limit']:<12,}" if b["limit"] else f"{'':>12}   {'':<12}"
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
    from ..budgets import budget_status
    from ..config import save_override

    if mode is not None:
        save_override(env.data_dir, ["mode"], mode)
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
    if session:
        return session, "--session"
    if os.environ.get("CLAUDE_CODE_SESSION_ID"):
        return os.environ["CLAUDE_CODE_SESSION_ID"], "$CLAUDE_CODE_SESSION_ID"
    row = env.ledger.db.execute("SELECT session_id FROM requests WHERE session_id IS NOT NULL "
                                "ORDER BY timestamp DESC LIMIT 1").fetchone()
    if row:
        return row[0], "the latest recorded request"
    raise TokenBudgetError("No session to attach the workflow to.",
                           "Run it from inside Claude Code (/tokens workflow …), or pass --session ID.")


def session_option(fn: Any) -> Any:
    return click.option("--session", help="Session id (default: the current Claude Code session, else the latest).")(fn)


def _stamp() -> str:
    from ..periods import iso

    return iso(clock.now())


@workflow.command(name="start")
@click.argument("name")
@click.option("--phase", help="The first phase, e.g. PLAN or BUILD.")
@session_option
@json_option
@pass_env
def workflow_start(env: Env, name: str, phase: str | None, session: str | None, as_json: bool) -> None:
    """Start a workflow run (ending the session's current one)."""
    from ..workflows import start_run

    sid, source = resolve_session(env, session)
    with env.ledger.transaction() as db:
        run_id = start_run(db, sid, name, _stamp(), phase=phase, source="cli")
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
    with env.ledger.transaction() as db:
        run = set_phase(db, sid, phase)
    if run is None:
        raise TokenBudgetError(f"Session {sid} has no workflow run.", "Start one with `tokens workflow start NAME`.")
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
    from ..workflows import end_runs

    sid, _ = resolve_session(env, session)
    with env.ledger.transaction() as db:
        ended = end_runs(db, sid, _stamp())
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
    from ..alerts import acknowledge

    db = env.ledger.db
    if alert_id and not db.execute("SELECT 1 FROM alerts WHERE key = ?", (alert_id,)).fetchone():
        recent = [r[0] for r in db.execute("SELECT key FROM alerts WHERE acked_at IS NULL ORDER BY created_at DESC "
                                           "LIMIT 5")]
        raise TokenBudgetError(f"No alert {alert_id!r}.",
                               "Alert ids look like daily|100|2026-11-28; open ones: " + (", ".join(recent) or "none")
                               + ". Run `tokens ack` to acknowledge every open alert.")
    with env.ledger.transaction() as tx:
        count = acknowledge(tx, alert_id, _stamp())
    if as_json:
        print_json({"acknowledged": count, "alert_id": alert_id})
        return
    click.echo(f"Acknowledged {count} alert{'s' if count != 1 else ''}." if count else "Nothing to acknowledge.")


@click.command()
@json_option
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True, help="How many (0 for all).")
@pass_env
def events(env: Env, as_json: bool, limit: int) -> None:
    """The events log: budget thresholds crossed (70% warnings included) and blocks, oldest first."""
    from ..events import list_events

    rows = list_events(env.ledger.db, limit=limit or None)
    if as_json:
        print_json(rows, lines=True)
        return
    if not rows:
        click.echo("No budget events yet.")
    for row in rows:
        click.echo(f"{row['created_at']}  {row['level']:<7} {row['scope'] or '-':<22} {row['message']}")
