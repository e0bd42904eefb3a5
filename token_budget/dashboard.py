"""The dashboard (`tokens status`): what the budgets stand at now, as data (`status()`) and as the seed's box
(`render_dashboard()`). Figures come from `budget_status.budget_status`, the same counted tokens and periods as
`tokens log`, reports and the status line. No Claude Code knowledge; no I/O besides the ledger reads.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from . import clock
from .config import Config
from .families import label as model_label
from .hints import Hints
from .levels import painted
from .periods import day_bounds, iso, parse, today, zone
from .safetext import printable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from .storage import Storage

BURN_WINDOW = timedelta(hours=1)
MIN_WIDTH, MAX_WIDTH = 60, 80


# -- data ----------------------------------------------------------------------------------------------------


def status(
    ledger: Storage, config: Config, *, now: datetime | None = None, session_id: str | None = None
) -> dict[str, Any]:
    """`tokens status --json`: budget_status() plus unbudgeted models, the burn rate and open alerts."""
    from .budget_status import budget_status
    from .families import model_matches

    now = now or clock.now()
    data = budget_status(ledger, config, now=now, session_id=session_id)
    tz = zone(config.timezone)
    day_start, day_end = day_bounds(today(tz, now), tz)
    classes = config.counted_classes
    keys = [b["scope"][6:] for b in data["budgets"] if b["scope"].startswith("model:")]
    unbudgeted: dict[str, int] = {}
    for model, used, _cost in sorted(ledger.totals_by_model(classes, day_start, day_end)):
        if used and not any(model_matches(k, model) for k in keys):
            unbudgeted[model] = used
    data["now"] = iso(now)
    data["session_id"] = session_id
    data["unbudgeted_models"] = [{"model": m, "used": u} for m, u in unbudgeted.items()]
    data["burn_rate"] = burn_rate(ledger, classes, now, data["budgets"])
    data["alerts"] = [a for a in unacknowledged_alerts(ledger) if of_current_limit(a, data["budgets"])]
    data["windows"] = subscription_windows(ledger, now)
    if config.get("team"):  # team mode: from the sync's cache (team/status.py), never the network
        from .team.status import summary

        data["team"] = summary(ledger, config, now)
    return data


def of_current_limit(alert: dict[str, Any], budgets: list[dict[str, Any]]) -> bool:
    """Is this alert about a budget as it stands now (same scope, period and limit)? Alerts of a limit since
    changed, or of a period that has ended, are history: `tokens alerts --all` lists them."""
    return any(b["scope"] == alert["scope"] and b["period"] == alert["period"] and b["limit"] == alert["limit"]
               for b in budgets)


def superseded(alert: dict[str, Any], budgets: list[dict[str, Any]]) -> bool:
    """An alert of this period whose budget has had its limit changed since."""
    return any(b["scope"] == alert["scope"] and b["period"] == alert["period"] and b["limit"] != alert["limit"]
               for b in budgets)


def subscription_windows(ledger: Storage, now: datetime) -> list[dict[str, Any]]:
    """The subscription's windows as last reported, each marked stale once its reset time has passed."""
    from .windows import WINDOWS, latest

    rows = ledger.window_rows()
    held = latest(ledger)
    if not held:
        return []
    moment = iso(now)
    seen = {row[0]: row[6] for row in rows}
    return [{"name": name, "label": WINDOWS[name], "used_percentage": w.used_percentage, "resets_at": w.resets_at,
             "used_usd": w.used_usd, "limit_usd": w.limit_usd, "period": w.period, "observed_at": seen.get(name),
             "stale": w.resets_at is not None and w.resets_at <= moment}
            for name, w in sorted(held.items(), key=lambda item: list(WINDOWS).index(item[0]))]


def burn_rate(ledger: Storage, classes: Sequence[str], now: datetime, budgets: list[dict[str, Any]]) -> dict[str, Any]:
    """Counted tokens in the last hour, and when the daily budget runs out if that pace holds."""
    since = iso(now - BURN_WINDOW)
    per_hour = ledger.counted_between(classes, since, iso(now))
    daily = next((b for b in budgets if b["scope"] == "daily"), None)
    out: dict[str, Any] = {
        "window_minutes": int(BURN_WINDOW.total_seconds() // 60),
        "tokens_per_hour": per_hour,
        "daily_exhausted_at": None,
        "before_reset": None,
    }
    if daily is None or not daily["limit"]:
        return out
    if daily["used"] >= daily["limit"]:
        out["daily_exhausted_at"], out["before_reset"] = iso(now), True
    elif per_hour:
        hours = (daily["limit"] - daily["used"]) / per_hour
        if hours > 24 * 366:  # a limit this far beyond the pace would overflow datetime: it never runs out today
            out["before_reset"] = False
            return out
        at = now + timedelta(hours=hours)
        out["daily_exhausted_at"] = iso(at)
        out["before_reset"] = bool(daily["resets_at"]) and iso(at) < daily["resets_at"]
    return out


def unacknowledged_alerts(ledger: Storage) -> list[dict[str, Any]]:
    """Alerts nobody has acknowledged yet (`tokens ack`), newest first."""
    return [{"id": a.key, "scope": a.scope, "level": a.level, "threshold": a.threshold, "period": a.period,
             "used": a.used, "limit": a.limit, "created_at": a.created_at}
            for a, _acked in ledger.list_alerts(unacknowledged=True)]


# -- text ----------------------------------------------------------------------------------------------------


class Box:
    """Lines of a fixed-width box; `color` wraps spans in ANSI codes without counting them as width."""

    def __init__(self, width: int, color: bool) -> None:
        self.inner = width - 4  # "│ " … " │"
        self.width = width
        self.color = color
        self.lines: list[str] = []

    def paint(self, text: str, level: str | None) -> str:
        return painted(text, level) if self.color else text

    def add(self, *spans: tuple[str, str | None] | str) -> None:
        """One row from spans (text, level); text past the inner width is cut with an ellipsis."""
        plain, room, out = 0, self.inner, []
        for span in spans:
            text, level = (span, None) if isinstance(span, str) else span
            text = printable(text)  # model and workflow names come from transcripts and prompts
            if plain + len(text) > room:
                text = text[: max(room - plain - 1, 0)] + "…"
            plain += len(text)
            out.append(self.paint(text, level))
            if plain >= room:
                break
        self.lines.append(f"│ {''.join(out)}{' ' * (room - plain)} │")

    def rule(self, left: str = "├", right: str = "┤") -> None:
        self.lines.append(left + "─" * (self.width - 2) + right)


def bar(percent: float, cells: int) -> str:
    filled = min(cells, max(0, round(cells * percent / 100)))
    return "[" + "█" * filled + "░" * (cells - filled) + "]"


def human(n: int) -> str:
    return f"{n:,}"


def when(timestamp: str | None, now: datetime, tz: Any) -> str:
    """A reset or run-out moment: `00:00 UTC (in 9h 30m)`, with the date when it is not today."""
    if not timestamp:
        return "-"
    moment = parse(timestamp).astimezone(tz)
    local_now = now.astimezone(tz)
    label = moment.strftime("%H:%M") if moment.date() == local_now.date() else moment.strftime("%b %d %H:%M")
    return f"{label} {moment.tzname() or ''}".rstrip() + f" (in {duration(moment - local_now)})"


def duration(delta: timedelta) -> str:
    minutes = max(int(delta.total_seconds() // 60), 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m"


def team_section(box: Box, team: dict[str, Any], gauge: Any, detail: Any) -> None:
    """Team mode: the team's bars, this member's share, the top members, and whether the figures are fresh."""
    labels = {"team:daily": "Team today", "team:monthly": "Team month", "team:member:monthly": "Your share"}
    box.add("")
    box.add(f"Team {team['team']}" + (" (not synced yet)" if not team.get("synced") else
                                      " (STALE: the server is out of reach)" if team.get("stale") else ""))
    for b in team["budgets"]:
        gauge("  " + labels.get(b["scope"], b["scope"][5:])[:13], b)
        detail(f"{human(b['used'])} / {human(b['limit'])}")
    if team.get("month"):
        detail(f"you: {team['share']:.1f}% of the team's {human(team['month']['tokens'])} this month")
        top = ", ".join(f"{m['member'].split('@')[0]} {human(m['tokens'])}" for m in team.get("top_members", [])[:3])
        if top:
            detail(f"top: {top}"[: box.inner - 16])
    if team.get("unpushed"):
        detail(f"{team['unpushed']:,} requests not yet pushed")


def terminal_width(columns: int | None = None) -> int:
    if columns is None:
        import shutil

        columns = shutil.get_terminal_size((MAX_WIDTH, 24)).columns
    return max(MIN_WIDTH, min(MAX_WIDTH, columns))


def render_dashboard(data: dict[str, Any], *, width: int = MAX_WIDTH, color: bool = False,
                     hints: Hints | None = None) -> str:
    """The seed's TOKEN USAGE DASHBOARD box for `status()` data, `width` columns wide (60 to 80)."""
    hints = hints or Hints.current()
    width = max(MIN_WIDTH, min(MAX_WIDTH, width))
    box = Box(width, color)
    now = parse(data["now"])
    tz = zone(data.get("timezone"))
    label_w = 16  # "Monthly Budget" and two spaces
    pct_w = 7  # " 100.0%"
    level_w = 9  # "  suggest"
    cells = box.inner - label_w - 2 - pct_w - level_w  # 2: the bar's brackets

    def gauge(label: str, budget: dict[str, Any]) -> None:
        level = budget["level"]
        box.add(
            f"{label:<{label_w}}",
            (bar(budget["percent"], cells), level),
            (f" {budget['percent']:>5.1f}%", level),
            (f"  {level}" if level != "ok" else "", level),
        )

    def detail(text: str) -> None:
        box.add(" " * label_w + text)

    budgets = {b["scope"]: b for b in data["budgets"]}
    box.lines.append("┌" + "─" * (width - 2) + "┐")
    stamp = now.astimezone(tz).strftime("%Y-%m-%d %H:%M ") + (now.astimezone(tz).tzname() or "")
    title = "TOKEN USAGE DASHBOARD"
    box.add(title + " " * max(box.inner - len(title) - len(stamp), 1) + stamp)
    box.rule()
    for scope, label in (("daily", "Daily Budget"), ("monthly", "Monthly Budget")):
        b = budgets.get(scope)
        if b is None:
            continue
        gauge(label, b)
        usd = f" (${b['used_usd']:,.2f} / ${b['limit_usd']:,.2f})" if b.get("limit_usd") is not None else ""
        detail(f"{human(b['used'])} / {human(b['limit'])}{usd}")
        detail(f"resets {when(b['resets_at'], now, tz)}")
    if not budgets.get("daily") and not budgets.get("monthly"):
        box.add(f"No daily or monthly budget set: {hints.budget('daily', 1000000)}")
    windows = data.get("windows") or []
    if windows:
        box.add("")
        box.add("Subscription windows:")
        for w in windows:
            b = budgets.get(w["name"]) or {"percent": w["used_percentage"], "level": "ok"}
            label = {"five_hour": "  5-hour", "seven_day": "  Weekly", "spend_limit": "  Spend limit"}[w["name"]]
            gauge(label, {"percent": w["used_percentage"], "level": b["level"]})
            dollars = f"${w['used_usd']:,.2f} / ${w['limit_usd']:,.2f} · " \
                if w.get("used_usd") is not None and w.get("limit_usd") is not None else ""
            share = f" · budget {b['limit_percentage']:g}% of it" if b.get("limit_percentage") not in (None, 100) \
                else ""
            if w["stale"]:
                detail(f"{dollars}reset since it was reported ({w['resets_at'][11:16]} UTC)")
            else:
                detail(f"{dollars}resets {when(w['resets_at'], now, tz)}{share}")
    run = data.get("workflow")
    box.add("")
    if run:
        phase = f" · {run['phase']}" if run.get("phase") else ""
        box.add(f"Current Workflow ({run['name']}{phase})")
        b = budgets.get(f"workflow:{run['name']}")
        if b is not None:
            gauge("", b)
            detail(f"{human(b['used'])} / {human(b['limit'])}")
        else:
            detail(f"{human(run['used'])} tokens (no budget)")
    else:
        box.add("Current Workflow: none")
    models = [b for b in data["budgets"] if b["scope"].startswith("model:")]
    extra = data.get("unbudgeted_models") or []
    if models or extra:
        box.add("")
        box.add("By Model:")
        name_w = max([len(model_label(b["scope"][6:])) for b in models] + [6]) + 1
        name_w = min(name_w, 12)
        tokens_w = max([len(human(b["used"])) for b in models] + [len(human(m["used"])) for m in extra] + [1])
        model_cells = box.inner - (2 + name_w + 1) - 2 - pct_w - (2 + tokens_w + len(" tokens"))
        for b in models:
            level = b["level"]
            box.add(
                f"  {model_label(b['scope'][6:]) + ':':<{name_w}} ",
                (bar(b["percent"], model_cells), level),
                (f" {b['percent']:>5.1f}%", level),
                f"  {human(b['used']):>{tokens_w}} tokens",
            )
        for m in extra:
            box.add(f"  {m['model']}: {human(m['used'])} tokens (no budget)")
    if data.get("team"):
        team_section(box, data["team"], gauge, detail)
    box.add("")
    mode = data["mode"]
    if mode == "auto":
        mode += " (economy active)" if data.get("economy") else " (economy not active)"
    box.add(f"{'Mode:':<{label_w}}", (mode, "warn" if data.get("economy") else None))
    burn = data.get("burn_rate") or {}
    rate = burn.get("tokens_per_hour") or 0
    daily = budgets.get("daily")
    box.add(f"{'Burn rate:':<{label_w}}{human(rate)} tokens/h (last hour)")
    if daily and daily["used"] >= daily["limit"] > 0:
        detail("daily budget used up")
    elif rate and burn.get("before_reset"):
        detail(f"daily runs out {when(burn['daily_exhausted_at'], now, tz)}")
    elif daily and rate:
        detail("daily lasts until it resets at this pace")
    if data.get("deferred_workflows"):
        box.add(f"{'Deferred:':<{label_w}}" + ", ".join(data["deferred_workflows"]) + " (today)")
    alerts = data.get("alerts") or []
    if alerts:
        box.add("")
        box.add((f"Alerts ({len(alerts):,} unacknowledged):", "alert"))
        for a in alerts[:3]:
            box.add(
                f"  {a['scope']} {a['threshold']}% ({a['level']}): {human(a['used'])} / {human(a['limit'])}",
                f"  [{a['period']}]",
            )
        if len(alerts) > 3:
            box.add(f"  … and {len(alerts) - 3:,} more ({hints.alerts()})")
        box.add(f"  Acknowledge: {hints.ack(alerts[0]['id']) if len(alerts) == 1 else hints.ack()}")
    box.add("")
    box.rule("└", "┘")
    return "\n".join(box.lines)
