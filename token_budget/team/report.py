"""`tokens report --team`: the team's day or month by member, workflow and model, from the server's hourly rollup,
in every format `tokens report` has (YAML, JSON, CSV, ccusage JSON, HTML), through the same renderers.

Days and months are the team's (its time zone). The server keeps no cost status or savings baseline, so every
cost reads as priced and savings are not claimed."""

from __future__ import annotations

from ..config import Config
from ..reports import NO_WORKFLOW, Aggregate, Cell, Period, day_period, month_period, report_from

TYPE_CHECKING = False
if TYPE_CHECKING:
    from datetime import date
    from typing import Any

    from .server import TeamServer

CLASS_PICKS = {"input": 0, "output": 1, "cache_creation": 2, "cache_read": 3}


def team_period(timezone: str, *, day: date | None = None, month: tuple[int, int] | None = None,
                now: Any = None) -> Period:
    from ..periods import today, zone

    config = Config({"timezone": timezone})
    if month is not None:
        return month_period(month[0], month[1], config)
    return day_period(day or today(zone(timezone), now), config)


def team_aggregate(server: TeamServer, period: Period, classes: list[str]) -> tuple[Aggregate, dict[tuple, Cell]]:
    """The period summed per (day, workflow, model) as a reports.Aggregate, and per (day, member, workflow, model)."""
    from ..periods import day_bounds, zone

    tz = zone(period.timezone)
    agg = Aggregate(period, tuple(classes))
    members: dict[tuple[str, str, str, str], Cell] = {}
    for day in period.days:  # a day at a time: exact in any zone (the edges of a day come from the requests)
        start, end = day_bounds(day, tz)
        for member, model, workflow, requests, i, o, c5, c1, r, _total, cost in server.period_rows(start, end):
            counts = (int(i), int(o), int(c5) + int(c1), int(r))
            cell = Cell(requests=int(requests), input=counts[0], output=counts[1], cache_creation=counts[2],
                        cache_read=counts[3], counted=sum(counts[CLASS_PICKS[c]] for c in classes),
                        cost_micros=int(cost), uncached_micros=int(cost), baseline_micros=int(cost))
            label = day.isoformat()
            agg.cells.setdefault((label, workflow or NO_WORKFLOW, model, "priced"), Cell()).add(cell)
            members.setdefault((label, member, workflow or NO_WORKFLOW, model), Cell()).add(cell)
    return agg, members


def team_report(agg: Aggregate, members: dict[tuple, Cell], team: str) -> dict[str, Any]:
    """reports.report_from's mapping for the team, with `team`, `by_member` and `by_member_cost`."""
    from ..reports import usd

    report = report_from(agg)
    per_member: dict[str, Cell] = {}
    for (_day, member, _workflow, _model), cell in members.items():
        per_member.setdefault(member, Cell()).add(cell)
    ordered = sorted(per_member.items(), key=lambda item: (-item[1].counted, item[0]))
    report["team"] = team
    report["by_member"] = {member: cell.counted for member, cell in ordered}
    report["by_member_cost"] = {member: usd(cell.cost_micros) for member, cell in ordered}
    return report


def render_team_csv(members: dict[tuple, Cell]) -> str:
    """One row per (day, member, workflow, model), the columns of `tokens report --format csv` plus `member`."""
    import csv
    import io

    from ..report_render import CSV_COLUMNS
    from ..reports import usd
    from ..safetext import csv_cell

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("date", "member", *CSV_COLUMNS[1:]))
    for (day, member, workflow, model), cell in sorted(members.items()):
        writer.writerow((day, csv_cell(member), csv_cell(workflow), csv_cell(model), cell.requests, cell.input,
                         cell.output, cell.cache_creation, cell.cache_read, cell.counted,
                         f"{usd(cell.cost_micros):.6f}", "priced"))
    return buffer.getvalue()


def render_team_report(server: TeamServer, period: Period, fmt: str) -> str:
    import json

    from ..report_render import ccusage_daily, render_json, render_yaml

    info = server.team_info()
    agg, members = team_aggregate(server, period, info["classes"])
    if fmt == "csv":
        return render_team_csv(members)
    if fmt == "ccusage":
        return json.dumps(ccusage_daily(agg), indent=2, ensure_ascii=False) + "\n"
    report = team_report(agg, members, server.team)
    if fmt == "html":
        from ..report_html import render_html

        return render_html(html_data(agg, report, server))
    return render_yaml(report) if fmt == "yaml" else render_json(report)


def html_data(agg: Aggregate, report: dict[str, Any], server: TeamServer) -> dict[str, Any]:
    """What report_html.render_html draws, for the team: daily tokens per model, the team's budgets now."""
    from .. import clock
    from ..periods import iso
    from ..report_html import page_data

    budgets = [budget_row(b, agg, report) for b in server.budgets()
               if b["tokens"] and (b["scope"] != "team:daily" or agg.period.kind == "date")]
    return page_data(f"Team {server.team} report {agg.period.label}", report, agg, agg.total(), budgets,
                     iso(clock.now()))


def budget_row(budget: dict[str, Any], agg: Aggregate, report: dict[str, Any]) -> dict[str, Any]:
    """A team budget against the report's period: the member budget shows its largest member."""
    from ..families import model_matches

    scope = budget["scope"]
    label = scope[5:]
    if scope.startswith("team:model:"):
        used = sum(c.counted for m, c in agg.by(2).items() if model_matches(scope[11:], m))
    elif scope.startswith("team:workflow:"):
        used = agg.by(1).get(scope[14:], Cell()).counted
    elif scope == "team:member:monthly":
        used, label = max(report["by_member"].values(), default=0), "member:monthly (largest member)"
    else:
        used = agg.total().counted
    return {"scope": scope, "label": label, "used": used, "limit": budget["tokens"],
            "percent": round(100.0 * used / budget["tokens"], 1), "level": None}
