"""What Slack and email say: an alert's content (the seed's Alert Format, with the exact commands that acknowledge
or adjust it) and the daily report's summary, as text, Slack Block Kit and HTML.

The commands are spelled for the terminal (`tokens …`) and, when the client that queued the delivery stored its
own spelling (`prefix`, e.g. the slash command of the install route), for that client too: the sender renders
without loading any client adapter. Standard library only.
"""

from __future__ import annotations

from typing import Any

from .models import Alert

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .outbox import ReportMessage

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


def commands(alert: Alert, prefix: str | None = None) -> dict[str, str]:
    """The exact commands that acknowledge or adjust this alert in a shell, and (`prefix`: how the client that
    queued the alert spells commands, the slash command of its install route in Claude Code) in that client."""
    from .hints import Hints

    terminal = Hints()
    cmds = {"ack": terminal.ack(alert.key), "budget": terminal.raise_budget(alert.scope, alert.used, alert.limit)}
    if prefix:
        client = Hints(prefix)
        cmds.update(slash_ack=client.ack(alert.key),
                    slash_budget=client.raise_budget(alert.scope, alert.used, alert.limit))
    return cmds


def _in_client(cmds: dict[str, str], name: str, quote: Any = str) -> str:
    """`   (in Claude Code: …)` after a terminal command, when the alert's client spelled its own."""
    spelled = cmds.get(f"slash_{name}")
    return f" (in Claude Code: {quote(spelled)})" if spelled else ""


def _amounts(alert: Alert) -> tuple[str, str, str]:
    """(usage, what is left, unit suffix): tokens, or a subscription window's percentage points."""
    from .windows import SCALE, WINDOWS

    if alert.scope in WINDOWS:
        return (f"{alert.used / SCALE:.1f}% / {alert.limit / SCALE:g}% of the {WINDOWS[alert.scope]}",
                f"{max(alert.limit - alert.used, 0) / SCALE:.1f} points of the window", "")
    return f"{alert.used:,} / {alert.limit:,}", f"{max(alert.limit - alert.used, 0):,} tokens", " tokens"


def _pct(value: float) -> str:
    return f"{value:g}%"


def alert_content(alert: Alert, *, test: bool = False, prefix: str | None = None) -> dict[str, Any]:
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
    cmds = commands(alert, prefix)
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
                f"- Acknowledge: {cmds['ack']}  {_in_client(cmds, 'ack')}".rstrip(),
                f"- Adjust: {cmds['budget']}  {_in_client(cmds, 'budget')}".rstrip(),
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


def slack_payload(alert: Alert, *, test: bool = False, prefix: str | None = None) -> dict[str, Any]:
    """Slack's incoming-webhook JSON: `text` (notifications, fallbacks) and Block Kit `blocks`."""
    r = alert_content(alert, test=test, prefix=prefix)
    e, cmds = slack_escape, r["commands"]

    def code(text: str) -> str:
        return f"`{e(text)}`"

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
                    f"Acknowledge: {code(cmds['ack'])}{_in_client(cmds, 'ack', code)}\n"
                    f"Adjust: {code(cmds['budget'])}{_in_client(cmds, 'budget', code)}"
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


def html_body(alert: Alert, *, test: bool = False, prefix: str | None = None) -> str:
    from html import escape

    def code(text: str) -> str:
        return f"<code>{escape(text)}</code>"

    r = alert_content(alert, test=test, prefix=prefix)
    facts = "".join(f"<tr><th align=left>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in r["facts"])
    recs = "".join(f"<li>{escape(x)}</li>" for x in r["recommendations"])
    cmds = r["commands"]
    return (
        f"<html><body><h2>{escape(r['title'])}</h2><table>{facts}</table>"
        f"<p><b>Recommendation:</b></p><ul>{recs}</ul><p><b>Action Required: Acknowledge or Adjust</b></p><ul>"
        f"<li>Acknowledge: {code(cmds['ack'])}{_in_client(cmds, 'ack', code)}</li>"
        f"<li>Adjust: {code(cmds['budget'])}{_in_client(cmds, 'budget', code)}</li></ul></body></html>"
    )


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


def slack_body(item: Any, *, test: bool = False, prefix: str | None = None) -> dict[str, Any]:
    """The Slack payload for an outbox item: an Alert or a ReportMessage (`kind` "report")."""
    if getattr(item, "kind", None) == "report":
        return report_slack_payload(item, test=test)
    return slack_payload(item, test=test, prefix=prefix)
