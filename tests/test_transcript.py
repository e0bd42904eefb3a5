"""Reading Claude Code transcripts: every API request once, with the final usage, whatever the file holds."""

from __future__ import annotations

import json
import os
from pathlib import Path

from builders import response, subagent_path, synthetic, transcript_path, user_line, write_lines

from token_budget.claude.transcript import find_transcripts, ingest_files, read_delta
from token_budget.ledger import Ledger


def totals(ledger: Ledger) -> dict[str, int]:
    return ledger.totals()[None] if ledger.count() else {}


def ingest(ledger: Ledger, *paths: Path):
    return ingest_files(ledger, list(paths), source="hook")


def test_one_response_written_as_three_content_block_lines_counts_once(data_dir: Path, claude_dir: Path) -> None:
    path = write_lines(transcript_path(claude_dir), response(blocks=3, input_tokens=10, output_tokens=20))
    with Ledger.open(data_dir) as ledger:
        result = ingest(ledger, path)
        assert (result.inserted, ledger.count()) == (1, 1)
        assert totals(ledger)["output"] == 20


def test_partial_output_on_early_lines_keeps_the_final_count(data_dir: Path, claude_dir: Path) -> None:
    lines = response(blocks=3, partial_output=1, output_tokens=900, timestamp="2026-11-28T23:59:59.000Z")
    lines[-1]["timestamp"] = "2026-11-29T00:00:01.000Z"  # the final line crosses midnight
    path = write_lines(transcript_path(claude_dir), lines)
    with Ledger.open(data_dir) as ledger:
        ingest(ledger, path)
        row = ledger.rows()[0]
        assert row["output_tokens"] == 900
        assert row["timestamp"] == "2026-11-29T00:00:01.000Z"  # the day of the line whose usage is kept


def test_final_line_arriving_in_a_later_read_upgrades_the_row(data_dir: Path, claude_dir: Path) -> None:
    first, last = response(blocks=2, partial_output=3, output_tokens=400)
    path = write_lines(transcript_path(claude_dir), first)
    with Ledger.open(data_dir) as ledger:
        ingest(ledger, path)
        assert totals(ledger)["output"] == 3
        write_lines(path, last)
        result = ingest(ledger, path)
        assert (result.inserted, result.updated) == (0, 1)
        assert totals(ledger)["output"] == 400


def test_every_token_class_is_kept_apart(data_dir: Path, claude_dir: Path) -> None:
    path = write_lines(transcript_path(claude_dir), response(input_tokens=7, output_tokens=11, cache_5m=13,
                                                            cache_1h=17, cache_read=19))
    with Ledger.open(data_dir) as ledger:
        ingest(ledger, path)
        t = totals(ledger)
        assert (t["input"], t["output"], t["cache_creation_5m"], t["cache_creation_1h"], t["cache_read"]) == (
            7, 11, 13, 17, 19)


def test_usage_without_the_ttl_split_counts_as_5_minute_writes(data_dir: Path, claude_dir: Path) -> None:
    line = response(cache_5m=0, cache_1h=0)[0]
    del line["message"]["usage"]["cache_creation"]
    line["message"]["usage"]["cache_creation_input_tokens"] = 500
    path = write_lines(transcript_path(claude_dir), line)
    with Ledger.open(data_dir) as ledger:
        ingest(ledger, path)
        assert (totals(ledger)["cache_creation_5m"], totals(ledger)["cache_creation_1h"]) == (500, 0)


def test_synthetic_error_placeholders_are_not_requests(data_dir: Path, claude_dir: Path) -> None:
    path = write_lines(transcript_path(claude_dir), [user_line(), synthetic(), *response()])
    with Ledger.open(data_dir) as ledger:
        ingest(ledger, path)
        assert [r["model"] for r in ledger.rows()] == ["claude-sonnet-4-5-20250929"]


def test_lines_without_request_id_merge_by_message_id(data_dir: Path, claude_dir: Path) -> None:
    """Proxies may drop the request-id header; the message id alone still identifies the response."""
    path = write_lines(transcript_path(claude_dir), response(blocks=3, request_id=None, partial_output=2,
                                                             output_tokens=70))
    with Ledger.open(data_dir) as ledger:
        ingest(ledger, path)
        assert ledger.count() == 1
        assert totals(ledger)["output"] == 70
        assert ledger.rows()[0]["request_id"] is None


def test_a_fork_copies_lines_into_a_new_file_without_double_counting(data_dir: Path, claude_dir: Path) -> None:
    original = response(blocks=2, session_id="parent")
    main = write_lines(transcript_path(claude_dir, "parent"), original)
    fork_lines = [dict(line, sessionId="forked") for line in original]
    fork = write_lines(transcript_path(claude_dir, "forked"), [*fork_lines, *response(session_id="forked")])
    with Ledger.open(data_dir) as ledger:
        ingest(ledger, main, fork)
        assert ledger.count() == 2
        sessions = sorted(r["session_id"] for r in ledger.rows())
        assert sessions == ["forked", "parent"]  # the copied request stays with the session that made it


def test_a_resumed_session_appending_to_its_file_is_read_from_the_offset(data_dir: Path, claude_dir: Path) -> None:
    path = write_lines(transcript_path(claude_dir), response())
    with Ledger.open(data_dir) as ledger:
        ingest(ledger, path)
        size = path.stat().st_size
        write_lines(path, response(timestamp="2026-11-28T11:00:00.000Z"))
        result = ingest(ledger, path)
        assert result.bytes_read == path.stat().st_size - size
        assert ledger.count() == 2


def test_a_sidechain_replay_of_a_parent_message_counts_once_for_the_parent(data_dir: Path, claude_dir: Path) -> None:
    parent = response(session_id="s", message_id="msg_shared", request_id="req_parent")
    main = write_lines(transcript_path(claude_dir, "s"), parent)
    replay = response(session_id="s", message_id="msg_shared", request_id="req_replay", is_sidechain=True,
                      agent_id="a1")
    side = write_lines(subagent_path(main, "a1"), [*replay, *response(session_id="s", is_sidechain=True,
                                                                       agent_id="a1")])
    with Ledger.open(data_dir) as ledger:
        ingest(ledger, side, main)  # the replay is seen first: the parent's line still takes over
        rows = {r["message_id"]: r for r in ledger.rows()}
        assert len(rows) == 2
        assert rows["msg_shared"]["is_sidechain"] == 0
        assert rows["msg_shared"]["request_id"] == "req_parent"


def test_subagent_requests_are_attributed_to_the_subagent(data_dir: Path, claude_dir: Path) -> None:
    main = write_lines(transcript_path(claude_dir), response())
    side = write_lines(subagent_path(main, "abc"), response(is_sidechain=True, agent_id="abc",
                                                            model="claude-haiku-4-5-20251001"))
    side.with_name("agent-abc.meta.json").write_text(json.dumps({"agentType": "Explore", "toolUseId": "t"}))
    with Ledger.open(data_dir) as ledger:
        ingest(ledger, main, side)
        sub = [r for r in ledger.rows() if r["agent_id"]]
        assert [(r["agent_id"], r["agent_type"], r["is_sidechain"]) for r in sub] == [("abc", "Explore", 1)]
        assert sub[0]["project"] == "-tmp-proj"


def test_a_torn_last_line_waits_for_its_end(data_dir: Path, claude_dir: Path) -> None:
    path = transcript_path(claude_dir)
    complete, torn = response(), response(output_tokens=77)
    write_lines(path, complete)
    text = json.dumps(torn[0])
    with open(path, "a") as handle:
        handle.write(text[:40])
    with Ledger.open(data_dir) as ledger:
        ingest(ledger, path)
        assert ledger.count() == 1
        with open(path, "a") as handle:
            handle.write(text[40:] + "\n")
        ingest(ledger, path)
        assert ledger.count() == 2
        assert totals(ledger)["output"] == 50 + 77


def test_malformed_lines_are_skipped_and_counted(data_dir: Path, claude_dir: Path) -> None:
    path = transcript_path(claude_dir)
    write_lines(path, response())
    bad = response()[0]
    bad["message"]["usage"]["input_tokens"] = -5
    write_lines(path, bad)
    with open(path, "a") as handle:
        handle.write('{"type":"assistant","message":{"usage":{"input_tokens": 1}, oops\n')
        handle.write("\x00\x01 not json at all \"usage\"\n")
    huge = response()[0]
    huge["message"]["usage"]["output_tokens"] = 10**20
    write_lines(path, [huge, *response()])
    with Ledger.open(data_dir) as ledger:
        result = ingest(ledger, path)
        assert (ledger.count(), result.malformed) == (2, 4)
        stored = ledger.db.execute("SELECT malformed_lines FROM transcript_offsets").fetchone()[0]
        assert stored == 4


def test_a_model_null_inside_a_tool_input_does_not_hide_the_line(data_dir: Path, claude_dir: Path) -> None:
    """ccusage 20.0.24 drops any line containing "model":null before parsing; the API still billed it."""
    line = response(output_tokens=321)[0]
    line["message"]["content"] = [{"type": "tool_use", "name": "Agent", "input": {"prompt": "p", "model": None}}]
    path = write_lines(transcript_path(claude_dir), line)
    with Ledger.open(data_dir) as ledger:
        ingest(ledger, path)
        assert totals(ledger)["output"] == 321


def test_a_file_rewritten_from_scratch_is_reread(data_dir: Path, claude_dir: Path) -> None:
    path = write_lines(transcript_path(claude_dir), [*response(), *response()])
    with Ledger.open(data_dir) as ledger:
        ingest(ledger, path)
        replacement = path.with_suffix(".new")
        write_lines(replacement, response(output_tokens=5))
        os.replace(replacement, path)  # a new inode, and shorter than the old offset
        ingest(ledger, path)
        assert ledger.count() == 3


def test_a_growing_file_keeps_its_offset_and_the_hash_of_its_head(data_dir: Path, claude_dir: Path) -> None:
    """The head hash (zlib's CRC-32 of up to the first KiB) is stored with each offset: a file that grows from less
    than a KiB to more is never taken for a rewritten one, and each read starts where the last one ended."""
    import zlib

    path = write_lines(transcript_path(claude_dir), response(blocks=1))
    with Ledger.open(data_dir) as ledger:
        for step in range(6):
            ingest(ledger, path)
            data = path.read_bytes()
            _, _, offset, head, lines, _ = ledger.read_position(str(path))
            assert offset == len(data) and lines == data.count(b"\n"), step  # never read from 0 again
            assert head == f"{min(offset, 1024)}:{zlib.crc32(data[:1024]):08x}", step
            with open(path, "a") as handle:
                handle.write(json.dumps(response(blocks=1)[0]) + "\n")
        assert offset > 1024 and ledger.count() == 6


def test_a_file_truncated_in_place_is_reread(data_dir: Path, claude_dir: Path) -> None:
    path = write_lines(transcript_path(claude_dir), [*response(), *response()])
    with Ledger.open(data_dir) as ledger:
        ingest(ledger, path)
        path.write_text("")
        write_lines(path, response(output_tokens=5))
        ingest(ledger, path)
        assert ledger.count() == 3


def test_an_unchanged_file_costs_no_transaction(data_dir: Path, claude_dir: Path) -> None:
    path = write_lines(transcript_path(claude_dir), response())
    with Ledger.open(data_dir) as ledger:
        ingest(ledger, path)
        assert ingest(ledger, path).files == 0


def test_a_ten_megabyte_line_is_read_whole(tmp_path: Path) -> None:
    line = response(output_tokens=42)[0]
    line["message"]["content"] = [{"type": "text", "text": "x" * (10 << 20)}]
    path = write_lines(tmp_path / "projects" / "p" / "s.jsonl", line)
    delta = read_delta(path, 0)
    assert [e.output_tokens for e in delta.events] == [42]
    assert delta.offset == path.stat().st_size


def test_timestamps_with_offsets_are_stored_in_utc(data_dir: Path, claude_dir: Path) -> None:
    path = write_lines(transcript_path(claude_dir), response(timestamp="2026-11-28T01:30:00+02:00"))
    with Ledger.open(data_dir) as ledger:
        ingest(ledger, path)
        assert ledger.rows()[0]["timestamp"] == "2026-11-27T23:30:00.000Z"


def test_find_transcripts_walks_projects_recursively(claude_dir: Path) -> None:
    main = write_lines(transcript_path(claude_dir), response())
    side = write_lines(subagent_path(main, "x"), response())
    journal = write_lines(main.with_suffix("") / "subagents" / "workflows" / "wf_1" / "journal.jsonl", {"a": 1})
    found = find_transcripts([claude_dir])
    assert found == sorted([str(main), str(side)])
    assert str(journal) not in found


def test_every_field_of_a_line_lands_in_its_own_column(data_dir: Path, claude_dir: Path) -> None:
    # The event and the row are built positionally for speed; distinct values in every field catch a swap.
    lines = response(message_id="msg_fields", request_id="req_fields", session_id="sess-fields", cwd="/w/fields",
                     model="claude-opus-4-5", is_sidechain=True, agent_id="agent-7", input_tokens=3,
                     output_tokens=5, cache_5m=7, cache_1h=11, cache_read=13, speed="fast")
    lines[0]["gitBranch"] = "feature/x"
    lines[0]["message"]["usage"]["service_tier"] = "priority"
    path = write_lines(transcript_path(claude_dir, "sess-fields", project="-w-fields"), lines)
    with Ledger.open(data_dir) as ledger:
        ingest(ledger, path)
        row = dict(ledger.rows()[0])
    assert {k: row[k] for k in (
        "message_id", "request_id", "timestamp", "session_id", "project", "cwd", "git_branch", "agent_id",
        "agent_type", "is_sidechain", "model", "input_tokens", "output_tokens", "cache_creation_5m_tokens",
        "cache_creation_1h_tokens", "cache_read_tokens", "total_tokens", "speed", "service_tier", "cost_status",
        "source", "workflow", "workflow_run_id", "phase",
    )} == {
        "message_id": "msg_fields", "request_id": "req_fields", "timestamp": "2026-11-28T10:30:00.000Z",
        "session_id": "sess-fields", "project": "-w-fields", "cwd": "/w/fields", "git_branch": "feature/x",
        "agent_id": "agent-7", "agent_type": None, "is_sidechain": 1, "model": "claude-opus-4-5",
        "input_tokens": 3, "output_tokens": 5, "cache_creation_5m_tokens": 7, "cache_creation_1h_tokens": 11,
        "cache_read_tokens": 13, "total_tokens": 39, "speed": "fast", "service_tier": "priority",
        "cost_status": "unpriced", "source": "hook", "workflow": None, "workflow_run_id": None, "phase": None,
    }
    assert row["recorded_at"] and row["cost_micros"] == 0
