"""Private files, refused links, and inputs crafted to escape their folders."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from builders import hook_payload, response, transcript_path, write_lines

from token_budget.claude.hook import run
from token_budget.errors import TokenBudgetError
from token_budget.ledger import Ledger
from token_budget.paths import data_dir as resolve_data_dir


def call(payload: dict | str, event: str = "Stop") -> dict:
    out = io.StringIO()
    stdin = payload if isinstance(payload, str) else json.dumps(payload)
    assert run([event], io.StringIO(stdin), out, io.StringIO()) == 0
    return json.loads(out.getvalue())


def test_every_file_the_hook_writes_is_private(data_dir: Path, claude_dir: Path) -> None:
    call(hook_payload("Stop", write_lines(transcript_path(claude_dir), response())))
    call("not json")  # writes hook.log
    assert data_dir.stat().st_mode & 0o777 == 0o700
    for path in data_dir.rglob("*"):
        if path.is_file():
            assert path.stat().st_mode & 0o077 == 0, path
        else:
            assert path.stat().st_mode & 0o077 == 0, path


def test_a_symlinked_ledger_is_refused(data_dir: Path, tmp_path: Path, claude_dir: Path) -> None:
    data_dir.mkdir(parents=True)
    target = tmp_path / "elsewhere.db"
    target.write_bytes(b"")
    (data_dir / "ledger.db").symlink_to(target)
    with pytest.raises(TokenBudgetError, match="symbolic link"):
        Ledger.open(data_dir)
    output = call(hook_payload("Stop", write_lines(transcript_path(claude_dir), response())))
    assert "symbolic link" in output["systemMessage"]
    assert target.read_bytes() == b""


def test_a_symlinked_data_dir_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    monkeypatch.setenv("TOKEN_BUDGET_HOME", str(link))
    with pytest.raises(TokenBudgetError, match="symbolic link"):
        resolve_data_dir()


@pytest.mark.parametrize("crafted", [
    "../../../../etc/passwd.jsonl",
    "/tmp/x/projects/../../../etc/shadow.jsonl",
    "/etc/passwd",
    "relative/projects/p/s.jsonl",
    "/tmp/projects\x00/p.jsonl",
])
def test_a_transcript_path_crafted_to_escape_is_rejected(data_dir: Path, crafted: str) -> None:
    output = call({"hook_event_name": "Stop", "session_id": "s", "transcript_path": crafted})
    assert output == {} or "not a Claude Code transcript" in output["systemMessage"]
    with Ledger.open(data_dir) as ledger:
        assert ledger.db.execute("SELECT COUNT(*) FROM transcript_offsets").fetchone()[0] == 0


@pytest.mark.parametrize("session_id", ["../../escape", "/abs/path", "a/../../b", "x\x00y", "..", "séance/🚀"])
def test_a_crafted_session_id_creates_nothing_outside_the_data_dir(data_dir: Path, claude_dir: Path,
                                                                   tmp_path: Path, session_id: str) -> None:
    before = {p for p in tmp_path.rglob("*")}
    path = write_lines(transcript_path(claude_dir), response(session_id=session_id))
    for event in ("SessionStart", "UserPromptSubmit", "PreToolUse", "Stop", "SessionEnd"):
        call(hook_payload(event, path, session_id=session_id, prompt="/sprint go"), event)
    created = {p for p in tmp_path.rglob("*")} - before
    outside = [p for p in created if data_dir not in p.parents and p != data_dir and claude_dir not in p.parents]
    assert outside == []
    assert not any(".." in p.name for p in created)


def test_the_data_dir_is_created_0700_even_with_a_loose_umask(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKEN_BUDGET_HOME", str(tmp_path / "fresh"))
    old = os.umask(0)
    try:
        path = Path(resolve_data_dir())
        ledger = Ledger.open(path)
        ledger.close()
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o700
    assert (path / "ledger.db").stat().st_mode & 0o777 == 0o600


def test_a_regular_file_is_read_whole_up_to_its_limit_and_refused_past_it(tmp_path: Path) -> None:
    """paths.read_regular (the config files and the hook's config cache): a file is read to its end, whatever
    limit bounds it, and one byte past the limit is a refusal, not a silently cut file."""
    from token_budget.paths import UnsafeFileError, read_regular

    path = tmp_path / "config.json"
    path.write_bytes(b"x" * 100)
    assert read_regular(path, 100) == read_regular(path, 4 << 20) == b"x" * 100
    with pytest.raises(UnsafeFileError, match="larger than 99 bytes"):
        read_regular(path, 99)
