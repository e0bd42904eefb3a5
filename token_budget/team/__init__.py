"""Team budgets across machines: one budget for a whole team, kept on a PostgreSQL server.

Nothing here is imported unless the user's own config has a `team:` block. The hook never talks to the server:
it reads the totals the detached sync process (sync.py) last pulled into `cache/team.json` (states.py) and adds
this machine's usage not yet pushed. The server side (schema.py, server.py) needs psycopg 3, the
`token-budget[team]` extra; this module and states.py are standard library only.
"""

from __future__ import annotations

import os
import time

from .._records import record

TYPE_CHECKING = False  # typing costs milliseconds of import on every hook; annotations are strings
if TYPE_CHECKING:
    from typing import Any

    from ..paths import PathLike

DEFAULT_DSN = "$TOKEN_BUDGET_TEAM_DSN"
SYNC_INTERVAL = 15.0  # seconds between syncs while there is activity
MAX_STALENESS = 600.0  # seconds after the last successful sync before on_stale applies
ON_STALE = ("open", "local", "closed")
CACHE_NAME = "team.json"  # under the data dir's cache/
LOCK_NAME = "team-sync.lock"
LOG_NAME = "team.log"
DUE_NAME = "team-sync.due"  # its mtime: when a hook last started (or found running) a sync


@record
class TeamSettings:
    """The user's `team:` block, with defaults. `dsn` is the name of the environment variable holding the DSN."""

    name: str
    dsn_variable: str
    member: str | None = None
    machine: str | None = None
    sync_interval: float = SYNC_INTERVAL
    max_staleness: float = MAX_STALENESS
    on_stale: str = "local"

    @classmethod
    def from_config(cls, config: Any) -> TeamSettings | None:
        team = config.get("team")
        if not isinstance(team, dict) or not team.get("name"):
            return None
        return cls(
            name=str(team["name"]),
            dsn_variable=variable_name(team.get("dsn") or DEFAULT_DSN),
            member=team.get("member") or None,
            machine=team.get("machine") or None,
            sync_interval=float(team.get("sync_interval", SYNC_INTERVAL)),
            max_staleness=float(team.get("max_staleness", MAX_STALENESS)),
            on_stale=str(team.get("on_stale", "local")),
        )

    def dsn(self) -> str:
        """The connection string, from the environment only (the config names the variable)."""
        from ..errors import ConfigError

        value = os.environ.get(self.dsn_variable, "").strip()
        if not value:
            raise ConfigError(f"team.dsn names ${self.dsn_variable}, which is not set in this environment.",
                              f"export {self.dsn_variable}='postgresql://USER@HOST/DB' (the password in the "
                              "variable, PGPASSWORD or ~/.pgpass; never in a config file).")
        return value


def variable_name(reference: str) -> str:
    """`$NAME` or `${NAME}` -> NAME (the schema accepts nothing else for team.dsn)."""
    return reference.strip().lstrip("$").strip("{}")


def cache_path(data_dir: Any) -> str:
    return os.path.join(os.fspath(data_dir), "cache", CACHE_NAME)


def kick(data_dir: PathLike, config: Any, now: float | None = None) -> bool:
    """Start a sync when one is due and none runs. Costs a stat, and at most once per interval a utime, a lock
    probe and a Popen. Returns True when it started one."""
    settings = TeamSettings.from_config(config)
    if settings is None:
        return False
    now = time.time() if now is None else now
    due = os.path.join(os.fspath(data_dir), DUE_NAME)
    try:
        if now - os.stat(due).st_mtime < settings.sync_interval:
            return False
        os.utime(due, (now, now))
    except FileNotFoundError:
        os.close(os.open(due, os.O_WRONLY | os.O_CREAT, 0o600))
    from ..detached import running, spawn

    if running(data_dir, LOCK_NAME):
        return False  # it sees the touched file as activity, and syncs again
    spawn(data_dir, "token_budget.team.sync", LOG_NAME)
    return True


def default_member() -> str:
    """git's user.email, else user@host."""
    import socket
    import subprocess

    try:
        email = subprocess.run(["git", "config", "--global", "user.email"], capture_output=True, text=True,
                               timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        email = ""
    if email:
        return email
    import getpass

    return f"{getpass.getuser()}@{socket.gethostname()}"


def default_machine() -> str:
    import socket

    return socket.gethostname()
