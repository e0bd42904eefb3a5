"""Detached workers started by hooks: the alert sender (delivery.py) and the team sync (team/sync.py).

A hook never waits for one: `spawn` starts `python -S -c "…module.main()…" DATA_DIR` in its own process session
and returns. At most one worker of a kind runs per data dir: it holds an exclusive flock on its lock file for its
whole life (`hold`), the kernel drops the lock when the process dies however it dies, and `running` probes it.
Standard library only, and only os and sys at the top: the hook imports it.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .paths import PathLike

_children: list[Any] = []  # Popen objects, kept so they are not reaped (and warned about) while still running


def running(data_dir: PathLike, lock_name: str) -> bool:
    """True while some process holds the worker's lock."""
    import fcntl

    fd = os.open(os.path.join(data_dir, lock_name), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing drops the lock, if this probe took it
    return False


def hold(data_dir: PathLike, lock_name: str) -> int | None:
    """The worker's lock, taken: an open fd (close it to release), or None when another worker holds it."""
    import fcntl

    fd = os.open(os.path.join(data_dir, lock_name), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def spawn(data_dir: PathLike, module: str, log_name: str) -> None:
    """Start `module.main()` in its own process session and return at once; its stderr goes to `log_name`."""
    import subprocess

    for child in list(_children):
        if child.poll() is not None:
            _children.remove(child)
    # -S skips site-packages (a worker loads site itself when it needs a third-party package); sys.path[0] becomes
    # the package's parent, never the hook's working directory.
    root = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    code = f"import sys; sys.path[0] = {root!r}; from {module} import main; sys.exit(main())"
    log_fd = os.open(os.path.join(data_dir, log_name), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        _children.append(
            subprocess.Popen(
                [sys.executable, "-S", "-c", code, os.path.realpath(data_dir)],
                cwd=os.fspath(data_dir),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log_fd,
                start_new_session=True,
                close_fds=True,
            )
        )
    finally:
        os.close(log_fd)
