"""The plugin's first run: hooks fired while its Python environment was being built record nothing, so once the
environment is ready the bootstrap imports every transcript changed since it started, and the next hook tells the
user what that recorded (once, even with hooks running in parallel)."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import sys
from pathlib import Path

from builders import hook_payload, response, transcript_path, write_lines
from click.testing import CliRunner

from token_budget.claude.hook import run
from token_budget.cli import cli
from token_budget.ledger import Ledger

ROOT = Path(__file__).resolve().parent.parent


def bootstrap_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bootstrap", ROOT / "scripts" / "bootstrap.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def hook(event: str, path: Path) -> dict:
    out = io.StringIO()
    assert run([event], io.StringIO(json.dumps(hook_payload(event, path))), out, io.StringIO()) == 0
    return json.loads(out.getvalue())


def test_import_changed_since_reads_only_transcripts_modified_since_then(data_dir: Path, claude_dir: Path) -> None:
    old = write_lines(transcript_path(claude_dir, "old"), response(session_id="old"))
    new = write_lines(transcript_path(claude_dir, "new"), response(session_id="new"))
    since = new.stat().st_mtime - 3600  # the files' clock (the kernel's), not time.time(): tests may shift that
    os.utime(old, (since - 60, since - 60))
    result = CliRunner().invoke(cli, ["import", "--changed-since", str(since), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["requests_added"] == 1
    with Ledger.open(data_dir) as ledger:
        assert {r["session_id"] for r in ledger.rows()} == {"new"}
    assert new.exists()


def test_the_bootstrap_catch_up_records_a_session_no_hook_read_and_the_next_hook_says_so_once(
        data_dir: Path, claude_dir: Path, tmp_path: Path) -> None:
    # The first session ran (two requests) while the environment was being built: its hooks recorded nothing.
    first = write_lines(transcript_path(claude_dir, "first"), [*response(session_id="first"),
                                                                *response(session_id="first")])
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"  # a ready environment: this interpreter has the dependencies
    python.write_text(f"#!/bin/sh\nexec {sys.executable} \"$@\"\n")  # (a symlink would lose its venv)
    python.chmod(0o755)
    with open(tmp_path / "bootstrap.log", "w") as log:
        bootstrap_module().catch_up(data_dir, venv, first.stat().st_mtime - 120, log)
    assert json.loads((data_dir / "first-import.json").read_text())["requests_added"] == 2

    second = write_lines(transcript_path(claude_dir, "second"), response(session_id="second"))
    message = hook("UserPromptSubmit", second)["systemMessage"]
    assert "recorded 2 requests from 1 transcript written while it was setting up" in message
    assert hook("UserPromptSubmit", second) == {}  # said once
    assert not any(p.name.startswith("first-import") for p in data_dir.iterdir())
    with Ledger.open(data_dir) as ledger:
        assert ledger.count() == 3  # both sessions, each request once
    assert first.exists()


def test_events_whose_message_claude_code_drops_leave_the_notice_for_the_next_hook(
        data_dir: Path, claude_dir: Path) -> None:
    path = write_lines(transcript_path(claude_dir), response())
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "first-import.json").write_text(json.dumps({"requests_added": 5, "files_read": 2}))
    assert hook("SessionEnd", path) == {}
    assert hook("Stop", path) == {}  # async: Claude Code may cancel it before its message is read
    assert "recorded 5 requests" in hook("PreToolUse", path)["systemMessage"]
