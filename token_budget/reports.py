"""Reports: the ledger summed over a day or a month, as plain dicts. Rendering lives in report_render (YAML, JSON,
CSV, ccusage JSON) and report_html; the daily file the hook writes, in daily_report.

Definitions (README.md, "Reports"):
- `total_tokens`, per-workflow and per-model tokens are *counted* tokens (config `counted_token_classes`).
- `efficiency_score` = cache_read / (input + cache_creation + cache_read): the share of the input side served from
  the prompt cache; 0.0 when there was no input at all.
- `optimization_savings` = (baseline - cost) / baseline over priced requests, where the baseline prices every
  request with no prompt caching (its cache reads and writes billed as plain input) and, for a request the
  `degradations` table records as downgraded, at the model that was asked for. It is negative when cache writes
  cost more than cache reads saved.

The daily report is built on the hook's path (daily_report.write_daily_if_due): at module top this imports only the
stdlib and the core.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from .config import Config
from .periods import day_bounds, month_bounds, today, zone, zone_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .storage import Storage

NO_WORKFLOW = "(none)"  # the by_workflow key of requests made outside any workflow run


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


def day_period(day: date, config: Config) -> Period:
    start, end = day_bounds(day, zone(config.timezone))
    return Period("date", day.isoformat(), (day,), start, end, zone_name(config.timezone))


def month_period(year: int, month: int, config: Config) -> Period:
    tz = zone(config.timezone)
    start, end = month_bounds(year, month, tz)
    first = date(year, month, 1)
    days = []
    day = first
    while day.month == month:
        days.append(day)
        day += timedelta(days=1)
    return Period("month", f"{year:04d}-{month:02d}", tuple(days), start, end, zone_name(config.timezone))


def days_period(first: date, last: date, config: Config) -> Period:
    tz = zone(config.timezone)
    days = tuple(first + timedelta(days=n) for n in range((last - first).days + 1))
    return Period("days", f"{first.isoformat()}..{last.isoformat()}", days, day_bounds(first, tz)[0],
                  day_bounds(last, tz)[1], zone_name(config.timezone))


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
    reconciled: dict[str, Any] = field(default_factory=dict)

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


def aggregate(ledger: Storage, config: Config, period: Period, *, prices: Any = None) -> Aggregate:
    """One pass over the period's requests. `prices` (a PriceTable) prices the no-caching baseline."""
    from .models import UsageEvent

    if prices is None:
        prices = config.price_table()
    tz = zone(config.timezone)
    starts = [day_bounds(day, tz)[0] for day in period.days]
    labels = [day.isoformat() for day in period.days]
    classes = config.counted_classes
    picks = [("input", "output", "cache_creation", "cache_read").index(c) for c in classes]
    downgraded = downgraded_agents(ledger, period.end)
    agg = Aggregate(period, classes, optimizations=ledger.degradation_counts(period.start, period.end),
                    reconciled=reconciled_in(ledger, period.start, period.end))
    for (ts, model, workflow, status, inp, out, cc5, cc1, cr, speed, session, agent,
         micros) in ledger.report_rows(period.start, period.end):
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


# -- recorded optimisations (the enforcement engine's `degradations` table) ----------------------------------


def downgraded_agents(ledger: Storage, until: str) -> dict[tuple[str, str], str]:
    """(session, agent id) -> the model asked for, for each subagent a recorded downgrade moved to a cheaper model.

    A downgrade rewrites one Task call's model, and the transcript does not say which subagent that call started;
    so each downgrade claims one subagent: the first in its session to start at or after the downgrade, on the model
    it was moved to, and not claimed by an earlier downgrade. A subagent that picked a cheap model by itself is
    therefore never counted as a saving unless a downgrade is recorded just before it.
    """
    downgrades = ledger.downgrades(until)
    if not downgrades:
        return {}
    starts: dict[str, list[tuple[str, str, str]]] = {}  # session -> [(first timestamp, agent id, model)]
    for session, agent, first, model in ledger.subagent_starts(sorted({row[0] for row in downgrades})):
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


def build_report(ledger: Storage, config: Config, period: Period, *, prices: Any = None) -> dict[str, Any]:
    """The report mapping of interface.md (plus extra keys), for one day or month."""
    return report_from(aggregate(ledger, config, period, prices=prices))


def reconciled_in(ledger: Storage, start: str, end: str) -> dict[str, Any]:
    """The auxiliary usage added in [start, end) from the client's own totals (reconcile.py): requests that are
    in no transcript, counted in the totals above."""
    requests, tokens, micros = ledger.reconciled_usage(start, end)
    from .reconcile import summary

    checked = summary(ledger, start=start, end=end)
    return {"rows": requests, "tokens": tokens, "cost": usd(micros), "sessions_checked": checked["sessions_checked"],
            "drift": checked["drift"], "ledger_above_client": checked["ledger_above_client"]}


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
        "reconciled": dict(agg.reconciled) or {"rows": 0, "tokens": 0, "cost": 0.0, "sessions_checked": 0,
                                               "drift": [], "ledger_above_client": []},
        "period": {"start": agg.period.start, "end": agg.period.end},
    }


def _sorted(cells: dict[str, Cell]) -> list[tuple[str, Cell]]:
    return sorted(cells.items(), key=lambda item: (-item[1].counted, -item[1].cost_micros, item[0]))


def _status(statuses: set[str]) -> str:
    for status in ("unpriced", "estimated"):
        if status in statuses:
            return status
    return "priced"


def by_day_model(agg: Aggregate) -> dict[str, dict[str, Cell]]:
    """Cells summed per day, then per model."""
    out: dict[str, dict[str, Cell]] = {}
    for (day, _workflow, model, _status), cell in agg.cells.items():
        out.setdefault(day, {}).setdefault(model, Cell()).add(cell)
    return out


def cents(value: float) -> str:
    """Money as every report format writes it: dollars and cents, no thousands separator."""
    return f"${value:,.2f}".replace(",", "")


def percent(ratio: float) -> str:
    text = f"{ratio * 100:.1f}".removesuffix(".0")
    return f"{text}%"
