"""hook.log and alerts.log are written by one function: private, one entry per line start, capped with one
rotation, and a log that cannot be written never raises."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from token_budget import logfile
from token_budget.claude.hook import log as hook_log
from token_budget.delivery import log as sender_log


def test_both_logs_write_private_entries_that_say_who_and_which_process(tmp_path: Path) -> None:
    hook_log(tmp_path, "PreToolUse", "enforcement skipped")
    sender_log(tmp_path, "slack: HTTP 500\nretrying")
    hook_line = (tmp_path / "hook.log").read_text()
    sender_lines = (tmp_path / "alerts.log").read_text().splitlines()
    assert f" PreToolUse pid={os.getpid()} enforcement skipped\n" in hook_line
    assert sender_lines[0].endswith(f" sender pid={os.getpid()} slack: HTTP 500")
    assert sender_lines[1] == "    retrying"  # a continuation never looks like an entry of its own
    for name in ("hook.log", "alerts.log"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600


def test_a_log_past_the_cap_is_rotated_once(tmp_path: Path) -> None:
    path = tmp_path / "alerts.log"
    path.write_text("x" * (logfile.LIMIT + 1))
    sender_log(tmp_path, "first after the cap")
    assert (tmp_path / "alerts.log.1").stat().st_size == logfile.LIMIT + 1
    assert "first after the cap" in path.read_text() and path.stat().st_size < 200
    path.write_text("y" * (logfile.LIMIT + 1))
    sender_log(tmp_path, "second")
    assert (tmp_path / "alerts.log.1").read_text().startswith("y")  # one old file kept, never a growing chain
    assert not (tmp_path / "alerts.log.2").exists()


def test_an_unwritable_log_never_raises(tmp_path: Path) -> None:
    assert logfile.append(str(tmp_path / "missing" / "hook.log"), "Stop", "lost") is None
    assert hook_log(tmp_path / "missing", "Stop", "lost") is None
    sender_log(tmp_path / "missing", "lost")
