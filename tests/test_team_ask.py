"""`tokens team status` through the running sync (team/ask.py, sync.Answerer), against the real PostgreSQL server,
with real sync processes and the real CLI in subprocesses.

Which path answered is seen from outside: the CLI runs with PYTHONPROFILEIMPORTTIME, so its stderr names psycopg
exactly when it connected to the server itself. Everything here runs on the real clock (the sync is another
process), reading "now" once per step as the CLI does."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from budget_helpers import Session
from team_helpers import Machine, TeamDb

from token_budget.team import DUE_NAME
from token_budget.team.ask import SOCKET_NAME

pytestmark = pytest.mark.skipif(not hasattr(socket, "SO_PEERCRED"), reason="the status socket needs SO_PEERCRED")
WAIT = 60.0  # seconds a step may take on a loaded machine before the test gives up (never asserted as a time)


@pytest.fixture
def team(postgres) -> TeamDb:  # type: ignore[no-untyped-def]
    db = TeamDb(postgres)
    db.set_budget("team:monthly", 10**12)
    db.set_budget("team:daily", 10**11)
    db.set_budget("team:member:monthly", 10**10)
    return db


@pytest.fixture
def syncs() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Sync processes a test starts; killed (by their own pid) when it ends."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def machine(team: TeamDb, tmp_path: Path, member: str, interval: int = 3600) -> Machine:
    m = Machine(tmp_path / member.split("@")[0], member, team.member(member))
    m.write_config(f"  sync_interval: {interval}\n")
    return m


def start_sync(m: Machine, syncs: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    """The detached sync as a hook starts it (token_budget.detached.spawn's command), kept alive: the due file a
    year ahead reads as hook activity, so its idle exit never comes during the test."""
    due = m.data_dir / DUE_NAME
    due.touch()
    ahead = time.time() + 365 * 86400
    os.utime(due, (ahead, ahead))
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from token_budget.team.sync import main; "
                             "sys.exit(main())", str(m.data_dir)], env=m.env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    syncs.append(proc)
    until(lambda: listening(m.data_dir / SOCKET_NAME) and (m.data_dir / "cache" / "team.json").exists(),
          proc, "the sync's socket and first pass")
    return proc


def listening(path: Path) -> bool:
    """Something accepts connections at `path` (a file a killed sync left behind does not)."""
    from token_budget.team.ask import socket_address

    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)  # for a path longer than a socket address may be
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.connect(socket_address(str(path.parent), fd))
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


def until(condition, proc: subprocess.Popen[bytes] | None, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + WAIT
    while not condition():
        assert proc is None or proc.poll() is None, f"the sync exited ({proc.returncode}) waiting for {what}"
        assert time.monotonic() < deadline, f"no {what} after {WAIT:.0f} s"
        time.sleep(0.05)


def team_status(m: Machine, *args: str) -> tuple[str, bool]:
    """(stdout of `tokens team status ARGS`, whether that process imported psycopg: connected itself)."""
    result = subprocess.run([sys.executable, "-m", "token_budget", "team", "status", *args], capture_output=True,
                            text=True, env={**m.env, "PYTHONPROFILEIMPORTTIME": "1"}, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout, re.search(r"\|\s+psycopg$", result.stderr, re.MULTILINE) is not None


def as_json(out: str) -> dict:  # type: ignore[type-arg]
    data = json.loads(out)
    data.pop("synced_at")  # the moment each command asked
    return data


def push_on_server(team: TeamDb, member: str, message_id: str, tokens: int) -> None:
    """Another member's push, as the server stores it (the rollup trigger adds it to the hour)."""
    team.sql("INSERT INTO token_budget.requests (team, message_id, member, machine, ts, model, input_tokens, "
             "total_tokens, cost_micros) VALUES (%s, %s, %s, 'laptop', now(), 'claude-sonnet-4-5', %s, %s, 0)",
             (team.name, message_id, member, tokens, tokens))


def test_the_running_sync_answers_live_what_the_direct_path_answers(team: TeamDb, tmp_path: Path,
                                                                    syncs: list) -> None:  # type: ignore[type-arg]
    alice = machine(team, tmp_path, "alice@example.com")
    team.member("bob@example.com")
    push_on_server(team, "alice@example.com", "msg-a1", 5_000)
    push_on_server(team, "bob@example.com", "msg-b1", 3_000)

    direct, imported = team_status(alice)  # no sync running: the CLI connects itself
    assert imported and "Team acme" in direct and "bob@example.com" in direct
    direct_json, _ = team_status(alice, "--json")

    sync = start_sync(alice, syncs)
    through, imported = team_status(alice)
    assert not imported, "the CLI imported psycopg although the sync was running"
    assert through == direct
    through_json, imported = team_status(alice, "--json")
    assert not imported and as_json(through_json) == as_json(direct_json)
    assert as_json(through_json)["month"]["tokens"] == 8_000

    # Bob pushes: the next answer has it at once, though the sync's own cache (no pass since) does not.
    push_on_server(team, "bob@example.com", "msg-b2", 40_000)
    data, imported = team_status(alice, "--json")
    assert not imported and as_json(data)["month"]["tokens"] == 48_000
    assert as_json(data)["top_members"][0] == {"member": "bob@example.com", "tokens": 43_000,
                                               "cost_micros": 0}
    cache = json.loads((alice.data_dir / "cache" / "team.json").read_text())
    assert cache["month"]["tokens"] == 8_000
    live, _ = team_status(alice)

    # Killed the hard way, the sync leaves its socket file behind: the CLI connects itself, same answer.
    sync.send_signal(signal.SIGKILL)
    sync.wait(timeout=30)
    assert (alice.data_dir / SOCKET_NAME).exists()
    after, imported = team_status(alice)
    assert imported and after == live
    # The next sync takes the lock, replaces the stale file and answers again.
    start_sync(alice, syncs)
    again, imported = team_status(alice)
    assert not imported and again == live


def test_another_member_or_team_config_is_not_answered_by_this_sync(team: TeamDb, tmp_path: Path,
                                                                   syncs: list) -> None:  # type: ignore[type-arg]
    alice = machine(team, tmp_path, "alice@example.com")
    push_on_server(team, "alice@example.com", "msg-a1", 5_000)
    start_sync(alice, syncs)
    _, imported = team_status(alice)
    assert not imported
    # The same data dir under another DSN (another role, same server): the sync's proof does not match.
    role, password = team.role()
    team.sql("GRANT token_budget_member TO " + role)
    other = {**alice.env, "TOKEN_BUDGET_TEAM_DSN": team.server.dsn(team.dbname, role, password)}
    result = subprocess.run([sys.executable, "-m", "token_budget", "team", "status"], capture_output=True, text=True,
                            env={**other, "PYTHONPROFILEIMPORTTIME": "1"}, timeout=120)
    assert re.search(r"\|\s+psycopg$", result.stderr, re.MULTILINE)
    # Another member name in the config: asked, the sync says no, and the CLI connects itself.
    alice.config.write_text(alice.config.read_text().replace("member: alice@example.com", "member: eve@example.com"))
    _, imported = team_status(alice)
    assert imported


class FakePeer:
    """Something else listening at the socket's path: it answers `reply(question)`, or never (stalls)."""

    def __init__(self, path: Path, reply) -> None:  # type: ignore[no-untyped-def]
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(4)
        self.reply = reply
        self.asked = 0
        self.done = threading.Event()
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while not self.done.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                question = conn.recv(65536)
                self.asked += 1
                answer = self.reply(question)
                if answer is None:
                    self.done.wait(30)  # stalls until the test ends
                else:
                    conn.sendall(answer)

    def close(self) -> None:
        self.done.set()
        self.listener.close()


def forged(question: bytes) -> bytes:
    """A well-formed answer with made-up totals, from a peer that does not hold the DSN."""
    asked = json.loads(question)
    totals = {"team": "acme", "member": "alice@example.com", "budgets": [], "scopes": {}, "month": {"tokens": 1},
              "day": {}, "members": [], "member_count": 0, "classes": [], "ok_at": asked["now"]}
    return json.dumps({"v": 1, "proof": "0" * 64, "totals": totals}).encode()


@pytest.mark.parametrize("reply", [lambda q: b"not json at all", lambda q: b"\xff" * 5000, forged,
                                   lambda q: b'{"v": 1, "proof": "x"}', lambda q: None],
                         ids=["garbage", "bytes", "forged", "no-totals", "stalls"])
def test_a_peer_that_answers_garbage_or_stalls_is_not_believed(team: TeamDb, tmp_path: Path, reply) -> None:  # type: ignore[no-untyped-def]
    alice = machine(team, tmp_path, "alice@example.com")
    push_on_server(team, "alice@example.com", "msg-a1", 5_000)
    expected, _ = team_status(alice)
    peer = FakePeer(alice.data_dir / SOCKET_NAME, reply)
    try:
        out, imported = team_status(alice)
    finally:
        peer.close()
    assert peer.asked == 1  # it was asked, and not believed
    assert imported and out == expected


def test_garbage_on_the_socket_neither_kills_nor_stalls_the_sync(team: TeamDb, tmp_path: Path, syncs: list,  # type: ignore[type-arg]
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    alice = machine(team, tmp_path, "alice@example.com", interval=1)
    sync = start_sync(alice, syncs)
    path = str(alice.data_dir / SOCKET_NAME)
    stalled = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # connects and never says anything
    stalled.connect(path)
    for junk in [b"\x00\xff garbage\n", b"x" * 100_000, b"[1, 2, 3]\n", b'{"v": 1, "nonce": 5, "now": "x"}\n',
                 b'{"v": 1, "nonce": "' + b"a" * 32 + b'", "now": NaN, "team": "acme", "member": '
                 b'"alice@example.com", "machine": "alice"}\n',
                 b'{"v": 1, "nonce": "' + b"a" * 32 + b'", "now": 1e300, "team": "acme", "member": '
                 b'"alice@example.com", "machine": "alice"}\n', b""]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(path)
            try:
                s.sendall(junk)
                s.shutdown(socket.SHUT_WR)
                s.settimeout(WAIT)
                s.recv(65536)
            except OSError:
                pass  # it may hang up on us mid-send: that is its right
    stalled.close()
    assert sync.poll() is None

    # It still answers, live ...
    push_on_server(team, "alice@example.com", "msg-a1", 7_000)
    data, imported = team_status(alice, "--json")
    assert not imported and as_json(data)["month"]["tokens"] == 7_000
    # ... and still pushes: a request this machine records reaches the server by the sync's next pass.
    alice.use(monkeypatch)
    session = Session(alice.claude_dir, "sess-a", now=datetime.now(timezone.utc))
    session.spend(1_234)
    code, _ = session.hook("UserPromptSubmit", prompt="go on")
    assert code == 0
    until(lambda: team.totals()["requests"] == 2, sync, "the sync's push of the new request")
    assert team.totals()["input"] == 7_000 + 1_234 and sync.poll() is None
    assert "DSN" not in (alice.data_dir / "team.log").read_text() and alice.dsn not in (
        alice.data_dir / "team.log").read_text()


def test_the_socket_is_private_and_works_under_a_data_dir_of_any_length(team: TeamDb, tmp_path: Path,
                                                                       syncs: list) -> None:  # type: ignore[type-arg]
    deep = tmp_path / ("d" * 80) / ("e" * 80)  # past the 108 bytes a socket's path may have
    alice = machine(team, deep, "alice@example.com")
    assert len(str(alice.data_dir / SOCKET_NAME)) > 108
    push_on_server(team, "alice@example.com", "msg-a1", 5_000)
    start_sync(alice, syncs)
    mode = os.stat(alice.data_dir / SOCKET_NAME).st_mode & 0o777
    assert mode == 0o600
    out, imported = team_status(alice, "--json")
    assert not imported and as_json(out)["month"]["tokens"] == 5_000


PEER = r"""
import json, socket, sys
path, mode = sys.argv[1], sys.argv[2]
if mode == "ask":  # another user asks this user's sync
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.settimeout(60)
    try:
        s.sendall(json.dumps({"v": 1, "nonce": "a" * 32, "now": 0.0, "team": "acme", "member": "alice@example.com",
                              "machine": "alice"}).encode() + b"\n")
        print(len(s.recv(65536)))
    except (BrokenPipeError, ConnectionResetError):  # hung up on before or after the question: nothing said
        print(0)
else:  # another user's listener, answering whatever
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(1)
    print("ready", flush=True)
    conn, _ = s.accept()
    conn.settimeout(60)
    print("heard", len(conn.recv(65536)), flush=True)
"""


def python_for(user: dict) -> str | None:  # type: ignore[type-arg]
    """An interpreter `user` may run (the suite's own may live under /root): the base Python's, else the system's."""
    for candidate in (os.path.join(sys.base_prefix, "bin", "python3"), "/usr/bin/python3"):
        try:
            if subprocess.run([candidate, "-c", "pass"], capture_output=True, timeout=60, **user).returncode == 0:
                return candidate
        except OSError:
            continue
    return None


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another local user")
def test_another_local_user_neither_gets_an_answer_nor_is_asked(team: TeamDb, syncs: list) -> None:  # type: ignore[type-arg]
    import pwd
    import shutil
    import tempfile

    nobody = pwd.getpwnam("nobody")
    as_nobody = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
    python = python_for(as_nobody)
    assert python is not None, "no Python that the user nobody may run"
    # A data dir another user can reach, and a socket mode loosened by mistake: the uid check still refuses.
    root, shared = Path(tempfile.mkdtemp(prefix="tb-ask-")), Path(tempfile.mkdtemp(prefix="tb-peer-"))
    root.chmod(0o711)
    shared.chmod(0o777)
    try:
        other_user(team, root, shared, python, as_nobody, syncs)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(shared, ignore_errors=True)


def other_user(team: TeamDb, root: Path, shared: Path, python: str, as_nobody: dict,  # type: ignore[type-arg]
               syncs: list) -> None:  # type: ignore[type-arg]
    alice = machine(team, root, "alice@example.com")
    alice.root.chmod(0o711)
    alice.data_dir.chmod(0o711)
    sync = start_sync(alice, syncs)
    path = alice.data_dir / SOCKET_NAME
    path.chmod(0o666)
    asked = subprocess.run([python, "-c", PEER, str(path), "ask"], capture_output=True, text=True,
                           timeout=120, **as_nobody)
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout.strip() == "0" and sync.poll() is None  # hung up on, nothing said
    # Another user's listener put where the sync's socket would be: the CLI does not believe it.
    sync.kill()
    sync.wait(timeout=30)
    path.unlink()
    listener = subprocess.Popen([python, "-c", PEER, str(shared / "s"), "listen"], stdout=subprocess.PIPE,
                                text=True, **as_nobody)
    try:
        assert listener.stdout is not None and listener.stdout.readline().strip() == "ready"
        (shared / "s").rename(path)
        _, imported = team_status(alice)
        assert imported and listener.stdout.readline().split() == ["heard", "0"]  # not even asked
    finally:
        listener.kill()
        listener.communicate(timeout=30)  # reaps it and closes its pipe


def test_the_sync_runs_below_the_priority_of_the_hooks_beside_it(team: TeamDb, tmp_path: Path,
                                                                 syncs: list) -> None:  # type: ignore[type-arg]
    # Its pass (Python, psycopg, the server's answers) falls among a session's hooks every interval: on a busy
    # machine the scheduler gives the hooks, which Claude Code waits for, the CPU first.
    sync = start_sync(machine(team, tmp_path, "alice@example.com"), syncs)
    assert os.getpriority(os.PRIO_PROCESS, sync.pid) == min(os.getpriority(os.PRIO_PROCESS, 0) + 10, 19)
