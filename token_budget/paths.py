"""Where things live: the data dir and the packaged files.

The hook imports this, so it is os.path on strings, not pathlib: pathlib's imports (re, urllib.parse, ipaddress,
fnmatch) were a fifth of a hook's start-up. Functions take any path-like and return str.
"""

from __future__ import annotations

import errno
import os
import stat

from .errors import TokenBudgetError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeAlias

    PathLike: TypeAlias = "str | os.PathLike[str]"

PACKAGE_DIR = os.path.dirname(os.path.realpath(__file__))
LEDGER_NAME = "ledger.db"
CONFIG_NAME = "token_budgets.yaml"  # the config file of each layer (config.layer_paths)
PRICING_NAME = "pricing.yaml"  # the packaged prices
OVERRIDES_NAME = "overrides.json"  # in the data dir: what `tokens budget` and `tokens mode` changed
LEDGER_VERSION_SUFFIX = ".version"  # beside the ledger: a token every write transaction renews (ledger.bump_version)
REPORTS_DIR = "reports"


def _packaged_dir(name: str) -> str:
    """config/ and schemas/ sit beside the package in a checkout or plugin, inside it (as _name) in a wheel."""
    beside = os.path.join(os.path.dirname(PACKAGE_DIR), name)
    return beside if os.path.isdir(beside) else os.path.join(PACKAGE_DIR, f"_{name}")


def packaged_config_dir() -> str:
    return _packaged_dir("config")


def packaged_schemas_dir() -> str:
    return _packaged_dir("schemas")


def data_dir(explicit: PathLike | None = None, *, create: bool = True, host: str | None = None) -> str:
    """The data dir, the one rule every caller uses: --data-dir > $TOKEN_BUDGET_HOME > `host` (the folder an
    adapter's host gives it, such as a plugin's data folder) > $XDG_DATA_HOME/token-budget."""
    path = named_data_dir(explicit, host) or default_data_dir()
    if create:
        ensure_private_dir(path)
    return path


def named_data_dir(explicit: PathLike | None = None, host: str | None = None) -> str | None:
    """The data dir something names (the first three steps of `data_dir`'s rule), None when nothing does."""
    chosen = explicit or os.environ.get("TOKEN_BUDGET_HOME") or host
    return os.path.normpath(os.path.expanduser(os.fspath(chosen))) if chosen else None


def default_data_dir() -> str:
    """The data dir when nothing names one: $XDG_DATA_HOME/token-budget (~/.local/share/token-budget)."""
    xdg = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(xdg, "token-budget")


def file_stamp(path: str) -> list[Any]:
    """[path, mtime_ns, size], or [path, None, None] for a missing file: what a cache compares to see a change."""
    try:
        st = os.stat(path)
    except OSError:
        return [str(path), None, None]
    return [str(path), st.st_mtime_ns, st.st_size]


def ensure_private_dir(path: PathLike) -> None:
    """Create `path` 0700; refuse a symlink, since a planted link could redirect the ledger elsewhere."""
    try:
        st = os.lstat(path)  # every hook asks, and the dir is there: one call, not makedirs' several
    except OSError:
        st = None
    if st is None or not stat.S_ISDIR(st.st_mode):
        if st is not None and stat.S_ISLNK(st.st_mode):
            raise TokenBudgetError(
                f"The data dir {path} is a symbolic link; refusing to use it.",
                "Point TOKEN_BUDGET_HOME (or --data-dir) at a real directory.",
            )
        try:
            os.makedirs(path, mode=0o700, exist_ok=True)
            st = os.lstat(path)
        except OSError as exc:
            raise TokenBudgetError(
                f"Cannot create the data dir {path}: {exc.strerror}.",
                "Check its permissions, or choose another with TOKEN_BUDGET_HOME or --data-dir.",
            ) from exc
    check_private(path, st, "data dir")


def check_private(path: PathLike, st: os.stat_result, what: str) -> None:
    """Refuse a data dir or file another local user owns or may write: they could rewrite the ledger, the config
    overrides or the cache, or plant files in it."""
    if st.st_uid != os.getuid():
        raise TokenBudgetError(f"The {what} {path} belongs to another user (uid {st.st_uid}); refusing to use it.",
                               f"Use your own: set TOKEN_BUDGET_HOME (or --data-dir), or `chown {os.getuid()} {path}`.")
    if st.st_mode & 0o022:
        mode = stat.S_IMODE(st.st_mode)
        raise TokenBudgetError(f"The {what} {path} is writable by other users (mode {mode:o}); refusing to use it.",
                               f"Run `chmod go-w {path}` (0700 for the data dir, 0600 for files).")


class UnsafeFileError(TokenBudgetError):
    """A file that must be a regular file of bounded size is not (a FIFO, a device, a link, too large)."""


def open_regular(path: PathLike, *, follow: bool = False) -> int:
    """An fd open for reading on `path`, only if it is a regular file. Non-blocking, so a FIFO planted where a file
    was expected returns at once instead of stalling the hook; without `follow`, a symlink is refused (ELOOP)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", os.fspath(path))
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path: PathLike, limit: int, *, follow: bool = False) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; UnsafeFileError for anything else. OSError when the
    file cannot be opened (missing, unreadable, a symlink when not `follow`)."""
    try:
        fd = open_regular(path, follow=follow)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EINVAL):
            what = "a symbolic link" if exc.errno == errno.ELOOP else "not a regular file"
            raise UnsafeFileError(f"{path} is {what}; refusing to read it.",
                                  "Replace it with a regular file.") from None
        raise
    with os.fdopen(fd, "rb") as handle:
        # read(n) allocates its n bytes first: ask for the file's size (and one byte more, to see it grew), not for
        # the limit (the hook's config cache: 4 MiB allocated for 15 KiB)
        want = min(limit, os.fstat(fd).st_size) + 1
        data = handle.read(want)
        if len(data) == want <= limit:  # it grew since the fstat: read on, up to the limit
            data += handle.read(limit + 1 - len(data))
    if len(data) > limit:
        raise UnsafeFileError(f"{path} is larger than {limit:,} bytes; refusing to read it.",
                              "A config file is a few kilobytes: check what it holds.")
    return data


def write_atomically(path: PathLike, text: str) -> None:
    """Write via a temporary file and os.replace, so readers see the old or the new file, never half of one."""
    import tempfile

    folder, name = os.path.split(os.fspath(path))
    # mkstemp: O_EXCL with an unpredictable name in the target folder (the rename stays on one file system), so a
    # link planted at a guessable name cannot redirect the write. The pid stays in the name for the orphan sweep.
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.{os.getpid()}.", suffix=".tmp", dir=folder or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _remove_orphaned_temps(path)


def _remove_orphaned_temps(path: PathLike) -> None:
    """Delete the temporary files of earlier writers of `path` that died (SIGKILL, power loss) before renaming.

    Only a dead writer's file goes: not every caller holds a lock, and a live writer still needs its file for
    the rename. The writer's PID is in the name; a PID since reused keeps its file until a later write."""
    folder, base = os.path.split(os.fspath(path))
    prefix = f".{base}."
    try:
        with os.scandir(folder or ".") as entries:
            names = [entry.name for entry in entries if entry.name.startswith(prefix) and entry.name.endswith(".tmp")]
    except OSError:
        return
    for name in names:
        digits = name[len(prefix):-len(".tmp")].split(".", 1)[0]  # .NAME.PID.RANDOM.tmp (or .NAME.PID.tmp)
        if not (digits.isascii() and digits.isdigit()):
            continue  # not a name write_atomically makes
        pid = int(digits)
        if not 0 < pid < 2**31 or pid == os.getpid() or _alive(pid):
            continue
        try:
            os.unlink(os.path.join(folder, name))
        except OSError:
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: another user's live process
        return True
    return True


def daily_report_path(data_dir: PathLike, day: object) -> str:
    return os.path.join(data_dir, REPORTS_DIR, f"{day.isoformat()}.yaml")  # type: ignore[attr-defined]


def daily_report_due(data_dir: PathLike, timezone_name: str, now: object = None) -> object:
    """Yesterday's date when its report is not written yet, else None: one stat, so hooks can ask every time."""
    from .lean_datetime import timedelta
    from .periods import today, zone

    yesterday = today(zone(timezone_name), now) - timedelta(days=1)  # type: ignore[arg-type]
    return None if os.path.exists(daily_report_path(data_dir, yesterday)) else yesterday
