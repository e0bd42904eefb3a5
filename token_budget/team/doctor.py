"""`tokens team doctor`: each step between this machine and its team's totals, checked in order, saying what to fix."""

from __future__ import annotations

import os

from .. import clock
from . import TeamSettings

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def checks(data_dir: Any, config: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def add(name: str, ok: bool, detail: str) -> bool:
        out.append({"name": name, "ok": ok, "detail": detail})
        return ok

    settings = TeamSettings.from_config(config)
    if not add("config", settings is not None,
               f"team {settings.name}" if settings else "no team: block in your own token_budgets.yaml"):
        return out
    assert settings is not None
    if not add("credentials", bool(os.environ.get(settings.dsn_variable)),
               f"${settings.dsn_variable} is set" if os.environ.get(settings.dsn_variable)
               else f"${settings.dsn_variable} is not set in this environment"):
        return out
    try:
        import psycopg  # noqa: F401
    except ImportError:
        add("driver", False, "psycopg is missing: pip install 'token-budget[team]'")
        return out
    add("driver", True, f"psycopg {psycopg.__version__}")
    from .server import TeamServer, TeamServerError, connection_params

    try:
        params = connection_params(settings.dsn())
        add("tls", True, f"sslmode={params.get('sslmode') or 'default (loopback or a local socket)'}")
        with TeamServer.connect(settings) as server:
            role = server.current_role()
            add("server", True, f"reached as {role}")
            from .schema import MIGRATIONS, applied

            done = server.run(applied, server.conn)
            pending = [n for n, _ in MIGRATIONS if n not in done]
            add("schema", not pending,
                "up to date" if not pending else f"pending: {', '.join(pending)} (tokens team init)")
            info = server.team_info()
            add("team", True, f"{settings.name} (time zone {info['timezone']})")
            server.check_member()
            add("member", True, f"{server.member} on {server.machine}")
    except TeamServerError as exc:
        add("server", False, str(exc))
        return out
    from .states import read_cache, staleness

    cache = read_cache(data_dir)
    if cache is None or not cache.get("ok_at"):
        add("sync", False, "no successful sync yet: tokens team sync")
    else:
        age = staleness(cache, clock.now().timestamp())
        add("sync", age <= settings.max_staleness, f"last synced {age:.0f} s ago"
            + (f" (last error: {cache['error']})" if cache.get("error") else ""))
    return out
