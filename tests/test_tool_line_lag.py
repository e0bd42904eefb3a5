"""PreToolUse decides on the request that asked for the tool, even when its transcript line comes late.

Claude Code 2.1.332 runs PreToolUse as soon as the tool_use block has streamed and appends the transcript
line that carries it (with the request's usage) a few milliseconds later; tests/e2e/test_enforcement.py saw
the tool call of the request that crossed 100% allowed because of it.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from budget_helpers import Session, write_config
from builders import response, subagent_path, user_line, write_lines

from token_budget.claude import transcript

CONFIG = "timezone: UTC\nbudgets:\n  global: {daily_limit: 1000, monthly_limit: 0}\n"


def tool_use_response(session: Session, tool_use_id: str, tokens: int, **extra: object) -> list[dict]:
    lines = response(session_id=session.session_id, timestamp="2026-11-28T14:59:59.000Z", input_tokens=tokens,
                     output_tokens=0, **extra)  # fmt: skip
    lines[-1]["message"]["content"] = [{"type": "tool_use", "id": tool_use_id, "name": "Bash",
                                        "input": {"command": "touch x"}}]  # fmt: skip
    lines[-1]["message"]["stop_reason"] = "tool_use"
    return lines


def later(delay: float, path: Path, lines: list[dict]) -> threading.Thread:
    def write() -> None:
        time.sleep(delay)
        write_lines(path, lines)

    thread = threading.Thread(target=write)
    thread.start()
    return thread


def test_the_crossing_request_written_after_the_hook_started_still_denies_its_tool(
    tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    write_config(tmp_path, monkeypatch, CONFIG)
    monkeypatch.setenv("TOKEN_BUDGET_HOME", str(tmp_path / "data"))
    s = Session(tmp_path / "claude")
    s.spend(950)
    s.hook("UserPromptSubmit", prompt="go on")  # warm: the config is compiled and cached, the ledger is made
    write_lines(
        s.path, user_line("go on", session_id=s.session_id)
    )  # the prompt; the answer is still streaming
    writer = later(0.06, s.path, tool_use_response(s, "toolu_lag", 100))  # 1,050 / 1,000: past the block
    code, out = s.hook("PreToolUse", tool_use_id="toolu_lag")
    writer.join()
    assert code == 0
    assert out["hookSpecificOutput"]["permissionDecision"] == "deny", out
    assert (
        "daily budget is exhausted: 1,050 / 1,000 tokens"
        in out["hookSpecificOutput"]["permissionDecisionReason"]
    )


def test_a_subagent_tool_line_is_awaited_in_the_subagent_file(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    write_config(tmp_path, monkeypatch, CONFIG)
    monkeypatch.setenv("TOKEN_BUDGET_HOME", str(tmp_path / "data"))
    s = Session(tmp_path / "claude")
    s.spend(950)
    s.hook("UserPromptSubmit", prompt="delegate")
    sub = subagent_path(s.path, "a1")  # its first request: the file does not exist yet
    writer = later(0.06, sub, tool_use_response(s, "toolu_sub", 100, is_sidechain=True, agent_id="a1"))
    _, out = s.hook("PreToolUse", tool_use_id="toolu_sub", agent_id="a1", agent_type="general-purpose")
    writer.join()
    assert out["hookSpecificOutput"]["permissionDecision"] == "deny", out


class SteppedTime:
    """Stands in for the `time` module of token_budget.claude.transcript: each sleep advances a private
    monotonic clock and is counted, so how long the wait lasts is checked without reading a real clock."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps = 0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds


def test_no_wait_when_the_line_is_there_or_the_file_ends_with_an_answer(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    clock = SteppedTime()
    monkeypatch.setattr(transcript, "time", clock)
    s = Session(tmp_path / "claude")
    write_lines(s.path, tool_use_response(s, "toolu_here", 10))
    transcript.await_tool_use_line([s.path], "toolu_here")
    write_lines(s.path, response(session_id=s.session_id))  # the next answer's text block: its usage is there
    transcript.await_tool_use_line([s.path], "toolu_in_a_block_still_streaming")
    assert clock.sleeps == 0


def test_a_file_ending_with_the_previous_tool_call_is_waited_on(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Under load Claude Code can run the next PreToolUse before it has written the previous tool's result: the
    file still ends with the previous response's tool_use line, an assistant line, but not this request's."""
    write_config(tmp_path, monkeypatch, CONFIG)
    monkeypatch.setenv("TOKEN_BUDGET_HOME", str(tmp_path / "data"))
    s = Session(tmp_path / "claude")
    s.spend(900)
    s.hook("UserPromptSubmit", prompt="go on")
    write_lines(s.path, tool_use_response(s, "toolu_before", 50))  # 950 / 1,000
    _, out = s.hook("PreToolUse", tool_use_id="toolu_before")
    assert out.get("hookSpecificOutput", {}).get("permissionDecision") != "deny", out
    result = user_line("done", session_id=s.session_id)
    writer = later(0.06, s.path, [result, *tool_use_response(s, "toolu_after", 100)])  # 1,050 / 1,000
    code, out = s.hook("PreToolUse", tool_use_id="toolu_after")
    writer.join()
    assert code == 0
    assert out["hookSpecificOutput"]["permissionDecision"] == "deny", out


def test_the_wait_is_bounded_when_the_line_never_comes(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    clock = SteppedTime()
    monkeypatch.setattr(transcript, "time", clock)
    s = Session(tmp_path / "claude")
    write_lines(s.path, user_line("hello", session_id=s.session_id))
    start = clock.now
    transcript.await_tool_use_line([s.path], "toolu_never")
    assert transcript.TOOL_LINE_WAIT <= clock.now - start < transcript.TOOL_LINE_WAIT + 0.05
    sleeps = clock.sleeps
    transcript.await_tool_use_line([s.path], None)  # nothing to wait for
    transcript.await_tool_use_line([], "toolu_x")
    assert clock.sleeps == sleeps


def test_the_wait_reads_only_what_is_new_since_the_ledger_last_read(data_dir: Path, claude_dir: Path,
                                                                    monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from builders import transcript_path

    from token_budget.ledger import Ledger

    path = transcript_path(claude_dir)
    big = user_line(text="x" * (4 << 20))
    write_lines(path, [big, *response()])
    with Ledger.open(data_dir) as ledger:
        transcript.ingest_files(ledger, [path], source="hook")
        tool = response()
        tool[-1]["message"]["content"] = [{"type": "tool_use", "id": "toolu_new", "name": "Bash", "input": {}}]
        write_lines(path, tool)
        read: list[int] = []
        real_open = open

        class Counting:
            def __init__(self, *args: object) -> None:
                self.handle = real_open(*args)  # type: ignore[call-overload]

            def __enter__(self) -> Counting:
                return self

            def __exit__(self, *exc: object) -> None:
                self.handle.close()

            def seek(self, *args: int) -> int:
                return self.handle.seek(*args)

            def read(self, *args: int) -> bytes:
                data = self.handle.read(*args)
                read.append(len(data))
                return data

        monkeypatch.setattr(transcript, "open", Counting, raising=False)
        transcript.await_tool_use_line([path], "toolu_new", ledger=ledger)
    assert sum(read) < (128 << 10)  # the new line and a small window, not the 4 MB before it


def test_a_session_whose_transcript_file_does_not_exist_yet_is_waited_for(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Claude Code creates the transcript at its first flush, which can come after the session's first PreToolUse
    (seen in the e2e economy test: the hook found no file, decided without the request, and no model was known)."""
    from budget_helpers import NOW

    from token_budget.ledger import Ledger
    from token_budget.models import UsageEvent

    write_config(tmp_path, monkeypatch, CONFIG)
    monkeypatch.setenv("TOKEN_BUDGET_HOME", str(tmp_path / "data"))
    with Ledger.open(tmp_path / "data") as ledger, ledger.transaction():  # another session's usage today
        ledger.record([UsageEvent("msg_other", "2026-11-28T09:00:00.000Z", "claude-sonnet-4-5-20250929",
                                  input_tokens=950, session_id="other")], source="import")
    s = Session(tmp_path / "claude", session_id="fresh", now=NOW)
    assert not s.path.exists()
    writer = later(0.4, s.path, [user_line("go", session_id="fresh"), *tool_use_response(s, "toolu_first", 100)])
    code, out = s.hook("PreToolUse", tool_use_id="toolu_first")
    writer.join()
    assert code == 0 and out["hookSpecificOutput"]["permissionDecision"] == "deny", out


POSITIONS_READ = "FROM transcript_offsets WHERE path IN"


def test_a_pretooluse_that_ingests_reads_the_transcripts_position_once_before_its_transaction(
        data_dir: Path, claude_dir: Path, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The wait for the tool_use line reads the file's position; the ingest after it reuses it (one statement
    fewer on every ingesting PreToolUse)."""
    from token_budget.ledger import Ledger

    write_config(tmp_path, monkeypatch, CONFIG)
    session = Session(claude_dir)
    session.spend(10)
    assert session.hook("PostToolUse")[0] == 0
    write_lines(session.path, tool_use_response(session, "toolu_new", 20))
    statements: list[str] = []
    real_init = Ledger.__init__

    def traced(self: Ledger, db: object, path: str) -> None:
        db.set_trace_callback(statements.append)  # type: ignore[attr-defined]
        real_init(self, db, path)  # type: ignore[arg-type]

    monkeypatch.setattr(Ledger, "__init__", traced)
    assert session.hook("PreToolUse", tool_use_id="toolu_new") == (0, {})
    before = statements[: statements.index("BEGIN IMMEDIATE")]
    assert sum(POSITIONS_READ in s for s in before) == 1
    monkeypatch.setattr(Ledger, "__init__", real_init)
    with Ledger.open(data_dir) as ledger:
        assert ledger.db.execute("SELECT COUNT(*), SUM(input_tokens) FROM requests").fetchone() == (2, 30)


def test_positions_another_process_moved_since_the_wait_neither_lose_nor_double_count(
        data_dir: Path, claude_dir: Path) -> None:
    """The positions the wait read can be overtaken by a parallel hook's ingest before this one's: the file is then
    read again from the position saved under the write lock, so nothing is recorded twice or skipped."""
    from builders import transcript_path

    from token_budget.ledger import Ledger

    path = transcript_path(claude_dir)
    write_lines(path, response())
    with Ledger.open(data_dir) as ledger, Ledger.open(data_dir) as other:
        transcript.ingest_files(ledger, [path], source="hook")
        tool = response()
        tool[-1]["message"]["content"] = [{"type": "tool_use", "id": "toolu_new", "name": "Bash", "input": {}}]
        write_lines(path, tool)
        positions = transcript.await_tool_use_line([path], "toolu_new", ledger=ledger)
        assert list(positions) == [str(path)] and positions[str(path)] is not None
        assert transcript.ingest_files(other, [path], source="hook").inserted == 1  # the parallel hook
        again = transcript.ingest_files(ledger, [path], source="hook", positions=positions)
        assert (again.inserted, again.updated) == (0, 0)
        write_lines(path, response())  # and a later request is still read once, from the saved position
        assert transcript.ingest_files(ledger, [path], source="hook", positions=positions).inserted == 1
        assert ledger.db.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 3
