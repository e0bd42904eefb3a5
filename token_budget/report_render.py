"""Reports as text: the seed's YAML layout, JSON, CSV and ccusage's JSON (HTML: report_html). The mappings come
from reports (aggregation); nothing here reads the ledger but `render`, the CLI's one entry point."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from .config import Config
from .reports import Aggregate, Cell, Period, aggregate, by_day_model, cents, percent, report_from, usd

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .storage import Storage

FORMATS = ("yaml", "json", "csv", "html", "ccusage")


# -- text renderers ------------------------------------------------------------------------------------------


def yaml_layout(report: dict[str, Any]) -> dict[str, Any]:
    """The seed's `daily_report` mapping (`monthly_report` for a month): costs rounded to the cent, a model's
    tokens and cost in one line, the savings as a percentage. What `render_yaml` writes and YAML reads back."""
    kind = "date" if "date" in report else "month"
    label = report[kind]
    body: dict[str, Any] = {
        kind: date.fromisoformat(label) if kind == "date" and isinstance(label, str) else label,
        "timezone": report["timezone"],
        "total_tokens": report["total_tokens"],
        "total_cost": cents(report["total_cost"]),
        "tokens": dict(report["tokens"]),
        "by_workflow": dict(report["by_workflow"]),
        "by_model": {model: f"{entry['tokens']} ({_model_cost(entry)})" for model, entry in report["by_model"].items()},
        "efficiency_score": report["efficiency_score"],
        "optimization_savings": percent(report["optimization_savings"]),
        "unpriced_models": list(report["unpriced_models"]),
    }
    if "by_member" in report:  # `tokens report --team` (team/report.py)
        body["team"] = report["team"]
        body["by_member"] = dict(report["by_member"])
    reconciled = report.get("reconciled")
    if reconciled and (reconciled["rows"] or reconciled.get("sessions_checked")):
        body["reconciled"] = (
            f"{reconciled['tokens']} tokens ({cents(reconciled['cost'])}) in no transcript, from Claude Code's own "
            f"totals; {reconciled.get('sessions_checked', 0)} sessions checked, "
            f"{len(reconciled.get('drift') or [])} with a cost drift, "
            f"{len(reconciled.get('ledger_above_client') or [])} with the ledger above Claude Code")
    return {f"{'daily' if kind == 'date' else 'monthly'}_report": body}


def _model_cost(entry: dict[str, Any]) -> str:
    if entry["cost_status"] == "unpriced":
        return "unpriced"
    if entry["cost_status"] == "estimated":
        return f"{cents(entry['cost'])} estimated"
    return cents(entry["cost"])


# the seed's layout groups the report's keys with a blank line between groups
_YAML_GROUPS = (("team", "date", "month", "timezone", "total_tokens", "total_cost"), ("tokens",), ("by_member",),
                ("by_workflow",), ("by_model",),
                ("efficiency_score", "optimization_savings", "unpriced_models", "reconciled"))


def render_yaml(report: dict[str, Any]) -> str:
    """`yaml_layout` as YAML (safe_dump: any name YAML would misread, `yes`, `a: b`, `#x`, is quoted), in the
    seed's groups."""
    from . import site_packages

    site_packages.enable()  # the daily report is written by a hook, which runs with -S
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def one_line(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
        # PyYAML writes a line break inside a plain or single-quoted scalar as a real one, and with allow_unicode
        # reads NEL (U+0085) back as a space: names with any line break are double-quoted, so escaped.
        broken = any(ch in text for ch in "\r\n\x85\u2028\u2029")
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style='"' if broken else None)

    Dumper.add_representer(str, one_line)
    ((title, body),) = yaml_layout(report).items()
    chunks = []
    for group in _YAML_GROUPS:
        part = {key: body[key] for key in group if key in body}
        if not part:
            continue  # a group only some reports have (by_member: the team's)
        text = yaml.dump(part, Dumper=Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False,
                         width=1_000_000)
        # indenting every line keeps each value: YAML folds a quoted scalar's leading spaces on its next lines
        chunks.append("".join(f"  {line}" if line.strip() else line for line in text.splitlines(keepends=True)))
    return f"{title}:\n" + "\n".join(chunks)


def render_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


CSV_COLUMNS = ("date", "workflow", "model", "requests", "input_tokens", "output_tokens", "cache_creation_tokens",
               "cache_read_tokens", "counted_tokens", "cost_usd", "cost_status")


def render_csv(agg: Aggregate) -> str:
    """One row per (day, workflow, model): every token class, counted tokens and the exact cost."""
    import csv
    import io

    from .safetext import csv_cell

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for (day, workflow, model, status), cell in sorted(agg.cells.items()):
        # Names from transcripts and prompts: `=HYPERLINK(…)` as a model name must stay text in a spreadsheet.
        writer.writerow((day, csv_cell(workflow), csv_cell(model), cell.requests, cell.input, cell.output,
                         cell.cache_creation, cell.cache_read, cell.counted, f"{usd(cell.cost_micros):.6f}", status))
    return buffer.getvalue()


def ccusage_daily(agg: Aggregate) -> dict[str, Any]:
    """`ccusage daily --json`: one entry per day with usage (ccusage 20 names the day `period`; older, `date`)."""
    daily = []
    totals = Cell()
    for day, cells in sorted(by_day_model(agg).items()):
        breakdowns = sorted(cells.items(), key=lambda item: (-item[1].cost_micros, item[0]))
        day_total = Cell()
        for _model, cell in breakdowns:
            day_total.add(cell)
        totals.add(day_total)
        daily.append({
            "date": day, "period": day, **_ccusage_counts(day_total), "modelsUsed": sorted(cells),
            "modelBreakdowns": [
                {"modelName": model, **_ccusage_counts(cell, total_key=None, cost_key="cost")}
                for model, cell in breakdowns
            ],
        })
    return {"daily": daily, "totals": _ccusage_counts(totals)}


def _ccusage_counts(cell: Cell, *, total_key: str | None = "totalTokens",
                    cost_key: str = "totalCost") -> dict[str, Any]:
    out: dict[str, Any] = {"inputTokens": cell.input, "outputTokens": cell.output,
                           "cacheCreationTokens": cell.cache_creation, "cacheReadTokens": cell.cache_read}
    if total_key:
        out[total_key] = cell.all_tokens
    out[cost_key] = usd(cell.cost_micros)
    return out


# -- one entry point for the CLI -----------------------------------------------------------------------------


def render_report(ledger: Storage, config: Config, period: Period, fmt: str, *, now: datetime | None = None) -> str:
    """The report for `period` in one of FORMATS, as text."""
    if fmt == "html":
        from .report_html import html_data, render_html

        return render_html(html_data(ledger, config, period, now=now))
    agg = aggregate(ledger, config, period)
    if fmt == "csv":
        return render_csv(agg)
    if fmt == "ccusage":
        return json.dumps(ccusage_daily(agg), indent=2, ensure_ascii=False) + "\n"
    report = report_from(agg)
    return render_yaml(report) if fmt == "yaml" else render_json(report)
