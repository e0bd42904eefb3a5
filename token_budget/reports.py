"""Reports: the ledger summed over a day or a month, as plain dicts, rendered as YAML, JSON, CSV, ccusage JSON or HTML.

Definitions (README.md, "Reports"):
- `total_tokens`, per-workflow and per-model tokens are *counted* tokens (config `counted_token_classes`).
- `efficiency_score` = cache_read / (input + cache_creation + cache_read): the share of the input side served from
  the prompt cache; 0.0 when there was no input at all.
- `optimization_savings` = (baseline - cost) / baseline over priced requests, where the baseline prices every
  request with no prompt caching (its cache reads and writes billed as plain input) and, for a request the
  `degradations` table records as downgraded, at the model that was asked for. It is negative when cache writes
  cost more than cache reads saved.

`write_daily_if_due` runs on the hook's hot path: at module top this imports only the stdlib and the core, and when
no report is due it costs one stat. The HTML chart library (token_budget/assets) is read only to render HTML.
"""

from __future__ import annotations

import json
import os
import sqlite3
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from . import clock
from .config import Config
from .ledger import Ledger
from .paths import PACKAGE_DIR, daily_report_due, daily_report_path, ensure_private_dir, write_atomically
from .periods import day_bounds, iso, month_bounds, today, zone

NO_WORKFLOW = "(none)"  # the by_workflow key of requests made outside any workflow run
FORMATS = ("yaml", "json", "csv", "html", "ccusage")
ASSETS_DIR = Path(PACKAGE_DIR, "assets")
HISTORY_DAYS = 30  # the HTML page's daily chart


# -- periods -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """A local calendar day or month, with its UTC bounds. `kind` is "date" or "month" (the report's key)."""

    kind: str
    label: str
    days: tuple[date, ...]
    start: str
    end: str
    timezone: str

    @property
    def last_day(self) -> date:
        return self.days[-1]


def zone_name(config: Config) -> str:
    """The configured zone's IANA name; for "local", this machine's ($TZ, or the /etc/localtime link)."""
    name = config.timezone
    if name and name != "local":
        return name
    tz_env = os.environ.get("TZ", "").lstrip(":")
    if tz_env:
        return tz_env
    try:
        target = os.readlink("/etc/localtime")
        if "zoneinfo/" in target:
            return target.split("zoneinfo/", 1)[1]
    except OSError:
        pass
    return str(zone(name)) or "local"


def day_period(day: date, config: Config) -> Period:
    start, end = day_bounds(day, zone(config.timezone))
    return Period("date", day.isoformat(), (day,), start, end, zone_name(config))


def month_period(year: int, month: int, config: Config) -> Period:
    tz = zone(config.timezone)
    start, end = month_bounds(year, month, tz)
    first = date(year, month, 1)
    days = []
    day = first
    while day.month == month:
        days.append(day)
        day += timedelta(days=1)
    return Period("month", f"{year:04d}-{month:02d}", tuple(days), start, end, zone_name(config))


def days_period(first: date, last: date, config: Config) -> Period:
    tz = zone(config.timezone)
    days = tuple(first + timedelta(days=n) for n in range((last - first).days + 1))
    return Period("days", f"{first.isoformat()}..{last.isoformat()}", days, day_bounds(first, tz)[0],
                  day_bounds(last, tz)[1], zone_name(config))


def resolve_period(config: Config, *, day: date | None = None, month: tuple[int, int] | None = None,
                   now: datetime | None = None) -> Period:
    """The report's period: the given day or month, else today in the configured zone."""
    if month is not None:
        return month_period(month[0], month[1], config)
    return day_period(day or today(zone(config.timezone), now), config)


# -- aggregation ---------------------------------------------------------------------------------------------


@dataclass
class Cell:
    """Sums for one (day, workflow, model, cost status)."""

    requests: int = 0
    input: int = 0
    output: int = 0
    cache_creation: int = 0
    cache_read: int = 0
    counted: int = 0
    cost_micros: int = 0
    uncached_micros: int = 0  # priced as if nothing were cached, at the model used
    baseline_micros: int = 0  # ... and at the model asked for when a downgrade was recorded

    def add(self, other: Cell) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def all_tokens(self) -> int:
        return self.input + self.output + self.cache_creation + self.cache_read


@dataclass
class Aggregate:
    """The period's requests summed per (day, workflow, model, cost status), plus recorded optimisations."""

    period: Period
    classes: tuple[str, ...]
    cells: dict[tuple[str, str, str, str], Cell] = field(default_factory=dict)
    optimizations: dict[str, int] = field(default_factory=dict)

    def total(self, keep: Any = None) -> Cell:
        out = Cell()
        for key, cell in self.cells.items():
            if keep is None or keep(key):
                out.add(cell)
        return out

    def by(self, index: int, keep: Any = None) -> dict[str, Cell]:
        """Cells summed by one key part: 0 day, 1 workflow, 2 model, 3 cost status."""
        out: dict[str, Cell] = {}
        for key, cell in self.cells.items():
            if keep is None or keep(key):
                out.setdefault(key[index], Cell()).add(cell)
        return out

    def statuses(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for _day, _workflow, model, status in self.cells:
            out.setdefault(model, set()).add(status)
        return out


_ROW_SQL = (
    "SELECT timestamp, model, workflow, cost_status, input_tokens, output_tokens, cache_creation_5m_tokens, "
    "cache_creation_1h_tokens, cache_read_tokens, speed, session_id, agent_id, cost_micros "
    "FROM requests WHERE timestamp >= ? AND timestamp < ? ORDER BY timestamp"
)


def aggregate(ledger: Ledger, config: Config, period: Period, *, prices: Any = None) -> Aggregate:
    """One pass over the period's requests. `prices` (a PriceTable) prices the no-caching baseline."""
    from .models import UsageEvent

    if prices is None:
        prices = config.price_table()
    tz = zone(config.timezone)
    starts = [day_bounds(day, tz)[0] for day in period.days]
    labels = [day.isoformat() for day in period.days]
    classes = config.counted_classes
    picks = [("input", "output", "cache_creation", "cache_read").index(c) for c in classes]
    downgraded = downgraded_agents(ledger.db, period.end)
    agg = Aggregate(period, classes, optimizations=recorded_optimizations(ledger.db, period.start, period.end))
    for (ts, model, workflow, status, inp, out, cc5, cc1, cr, speed, session, agent,
         micros) in ledger.db.execute(_ROW_SQL, (period.start, period.end)):
        day = labels[max(bisect_right(starts, ts) - 1, 0)]
        key = (day, workflow or NO_WORKFLOW, model, status)
        cell = agg.cells.get(key)
        if cell is None:
            cell = agg.cells[key] = Cell()
        cc = cc5 + cc1
        cell.requests += 1
        cell.input += inp
        cell.output += out
        cell.cache_creation += cc
        cell.cache_read += cr
        counts = (inp, out, cc, cr)
        cell.counted += sum(counts[i] for i in picks)
        cell.cost_micros += micros
        if status == "unpriced":
            continue  # no price: neither a cost nor a saving can be claimed
        flat = {"message_id": "-", "timestamp": ts, "input_tokens": inp + cc + cr, "output_tokens": out,
                "speed": speed}
        uncached = prices.cost(UsageEvent(model=model, **flat))
        uncached_micros = uncached.micros if uncached.status != "unpriced" else micros
        baseline_micros = uncached_micros
        asked = downgraded.get((session, agent)) if agent else None
        if asked is not None:
            wanted = prices.cost(UsageEvent(model=asked, **flat))
            if wanted.status != "unpriced":
                baseline_micros = max(wanted.micros, uncached_micros)
        cell.uncached_micros += uncached_micros
        cell.baseline_micros += baseline_micros
    return agg


# -- recorded optimisations (the enforcement engine's `degradations` table, when it exists) ------------------


def _table_columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def recorded_optimizations(db: sqlite3.Connection, start: str, end: str) -> dict[str, int]:
    """How many optimisations of each kind were recorded in the period ({} when the table does not exist)."""
    columns = _table_columns(db, "degradations")
    if not {"kind", "created_at"} <= columns:
        return {}
    rows = db.execute("SELECT kind, COUNT(*) FROM degradations WHERE created_at >= ? AND created_at < ? "
                      "GROUP BY kind ORDER BY kind", (start, end))
    return {kind: n for kind, n in rows}


def downgraded_agents(db: sqlite3.Connection, until: str) -> dict[tuple[str, str], str]:
    """(session, agent id) -> the model asked for, for each subagent a recorded downgrade moved to a cheaper model.

    A downgrade rewrites one Task call's model, and the transcript does not say which subagent that call started;
    so each downgrade claims one subagent: the first in its session to start at or after the downgrade, on the model
    it was moved to, and not claimed by an earlier downgrade. A subagent that picked a cheap model by itself is
    therefore never counted as a saving unless a downgrade is recorded just before it.
    """
    columns = _table_columns(db, "degradations")
    session_column = "session_id" if "session_id" in columns else "session"
    if not {session_column, "from_model", "to_model", "created_at"} <= columns:
        return {}
    downgrades = db.execute(
        f"SELECT {session_column}, created_at, from_model, to_model FROM degradations WHERE from_model IS NOT NULL "
        f"AND to_model IS NOT NULL AND from_model != to_model AND {session_column} IS NOT NULL AND created_at < ? "
        "ORDER BY created_at, rowid", (until,),
    ).fetchall()
    if not downgrades:
        return {}
    sessions = sorted({row[0] for row in downgrades})
    marks = ",".join("?" * len(sessions))
    starts: dict[str, list[tuple[str, str, str]]] = {}  # session -> [(first timestamp, agent id, model)]
    for session, agent, first, model in db.execute(
        f"SELECT session_id, agent_id, MIN(timestamp), model FROM requests WHERE agent_id IS NOT NULL "
        f"AND session_id IN ({marks}) GROUP BY session_id, agent_id ORDER BY 3", sessions,
    ):
        starts.setdefault(session, []).append((first, agent, model))
    from .budgets import model_matches

    claimed: dict[tuple[str, str], str] = {}
    for session, created, asked, given in downgrades:
        for first, agent, model in starts.get(session, ()):
            if first >= created and (session, agent) not in claimed and model_matches(given, model):
                claimed[(session, agent)] = asked
                break
    return claimed


# -- the report ----------------------------------------------------------------------------------------------


def usd(micros: int) -> float:
    return micros / 1_000_000


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def efficiency(cell: Cell) -> float:
    """Share of input-side tokens served from the prompt cache."""
    return _ratio(cell.cache_read, cell.input + cell.cache_creation + cell.cache_read)


def build_report(ledger: Ledger, config: Config, period: Period, *, prices: Any = None) -> dict[str, Any]:
    """The report mapping of interface.md (plus extra keys), for one day or month."""
    return report_from(aggregate(ledger, config, period, prices=prices))


def report_from(agg: Aggregate) -> dict[str, Any]:
    total = agg.total()
    priced = agg.total(lambda key: key[3] != "unpriced")
    statuses = agg.statuses()
    by_model = _sorted(agg.by(2))
    by_workflow = _sorted(agg.by(1))
    saved = priced.baseline_micros - priced.cost_micros
    return {
        "date" if agg.period.kind == "date" else "month": agg.period.label,
        "timezone": agg.period.timezone,
        "total_tokens": total.counted,
        "total_cost": usd(total.cost_micros),
        "tokens": {"input": total.input, "output": total.output, "cache_creation": total.cache_creation,
                   "cache_read": total.cache_read},
        "by_workflow": {name: cell.counted for name, cell in by_workflow},
        "by_model": {
            model: {"tokens": cell.counted, "cost": usd(cell.cost_micros), "cost_status": _status(statuses[model])}
            for model, cell in by_model
        },
        "efficiency_score": efficiency(total),
        "optimization_savings": _ratio(saved, priced.baseline_micros),
        "unpriced_models": sorted(m for m, s in statuses.items() if "unpriced" in s),
        # extra keys
        "estimated_models": sorted(m for m, s in statuses.items() if "estimated" in s),
        "requests": total.requests,
        "all_tokens": total.all_tokens,
        "counted_token_classes": list(agg.classes),
        "by_workflow_cost": {name: usd(cell.cost_micros) for name, cell in by_workflow},
        "savings": {
            "cost_without_optimizations": usd(priced.baseline_micros),
            "saved": usd(saved),
            "caching": usd(priced.uncached_micros - priced.cost_micros),
            "model_downgrades": usd(priced.baseline_micros - priced.uncached_micros),
        },
        "optimizations": dict(agg.optimizations),
        "period": {"start": agg.period.start, "end": agg.period.end},
    }


def _sorted(cells: dict[str, Cell]) -> list[tuple[str, Cell]]:
    return sorted(cells.items(), key=lambda item: (-item[1].counted, -item[1].cost_micros, item[0]))


def _status(statuses: set[str]) -> str:
    for status in ("unpriced", "estimated"):
        if status in statuses:
            return status
    return "priced"


# -- text renderers ------------------------------------------------------------------------------------------


def _cents(value: float) -> str:
    return f"${value:,.2f}".replace(",", "")


def _percent(ratio: float) -> str:
    text = f"{ratio * 100:.1f}".removesuffix(".0")
    return f"{text}%"


_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}


def _yaml_key(text: str) -> str:
    """A plain YAML scalar when that is unambiguous, else a JSON string (which YAML reads as double-quoted)."""
    plain = (text and text[0].isalpha() and text.lower() not in _YAML_WORDS
             and all(ch.isalnum() or ch in "-_./" for ch in text))
    return text if plain else json.dumps(text, ensure_ascii=False)


def render_yaml(report: dict[str, Any]) -> str:
    """The seed's `daily_report` layout (`monthly_report` for a month); costs rounded to the cent."""
    kind = "date" if "date" in report else "month"
    lines = [f"{'daily' if kind == 'date' else 'monthly'}_report:",
             f"  {kind}: {report[kind]}",
             f"  timezone: {_yaml_key(report['timezone'])}",
             f"  total_tokens: {report['total_tokens']}",
             f"  total_cost: {_cents(report['total_cost'])}",
             "",
             "  tokens:"]
    lines += [f"    {name}: {count}" for name, count in report["tokens"].items()]
    lines.append("")
    lines.append("  by_workflow:" + ("" if report["by_workflow"] else " {}"))
    lines += [f"    {_yaml_key(name)}: {count}" for name, count in report["by_workflow"].items()]
    lines.append("")
    lines.append("  by_model:" + ("" if report["by_model"] else " {}"))
    for model, entry in report["by_model"].items():
        if entry["cost_status"] == "unpriced":
            cost = "unpriced"
        elif entry["cost_status"] == "estimated":
            cost = f"{_cents(entry['cost'])} estimated"
        else:
            cost = _cents(entry["cost"])
        lines.append(f"    {_yaml_key(model)}: {entry['tokens']} ({cost})")
    lines.append("")
    lines.append(f"  efficiency_score: {report['efficiency_score']}")
    lines.append(f"  optimization_savings: {_percent(report['optimization_savings'])}")
    lines.append("  unpriced_models:" + ("" if report["unpriced_models"] else " []"))
    lines += [f"    - {_yaml_key(model)}" for model in report["unpriced_models"]]
    return "\n".join(lines) + "\n"


def render_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


CSV_COLUMNS = ("date", "workflow", "model", "requests", "input_tokens", "output_tokens", "cache_creation_tokens",
               "cache_read_tokens", "counted_tokens", "cost_usd", "cost_status")


def render_csv(agg: Aggregate) -> str:
    """One row per (day, workflow, model): every token class, counted tokens and the exact cost."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for (day, workflow, model, status), cell in sorted(agg.cells.items()):
        writer.writerow((day, workflow, model, cell.requests, cell.input, cell.output, cell.cache_creation,
                         cell.cache_read, cell.counted, f"{usd(cell.cost_micros):.6f}", status))
    return buffer.getvalue()


def ccusage_daily(agg: Aggregate) -> dict[str, Any]:
    """`ccusage daily --json`: one entry per day with usage (ccusage 20 names the day `period`; older, `date`)."""
    daily = []
    totals = Cell()
    for day, cells in sorted(_by_day_model(agg).items()):
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


def _by_day_model(agg: Aggregate) -> dict[str, dict[str, Cell]]:
    out: dict[str, dict[str, Cell]] = {}
    for (day, _workflow, model, _status), cell in agg.cells.items():
        out.setdefault(day, {}).setdefault(model, Cell()).add(cell)
    return out


def _ccusage_counts(cell: Cell, *, total_key: str | None = "totalTokens",
                    cost_key: str = "totalCost") -> dict[str, Any]:
    out: dict[str, Any] = {"inputTokens": cell.input, "outputTokens": cell.output,
                           "cacheCreationTokens": cell.cache_creation, "cacheReadTokens": cell.cache_read}
    if total_key:
        out[total_key] = cell.all_tokens
    out[cost_key] = usd(cell.cost_micros)
    return out


# -- HTML ----------------------------------------------------------------------------------------------------


def budget_rows(ledger: Ledger, config: Config, period: Period, now: datetime | None = None) -> list[dict[str, Any]]:
    """Each configured budget's use against its limit at the end of the period (or now, if that is earlier), as
    `tokens status` computes it; a workflow's budget shows its largest run in the period (runs end, they don't reset).
    """
    from .budgets import budget_states
    from .ledger import counted_sql
    from .periods import parse

    at = min(now or clock.now(), parse(period.end) - timedelta(milliseconds=1))
    rows: list[dict[str, Any]] = []
    for state in budget_states(ledger, config, now=at):
        if state.limit and not state.scope.startswith(("workflow:", "session")):
            label = state.scope.split(":", 1)[-1]
            rows.append({"scope": state.scope, "label": f"{label} ({state.period})", "used": state.used,
                         "limit": state.limit, "percent": state.percent, "level": state.level})
    counted = counted_sql(config.counted_classes)
    for name, limit in (config.get("budgets", "per_workflow", default={}) or {}).items():
        tokens = limit.get("tokens") if isinstance(limit, dict) else limit
        if not isinstance(tokens, int) or tokens <= 0:
            continue
        used = ledger.db.execute(
            f"SELECT COALESCE(MAX(t), 0) FROM (SELECT SUM({counted}) AS t FROM requests WHERE workflow = ? "
            "AND timestamp >= ? AND timestamp < ? GROUP BY workflow_run_id)", (name, period.start, period.end),
        ).fetchone()[0]
        rows.append({"scope": f"workflow:{name}", "label": f"{name} (largest run)", "used": used, "limit": tokens,
                     "percent": round(100.0 * used / tokens, 1), "level": None})
    return rows


def html_data(ledger: Ledger, config: Config, period: Period, *, now: datetime | None = None,
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
    per_day = _by_day_model(history)
    models = sorted({model for cells in per_day.values() for model in cells},
                    key=lambda m: -sum(cells[m].counted for cells in per_day.values() if m in cells))
    labels = [day.isoformat() for day in history_period.days]
    total = agg.total()
    return {
        "title": f"Token report {period.label}",
        "report": report,
        "daily": {"labels": labels,
                  "series": [{"model": m, "tokens": [per_day.get(d, {}).get(m, Cell()).counted for d in labels]}
                             for m in models]},
        "budgets": budget_rows(ledger, config, period, now),
        "cost_by_workflow": report["by_workflow_cost"],
        "cache": {"cache_read": total.cache_read, "cache_creation": total.cache_creation, "input": total.input},
        "generated_at": iso(now or clock.now()),
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
        ("Cost", _cents(report["total_cost"])),
        ("Requests", f"{report['requests']:,}"),
        ("Efficiency (cache share)", _percent(report["efficiency_score"])),
        ("Optimization savings", f"{_percent(report['optimization_savings'])} "
                                 f"({_cents(report['savings']['saved'])})"),
    ]
    if report["unpriced_models"]:
        items.append(("Unpriced models", ", ".join(report["unpriced_models"])))
    if report["estimated_models"]:
        items.append(("Estimated prices", ", ".join(report["estimated_models"])))
    return "\n".join(f'<div class="stat"><dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd></div>' for k, v in items)


def _model_rows(report: dict[str, Any]) -> str:
    import html

    rows = []
    for model, entry in report["by_model"].items():
        cost = {"unpriced": "unpriced", "estimated": f"{_cents(entry['cost'])} (estimated)"}.get(
            entry["cost_status"], _cents(entry["cost"]))
        rows.append(f"<tr><td>{html.escape(model)}</td><td>{entry['tokens']:,}</td><td>{cost}</td></tr>")
    return "\n".join(rows) or '<tr><td colspan="3">No requests in this period.</td></tr>'


# -- one entry point for the CLI -----------------------------------------------------------------------------


def render(ledger: Ledger, config: Config, period: Period, fmt: str, *, now: datetime | None = None) -> str:
    """The report for `period` in one of FORMATS, as text."""
    if fmt == "html":
        return render_html(html_data(ledger, config, period, now=now))
    agg = aggregate(ledger, config, period)
    if fmt == "csv":
        return render_csv(agg)
    if fmt == "ccusage":
        return json.dumps(ccusage_daily(agg), indent=2, ensure_ascii=False) + "\n"
    report = report_from(agg)
    return render_yaml(report) if fmt == "yaml" else render_json(report)


# -- the daily summary (hook hot path) -----------------------------------------------------------------------


def write_daily_if_due(ledger: Ledger, config: Config, data_dir: Path, now: datetime | None = None,
                       project_dir: str | None = None) -> Path | None:
    """At the first call of a new local day, write yesterday's report to reports/YYYY-MM-DD.yaml; else None.

    Not due costs one stat. Concurrent hooks agree on one writer through a file lock (filelock: the kernel drops
    it when its holder dies, so a crashed writer never leaves a claim to time out and no two processes can take
    over the same stale one); the holder checks again that the report is still due. Channels with `reports: true`
    get a delivery each in the alert outbox, committed before the file is written: a crash in between writes (and
    re-enqueues, never doubling) at the next hook, so a report is never written without being queued. The caller
    kicks the sender.
    """
    yesterday = daily_report_due(data_dir, config.timezone, now)
    if yesterday is None:
        return None
    path = Path(daily_report_path(data_dir, yesterday))
    ensure_private_dir(path.parent)
    from . import site_packages

    site_packages.enable()  # hooks run with -S; filelock lives in site-packages
    from filelock import FileLock, Timeout

    claim = FileLock(str(path.with_name(f".{path.name}.claim")), timeout=0, mode=0o600)
    try:
        claim.acquire()
    except Timeout:
        return None  # another hook is writing it
    try:
        if daily_report_due(data_dir, config.timezone, now) != yesterday:
            return None  # written while this hook waited for its turn
        report = build_report(ledger, config, day_period(yesterday, config))
        text = render_yaml(report)
        if any(isinstance(c, dict) and c.get("reports") is True
               for c in ((config.data.get("alerts") or {}).get("channels") or [])):
            from .ledger import utc_now
            from .outbox import channels, enqueue_report

            with ledger.transaction() as db:
                enqueue_report(db, report, text, channels(config), project_dir=project_dir, now=utc_now())
        write_atomically(path, text)
    finally:
        claim.release()
    return path
