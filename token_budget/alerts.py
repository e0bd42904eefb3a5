"""Alerts: claimed once per (scope, threshold, period) in the ledger database, then delivered through channels.

A hook only claims (`Storage.claim_alert`) and enqueues; delivery happens elsewhere, so a slow webhook never slows
a hook. This module holds what `tokens ack` does beyond the store's acknowledge.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .storage import Storage


def acknowledge_alerts(store: Storage, key: str | None, now: str) -> int:
    """`tokens ack [KEY]`: acknowledge one open alert, or every one, each recorded as a control event (who acked
    what). An unknown key is an error that lists the open ones. Returns how many were acknowledged."""
    from .controls import actor, record_change, shown_already
    from .errors import TokenBudgetError
    from .hints import Hints

    if key:
        key = key.replace("|", "/")  # ids from before 0.2 were written with `|`
    if key and store.load_alert(key) is None:
        recent = store.open_alert_keys(limit=5)
        raise TokenBudgetError(f"No alert {key!r}.",
                               "Alert ids look like daily/100/2026-11-28; open ones: " + (", ".join(recent) or "none")
                               + f". Run `{Hints.current().ack()}` to acknowledge every open alert.")
    keys = store.open_alert_keys(key=key)
    count = store.acknowledge(key, now)
    for acked in keys:
        scope, threshold, _ = acked.rsplit("/", 2)
        record_change(store, kind="ack", subject=f"the {threshold}% alert of the {scope} budget ({acked})", old=None,
                      new=acked, who=actor(), created_at=now, shown=shown_already(), scope=scope)
    return count
