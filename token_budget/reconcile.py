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
    import sqlite3
    from collections.abc import Iterable
    from typing import Any

    from .ledger import Ledger
    from .pricing import PriceTable

SOURCE = "reconciled"
CLASSES = ("input_tokens", "output_tokens", "cache_creation_5m_tokens", "cache_creation_1h_tokens",
           "cache_read_tokens")
_SUMS = ", ".join(f"SUM({c})" for c in CLASSES)
_ZERO = (0, 0, 0, 0, 0)


def store_totals(db: sqlite3.Connection, totals: Iterable[ClientTotals], now: str) -> set[str]:
    """Record snapshots; returns the sessions that got a new one. The same figures are the same snapshot."""
    fresh: set[str] = set()
    for t in totals:
        fingerprint = f"{t.total_cost_micros}|" + ";".join(",".join(map(str, m)) for m in t.models)
        usage = jsonlite.dumps({m[0]: list(m[1:]) for m in t.models})
        cursor = db.execute(
            "INSERT OR IGNORE INTO client_totals (session_id, fingerprint, taken_at, total_cost_micros, model_usage, "
            "unknown_model_cost, path, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (t.session_id, fingerprint, t.taken_at, t.total_cost_micros, usage, int(t.unknown_model_cost), t.path,
             now),
        )
        if cursor.rowcount:
            fresh.add(t.session_id)
    return fresh


def figures_since(db: sqlite3.Connection, earliest: dict[str, str]) -> set[str]:
    """The sessions whose latest figures were written at or after the given time (their earliest new row)."""
    found: set[str] = set()
    sessions = sorted(earliest)
    for start in range(0, len(sessions), 400):
        chunk = sessions[start : start + 400]
        marks = ",".join("?" * len(chunk))
        for session, latest in db.execute(f"SELECT session_id, MAX(taken_at) FROM client_totals "
                                          f"WHERE session_id IN ({marks}) GROUP BY session_id", chunk):
            if latest >= earliest[session]:
                found.add(session)
    return found


def reconcile(ledger: Ledger, sessions: Iterable[str | None], prices: PriceTable | None, now: str) -> int:
    """Reconcile each of `sessions` that has client figures, and the sessions sharing requests with them (a fork
    read before its parent is corrected once the parent's figures arrive). Returns how many were checked."""
    wanted = sorted({s for s in sessions if s})
    if not wanted:
        return 0
    db = ledger.db
    related: set[str] = set()
    for start in range(0, len(wanted), 400):
        chunk = wanted[start : start + 400]
        marks = ",".join("?" * len(chunk))
        related.update(r[0] for r in db.execute(
            f"SELECT DISTINCT session_id FROM client_totals WHERE session_id IN ({marks})", chunk))
        related.update(r[0] for r in db.execute(
            f"SELECT DISTINCT session_id FROM shared_requests WHERE owner_session IN ({marks}) "
            f"UNION SELECT DISTINCT owner_session FROM shared_requests WHERE session_id IN ({marks})", chunk + chunk))
    checked = 0
    for session in sorted(related):
        if session and reconcile_session(ledger, session, prices, now):
            checked += 1
    return checked


def _snapshots(db: sqlite3.Connection, session: str) -> list[tuple[str, int, dict[str, list[int]], int]]:
    """(taken_at, total cost, {model: [5 classes, cost]}, unknown model cost) in the order they were taken."""
    rows = db.execute("SELECT taken_at, total_cost_micros, model_usage, unknown_model_cost FROM client_totals "
                      "WHERE session_id = ? ORDER BY taken_at, total_cost_micros", (session,)).fetchall()
    return [(r[0], r[1], jsonlite.loads(r[2]), r[3]) for r in rows]


def _size(snapshot: tuple[str, int, dict[str, list[int]], int]) -> tuple[int, int]:
    return snapshot[1], sum(sum(v[:5]) for v in snapshot[2].values())


def _first_after(snapshots: list[Any], moment: str) -> Any:
    return next((s for s in snapshots if s[0] >= moment), None)


def _parent(db: sqlite3.Connection, session: str, own: list[Any]) -> tuple[str, Any, str] | None:
    """(parent session, its snapshot when forked, the last copied request's timestamp) for a fork, else None.

    Two sessions that hold copies of the same requests: the parent is the one whose figures were written right
    after the last shared request; the fork's first figures come only after its own first turn."""
    shared = db.execute(
        "SELECT s.owner_session, MAX(r.timestamp) FROM shared_requests s JOIN requests r ON r.message_id = "
        "s.message_id WHERE s.session_id = ? AND s.owner_session IS NOT NULL GROUP BY s.owner_session "
        "UNION ALL SELECT s.session_id, MAX(r.timestamp) FROM shared_requests s JOIN requests r "
        "ON r.message_id = s.message_id WHERE s.owner_session = ? GROUP BY s.session_id",
        (session, session),
    ).fetchall()
    best: tuple[str, Any, str] | None = None
    for other, last_shared in shared:
        theirs = _first_after(_snapshots(db, other), last_shared)
        mine = _first_after(own, last_shared)
        if theirs is None or (mine is not None and mine[0] <= theirs[0]):
            continue  # no figures for the other session yet, or it is the fork of this one
        if best is None or last_shared > best[2]:
            best = (other, theirs, last_shared)
    return best


def _return_copies(db: sqlite3.Connection, fork: str, parent: str, cut: str) -> None:
    """Requests the fork copied from its parent belong to the parent, whichever file was read first: rows the fork
    took (its file read first) go back, and the fork keeps them as copies."""
    taken = [r[0] for r in db.execute(
        "SELECT r.message_id FROM shared_requests s JOIN requests r ON r.message_id = s.message_id "
        "WHERE s.owner_session = ? AND s.session_id = ? AND r.timestamp <= ? AND r.source != ?",
        (fork, parent, cut, SOURCE))]
    for message_id in taken:
        db.execute("UPDATE requests SET session_id = ? WHERE message_id = ?", (parent, message_id))
        db.execute("DELETE FROM shared_requests WHERE message_id = ? AND session_id = ?", (message_id, parent))
        db.execute("UPDATE shared_requests SET owner_session = ? WHERE message_id = ?", (parent, message_id))
        db.execute("INSERT OR IGNORE INTO shared_requests (message_id, session_id, owner_session) VALUES (?, ?, ?)",
                   (message_id, fork, parent))


def _ledger_figures(db: sqlite3.Connection, session: str, cut: str | None,
                    upto: str) -> tuple[dict[str, list[int]], int]:
    """{model: [5 classes, cost, requests]} of the session's own requests up to the figures' time `upto`
    (subagents included, rows another session owns but this one's files hold included, the fork's copied
    requests up to `cut` left out). A request made after the figures were written is not in them yet."""
    copied = ("AND NOT (timestamp <= :cut AND (session_id IS NOT :s OR message_id IN "
              "(SELECT message_id FROM shared_requests)))") if cut else ""
    rows = db.execute(
        f"SELECT model, {_SUMS}, SUM(cost_micros), COUNT(*) FROM requests WHERE source != 'reconciled' AND "
        f"(session_id = :s OR message_id IN (SELECT message_id FROM shared_requests WHERE session_id = :s)) "
        f"AND timestamp <= :upto {copied} GROUP BY model",
        {"s": session, "cut": cut, "upto": upto},
    ).fetchall()
    figures = {r[0]: [v or 0 for v in r[1:]] for r in rows}
    return figures, sum(v[6] for v in figures.values())


def reconcile_session(ledger: Ledger, session: str, prices: PriceTable | None, now: str) -> bool:
    """Bring the session's reconciled rows to the positive remainder and record the result. False when the
    client wrote no figures for it."""
    db = ledger.db
    snapshots = _snapshots(db, session)
    if not snapshots:
        return False
    latest = max(snapshots, key=_size)
    parent = _parent(db, session, snapshots)
    if parent:
        _return_copies(db, session, parent[0], parent[2])
    inherited = parent[1][2] if parent else {}
    ours, requests = _ledger_figures(db, session, parent[2] if parent else None, latest[0])
    held = {r[0]: (list(r[1:6]), r[6]) for r in db.execute(
        f"SELECT model, {_SUMS}, COUNT(*) FROM requests WHERE session_id = ? AND source = 'reconciled' "
        "GROUP BY model", (session,))}
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
    place = db.execute("SELECT project, cwd, git_branch FROM requests WHERE session_id = ? AND source != ? "
                       "ORDER BY timestamp DESC LIMIT 1", (session, SOURCE)).fetchone() or (None, None, None)
    for model, target in targets.items():
        have, count = held.get(model, (list(_ZERO), 0))
        delta = [t - h for t, h in zip(target, have, strict=True)]
        if not any(delta):
            continue
        if min(delta) < 0:  # a late transcript line covered part of it: start the model's rows over
            db.execute("DELETE FROM requests WHERE session_id = ? AND model = ? AND source = ?",
                       (session, model, SOURCE))
            delta = target
        if any(delta):
            _add_row(ledger, session, model, delta, latest[0], place, count + 1, prices)
    reconciled, cost = {}, 0
    for row in db.execute(f"SELECT model, {_SUMS}, SUM(cost_micros) FROM requests WHERE session_id = ? AND "
                          "source = ? GROUP BY model", (session, SOURCE)):
        reconciled[row[0]] = list(row[1:6])
        cost += row[6]
    client_cost = latest[1] - (parent[1][1] if parent else 0)
    ledger_cost = sum(v[5] for v in ours.values()) + cost
    db.execute(
        "INSERT INTO reconciliations (session_id, checked_at, taken_at, parent_session, client_cost_micros, "
        "ledger_cost_micros, requests, reconciled_cost_micros, reconciled_tokens, above, unknown_model_cost) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (session_id) DO UPDATE SET "
        "checked_at = excluded.checked_at, taken_at = excluded.taken_at, parent_session = excluded.parent_session, "
        "client_cost_micros = excluded.client_cost_micros, ledger_cost_micros = excluded.ledger_cost_micros, "
        "requests = excluded.requests, reconciled_cost_micros = excluded.reconciled_cost_micros, "
        "reconciled_tokens = excluded.reconciled_tokens, above = excluded.above, "
        "unknown_model_cost = excluded.unknown_model_cost",
        (session, now, latest[0], parent[0] if parent else None, client_cost, ledger_cost, requests, cost,
         jsonlite.dumps(reconciled), jsonlite.dumps(above), latest[3]),
    )
    return True


def _add_row(ledger: Ledger, session: str, model: str, counts: list[int], when: str, place: tuple[Any, ...],
             n: int, prices: PriceTable | None) -> None:
    message_id = f"{SOURCE}:{session}:{model}:{n}"
    while ledger.db.execute("SELECT 1 FROM requests WHERE message_id = ?", (message_id,)).fetchone():
        n += 1
        message_id = f"{SOURCE}:{session}:{model}:{n}"
    event = UsageEvent(message_id, when, model, *counts, session_id=session, project=place[0], cwd=place[1],
                       git_branch=place[2])
    ledger.record([event], source=SOURCE, prices=prices)
    if prices is not None:
        # A sum of several requests: the long-context premium applies per request, and the client's figures do
        # not say which were long, so the sum is priced at base rates (auxiliary requests are short).
        cost = prices.cost(event, per_request=False)
        ledger.db.execute("UPDATE requests SET cost_micros = ?, cost_status = ? WHERE message_id = ?",
                          (cost.micros, cost.status, message_id))


def summary(db: sqlite3.Connection, *, start: str | None = None, end: str | None = None,
            tolerance_per_request: int = 1) -> dict[str, Any]:
    """What `tokens doctor` and reports show: sessions checked, drift beyond rounding, what was added, and the
    sessions where the ledger is above the client's own figure; with `start`/`end`, the sessions whose latest
    figures were written in [start, end)."""
    where, args = "", []
    if start is not None and end is not None:
        where, args = " WHERE taken_at >= ? AND taken_at < ?", [start, end]
    rows = db.execute("SELECT session_id, checked_at, taken_at, parent_session, client_cost_micros, "
                      "ledger_cost_micros, requests, reconciled_cost_micros, reconciled_tokens, above, "
                      f"unknown_model_cost FROM reconciliations{where} ORDER BY taken_at", args).fetchall()
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
