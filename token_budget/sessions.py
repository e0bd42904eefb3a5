"""Which session a command means when the user names none: the one given, else the one the caller is running in,
else the session of the latest recorded request."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .storage import Storage


def resolve_session(store: Storage, *candidates: tuple[str | None, str]) -> tuple[str, str] | None:
    """(session id, where it came from): the first candidate (id, source) with an id, else the latest recorded
    request's session; None when there is none."""
    for session, source in candidates:
        if session:
            return session, source
    latest = store.latest_session()
    return (latest, "the latest recorded request") if latest else None
