"""`tokens report`: a day's or a month's summary as YAML, JSON, CSV, ccusage JSON or an HTML page."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from . import Env, UserError, pass_env


@click.command()
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), help="The day, YYYY-MM-DD (default: today).")
@click.option("--month", type=click.DateTime(["%Y-%m"]), help="A whole month, YYYY-MM, instead of a day.")
@click.option("--format", "fmt", type=click.Choice(["yaml", "json", "csv", "html", "ccusage"]), default=None,
              help="yaml (default), json, csv (a row per day, workflow and model), html (a page with charts), "
                   "or ccusage (the JSON of `ccusage daily --json`).")
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to this file instead of stdout.")
@click.option("--team", "team", is_flag=True,
              help="The whole team's, from the team server: by member, workflow and model (team mode).")
@pass_env
def report(env: Env, day: datetime | None, month: datetime | None, fmt: str | None, as_json: bool,
           output: str | None, team: bool) -> None:
    """A day's or month's tokens, cost, efficiency and savings, in the configured time zone.

    \b
    Examples:
        tokens report                          # today, as YAML
        tokens report --month 2026-11 --format csv -o november.csv
        tokens report --format html            # writes reports/<day>.html in the data dir
    """
    from ..paths import write_atomically
    from ..report_render import render_report
    from ..reports import resolve_period

    if day is not None and month is not None:
        raise UserError("--date and --month cannot be used together.\nGive one day or one month.")
    if as_json and fmt not in (None, "json"):
        raise UserError(f"--json and --format {fmt} disagree.\nUse one of them.")
    fmt = "json" if as_json else fmt or "yaml"
    if team:
        period, text = _team_report(env, day, month, fmt)
    else:
        period = resolve_period(env.config, day=day.date() if day else None,
                                month=(month.year, month.month) if month else None)
        text = render_report(env.ledger, env.config, period, fmt)
    if output is None and fmt == "html":
        # a terminal full of minified JavaScript helps nobody: the page goes next to the daily reports
        output = str(env.data_dir / "reports" / f"{'team-' if team else ''}{period.label}.html")
        Path(output).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if output is None:
        sys.stdout.write(text)
        return
    target = Path(output).expanduser()
    try:
        write_atomically(target, text)
    except OSError as exc:
        raise UserError(f"Cannot write {target}: {exc.strerror}.\nChoose another --output path.") from exc
    click.echo(f"Wrote {target}", err=True)


def _team_report(env: Env, day: datetime | None, month: datetime | None, fmt: str) -> tuple[Any, str]:
    from ..team import TeamSettings
    from ..team.report import render_team_report, team_period
    from ..team.server import TeamServer

    settings = TeamSettings.from_config(env.config)
    if settings is None:
        raise UserError("--team needs a team: block in your own token_budgets.yaml (see `tokens team --help`).")
    with TeamServer.connect(settings) as server:
        period = team_period(server.team_info()["timezone"], day=day.date() if day else None,
                             month=(month.year, month.month) if month else None)
        return period, render_team_report(server, period, fmt)
