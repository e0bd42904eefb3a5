"""`tokens team status` through the running sync: live team totals without importing the database driver.

Importing psycopg costs a `tokens team status` about 100 ms, more than everything else it does. The detached sync
(sync.py) has it imported already, so while a sync runs for the data dir it also answers on a private Unix socket,
`<data dir>/team-sync.sock`: asked, it queries the team server right then (sync.pull, on a connection of its own)
and returns those totals; it never answers from its cache. `tokens team status` asks it first (`ask`) and connects
to the server itself, as before, whenever the answer is not there: no sync running (no socket, or a stale one left
by a killed process), an answer later than ASK_TIMEOUT, malformed, from a sync of another team, member, machine or
DSN, or a server error (the direct path then reports it in its own words). The output is the same either way.

Other local users are untrusted: the socket is created 0600 in the private data dir, and each side checks the
other's uid (SO_PEERCRED). A question is one line of at most MAX_QUESTION bytes read within ASK_TIMEOUT. Nothing
secret crosses the socket: the sync proves it uses the asker's DSN by an HMAC, keyed by the DSN, of the asker's
random nonce. The answering thread (sync.Answerer) serves one connection at a time, on a server connection of its
own (never the sync loop's), so a peer that stalls or sends garbage costs it at most ASK_TIMEOUT and the sync
keeps pushing; that server connection closes after sync.ANSWER_IDLE_CLOSE seconds without a question. Linux only
(SO_PEERCRED); elsewhere the CLI connects itself.

The asking side is standard library only: the CLI imports it on every `tokens team status`.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from . import TeamSettings

SOCKET_NAME = "team-sync.sock"
ASK_TIMEOUT = 2.0  # seconds for a whole exchange; the direct path follows a late answer
MAX_QUESTION = 4096  # bytes
MAX_ANSWER = 1 << 20  # bytes: the top members and the budgets, far below this
VERSION = 1
ANSWER_KEYS = {"team": str, "member": str, "budgets": list, "scopes": dict, "month": dict, "day": dict,
               "members": list, "member_count": int, "classes": list}


def supported() -> bool:
    import socket

    return hasattr(socket, "AF_UNIX") and hasattr(socket, "SO_PEERCRED")


def socket_address(data_dir: str, fd: int | None) -> str:
    """The socket's path; through the directory's fd when the path is too long for sun_path (108 bytes)."""
    path = os.path.join(data_dir, SOCKET_NAME)
    if fd is None or len(os.fsencode(path)) < 100:
        return path
    return f"/proc/self/fd/{fd}/{SOCKET_NAME}"


class _Directory:
    """The data dir held open while its socket path is used (see _address)."""

    def __init__(self, data_dir: str) -> None:
        self.data_dir = data_dir
        self.fd: int | None = None

    def __enter__(self) -> str:
        if len(os.fsencode(os.path.join(self.data_dir, SOCKET_NAME))) >= 100:
            self.fd = os.open(self.data_dir, os.O_RDONLY | os.O_DIRECTORY)
        return socket_address(self.data_dir, self.fd)

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)


def peer_uid(sock: Any) -> int:
    import socket
    import struct

    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


def proof(dsn: str, nonce: str) -> str:
    """What shows the answering sync uses the asker's DSN (and libpq's PG* variables) without sending either."""
    import hashlib
    import hmac

    key = "\0".join([dsn, *sorted(f"{k}={v}" for k, v in os.environ.items() if k.startswith("PG"))])
    return hmac.new(key.encode(), nonce.encode(), hashlib.sha256).hexdigest()


def read_bounded(sock: Any, limit: int, deadline: float, *, line: bool) -> bytes | None:
    """Bytes until EOF (or a newline when `line`), at most `limit`, by `deadline`; None past either."""
    import time

    data = b""
    while not (line and b"\n" in data):
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        sock.settimeout(left)
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        if len(data) > limit:
            return None
    return data.split(b"\n", 1)[0] if line else data


# -- the asking side: tokens team status ---------------------------------------------------------------------------


class Question:
    """One question to the running sync: sent first (`ask`), its answer read later (`answer`), so the asker does its
    own local work (the ledger, the imports) while the sync queries the server."""

    def __init__(self, sock: Any, settings: TeamSettings, dsn: str, nonce: str, now: float, deadline: float) -> None:
        self.sock, self.settings, self.dsn, self.nonce, self.now, self.deadline = (sock, settings, dsn, nonce, now,
                                                                                     deadline)

    def answer(self) -> dict[str, Any] | None:
        """The team's totals as `sync.pull` returns them, fresh from the server through the sync; None when it does
        not answer as it should (the caller then connects itself)."""
        try:
            with self.sock:
                raw = read_bounded(self.sock, MAX_ANSWER, self.deadline, line=False)
        except OSError:
            return None  # a late answer, a sync gone meanwhile
        if raw is None:
            return None
        from .. import jsonlite

        try:
            answer = jsonlite.loads(raw.decode())
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(answer, dict) or answer.get("v") != VERSION or not isinstance(answer.get("proof"), str):
            return None
        import hmac

        if not hmac.compare_digest(answer["proof"], proof(self.dsn, self.nonce)):
            return None
        totals = answer.get("totals")
        if not isinstance(totals, dict) or totals.get("team") != self.settings.name or totals.get("ok_at") != self.now:
            return None
        if not all(isinstance(totals.get(key), kind) for key, kind in ANSWER_KEYS.items()):
            return None
        return totals


def ask(data_dir: Any, settings: TeamSettings, now: float) -> Question | None:
    """Ask the running sync for the team's totals around `now`; None at once when no sync listens (no socket, a
    stale one, another user's) or the DSN is not set (the direct path then says what to fix)."""
    if not supported():
        return None
    import socket
    import time

    from .. import jsonlite

    try:
        dsn = settings.dsn()
    except Exception:
        return None
    nonce = os.urandom(16).hex()
    question = {"v": VERSION, "nonce": nonce, "now": now, "team": settings.name, "member": settings.member,
                "machine": settings.machine}
    deadline = time.monotonic() + ASK_TIMEOUT
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(ASK_TIMEOUT)
        with _Directory(os.fspath(data_dir)) as address:
            sock.connect(address)
        if peer_uid(sock) != os.getuid():
            raise ConnectionRefusedError("another user's socket")
        sock.sendall(jsonlite.dumps(question).encode() + b"\n")
    except OSError:
        sock.close()
        return None
    return Question(sock, settings, dsn, nonce, now, deadline)
