"""The outbox: one delivery row per (alert, channel) and per (daily report, channel with `reports: true`), queued
in the hook's write transaction and worked through by the detached sender (`delivery`). Each alert delivery keeps
how the client that queued it spells commands (`hint_prefix`), so the sender renders them without the adapter.
Standard library only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .channels import Channel, active_channels, report_channels

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .storage import Storage

def enqueue(store: Storage, key: str, threshold: int, chans: Sequence[Channel], *, project_dir: str | None = None,
            now: str, hint_prefix: str | None = None) -> int:
    """One delivery per channel whose threshold the alert reaches; returns how many wait for the sender.
    `hint_prefix`: how the client that queued it spells commands (hints.Hints), rendered in the alert's text.

    Console deliveries are done already: the hook shows the alert as a systemMessage itself.
    """
    waiting = 0
    for channel in active_channels(chans):
        if channel.threshold > threshold:
            continue
        console = channel.type == "console"
        store.enqueue_delivery(key, channel.name, channel.type, json.dumps(channel.spec()), project_dir=project_dir,
                               done=console, now=now, hint_prefix=hint_prefix)
        waiting += 0 if console else 1
    store.mark_enqueued(key)
    return waiting


def enqueue_missing(store: Storage, chans: Sequence[Channel], *, project_dir: str | None, now: str,
                    hint_prefix: str | None = None) -> int:
    """Enqueue deliveries for every claim not yet enqueued (new, or re-armed). Call inside a write transaction."""
    return sum(enqueue(store, key, threshold, chans, project_dir=project_dir, now=now, hint_prefix=hint_prefix)
               for key, threshold in store.alerts_to_enqueue())


def alerts_with_deliveries(store: Storage, *, limit: int | None = None) -> list[dict[str, Any]]:
    """Alerts, newest first, each with its delivery state per channel."""
    return [
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
            "acked_at": acked_at,
            "deliveries": store.deliveries_of(alert.key, "alert"),
        }
        for alert, acked_at in store.list_alerts(limit=limit)
    ]


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


def enqueue_report(
    store: Storage,
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
    store.store_report(key, period, json.dumps(report, ensure_ascii=False), yaml_text, now)
    return sum(store.enqueue_report_delivery(key, channel.name, channel.type, json.dumps(channel.spec()),
                                             project_dir=project_dir, now=now) for channel in targets)


def load_report(store: Storage, key: str) -> ReportMessage | None:
    row = store.stored_report(key)
    return ReportMessage(row[0], row[1], json.loads(row[2]), row[3]) if row else None


def reports_with_deliveries(store: Storage, *, limit: int | None = None) -> list[dict[str, Any]]:
    """Daily reports queued for channels, newest first, with their delivery state per channel."""
    return [{"id": key, "date": period, "created_at": created_at, "deliveries": store.deliveries_of(key, "report")}
            for key, period, created_at in store.stored_reports(limit=limit)]
