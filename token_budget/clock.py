"""The one clock: every "now" in token-budget comes from here, so tests can set it and no result depends on the
day a test happens to run."""

from __future__ import annotations

from datetime import datetime, timezone


def now() -> datetime:
    return datetime.now(timezone.utc)
