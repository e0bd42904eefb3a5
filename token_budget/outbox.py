"""The alert outbox: channels from the config, one delivery row per (alert, channel), and the alert's message.

Standard library only (the hook enqueues in its write transaction). Sending lives in `delivery`. Secrets never pass
through here: webhooks stay as written (`$SLACK_WEBHOOK`), expanded only by the sender.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .alerts import NOT_ENQUEUED
from .config import VARIABLE_PATTERN, is_reference
from .errors import TokenBudgetError
from .levels import parse_percent
from .models import Alert

# -- channels ------------------------------------------------------------------------------------------------

CHANNEL_TYPES = ("console", "slack", "email")
_VARIABLE = re.compile(VARIABLE_PATTERN)


class AlertConfigError(TokenBudgetError):
    """A channel cannot be used as configured (a missing environment variable, no recipients, …)."""


@dataclass(frozen=True)
class Channel:
    """One entry of `alerts.channels`. `webhook` and `to` are kept as written: `$VAR` references are expanded only
    when sending, so the expanded secret never reaches the ledger."""

    name: str  # the type, or "slack.2" for a second channel of the same type
    type: str
    threshold: int  # percent; the channel receives alerts at or above it
    webhook: str | None = None
    to: tuple[str, ...] = ()
    reports: bool = False  # `reports: true`: the channel also receives the daily report
    allowed_env: tuple[str, ...] = ()  # `alerts.allowed_env`: variables a `$NAME` webhook may name, beyond the defaults
    when_configured: bool = False  # `active: when_configured`: takes part only once its settings resolve

    def spec(self) -> dict[str, Any]:
        """What the outbox stores: everything but a literal webhook URL (a secret; the sender re-reads the config)."""
        spec: dict[str, Any] = {"type": self.type, "threshold": self.threshold}
        if self.webhook is not None:
            spec["webhook"] = self.webhook if is_reference(self.webhook) else None
        if self.to:
            spec["to"] = list(self.to)
        if self.reports:
            spec["reports"] = True
        if self.allowed_env:
            spec["allowed_env"] = list(self.allowed_env)
        return spec

    @classmethod
    def from_spec(cls, name: str, spec: Mapping[str, Any]) -> Channel:
        return cls(
            name,
            spec["type"],
            int(spec.get("threshold", 0)),
            spec.get("webhook"),
            tuple(spec.get("to", ())),
            bool(spec.get("reports")),
            tuple(spec.get("allowed_env", ())),
        )

    def describe(self) -> str:
        """A safe description: the variable name, or the webhook's host, never the secret path."""
        if self.type == "slack":
            if self.webhook is None:
                return "slack (no webhook)"
            return f"slack {self.webhook}" if is_reference(self.webhook) else f"slack {redact(self.webhook)}"
        if self.type == "email":
            return "email to " + ", ".join(self.to)
        return self.type


def channels(config: Any) -> list[Channel]:
    """The configured channels (a Config or its dict), each named by its type, numbered when a type repeats."""
    data = config.data if hasattr(config, "data") else config
    raw = ((data or {}).get("alerts") or {}).get("channels") or []
    allowed = tuple(((data or {}).get("alerts") or {}).get("allowed_env") or ())
    seen: dict[str, int] = {}
    out = []
    for entry in raw:
        kind = entry["type"]
        seen[kind] = seen.get(kind, 0) + 1
        name = kind if seen[kind] == 1 else f"{kind}.{seen[kind]}"
        to = entry.get("to") or ()
        out.append(
            Channel(
                name,
                kind,
                int(parse_percent(entry.get("threshold"), 0)),
                entry.get("webhook"),
                (to,) if isinstance(to, str) else tuple(to),
                entry.get("reports") is True,
                allowed,
                entry.get("active") == "when_configured",
            )
        )
    return out


def active_channels(chans: Sequence[Channel], environ: Mapping[str, str] | None = None) -> list[Channel]:
    """The channels that take part in deliveries: all but `when_configured` ones that are not configured yet
    (the packaged Slack and email examples on a fresh install), which are skipped rather than failed."""
    return [c for c in chans if not c.when_configured or not channel_problems([c], environ)]


def find_channel(chans: Sequence[Channel], name: str) -> Channel | None:
    return next((c for c in chans if c.name == name), None)


def variables(value: str | None) -> list[str]:
    return [a or b for a, b in _VARIABLE.findall(value or "")]


# Names a `webhook: $NAME` may read without being listed in alerts.allowed_env. (SMTP_* settings are read by name
# by the email transport itself, never through a config value.)
DEFAULT_ENV_PREFIXES = ("SLACK_WEBHOOK",)


def env_name_allowed(name: str, allowed: Sequence[str] = ()) -> bool:
    return name.startswith(DEFAULT_ENV_PREFIXES) or name in allowed


def expand(value: str, what: str, environ: Mapping[str, str] | None = None, allowed: Sequence[str] = ()) -> str:
    """A literal value as it is; a value that is exactly one `$NAME` / `${NAME}` from the environment, if NAME is a
    default (SLACK_WEBHOOK*) or listed in alerts.allowed_env. Anything else is an AlertConfigError naming
    the variable, never its value: a `$` inside a longer value would let a config splice any secret into a URL."""
    env = os.environ if environ is None else environ
    found = variables(value)
    if not found:
        return value
    match = _VARIABLE.fullmatch(value.strip())
    if match is None:
        raise AlertConfigError(
            f"{what}: only a whole value that is one $NAME is expanded, not a $NAME inside other text",
            "Put the whole URL in one environment variable and write `webhook: $NAME`.",
        )
    name = match.group(1) or match.group(2)
    if not env_name_allowed(name, allowed):
        raise AlertConfigError(
            f"{what}: ${name} is not a variable alerts may read",
            f"Name it SLACK_WEBHOOK…, or list {name} under alerts.allowed_env in your own token_budgets.yaml.",
        )
    if not env.get(name):
        raise AlertConfigError(
            f"{what}: ${name} is not set in the environment",
            f"Export {name} where Claude Code runs (and where you run `tokens`), or edit "
            "alerts.channels in token_budgets.yaml.",
        )
    return env[name]


def literal_address(value: str, what: str) -> str:
    """An email recipient as written: `to` is never expanded, so no config can address mail from a variable."""
    if "$" in value:
        raise AlertConfigError(f"{what}: {value!r} is not an address ($VARIABLES are not expanded in `to`)",
                               "Write the recipients' addresses out in alerts.channels.")
    return value


_URL = re.compile(r"\b(https?://[^/\s'\"<>]+)(/[^\s'\"<>]*)?")


def redact(text: str, secrets: Sequence[str | None] = ()) -> str:
    """Remove secrets from text meant for the ledger, a log or an error: the given values, and every URL's path
    (a Slack webhook's path is its credential)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return _URL.sub(lambda m: m.group(1) + ("/[redacted]" if m.group(2) and m.group(2) != "/" else ""), text)


# -- the outbox ----------------------------------------------------------------------------------------------


def enqueue(
    db: sqlite3.Connection,
    key: str,
    threshold: int,
    chans: Sequence[Channel],
    *,
    project_dir: str | None = None,
    now: str,
) -> int:
    """One delivery per channel whose threshold the alert reaches; returns how many wait for the sender.

    Console deliveries are done already: the hook shows the alert as a systemMessage itself.
    """
    waiting = 0
    for channel in active_channels(chans):
        if channel.threshold > threshold:
            continue
        console = channel.type == "console"
        # A re-armed claim (the limit changed) resets its deliveries: it is a new alert on the same key.
        db.execute(
            "INSERT INTO deliveries (alert_key, channel, type, spec, project_dir, state, next_attempt_at, created_at, "
            "delivered_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (alert_key, channel) DO UPDATE SET "
            "type = excluded.type, spec = excluded.spec, project_dir = excluded.project_dir, state = excluded.state, "
            "attempts = 0, next_attempt_at = excluded.next_attempt_at, last_error = NULL, "
            "created_at = excluded.created_at, delivered_at = excluded.delivered_at",
            (
                key,
                channel.name,
                channel.type,
                json.dumps(channel.spec()),
                project_dir,
                "delivered" if console else "pending",
                now,
                now,
                now if console else None,
            ),
        )
        waiting += 0 if console else 1
    # enqueued_at = created_at marks this claim as enqueued; a re-armed claim gets a new created_at.
    db.execute("UPDATE alerts SET enqueued_at = created_at WHERE key = ?", (key,))
    return waiting


def enqueue_missing(
    db: sqlite3.Connection, chans: Sequence[Channel], *, project_dir: str | None, now: str
) -> int:
    """Enqueue deliveries for every claim not yet enqueued (new, or re-armed). Call inside a write transaction."""
    rows = db.execute(
        f"SELECT key, threshold FROM alerts WHERE {NOT_ENQUEUED} ORDER BY created_at"
    ).fetchall()
    return sum(
        enqueue(db, key, threshold, chans, project_dir=project_dir, now=now) for key, threshold in rows
    )


ALERT_COLUMNS = (
    "key",
    "scope",
    "level",
    "threshold",
    "period",
    "used",
    "limit_tokens",
    "workflow",
    "recommendation",
    "created_at",
)


def alert_from_row(row: Sequence[Any]) -> Alert:
    key, scope, level, threshold, period, used, limit, workflow, recommendation, created_at = row[:10]
    return Alert(scope, level, threshold, period, used, limit, created_at, workflow, recommendation)


def load_alert(db: sqlite3.Connection, key: str) -> Alert | None:
    row = db.execute(f"SELECT {', '.join(ALERT_COLUMNS)} FROM alerts WHERE key = ?", (key,)).fetchone()
    return alert_from_row(row) if row else None


def deliveries_of(db: sqlite3.Connection, key: str, kind: str) -> list[dict[str, Any]]:
    """The delivery state per channel of one alert (kind 'alert') or daily report (kind 'report')."""
    return [
        {
            "channel": d[0],
            "type": d[1],
            "state": d[2],
            "attempts": d[3],
            "next_attempt_at": d[4] if d[2] == "pending" else None,
            "last_error": d[5],
            "delivered_at": d[6],
        }
        for d in db.execute(
            "SELECT channel, type, state, attempts, next_attempt_at, last_error, delivered_at FROM deliveries "
            "WHERE alert_key = ? AND kind = ? ORDER BY id",
            (key, kind),
        )
    ]


def list_alerts(db: sqlite3.Connection, *, limit: int | None = None) -> list[dict[str, Any]]:
    """Alerts, newest first, each with its delivery state per channel."""
    sql = f"SELECT {', '.join(ALERT_COLUMNS)}, acked_at FROM alerts ORDER BY created_at DESC, key"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    out = []
    for row in db.execute(sql).fetchall():
        alert = alert_from_row(row)
        deliveries = deliveries_of(db, alert.key, "alert")
        out.append(
            {
                "id": alert.key,
                "scope": alert.scope,
                "level": alert.level,
                "threshold": alert.threshold,
                "period": alert.period,
                "used": alert.used,
                "limit": alert.limit,
                "percent": alert.percent,
                "workflow": alert.workflow,
                "created_at": alert.created_at,
                "acked_at": row[10],
                "deliveries": deliveries,
            }
        )
    return out


# -- the message ---------------------------------------------------------------------------------------------

TITLE = "⚠️ TOKEN BUDGET ALERT"
DEFAULT_RECOMMENDATIONS = ("Switch to Haiku for remaining tasks", "Or request budget increase")


def scope_label(scope: str) -> tuple[str, str]:
    """("Workflow", "sprint") for workflow:sprint; ("Budget", "daily") for daily."""
    kind, _, name = scope.partition(":")
    if name:
        return kind.capitalize(), name
    return "Budget", scope


def recommendations(alert: Alert) -> list[str]:
    if alert.recommendation:
        return [ln.strip().lstrip("-•* ").strip() for ln in alert.recommendation.splitlines() if ln.strip()]
    lines = list(DEFAULT_RECOMMENDATIONS)
    if alert.threshold >= 100:
        lines.insert(
            0, "New work on this budget is blocked until it resets, you raise it, or you acknowledge"
        )
    return lines


def commands(alert: Alert, slash: str | None = None) -> dict[str, str]:
    """The exact commands that acknowledge or adjust this alert, in a shell and in Claude Code (`slash`: the slash
    command of the install route, by default the one of the hook that enqueued the alert)."""
    from .hints import Hints

    if slash is None:
        from .claude.commands import slash_prefix

        slash = slash_prefix()
    terminal, claude = Hints(), Hints(slash)
    return {
        "ack": terminal.ack(alert.key),
        "budget": terminal.raise_budget(alert.scope, alert.used, alert.limit),
        "slash_ack": claude.ack(alert.key),
        "slash_budget": claude.raise_budget(alert.scope, alert.used, alert.limit),
    }


def _amounts(alert: Alert) -> tuple[str, str, str]:
    """(usage, what is left, unit suffix): tokens, or a subscription window's percentage points."""
    from .windows import SCALE, WINDOWS

    if alert.scope in WINDOWS:
        return (f"{alert.used / SCALE:.1f}% / {alert.limit / SCALE:g}% of the {WINDOWS[alert.scope]}",
                f"{max(alert.limit - alert.used, 0) / SCALE:.1f} points of the window", "")
    return f"{alert.used:,} / {alert.limit:,}", f"{max(alert.limit - alert.used, 0):,} tokens", " tokens"


def _pct(value: float) -> str:
    return f"{value:g}%"


def alert_content(alert: Alert, *, test: bool = False) -> dict[str, Any]:
    """The alert's content, shared by every channel: the seed's Alert Format, plus the exact commands."""
    label, name = scope_label(alert.scope)
    facts = [(label, name)]
    if alert.workflow and label != "Workflow":
        facts.append(("Workflow", alert.workflow))
    usage, left, unit = _amounts(alert)
    facts += [
        ("Current Usage", f"{usage} ({_pct(alert.percent)})"),
        ("Remaining", left),
        ("Level", f"{alert.level} ({alert.threshold}% threshold, period {alert.period})"),
    ]
    cmds = commands(alert)
    title = TITLE + (" (test)" if test else "")
    recs = recommendations(alert)
    text = (
        "\n".join(
            [
                title,
                "",
                *(f"{k}: {v}" for k, v in facts),
                "",
                "Recommendation:",
                *(f"- {r}" for r in recs),
                "",
                "Action Required: Acknowledge or Adjust",
                f"- Acknowledge: {cmds['ack']}   (in Claude Code: {cmds['slash_ack']})",
                f"- Adjust: {cmds['budget']}   (in Claude Code: {cmds['slash_budget']})",
            ]
        )
        + "\n"
    )
    subject = (
        f"[token-budget] {alert.level.upper()}: {label.lower()} {name} at {_pct(alert.percent)} "
        f"({usage}{unit})"
    )
    return {
        "title": title,
        "facts": facts,
        "recommendations": recs,
        "commands": cmds,
        "text": text,
        "subject": ("[test] " if test else "") + subject,
    }


def slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(alert: Alert, *, test: bool = False) -> dict[str, Any]:
    """Slack's incoming-webhook JSON: `text` (notifications, fallbacks) and Block Kit `blocks`."""
    r = alert_content(alert, test=test)
    e, cmds = slack_escape, r["commands"]
    return _slack_message(r, [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "*Recommendation:*\n" + "\n".join(f"• {e(x)}" for x in r["recommendations"]),
            },
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": (
                    "*Action Required: Acknowledge or Adjust*\n"
                    f"Acknowledge: `{e(cmds['ack'])}` (in Claude Code: `{e(cmds['slash_ack'])}`)\n"
                    f"Adjust: `{e(cmds['budget'])}` (in Claude Code: `{e(cmds['slash_budget'])}`)"
                ),
            },
        },
    ])


def _slack_message(rendered: dict[str, Any], more_blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """`text` for notifications and fallbacks, then a header and the facts as blocks, then `more_blocks`."""
    e = slack_escape
    facts = "\n".join(f"*{k}:* {e(v)}" for k, v in rendered["facts"])
    return {
        "text": e(rendered["text"]),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": rendered["title"], "emoji": True}},
            {"type": "section", "text": {"type": "mrkdwn", "text": facts}},
            *more_blocks,
        ],
    }


def html_body(alert: Alert, *, test: bool = False) -> str:
    from html import escape

    r = alert_content(alert, test=test)
    facts = "".join(f"<tr><th align=left>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in r["facts"])
    recs = "".join(f"<li>{escape(x)}</li>" for x in r["recommendations"])
    cmds = r["commands"]
    return (
        f"<html><body><h2>{escape(r['title'])}</h2><table>{facts}</table>"
        f"<p><b>Recommendation:</b></p><ul>{recs}</ul><p><b>Action Required: Acknowledge or Adjust</b></p><ul>"
        f"<li>Acknowledge: <code>{escape(cmds['ack'])}</code> (in Claude Code: "
        f"<code>{escape(cmds['slash_ack'])}</code>)</li>"
        f"<li>Adjust: <code>{escape(cmds['budget'])}</code> (in Claude Code: "
        f"<code>{escape(cmds['slash_budget'])}</code>)</li></ul></body></html>"
    )


def channel_problems(
    chans: Sequence[Channel], environ: Mapping[str, str] | None = None
) -> list[AlertConfigError]:
    """What stops each channel from sending, checked without sending: missing variables, SMTP_HOST, recipients."""
    env = os.environ if environ is None else environ
    problems = []
    for channel in chans:
        try:
            if channel.type == "slack":
                if not channel.webhook:
                    raise AlertConfigError(
                        f"{channel.name}: no webhook", "Add `webhook: $SLACK_WEBHOOK` to it."
                    )
                expand(channel.webhook, f"{channel.name} webhook", env, channel.allowed_env)
            elif channel.type == "email":
                if not channel.to:
                    raise AlertConfigError(
                        f"{channel.name}: no recipients", "Add `to: you@example.com` to it."
                    )
                for address in channel.to:
                    literal_address(address, f"{channel.name} to")
                if not env.get("SMTP_HOST"):
                    raise AlertConfigError(
                        f"{channel.name}: SMTP_HOST is not set in the environment",
                        "Export SMTP_HOST (and SMTP_PORT, SMTP_USERNAME, SMTP_PASSWORD, SMTP_FROM) "
                        "where Claude Code runs; SMTP_STARTTLS=0 for a local relay without TLS.",
                    )
        except AlertConfigError as exc:
            problems.append(exc)
    return problems


# -- the daily report ------------------------------------------------------------------------------------------
# The report written to reports/YYYY-MM-DD.yaml goes through the same outbox and sender as alerts: a delivery row
# per channel with `reports: true` (kind 'report', alert_key = the report_messages key), committed with the
# report's content before the file is written, so a crash in between re-enqueues (nothing doubled: one row per
# report and channel) and never skips the send.


def report_key(day: str) -> str:
    return f"report:{day}"


@dataclass(frozen=True)
class ReportMessage:
    """A daily report waiting in the outbox: the report mapping (reports.report_from) and its YAML text."""

    key: str
    period: str
    report: dict[str, Any]
    yaml: str

    kind = "report"


def report_period(report: Mapping[str, Any]) -> str:
    return str(report.get("date") or report.get("month"))


def report_message(report: Mapping[str, Any], yaml_text: str) -> ReportMessage:
    """The outbox item for a report (reports.build_report) and its YAML without storing it: what `load_report`
    gives the sender once `enqueue_report` stored them."""
    period = report_period(report)
    return ReportMessage(report_key(period), period, json.loads(json.dumps(report, ensure_ascii=False)), yaml_text)


def report_channels(chans: Sequence[Channel]) -> list[Channel]:
    """The channels that receive the daily report: `reports: true`, and somewhere to send it (not console)."""
    return [c for c in chans if c.reports and c.type != "console"]


def enqueue_report(
    db: sqlite3.Connection,
    report: Mapping[str, Any],
    yaml_text: str,
    chans: Sequence[Channel],
    *,
    project_dir: str | None = None,
    now: str,
) -> int:
    """Store the report and one pending delivery per reports channel; returns how many were added. Call inside a
    write transaction. Enqueuing the same day again refreshes the stored report but never adds a second delivery."""
    targets = report_channels(active_channels(chans))
    if not targets:
        return 0
    period = report_period(report)
    key = report_key(period)
    db.execute(
        "INSERT INTO report_messages (key, period, report, yaml, created_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (key) DO UPDATE SET report = excluded.report, yaml = excluded.yaml",
        (key, period, json.dumps(report, ensure_ascii=False), yaml_text, now),
    )
    added = 0
    for channel in targets:
        added += db.execute(
            "INSERT INTO deliveries (alert_key, kind, channel, type, spec, project_dir, state, "
            "next_attempt_at, created_at) VALUES (?, 'report', ?, ?, ?, ?, 'pending', ?, ?) "
            "ON CONFLICT (alert_key, channel) DO NOTHING",
            (key, channel.name, channel.type, json.dumps(channel.spec()), project_dir, now, now),
        ).rowcount
    return added


def load_report(db: sqlite3.Connection, key: str) -> ReportMessage | None:
    row = db.execute("SELECT key, period, report, yaml FROM report_messages WHERE key = ?", (key,)).fetchone()
    return ReportMessage(row[0], row[1], json.loads(row[2]), row[3]) if row else None


def list_reports(db: sqlite3.Connection, *, limit: int | None = None) -> list[dict[str, Any]]:
    """Daily reports queued for channels, newest first, with their delivery state per channel."""
    sql = "SELECT key, period, created_at FROM report_messages ORDER BY period DESC"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    out = []
    for key, period, created_at in db.execute(sql).fetchall():
        out.append(
            {
                "id": key,
                "date": period,
                "created_at": created_at,
                "deliveries": deliveries_of(db, key, "report"),
            }
        )
    return out


def _money(value: float) -> str:
    return f"${value:,.2f}"


def _share(ratio: float) -> str:
    return f"{ratio * 100:.1f}".removesuffix(".0") + "%"


def report_summary(message: ReportMessage, *, test: bool = False, top: int = 3) -> dict[str, Any]:
    """The daily report's short summary, shared by Slack and the email's HTML part."""
    r = message.report
    title = f"📊 Token budget daily report {message.period}" + (" (test)" if test else "")
    facts = [
        (
            "Total",
            f"{r['total_tokens']:,} tokens, {_money(r['total_cost'])} ({r.get('requests', 0):,} requests)",
        ),
        ("Efficiency (cache share)", _share(r["efficiency_score"])),
        (
            "Optimization savings",
            _share(r["optimization_savings"])
            + f" ({_money((r.get('savings') or {}).get('saved', 0.0))} saved)",
        ),
    ]
    workflows = list(r["by_workflow"].items())[:top]
    if workflows:
        facts.append(("Top workflows", "; ".join(f"{name} {tokens:,}" for name, tokens in workflows)))
    models = list(r["by_model"].items())[:top]
    if models:
        facts.append(
            (
                "Top models",
                "; ".join(
                    f"{name} {e['tokens']:,} "
                    + ("(unpriced)" if e["cost_status"] == "unpriced" else f"({_money(e['cost'])})")
                    for name, e in models
                ),
            )
        )
    if r.get("unpriced_models"):
        facts.append(("Unpriced models", ", ".join(r["unpriced_models"])))
    text = "\n".join([title, "", *(f"{k}: {v}" for k, v in facts)]) + "\n"
    subject = f"[token-budget] Daily report {message.period}: " + (
        f"{r['total_tokens']:,} tokens, {_money(r['total_cost'])}"
    )
    return {"title": title, "facts": facts, "text": text, "subject": ("[test] " if test else "") + subject}


def report_slack_payload(message: ReportMessage, *, test: bool = False) -> dict[str, Any]:
    r = report_summary(message, test=test)
    e = slack_escape
    return _slack_message(r, [
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": e(
                        f"Full report: reports/{message.period}.yaml in the data dir, or "
                        f"`tokens report --date {message.period}`"
                    ),
                }
            ],
        },
    ])


def report_html_body(message: ReportMessage, *, test: bool = False) -> str:
    from html import escape

    r = report_summary(message, test=test)
    facts = "".join(f"<tr><th align=left>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in r["facts"])
    return (
        f"<html><body><h2>{escape(r['title'])}</h2><table>{facts}</table>"
        f"<pre>{escape(message.yaml)}</pre></body></html>"
    )


def slack_body(item: Any, *, test: bool = False) -> dict[str, Any]:
    """The Slack payload for an outbox item: an Alert or a ReportMessage."""
    if isinstance(item, ReportMessage):
        return report_slack_payload(item, test=test)
    return slack_payload(item, test=test)
