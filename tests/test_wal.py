"""The WAL that hooks leave behind stays short: a hook Claude Code waits for ends without closing the ledger
(hook._LeftOpen), and the next process to open the ledger alone reads that whole WAL before its first query."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from builders import hook_payload, response, transcript_path, write_lines

from token_budget.ledger import WAL_TRIM_BYTES, Ledger

ROOT = Path(__file__).resolve().parent.parent
LAUNCHER = ROOT / "token_budget" / "claude" / "run_hook.py"

# Commits in a process of its own that ends as a hook does (posix._exit, the ledger left open), with SQLite's
# autocheckpoint off: a WAL of `sys.argv[2]` transactions left behind, as hundreds of hooks would leave it.
LEAVE_WAL = """
import posix, sys
sys.path.insert(0, sys.argv[3])
from token_budget.ledger import Ledger
from token_budget.models import UsageEvent
ledger = Ledger.open(sys.argv[1])
ledger.db.execute("PRAGMA wal_autocheckpoint = 0")
for n in range(int(sys.argv[2])):
    with ledger.transaction():
        ledger.record([UsageEvent(f"msg_wal_{n:05d}_{k}", "2026-11-28T10:00:00.000Z", "claude-sonnet-4-5",
                                  input_tokens=10) for k in range(20)], source="import")
posix._exit(0)
"""


def wal_size(data_dir: Path) -> int:
    try:
        return os.stat(data_dir / "ledger.db-wal").st_size
    except FileNotFoundError:
        return 0


def leave_wal(data_dir: Path, transactions: int) -> None:
    subprocess.run([sys.executable, "-S", "-c", LEAVE_WAL, str(data_dir), str(transactions), str(ROOT)], check=True)


def test_a_blocking_hook_truncates_a_long_wal_and_keeps_every_request(data_dir: Path, claude_dir: Path,
                                                                     subprocess_env: dict) -> None:
    leave_wal(data_dir, 200)
    assert wal_size(data_dir) > WAL_TRIM_BYTES
    path = write_lines(transcript_path(claude_dir), response())
    proc = subprocess.run([sys.executable, "-S", str(LAUNCHER), "PreToolUse"], capture_output=True, text=True,
                          input=json.dumps(hook_payload("PreToolUse", path)), env=subprocess_env, check=True)
    assert json.loads(proc.stdout) == {}
    assert wal_size(data_dir) == 0  # checkpointed into the database, then truncated
    with Ledger.open(data_dir) as ledger:
        assert ledger.count() == 200 * 20 + 1
    db = sqlite3.connect(data_dir / "ledger.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()


def test_a_short_wal_is_left_as_it_is(data_dir: Path) -> None:
    leave_wal(data_dir, 2)
    before = wal_size(data_dir)
    assert 0 < before <= WAL_TRIM_BYTES
    ledger = Ledger.open(data_dir)
    ledger.leave_open()
    assert wal_size(data_dir) == before  # no checkpoint (and none of its fsyncs) for a WAL this short
    ledger.close()


def test_it_never_waits_for_a_reader_and_a_later_hook_trims(data_dir: Path) -> None:
    leave_wal(data_dir, 200)
    reader = sqlite3.connect(data_dir / "ledger.db", isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM requests").fetchone()[0] == 4000  # holds its snapshot
    ledger = Ledger.open(data_dir)
    ledger.leave_open()  # returns at once (busy timeout 0) instead of waiting for the reader
    assert wal_size(data_dir) > WAL_TRIM_BYTES
    assert reader.execute("SELECT count(*) FROM requests").fetchone()[0] == 4000
    reader.execute("COMMIT")
    reader.close()
    later = Ledger.open(data_dir)
    later.leave_open()
    assert wal_size(data_dir) == 0
    assert later.count() == 4000
    later.close()
    ledger.close()


def test_leave_open_never_raises(data_dir: Path) -> None:
    leave_wal(data_dir, 200)
    keeper = sqlite3.connect(data_dir / "ledger.db")  # keeps the WAL from going with the ledger's close
    keeper.execute("SELECT count(*) FROM requests").fetchone()
    ledger = Ledger.open(data_dir)
    ledger.db.close()
    ledger.leave_open()  # a closed connection: its checkpoint fails, and the hook that called it is not told
    assert wal_size(data_dir) > WAL_TRIM_BYTES
    keeper.close()


def _hook(event: str, path: Path, env: dict) -> dict:
    proc = subprocess.run([sys.executable, "-S", str(LAUNCHER), event], capture_output=True, text=True,
                          input=json.dumps(hook_payload(event, path)), env=env, check=True)
    return json.loads(proc.stdout)


def test_session_end_checkpoints_only_what_it_wrote(data_dir: Path, claude_dir: Path, subprocess_env: dict) -> None:
    """`claude -p` waits for SessionEnd before it exits. One that finds nothing new (the detached Stop recorded the
    turn's last request) leaves the ledger open as the blocking hooks do, so it pays no checkpoint (three syncs) for
    commits that are not its own; one that records a request closes it, and the checkpoint makes that commit durable."""
    path = write_lines(transcript_path(claude_dir), response())
    assert _hook("PreToolUse", path, subprocess_env) == {}
    assert wal_size(data_dir) > 0  # the blocking hook left its commit in the WAL
    assert _hook("SessionEnd", path, subprocess_env) == {}
    assert wal_size(data_dir) > 0  # nothing new: not checkpointed by this process
    write_lines(path, response(output_tokens=7))
    assert _hook("SessionEnd", path, subprocess_env) == {}
    assert not (data_dir / "ledger.db-wal").exists()  # its own commit: the last close checkpointed and removed it
    with Ledger.open(data_dir) as ledger:
        assert ledger.count() == 2
