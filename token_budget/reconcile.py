"""Reconciliation with the client's own totals, so budgets and reports count every billed token.

Some requests are in no transcript (Claude Code's session titles, classifiers, prompt and agent hooks), but the
client keeps cumulative figures per session and model that include them (Claude Code's cost-state line). After
each ingest, every session whose figures or rows changed is compared with the ledger, per model and token class:

- what the client counted and the ledger did not becomes auxiliary rows (source 'reconciled', the client's model
  and classes, priced from the price table), kept so that they always add up to the positive remainder: written
  once however often files are re-read, re-adjusted if a late transcript line arrives, never negative;
- where the ledger is above the client's figure nothing is taken away: it is reported, as a bug to find;
- a fork (or /branch) copies its parent's lines and starts from its parent's figures: the parent's snapshot taken
  right after the last copied request is subtracted from the fork's, and the copied requests from its rows, so
  nothing is counted twice.

Standard library only and no Claude Code knowledge: the hook runs it after ingesting.
"""

from __future__ import annotations

from . import jsonlite
from .models import ClientTotals, UsageEvent

TYPE_CHECKING = False  # typing costs milliseconds of import on every hook; annotations are strings
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    from .pricing import PriceTable
    from .storage import Storage

SOURCE = "reconciled"
_ZERO = (0, 0, 0, 0, 0)


def store_totals(store: Storage, totals: Iterable[ClientTotals], now: str) -> set[str]:
    """Record snapshots; returns the sessions that got a new one. The same figures are the same snapshot."""
    fresh: set[str] = set()
    for t in totals:
        fingerprint = f"{t.total_cost_micros}|" + ";".join(",".join(map(str, m)) for m in t.models)
        usage = jsonlite.dumps({m[0]: list(m[1:]) for m in t.models})
        if store.add_client_totals(t.session_id, fingerprint, t.taken_at, t.total_cost_micros, usage,
                                   t.unknown_model_cost, t.path, now):
            fresh.add(t.session_id)
    return fresh


def reconcile(ledger: Storage, sessions: Iterable[str | None], prices: PriceTable | None, now: str) -> int:
    """Reconcile each of `sessions` that has client figures, and the sessions sharing requests with them (a fork
    read before its parent is corrected once the parent's figures arrive). Returns how many were checked."""
    wanted = sorted({s for s in sessions if s})
    if not wanted:
        return 0
    checked = 0
    for session in sorted(ledger.sessions_to_reconcile(wanted)):
        if session and reconcile_session(ledger, session, prices, now):
            checked += 1
    return checked


def _snapshots(store: Storage, session: str) -> list[tuple[str, int, dict[str, list[int]], int]]:
    """(taken_at, total cost, {model: [5 classes, cost]}, unknown model cost) in the order they were taken."""
    return [(r[0], r[1], jsonlite.loads(r[2]), r[3]) for r in store.client_snapshots(session)]


def _size(snapshot: tuple[str, int, dict[str, list[int]], int]) -> tuple[int, int]:
    return snapshot[1], sum(sum(v[:5]) for v in snapshot[2].values())


def _first_after(snapshots: list[Any], moment: str) -> Any:
    return next((s for s in snapshots if s[0] >= moment), None)


def _parent(store: Storage, session: str, own: list[Any]) -> tuple[str, Any, str] | None:
    """(parent session, its snapshot when forked, the last copied request's timestamp) for a fork, else None.

    Two sessions that hold copies of the same requests: the parent is the one whose figures were written right
    after the last shared request; the fork's first figures come only after its own first turn."""
    best: tuple[str, Any, str] | None = None
    for other, last_shared in store.shared_with(session):
        theirs = _first_after(_snapshots(store, other), last_shared)
        mine = _first_after(own, last_shared)
        if theirs is None or (mine is not None and mine[0] <= theirs[0]):
            continue  # no figures for the other session yet, or it is the fork of this one
        if best is None or last_shared > best[2]:
            best = (other, theirs, last_shared)
    return best


def reconcile_session(ledger: Storage, session: str, prices: PriceTable | None, now: str) -> bool:
    """Bring the session's reconciled rows to the positive remainder and record the result. False when the
    client wrote no figures for it."""
    snapshots = _snapshots(ledger, session)
    if not snapshots:
        return False
    latest = max(snapshots, key=_size)
    parent = _parent(ledger, session, snapshots)
    if parent:
        # Requests the fork copied from its parent belong to the parent, whichever file was read first: rows the
        # fork took (its file read first) go back, and the fork keeps them as copies.
        ledger.return_copies(session, parent[0], parent[2])
    inherited = parent[1][2] if parent else {}
    # {model: [5 classes, cost, requests]} of the session's own requests up to the figures' time (subagents
    # included, rows another session owns but this one's files hold included, the fork's copied requests up to
    # the cut left out). A request made after the figures were written is not in them yet.
    ours = ledger.session_figures(session, parent[2] if parent else None, latest[0])
    requests = sum(v[6] for v in ours.values())
    held = {model: (v[:5], v[6]) for model, v in ledger.reconciled_figures(session).items()}
    above: dict[str, list[int]] = {}
    targets: dict[str, list[int]] = {}
    for model in sorted({*latest[2], *ours, *held}):
        client = latest[2].get(model, [0] * 6)
        before = inherited.get(model, [0] * 6)
        mine = ours.get(model, [0] * 7)
        own_share = [max(client[i] - before[i], 0) for i in range(5)]
        targets[model] = [max(own_share[i] - mine[i], 0) for i in range(5)]
        over = [max(mine[i] - own_share[i], 0) for i in range(5)]
        if any(over):
            above[model] = over
    place = ledger.session_place(session)
    for model, target in targets.items():
        have, count = held.get(model, (list(_ZERO), 0))
        delta = [t - h for t, h in zip(target, have, strict=True)]
        if not any(delta):
            continue
        if min(delta) < 0:  # a late transcript line covered part of it: start the model's rows over
            ledger.drop_reconciled(session, model)
            delta = target
        if any(delta):
            _add_row(ledger, session, model, delta, latest[0], place, count + 1, prices)
    reconciled, cost = {}, 0
    for model, figures in ledger.reconciled_figures(session).items():
        reconciled[model] = figures[:5]
        cost += figures[5]
    client_cost = latest[1] - (parent[1][1] if parent else 0)
    ledger_cost = sum(v[5] for v in ours.values()) + cost
    ledger.record_reconciliation(
        session, checked_at=now, taken_at=latest[0], parent_session=parent[0] if parent else None,
        client_cost_micros=client_cost, ledger_cost_micros=ledger_cost, requests=requests,
        reconciled_cost_micros=cost, reconciled_tokens=jsonlite.dumps(reconciled), above=jsonlite.dumps(above),
        unknown_model_cost=latest[3])
    return True


def _add_row(ledger: Storage, session: str, model: str, counts: list[int], when: str, place: tuple[Any, ...],
             n: int, prices: PriceTable | None) -> None:
    message_id = f"{SOURCE}:{session}:{model}:{n}"
    while ledger.has_request(message_id):
        n += 1
        message_id = f"{SOURCE}:{session}:{model}:{n}"
    event = UsageEvent(message_id, when, model, *counts, session_id=session, project=place[0], cwd=place[1],
                       git_branch=place[2])
    ledger.record([event], source=SOURCE, prices=prices)
    if prices is not None:
        # A sum of several requests: the long-context premium applies per request, and the client's figures do
        # not say which were long, so the sum is priced at base rates (auxiliary requests are short).
        cost = prices.cost(event, per_request=False)
        ledger.set_cost(message_id, cost.micros, cost.status)


def summary(store: Storage, *, start: str | None = None, end: str | None = None,
            tolerance_per_request: int = 1) -> dict[str, Any]:
    """What `tokens doctor` and reports show: sessions checked, drift beyond rounding, what was added, and the
    sessions where the ledger is above the client's own figure; with `start`/`end`, the sessions whose latest
    figures were written in [start, end)."""
    rows = store.reconciliations(start=start, end=end)
    drift, above, added_tokens, added_cost = [], [], 0, 0
    for (session, _checked, taken, parent, client, ledger_cost, requests, rec_cost, rec_tokens, over,
         unknown) in rows:
        tokens = sum(sum(v) for v in jsonlite.loads(rec_tokens).values())
        added_tokens += tokens
        added_cost += rec_cost
        difference = ledger_cost - client
        if abs(difference) > tolerance_per_request * (requests + 1):
            drift.append({"session_id": session, "taken_at": taken, "client_cost_usd": client / 1e6,
                          "ledger_cost_usd": ledger_cost / 1e6, "difference_usd": difference / 1e6,
                          "unknown_model_cost": bool(unknown), "fork_of": parent})
        over_models = jsonlite.loads(over)
        if over_models:
            above.append({"session_id": session, "taken_at": taken, "fork_of": parent,
                          "above": {m: dict(zip(("input", "output", "cache_creation_5m", "cache_creation_1h",
                                                 "cache_read"), v, strict=True)) for m, v in over_models.items()}})
    return {"sessions_checked": len(rows), "reconciled_tokens": added_tokens,
            "reconciled_cost_usd": round(added_cost / 1e6, 6), "drift": drift, "ledger_above_client": above}
