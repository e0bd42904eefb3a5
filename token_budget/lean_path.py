"""The few `os.path` operations the hot path needs, on `posix` alone: no `os` import.

`import os` costs a hook about a tenth of a bare interpreter start (`_collections_abc` mostly, for `os.environ`'s
mapping class). The idle hook that checks a Bash command naming paths (claude/guard.py) needs only `realpath`,
`dirname`, `isdir`, the home folder and the environment: these give what `os.path` and `os.environ` give, for
absolute paths (`realpath` of a relative one asks `os.path.realpath` itself; tests compare both on trees of links).
"""

from __future__ import annotations

import posix
import sys

S_IFMT, S_IFDIR, S_IFREG, S_IFLNK = 0o170000, 0o040000, 0o100000, 0o120000  # stat's constants, without its import


def getenv(name: str) -> str | None:
    """os.environ.get(name), from posix.environ (bytes), decoded as os.environ decodes it."""
    value = posix.environ.get(name.encode())
    return None if value is None else value.decode(sys.getfilesystemencoding(), "surrogateescape")


def dirname(path: str) -> str:
    """os.path.dirname."""
    head = path[: path.rfind("/") + 1]
    if head and head != "/" * len(head):
        head = head.rstrip("/")
    return head


def join(path: str, *names: str) -> str:
    """os.path.join."""
    for name in names:
        if name.startswith("/"):
            path = name
        elif not path or path.endswith("/"):
            path += name
        else:
            path += "/" + name
    return path


def isdir(path: str) -> bool:
    """os.path.isdir."""
    try:
        return posix.stat(path).st_mode & S_IFMT == S_IFDIR
    except (OSError, ValueError):
        return False


def home() -> str:
    """os.path.expanduser("~")."""
    value = getenv("HOME")
    if value is None:  # rare: the password database, as os.path.expanduser reads it
        import os.path

        return os.path.expanduser("~")
    return value.rstrip("/") or "/"


def realpath(path: str) -> str:
    """os.path.realpath: each component lstat'ed, links followed (a loop left as it is), `.` and `..` resolved."""
    # posixpath._joinrealpath as CPython 3.10-3.12 spell it; 3.13 rewrote it (a missing component stops the lstat
    # of the ones after it), so there os.path resolves, exactly as it did before.
    if not path.startswith("/") or "\x00" in path or sys.version_info >= (3, 13):
        import os.path

        return os.path.realpath(path)
    resolved, _ = _resolve("/", path[1:], {})
    return normpath(resolved)  # abspath's last step


def _resolve(path: str, rest: str, seen: dict[str, str | None]) -> tuple[str, bool]:
    """posixpath._joinrealpath (non-strict), for an absolute `path`."""
    while rest:
        name, _, rest = rest.partition("/")
        if not name or name == ".":
            continue
        if name == "..":
            path = dirname(path) if path != "/" else "/"
            continue
        candidate = join(path, name)
        try:
            is_link = posix.lstat(candidate).st_mode & S_IFMT == S_IFLNK
        except OSError:
            is_link = False
        if not is_link:
            path = candidate
            continue
        if candidate in seen:
            known = seen[candidate]
            if known is not None:
                path = known
                continue
            return join(candidate, rest), False  # a loop
        seen[candidate] = None
        target = posix.readlink(candidate)
        if target.startswith("/"):
            path, target = "/", target[1:]
        path, ok = _resolve(path, target, seen)
        if not ok:
            return join(path, rest), False
        seen[candidate] = path
    return path, True


def normpath(path: str) -> str:
    """os.path.normpath of an absolute path: as it is when already normal (the common case, no import)."""
    if "//" not in path and "/./" not in path and "/../" not in path and not path.endswith(("/", "/.", "/..")):
        return path
    import posixpath

    return posixpath.normpath(path)
