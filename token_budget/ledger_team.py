"""The team spool in the ledger: the SQLite backend of storage.TeamSpool (the triggers of migration m014 mark
written requests). Part of ledger.py's Ledger, loaded at the first use of one of these methods, in team mode only
(ledger._DefinedIn). Each function is a Ledger method; its contract is in storage.py."""

from __future__ import annotations

from .lean_sqlite import dict_rows

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

# The sums of the team spool's usage, in the order storage.TeamSpool.unpushed_usage states (team/states.py's SUMS).
SPOOL_SUMS = ("input_tokens", "output_tokens", "cache_creation_5m_tokens", "cache_creation_1h_tokens",
               "cache_read_tokens", "cost_micros")
# The spool's usage grouped by model, workflow and whether in the day and the month: as its requests are now (the
# spool rows' own figures), and as the server has those that grew after a push (team_pushed, for those rows only).
SPOOL_GROUP = ("SELECT x.model, COALESCE(x.workflow, ''), x.timestamp >= ? AND x.timestamp < ?, "
                "x.timestamp >= ? AND x.timestamp < ?, " + ", ".join(f"SUM(x.{c})" for c in SPOOL_SUMS)
                + " FROM {source} WHERE x.timestamp >= ? AND x.timestamp < ? GROUP BY 1, 2, 3, 4")
SPOOL_NOW = SPOOL_GROUP.format(source="team_unpushed x")
SPOOL_PUSHED = SPOOL_GROUP.format(source="team_unpushed u CROSS JOIN team_pushed x ON x.message_id = u.message_id "
                                           "AND u.pushed")


def team_link(self) -> tuple[str, str, str] | None:
    return self.db.execute("SELECT team, server, member FROM team_link").fetchone()


def link_team(self, team: str, server: str, member: str, since: str, now: str) -> None:
    with self.transaction() as db:
        for table in ("team_link", "team_unpushed", "team_pushed", "team_claims"):
            db.execute(f"DELETE FROM {table}")
        db.execute("INSERT INTO team_link (id, team, server, member, since, linked_at) VALUES (1, ?, ?, ?, ?, ?)",
                   (team, server, member, since, now))
        from .migrations import SPOOL_FIGURES, create_team_spool_triggers

        create_team_spool_triggers(db)  # from now on every written request is spooled (m017)

        figures = ", ".join(SPOOL_FIGURES)
        db.execute(f"INSERT OR IGNORE INTO team_unpushed (message_id, {figures}) SELECT message_id, {figures} "
                   "FROM requests WHERE timestamp >= ?", (since,))


def unpushed_rows(self, after: str, limit: int) -> list[dict[str, Any]]:
    rows = dict_rows(self.db.execute(
        "SELECT r.message_id, r.timestamp AS ts, r.model, COALESCE(r.workflow, '') AS workflow, r.session_id, "
        "r.project, r.is_sidechain, r.input_tokens, r.output_tokens, r.cache_creation_5m_tokens, "
        "r.cache_creation_1h_tokens, r.cache_read_tokens, r.total_tokens, r.cost_micros FROM team_unpushed u "
        "JOIN requests r ON r.message_id = u.message_id WHERE u.message_id > ? ORDER BY u.message_id LIMIT ?",
        (after, limit)))
    for row in rows:
        row["is_sidechain"] = bool(row["is_sidechain"])
    return rows


def mark_pushed(self, rows: Sequence[Mapping[str, Any]], now: str) -> None:
    if not rows:
        return
    pushed = [(r["message_id"], r["ts"], r["model"], r["workflow"], int(r["is_sidechain"]), r["input_tokens"],
               r["output_tokens"], r["cache_creation_5m_tokens"], r["cache_creation_1h_tokens"],
               r["cache_read_tokens"], r["total_tokens"], r["cost_micros"]) for r in rows]
    with self.transaction() as db:
        db.executemany(
            "INSERT OR REPLACE INTO team_pushed (message_id, timestamp, model, workflow, is_sidechain, "
            "input_tokens, output_tokens, cache_creation_5m_tokens, cache_creation_1h_tokens, cache_read_tokens, "
            "total_tokens, cost_micros, pushed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(*row, now) for row in pushed])
        # unmarked only if the request is still what was pushed (a line that grew since was marked again)
        db.executemany(
            "DELETE FROM team_unpushed WHERE message_id = ? AND EXISTS (SELECT 1 FROM requests r WHERE "
            "r.message_id = ? AND r.timestamp = ? AND r.model = ? AND COALESCE(r.workflow, '') = ? AND "
            "r.is_sidechain = ? AND r.input_tokens = ? AND r.output_tokens = ? AND r.cache_creation_5m_tokens = ? "
            "AND r.cache_creation_1h_tokens = ? AND r.cache_read_tokens = ? AND r.total_tokens = ? AND "
            "r.cost_micros = ?)",
            [(row[0], *row) for row in pushed])
        # a request that grew meanwhile stays spooled: the server now has an earlier version of it
        db.executemany("UPDATE team_unpushed SET pushed = 1 WHERE message_id = ?", [(row[0],) for row in pushed])


def unpushed_usage(self, day: tuple[str, str], month: tuple[str, str]) -> list[tuple[Any, ...]]:
    (d0, d1), (m0, m1) = day, month
    args = (d0, d1, m0, m1, min(d0, m0), max(d1, m1))
    # The spool's own figures (m016: no lookup per row), less what the server has of the requests that grew
    # after a push; merged here, as two plain grouped queries prepare faster than one over a UNION ALL.
    groups: dict[tuple[Any, ...], list[int]] = {}
    for query, sign in ((SPOOL_NOW, 1), (SPOOL_PUSHED, -1)):
        for model, workflow, in_day, in_month, *sums in self.db.execute(query, args):
            into = groups.setdefault((model, workflow, in_day, in_month), [0] * len(SPOOL_SUMS))
            for i, value in enumerate(sums):
                into[i] += sign * (value or 0)
    return [(*key, *sums) for key, sums in sorted(groups.items())]


def unpushed_count(self) -> int:
    return self.db.execute(
        "SELECT COUNT(*) FROM team_unpushed u JOIN requests r ON r.message_id = u.message_id").fetchone()[0]


def has_unpushed(self) -> bool:
    return self.db.execute("SELECT EXISTS (SELECT 1 FROM team_unpushed u JOIN requests r "
                           "ON r.message_id = u.message_id)").fetchone()[0] == 1


def unclaimed_team_alerts(self) -> list[tuple[str, int, int]]:
    return self.db.execute(
        "SELECT a.key, a.threshold, a.limit_tokens FROM alerts a WHERE a.scope LIKE 'team:%' AND NOT EXISTS "
        "(SELECT 1 FROM team_claims c WHERE c.key = a.key AND c.limit_tokens = a.limit_tokens)").fetchall()


def record_team_claim(self, key: str, limit_tokens: int, won: bool, now: str) -> None:
    self.db.execute("INSERT OR IGNORE INTO team_claims (key, limit_tokens, outcome, decided_at) "
                    "VALUES (?, ?, ?, ?)", (key, limit_tokens, "won" if won else "lost", now))
