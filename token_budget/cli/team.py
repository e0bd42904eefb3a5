"""`tokens team`: set up a team on a PostgreSQL server, set its budgets (lead), see its totals, sync, diagnose."""

from __future__ import annotations

from typing import Any

import click

from . import Env, UserError, json_option, pass_env, print_json


def _settings(env: Env) -> Any:
    from ..team import TeamSettings

    settings = TeamSettings.from_config(env.config)
    if settings is None:
        raise UserError("No team is configured.\nAdd to your own token_budgets.yaml:\n  team:\n    name: my-team\n"
                        "    dsn: $TOKEN_BUDGET_TEAM_DSN\n"
                        "and export TOKEN_BUDGET_TEAM_DSN (tokens team doctor checks it).")
    return settings


def team_scope(text: str) -> str:
    """`daily`, `monthly`, `member`, `model:claude-opus`, `workflow:review` or the full `team:…` name."""
    scope = text.strip()
    scope = {"member": "team:member:monthly", "member:monthly": "team:member:monthly"}.get(scope, scope)
    if not scope.startswith("team:"):
        scope = f"team:{scope}"
    kind = scope[5:]
    if kind in ("daily", "monthly", "member:monthly") or (
            kind.partition(":")[0] in ("model", "workflow") and kind.partition(":")[2]):
        return scope
    raise UserError(f"{text!r} is not a team budget.\nTeam budgets: team:daily, team:monthly, team:member:monthly "
                    "(each member's month), team:model:KEY, team:workflow:NAME (the team's month on one).")


@click.group()
def team() -> None:
    """Team budgets on a PostgreSQL server, shared by every member's machines.

    \b
    Example:
        tokens team init                         # lead: create the schema and the team
        tokens team budget team:monthly 50M      # lead: the whole team's month
        tokens team members add bob@x --db-role bob
        tokens team status                       # team bars, your share, top members
    """


@team.command()
@click.option("--timezone", default="UTC", show_default=True, help="The team's day and month boundaries.")
@click.option("--member", help="Your member name (default: team.member, git's user.email, else user@host).")
@json_option
@pass_env
def init(env: Env, timezone: str, member: str | None, as_json: bool) -> None:
    """Lead: create (or upgrade) the server schema and the team, and become its lead. Safe to run again."""
    from ..periods import zone
    from ..team import default_member
    from ..team.schema import init_team
    from ..team.server import TeamServer

    settings = _settings(env)
    zone(timezone)  # an unknown zone fails here, before the server
    with TeamServer.connect(settings, member=member) as server:
        result = server.run(init_team, server.conn, settings.name, lead_member=member or settings.member
                            or default_member(), timezone=timezone, counted_classes=env.config.counted_classes)
    if as_json:
        print_json(result)
        return
    click.echo(f"Team {result['team']} {'created' if result['created'] else 'already existed'}; "
               f"schema migrations applied: {', '.join(result['migrations']) or 'none (up to date)'}.")
    click.echo(f"{result['lead']} (database role {result['lead_role']}) is its lead.")
    click.echo("Next: tokens team budget team:monthly 50M, and tokens team members add EMAIL --db-role ROLE "
               "for each member.")


@team.command()
@click.argument("scope", required=False)
@click.argument("amount", required=False)
@json_option
@pass_env
def budget(env: Env, scope: str | None, amount: str | None, as_json: bool) -> None:
    """Show the team's budgets, or (lead only) set one: SCOPE AMOUNT (tokens like 50M, or dollars like $2000;
    0 removes it). Members cannot: the server refuses anyone without the lead role."""
    from ..limits import parse_amount
    from ..team.server import TeamServer

    settings = _settings(env)
    with TeamServer.connect(settings) as server:
        if scope is None:
            rows = server.budgets()
            if as_json:
                print_json(rows)
                return
            for row in rows:
                usd = f" and ${row['usd']:,.2f}" if row["usd"] is not None else ""
                click.echo(f"{row['scope']:<24} {row['tokens']:,} tokens{usd}")
            if not rows:
                click.echo("No team budgets yet (a lead sets them: tokens team budget team:monthly 50M).")
            return
        if amount is None:
            raise UserError("Give the amount too: tokens team budget SCOPE AMOUNT (0 removes it).")
        name = team_scope(scope)
        kind, value = parse_amount(amount)
        current = next((b for b in server.budgets() if b["scope"] == name), None)
        tokens = int(value) if kind == "tokens" else (current or {}).get("tokens", 0)
        usd = float(value) if kind == "usd" else (current or {}).get("usd")
        if kind == "tokens" and not value:
            usd = None if not usd else usd
        result = server.set_budget(name, tokens, usd)
    if as_json:
        print_json(result)
        return
    click.echo(f"{name} set to {result['tokens']:,} tokens" + (f" and ${usd:,.2f}" if usd is not None else "")
               + " for the whole team (every member's next sync picks it up)."
               if result["tokens"] or usd is not None else f"{name} removed.")


@team.group(invoke_without_command=True)
@json_option
@click.pass_context
def members(ctx: click.Context, as_json: bool) -> None:
    """The team's members and their month so far; `add` (lead) maps a member to a database role."""
    if ctx.invoked_subcommand is not None:
        return
    env = ctx.find_object(Env)
    from ..team.server import TeamServer
    from ..team.sync import pull

    settings = _settings(env)
    with TeamServer.connect(settings) as server:
        rows = server.members()
        from .. import clock

        cache = pull(server, server.team_info(), clock.now().timestamp())
    used = {m["member"]: m for m in cache["members"]}
    data = [{"member": m, "db_role": role, "tokens": (used.get(m) or {}).get("tokens", 0)} for m, role in rows]
    if as_json:
        print_json(data)
        return
    for row in sorted(data, key=lambda r: (-r["tokens"], r["member"])):
        click.echo(f"{row['member']:<32} {row['tokens']:>14,} tokens this month  (role {row['db_role']})")


@members.command("add")
@click.argument("member")
@click.option("--db-role", required=True, help="The PostgreSQL login role this member connects as.")
@pass_env
def members_add(env: Env, member: str, db_role: str) -> None:
    """Lead: let MEMBER push usage as the database role DB_ROLE (create the role first: CREATE ROLE … LOGIN)."""
    from ..team.server import TeamServer

    settings = _settings(env)
    with TeamServer.connect(settings) as server:
        server.add_member(member, db_role)
    click.echo(f"{member} is a member of {settings.name} (database role {db_role}).")


@team.command()
@click.option("--cached", is_flag=True, help="From the last sync only (no network).")
@json_option
@pass_env
def status(env: Env, cached: bool, as_json: bool) -> None:
    """The team's budgets, your share and the top members, fresh from the server (or --cached)."""
    from .. import clock
    from ..team.status import summary

    settings = _settings(env)
    now = clock.now()
    cache = None
    if not cached:  # fresh totals (read only: nothing is pushed): through the running sync, else directly
        from ..team.ask import ask

        question = ask(env.data_dir, settings, now.timestamp())
        if question is not None:
            env.ledger  # noqa: B018  (opened while the sync queries the server)
            cache = question.answer()
    if not cached and cache is None:
        from ..team.server import TeamServer
        from ..team.sync import pull

        with TeamServer.connect(settings) as server:
            cache = pull(server, server.team_info(), now.timestamp(), moment=now.timestamp())
    data = summary(env.ledger, env.config, now, cache=cache)
    if as_json:
        print_json(data)
        return
    click.echo("\n".join(render_team(data)))


def render_team(data: dict[str, Any]) -> list[str]:
    from ..dashboard import bar, human

    lines = [f"Team {data['team']} · you are {data.get('member') or '?'}"]
    for b in data["budgets"]:
        lines.append(f"  {b['scope']:<22} {bar(b['percent'], 20)} {b['percent']:>5.1f}%  "
                     f"{human(b['used'])} / {human(b['limit'])}  {b['level'] if b['level'] != 'ok' else ''}".rstrip())
    if not data["budgets"]:
        lines.append("  no team budgets" + ("" if data.get("synced") else " known yet (not synced)"))
    if data.get("month"):
        lines.append(f"  this month: {human(data['month']['tokens'])} tokens, {data['month']['requests']:,} requests, "
                     f"${data['month']['cost_usd']:,.2f}; your share {data['share']:.1f}%")
        for m in data.get("top_members", [])[:5]:
            lines.append(f"    {m['member']:<30} {human(m['tokens']):>8}")
        if data.get("member_count", 0) > 5:
            lines.append(f"    … {data['member_count'] - 5} more members")
    if data.get("stale"):
        why = data.get("error") or "no error"
        lines.append(f"  STALE: synced {data['age_seconds'] / 60:.0f} min ago ({why}); on_stale={data['on_stale']}")
    if data.get("unpushed"):
        lines.append(f"  {data['unpushed']:,} requests on this machine not yet pushed")
    return lines


@team.command()
@json_option
@pass_env
def sync(env: Env, as_json: bool) -> None:
    """Push this machine's unsynced requests and pull the team's totals now (waits for a running sync)."""
    import time

    from ..detached import hold
    from ..team import LOCK_NAME
    from ..team.sync import Sync

    _settings(env)
    while (fd := hold(env.data_dir, LOCK_NAME)) is None:
        time.sleep(0.1)
    import os

    try:
        result = Sync(env.data_dir, env.config).run_once()
    finally:
        os.close(fd)
    if as_json:
        print_json(result)
    elif result["ok"]:
        click.echo(f"Pushed {result['pushed']:,} requests; {result['budgets']} team budgets pulled"
                   + (f"; {result['claimed']} team alerts claimed" if result["claimed"] else "") + ".")
    if not result["ok"]:
        raise UserError(f"The sync failed: {result['error']}\nThis machine's usage stays queued and is pushed by "
                        "the next sync; tokens team doctor says more.")


@team.command()
@json_option
@pass_env
def doctor(env: Env, as_json: bool) -> None:
    """Check the team set-up step by step: config, credentials, TLS, server, membership, sync state."""
    from ..team.doctor import checks

    results = checks(env.data_dir, env.config)
    if as_json:
        print_json(results)
    else:
        for check in results:
            click.echo(f"{'ok  ' if check['ok'] else 'FAIL'} {check['name']}: {check['detail']}")
    if not all(c["ok"] for c in results):
        raise SystemExit(1)
