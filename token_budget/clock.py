"""The one clock: every "now" in token-budget comes from here, so tests can set it and no result depends on the
day a test happens to run."""

from __future__ import annotations

from .lean_datetime import datetime, timezone


def now() -> datetime:
    return datetime.now(timezone.utc)


def timestamp(moment: datetime | None = None) -> str:
    """The one timestamp format of the ledger, `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC, milliseconds, as Claude Code's
    transcripts): one fixed width, so timestamps compare as text in the order of time. Defaults to now."""
    return (moment or now()).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
