"""The data dir's log files (hook.log, alerts.log): appended lines, private, capped at 1 MiB with one rotation.

Standard library only: the hook and the alert sender (run with -S) both write through it."""

from __future__ import annotations

import os
import time

LIMIT = 1 << 20  # past this the file becomes <name>.1 (replacing the previous one) and a new one starts


def append(path: str, source: str, message: str) -> str | None:
    """Append `<UTC time> <source> pid=<pid> <message>` to `path` (0600); later lines of a multi-line message are
    indented so each entry starts at the line's start. Returns the path, or None when it could not be written: a
    log must never be the reason a hook or the sender fails."""
    try:
        if os.path.exists(path) and os.path.getsize(path) > LIMIT:
            os.replace(path, path + ".1")
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        line = f"{stamp} {source} pid={os.getpid()} {message}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write(line.replace("\n", "\n    ") + "\n")
        return path
    except Exception:
        return None
