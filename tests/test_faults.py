"""Storage faults: a full disk, a read-only or deleted data dir, a corrupt ledger. Hooks fail open and say why,
nothing already recorded is lost, and the next hook after the repair converges to exact totals."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from builders import hook_payload, response, transcript_path, write_lines

from token_budget.claude.hook import run
from token_budget.ledger import Ledger

ROOT = Path(__file__).resolve().parent.parent
LAUNCHER = ROOT / "token_budget" / "claude" / "run_hook.py"


def call(path: Path) -> tuple[int, dict]:
    out = io.StringIO()
    code = run(["Stop"], io.StringIO(json.dumps(hook_payload("Stop", path))), out, io.StringIO())
    return code, json.loads(out.getvalue())


def count(data_dir: Path) -> int:
    with Ledger.open(data_dir) as ledger:
        return ledger.count()


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root to mount a tiny tmpfs")
def test_a_full_disk_fails_open_loses_nothing_and_recovers(tmp_path: Path, claude_dir: Path,
                                                           subprocess_env: dict) -> None:
    data = tmp_path / "tiny"
    data.mkdir()
    path = write_lines(transcript_path(claude_dir), response())
    first = tmp_path / "first.json"
    first.write_text(json.dumps(hook_payload("Stop", path)))
    for _ in range(300):  # enough new requests that recording them needs more than the space left
        write_lines(path, response(output_tokens=3))
    rows = (f"import sqlite3; db = sqlite3.connect('{data}/ledger.db'); "
            "print(db.execute('select count(*) from requests').fetchone()[0])")
    script = textwrap.dedent(f"""
        set -e
        mount -t tmpfs -o size=600k tmpfs {data}
        hook() {{ TOKEN_BUDGET_HOME={data} {sys.executable} -S {LAUNCHER} Stop < {first}; }}
        count() {{ TOKEN_BUDGET_HOME={data} {sys.executable} -c "{rows}"; }}
        head -c 20000 {path} > /dev/null
        cp {path} {tmp_path}/full.jsonl
        # 1. record the first request while there is room: truncate the transcript to its first line for now
        head -n 1 {tmp_path}/full.jsonl > {path}
        hook > {tmp_path}/out1
        # 2. fill the disk, then let the transcript grow to its full size
        dd if=/dev/zero of={data}/filler bs=1k 2>/dev/null || true
        cp {tmp_path}/full.jsonl {path}
        hook > {tmp_path}/out2; echo $? > {tmp_path}/rc2
        count > {tmp_path}/count2 2>&1 || true
        # 3. free the space: the next hook converges
        rm {data}/filler
        hook > {tmp_path}/out3
        count > {tmp_path}/count3
    """)
    env = {k: v for k, v in subprocess_env.items() if k != "PYTHONPATH"}
    subprocess.run(["unshare", "-m", "sh", "-c", script], env=env, check=True)
    assert (tmp_path / "out1").read_text().strip() == "{}"
    assert (tmp_path / "rc2").read_text().strip() == "0"
    message = json.loads((tmp_path / "out2").read_text())["systemMessage"]
    assert "disk is full" in message and "Free some space" in message
    assert (tmp_path / "out3").read_text().strip() == "{}"
    assert (tmp_path / "count3").read_text().strip() == "301"  # nothing lost: the first row and all the rest


def hook_in_read_only_dir(data_dir: Path, path: Path, subprocess_env: dict) -> tuple[int, dict]:
    """A Stop hook that finds the data dir read-only. Root writes through a folder's mode bits, so as root the
    folder is bind-mounted read-only in a private mount namespace; any other user gets a 0500 folder."""
    if os.geteuid() != 0:
        data_dir.chmod(0o500)
        try:
            return call(path)
        finally:
            data_dir.chmod(0o700)
    payload = json.dumps(hook_payload("Stop", path))
    script = (f"mount --bind {data_dir} {data_dir} && mount -o remount,bind,ro {data_dir} && "
              f"exec {sys.executable} -S {LAUNCHER} Stop")
    env = {k: v for k, v in subprocess_env.items() if k != "PYTHONPATH"}
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script], input=payload, capture_output=True, text=True,
                          env=env, timeout=60)
    return proc.returncode, json.loads(proc.stdout)


def test_a_read_only_data_dir_fails_open(data_dir: Path, claude_dir: Path, subprocess_env: dict) -> None:
    path = write_lines(transcript_path(claude_dir), response())
    call(path)
    write_lines(path, response())
    code, output = hook_in_read_only_dir(data_dir, path, subprocess_env)
    assert code == 0
    assert "cannot be written" in output["systemMessage"]
    assert count(data_dir) == 1  # the row recorded before is still there
    call(path)
    assert count(data_dir) == 2  # writable again: the next hook catches up


def test_a_read_only_ledger_file_fails_open_and_keeps_its_rows(data_dir: Path, claude_dir: Path) -> None:
    path = write_lines(transcript_path(claude_dir), response())
    call(path)
    ledger_file = data_dir / "ledger.db"
    write_lines(path, response())
    # Simulate a read-only medium: the ledger opened with SQLite's read-only flag
    import sqlite3

    from token_budget import ledger as ledger_module

    original = sqlite3.connect

    def read_only_connect(target: object, *args: object, **kwargs: object) -> sqlite3.Connection:
        kwargs.pop("uri", None)
        return original(f"file:{target}?mode=ro", *args, uri=True, **kwargs)  # type: ignore[arg-type]

    ledger_module.sqlite3.connect = read_only_connect  # type: ignore[assignment]
    try:
        code, output = call(path)
    finally:
        ledger_module.sqlite3.connect = original
    assert code == 0
    assert "cannot be written" in output["systemMessage"]
    assert count(data_dir) == 1
    assert call(path) == (0, {})
    assert count(data_dir) == 2
    assert ledger_file.exists()


def test_a_deleted_data_dir_is_recreated_private(data_dir: Path, claude_dir: Path) -> None:
    path = write_lines(transcript_path(claude_dir), response())
    call(path)
    shutil.rmtree(data_dir)
    assert call(path) == (0, {})
    assert data_dir.stat().st_mode & 0o777 == 0o700
    assert count(data_dir) == 1  # rebuilt from the transcript, which is the source of truth


def test_a_corrupt_ledger_fails_open_pointing_at_doctor(data_dir: Path, claude_dir: Path) -> None:
    path = write_lines(transcript_path(claude_dir), response())
    data_dir.mkdir(parents=True)
    (data_dir / "ledger.db").write_bytes(b"garbage" * 1000)
    code, output = call(path)
    assert code == 0
    assert "tokens doctor" in output["systemMessage"]
