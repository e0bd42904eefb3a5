"""The HTML report: one self-contained page (the vendored Chart.js and the data inlined, no network). The chart
library (token_budget/assets) is read only here."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from . import clock
from .config import Config
from .paths import PACKAGE_DIR
from .periods import iso, today, zone
from .reports import Cell, Period, aggregate, by_day_model, cents, days_period, percent, report_from

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .storage import Storage

ASSETS_DIR = Path(PACKAGE_DIR, "assets")
HISTORY_DAYS = 30  # the HTML page's daily chart


def budget_rows(ledger: Storage, config: Config, period: Period, now: datetime | None = None) -> list[dict[str, Any]]:
    """Each configured budget's use against its limit at the end of the period (or now, if that is earlier), as
    `tokens status` computes it; a workflow's budget shows its largest run in the period (runs end, they don't reset).
    """
    from .budgets import budget_states
    from .periods import parse

    at = min(now or clock.now(), parse(period.end) - timedelta(milliseconds=1))
    rows: list[dict[str, Any]] = []
    for state in budget_states(ledger, config, now=at):
        if state.limit and not state.scope.startswith(("workflow:", "session")):
            label = state.scope.split(":", 1)[-1]
            rows.append({"scope": state.scope, "label": f"{label} ({state.period})", "used": state.used,
                         "limit": state.limit, "percent": state.percent, "level": state.level})
    for name, limit in (config.get("budgets", "per_workflow", default={}) or {}).items():
        tokens = limit.get("tokens") if isinstance(limit, dict) else limit
        if not isinstance(tokens, int) or tokens <= 0:
            continue
        used = ledger.largest_run(config.counted_classes, name, period.start, period.end)
        rows.append({"scope": f"workflow:{name}", "label": f"{name} (largest run)", "used": used, "limit": tokens,
                     "percent": round(100.0 * used / tokens, 1), "level": None})
    return rows


def html_data(ledger: Storage, config: Config, period: Period, *, now: datetime | None = None,
              prices: Any = None) -> dict[str, Any]:
    """Everything the HTML page draws, as one JSON-able mapping."""
    if prices is None:
        prices = config.price_table()
    agg = aggregate(ledger, config, period, prices=prices)
    report = report_from(agg)
    end = min(period.last_day, today(zone(config.timezone), now))
    end = max(end, period.days[0])
    history_period = days_period(end - timedelta(days=HISTORY_DAYS - 1), end, config)
    history = aggregate(ledger, config, history_period, prices=prices)
    return page_data(f"Token report {period.label}", report, history, agg.total(),
                     budget_rows(ledger, config, period, now), iso(now or clock.now()))


def page_data(title: str, report: dict[str, Any], history: Any, total: Cell, budgets: list[dict[str, Any]],
              generated_at: str) -> dict[str, Any]:
    """The page's mapping: `history` (an Aggregate) gives the daily chart per model, `total` the cache shares."""
    per_day = by_day_model(history)
    models = sorted({model for cells in per_day.values() for model in cells},
                    key=lambda m: -sum(cells[m].counted for cells in per_day.values() if m in cells))
    labels = [day.isoformat() for day in history.period.days]
    return {
        "title": title,
        "report": report,
        "daily": {"labels": labels,
                  "series": [{"model": m, "tokens": [per_day.get(d, {}).get(m, Cell()).counted for d in labels]}
                             for m in models]},
        "budgets": budgets,
        "cost_by_workflow": report["by_workflow_cost"],
        "cache": {"cache_read": total.cache_read, "cache_creation": total.cache_creation, "input": total.input},
        "generated_at": generated_at,
    }


def render_html(data: dict[str, Any]) -> str:
    """One self-contained page: the vendored Chart.js and the data inlined, no network (its CSP forbids any)."""
    import html
    import re

    library = (ASSETS_DIR / "chart.umd.min.js").read_text(encoding="utf-8")
    library = "\n".join(line for line in library.splitlines() if not line.startswith("//# sourceMappingURL"))
    template = (ASSETS_DIR / "report.html").read_text(encoding="utf-8")
    payload = json.dumps(data, ensure_ascii=False).replace("</", "<\\/").replace("<!--", "<\\!--")
    if "</script" in library.lower():
        raise ValueError("the vendored chart library contains </script and cannot be inlined")
    values = {"TITLE": html.escape(data["title"]), "SUMMARY": _summary_rows(data["report"]),
              "MODELS": _model_rows(data["report"]), "DATA": payload, "CHART_JS": library}
    # one pass, so nothing inserted (a workflow's name, say) is itself scanned for placeholders
    return re.sub(r"\{\{([A-Z_]+)\}\}", lambda match: values[match.group(1)], template)


def _summary_rows(report: dict[str, Any]) -> str:
    import html

    kind = "date" if "date" in report else "month"
    items = [
        (kind.capitalize(), f"{report[kind]} ({report['timezone']})"),
        ("Counted tokens", f"{report['total_tokens']:,}"),
        ("Cost", cents(report["total_cost"])),
        ("Requests", f"{report['requests']:,}"),
        ("Efficiency (cache share)", percent(report["efficiency_score"])),
        ("Optimization savings", f"{percent(report['optimization_savings'])} "
                                 f"({cents(report['savings']['saved'])})"),
    ]
    if report.get("by_member"):  # `tokens report --team`
        items.append(("By member", ", ".join(f"{m} {n:,}" for m, n in list(report["by_member"].items())[:10])))
    if report["unpriced_models"]:
        items.append(("Unpriced models", ", ".join(report["unpriced_models"])))
    if report["estimated_models"]:
        items.append(("Estimated prices", ", ".join(report["estimated_models"])))
    reconciled = report.get("reconciled") or {}
    if reconciled.get("rows") or reconciled.get("sessions_checked"):
        items.append(("In no transcript (from Claude Code's totals)",
                      f"{reconciled['tokens']:,} tokens ({cents(reconciled['cost'])}); "
                      f"{reconciled.get('sessions_checked', 0)} sessions checked, "
                      f"{len(reconciled.get('drift') or [])} drifting, "
                      f"{len(reconciled.get('ledger_above_client') or [])} above"))
    return "\n".join(f'<div class="stat"><dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd></div>' for k, v in items)


def _model_rows(report: dict[str, Any]) -> str:
    import html

    rows = []
    for model, entry in report["by_model"].items():
        cost = {"unpriced": "unpriced", "estimated": f"{cents(entry['cost'])} (estimated)"}.get(
            entry["cost_status"], cents(entry["cost"]))
        rows.append(f"<tr><td>{html.escape(model)}</td><td>{entry['tokens']:,}</td><td>{cost}</td></tr>")
    return "\n".join(rows) or '<tr><td colspan="3">No requests in this period.</td></tr>'
