"""Workflow runs: a named stretch of a session (a trigger command the adapter recognises, `tokens workflow start`, or
$TOKEN_BUDGET_WORKFLOW) that every request in it is attributed to, with its current phase.

A run ends with `tokens workflow end`, another run's start in the same session, or the session's end. The ledger
attributes each request to the run open at its timestamp (Ledger._row); the phase a request records is the run's
phase when the request was recorded, which the hooks do at every event. Standard library only (the hook uses it).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs milliseconds of import on every hook; annotations are strings
if TYPE_CHECKING:
    from typing import Any

    from .config import Config
    from .storage import Storage

PRIORITIES = ("critical", "normal", "low")


def set_phase(store: Storage, session_id: str, phase: str) -> dict[str, Any] | None:
    """Set the phase of the session's open run; the run as it is now, None when the session has none open."""
    runs = store.active_runs(session_id)
    if not runs:
        return None
    store.set_run_phase(runs[0]["id"], phase)
    return {**runs[0], "phase": phase}


def priority(config: Config, name: str) -> str:
    value = config.get("workflows", name, "priority", default="normal")
    return value if value in PRIORITIES else "normal"


def workflow_for_command(config: Config, command: str) -> str | None:
    """The configured workflow that `command` (a name in its `commands`, or its own name) triggers, if any."""
    for name, spec in (config.get("workflows", default={}) or {}).items():
        commands = (spec or {}).get("commands") or [name]
        if command in commands or command == name:
            return name
    return None
