"""A throw-away PostgreSQL server for the team tests: a fresh cluster (initdb in a temporary folder, as an
unprivileged user when the suite runs as root), listening on loopback only, on a free port, with password
authentication. Tests get a superuser DSN, fresh databases, and can stop the server the hard way and start it again.

Nothing is mocked: this is Debian's own PostgreSQL (tests/run.sh installs it). Under CI a missing server fails the
run; elsewhere the tests that need it are skipped, saying why."""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

SERVER_USER = "postgres"  # Debian's postgresql package creates it; initdb refuses to run as root


def bin_dir() -> Path | None:
    """The newest installed PostgreSQL's binaries (Debian keeps them out of PATH, per major version)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    host = "127.0.0.1"
    superuser = "postgres"

    def __init__(self, bin_path: Path) -> None:
        self.bin = bin_path
        self.root = Path(tempfile.mkdtemp(prefix="token-budget-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "run"
        self.log = self.root / "server.log"
        self.port = free_port()
        self.password = secrets.token_hex(16)
        self._databases = 0
        # As root, the server's tools run as the unprivileged user (subprocess drops the ids itself: runuser lives
        # in /usr/sbin, which a plain user's PATH lacks).
        self._as_user: dict[str, object] = {}
        if os.geteuid() == 0:
            pw = pwd.getpwnam(SERVER_USER)
            self._as_user = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self.socket_dir.mkdir()
        password_file = self.root / "pwfile"
        password_file.write_text(self.password + "\n")
        if self._as_user:
            shutil.chown(self.socket_dir, SERVER_USER, SERVER_USER)
            shutil.chown(password_file, SERVER_USER, SERVER_USER)
        self._run("initdb", "-D", str(self.data), "-U", self.superuser, "--auth=scram-sha-256",
                  f"--pwfile={password_file}", "--encoding=UTF8", "--locale=C.UTF-8", "--no-instructions")
        password_file.unlink()

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([str(self.bin / tool), *args], capture_output=True, text=True, timeout=120,
                                cwd=self.root, **self._as_user)  # type: ignore[call-overload]
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed ({result.returncode}): {result.stderr or result.stdout}\n"
                               f"server log: {self.log.read_text() if self.log.exists() else '(none)'}")
        return result

    def start(self) -> None:
        # fsync off: the suite kills the server (stop("immediate")) but never the machine, so the OS page cache
        # keeps every committed write; crash recovery still replays the WAL as after a real crash.
        options = (f"-c listen_addresses={self.host} -c port={self.port} -c unix_socket_directories={self.socket_dir}"
                   " -c fsync=off -c full_page_writes=off -c max_connections=200")
        self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data), "-l", str(self.log), "-o", options)

    def stop(self, mode: str = "fast") -> None:
        """Stops the server; mode "immediate" is the hard way (no checkpoint: the next start runs crash recovery)."""
        self._run("pg_ctl", "stop", "-w", "-D", str(self.data), "-m", mode)

    def running(self) -> bool:
        command = [str(self.bin / "pg_ctl"), "status", "-D", str(self.data)]
        return subprocess.run(command, capture_output=True, cwd=self.root, **self._as_user).returncode == 0  # type: ignore[call-overload]

    def dsn(self, dbname: str = "postgres", user: str | None = None, password: str | None = None) -> str:
        user = user or self.superuser
        password = self.password if password is None and user == self.superuser else password
        auth = f"{user}:{password}" if password else user
        return f"postgresql://{auth}@{self.host}:{self.port}/{dbname}"

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Runs SQL as the superuser with the server's own psql; returns its unaligned output."""
        env = dict(os.environ, PGPASSWORD=self.password)
        command = [str(self.bin / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", self.host,
                   "-p", str(self.port), "-U", self.superuser, "-d", dbname, "-c", sql]
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr}")
        return result.stdout.strip()

    def fresh_database(self) -> str:
        """A new empty database; returns its superuser DSN."""
        self._databases += 1
        name = f"team_{os.getpid()}_{self._databases}"
        self.psql(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def destroy(self) -> None:
        if self.running():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
