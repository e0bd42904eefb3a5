"""The per-request log (`tokens log`): ledger rows in the seed's token_log shape, with running totals."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from .config import Config
from .periods import day_bounds, local_day, zone

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .storage import Storage


def request_key(row: Mapping[str, Any]) -> str:
    """`msg_…:req_…`, or the message id alone when Claude Code wrote no request id."""
    return f"{row['message_id']}:{row['request_id']}" if row["request_id"] else row["message_id"]


def token_counts(row: Mapping[str, Any], classes: tuple[str, ...]) -> dict[str, int]:
    tokens = {
        "input": row["input_tokens"],
        "output": row["output_tokens"],
        "cache_creation": row["cache_creation_5m_tokens"] + row["cache_creation_1h_tokens"],
        "cache_read": row["cache_read_tokens"],
    }
    tokens["total"] = sum(tokens.values())
    tokens["counted"] = sum(tokens[c] for c in classes)
    return tokens


def day_range(config: Config, since: date | None, until: date | None) -> tuple[str | None, str | None]:
    """The UTC bounds of the local days from `since` to `until` (inclusive; None leaves that side open)."""
    tz = zone(config.timezone)
    return (day_bounds(since, tz)[0] if since else None), (day_bounds(until, tz)[1] if until else None)


def log_entries(ledger: Storage, config: Config, *, since: str | None = None, until: str | None = None,
                session: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """The newest `limit` requests (all when None) in the range, oldest first, with cumulative counted tokens."""
    tz = zone(config.timezone)
    rows = ledger.rows(since=since, until=until, session=session, limit=limit, newest_first=True)[::-1]
    classes = config.counted_classes
    running_day: dict[Any, int] = {}
    running_run: dict[Any, int] = {}
    entries = []
    for row in rows:
        tokens = token_counts(row, classes)
        day = local_day(row["timestamp"], tz)
        if day not in running_day:
            start, _ = day_bounds(day, tz)
            running_day[day] = ledger.counted_before(classes, row["timestamp"], row["message_id"], since=start)
        running_day[day] += tokens["counted"]
        run = row["workflow_run_id"]
        if run is not None:
            if run not in running_run:
                running_run[run] = ledger.counted_before(classes, row["timestamp"], row["message_id"], run_id=run)
            running_run[run] += tokens["counted"]
        entries.append({
            "request_id": request_key(row),
            "message_id": row["message_id"],
            "timestamp": row["timestamp"],
            "session_id": row["session_id"],
            "project": row["project"],
            "cwd": row["cwd"],
            "git_branch": row["git_branch"],
            "agent_id": row["agent_id"],
            "agent_type": row["agent_type"],
            "workflow": row["workflow"],
            "phase": row["phase"],
            "model": row["model"],
            "tokens": tokens,
            "cache_creation_5m": row["cache_creation_5m_tokens"],
            "cache_creation_1h": row["cache_creation_1h_tokens"],
            "speed": row["speed"],
            "cost_usd": row["cost_micros"] / 1_000_000,
            "cost_status": row["cost_status"],
            "source": row["source"],
            "cumulative": {"workflow": running_run.get(run) if run is not None else None,
                           "daily": running_day[day]},
        })
    return entries

