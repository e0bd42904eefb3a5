"""A sidechain replay never moves a request: the parent's own line wins it whole, in every order of arrival.

The case observed in the field: a `/btw` (aside_question) subagent file replays a parent's message with the same
message.id, a new requestId, a timestamp on the next UTC day and 52,000 more cache-read tokens. Billing and
ccusage keep the parent's line: its usage, its timestamp and so its day. Only lines of the same kind (two parent
lines, or two sidechain lines) compete on the largest total.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from builders import hook_payload, response, subagent_path, transcript_path, write_lines
from click.testing import CliRunner

from token_budget.claude.hook import run
from token_budget.claude.transcript import ingest_files
from token_budget.cli import cli
from token_budget.config import load
from token_budget.ledger import Ledger, strongest
from token_budget.models import UsageEvent

PARENT_TS = "2026-11-28T23:59:40.000Z"
REPLAY_TS = "2026-11-29T00:00:20.000Z"  # the next UTC day
DAY1 = ("2026-11-28T00:00:00.000Z", "2026-11-29T00:00:00.000Z")
DAY2 = ("2026-11-29T00:00:00.000Z", "2026-11-30T00:00:00.000Z")
PARENT = {"input_tokens": 40, "output_tokens": 300, "cache_5m": 0, "cache_1h": 2_000, "cache_read": 10_000}
REPLAY = {**PARENT, "cache_read": 62_000}
OWN = {"input_tokens": 7, "output_tokens": 70, "cache_read": 900}  # the aside's own answer: counted on its own


def write_session(claude_dir: Path, *, together: bool = False, replay_first: bool = False) -> tuple[Path, Path]:
    """The parent's transcript and the aside's subagent transcript (or one file holding both, `together`)."""
    main = transcript_path(claude_dir, "s")
    side = subagent_path(main, "aside1")
    parent = response(session_id="s", message_id="msg_shared", request_id="req_parent", timestamp=PARENT_TS,
                      blocks=2, **PARENT)
    replay = response(session_id="s", message_id="msg_shared", request_id="req_replay", timestamp=REPLAY_TS,
                      is_sidechain=True, agent_id="aside1", **REPLAY)
    own = response(session_id="s", message_id="msg_own", timestamp=REPLAY_TS, is_sidechain=True,
                   agent_id="aside1", **OWN)
    if together:
        write_lines(main, [*replay, *parent] if replay_first else [*parent, *replay])
        write_lines(side, own)
    else:
        write_lines(main, parent)
        write_lines(side, [*replay, *own])
    side.with_name("agent-aside1.meta.json").write_text(json.dumps({"agentType": "aside_question"}))
    return main, side


def assert_parent_kept(data_dir: Path) -> None:
    with Ledger.open(data_dir) as ledger:
        rows = {r["message_id"]: r for r in ledger.rows()}
        assert sorted(rows) == ["msg_own", "msg_shared"]
        shared = rows["msg_shared"]
        assert (shared["timestamp"], shared["request_id"], shared["is_sidechain"], shared["agent_id"]) == (
            PARENT_TS, "req_parent", 0, None)
        assert (shared["input_tokens"], shared["output_tokens"], shared["cache_creation_1h_tokens"],
                shared["cache_read_tokens"]) == (40, 300, 2_000, 10_000)
        # Sonnet 4.5 at 3 / 15 / 6 (1h write) / 0.30 per MTok: the parent's usage, priced on the parent's day.
        assert shared["cost_micros"] == 40 * 3 + 300 * 15 + 2_000 * 6 + 10_000 * 3 // 10
        day1, day2 = ledger.totals(since=DAY1[0], until=DAY1[1]), ledger.totals(since=DAY2[0], until=DAY2[1])
        assert (day1[None]["requests"], day1[None]["cache_read"]) == (1, 10_000)
        assert (day2[None]["requests"], day2[None]["cache_read"]) == (1, 900)
        # The hourly rollup the budgets read agrees with the rows, whatever updates moved the request around.
        classes = ("input", "output", "cache_creation")
        rolled = {day: sum(r[1] for r in ledger.totals_by_model(classes, *bounds))
                  for day, bounds in (("day1", DAY1), ("day2", DAY2))}
        assert rolled == {"day1": 40 + 300 + 2_000, "day2": 7 + 70}
        hourly = ledger.db.execute("SELECT hour, requests, cache_read_tokens FROM hourly_totals "
                                   "WHERE requests > 0 ORDER BY hour").fetchall()
        assert hourly == [("2026-11-28T23", 1, 10_000), ("2026-11-29T00", 1, 900)]


def ingest(data_dir: Path, *paths: Path) -> None:
    with Ledger.open(data_dir) as ledger:
        ingest_files(ledger, list(paths), source="hook", prices=load().prices)


@pytest.mark.parametrize("replay_first", [False, True], ids=["parent-first", "replay-first"])
def test_separate_hooks_keep_the_parent_line_whole(data_dir: Path, claude_dir: Path, replay_first: bool) -> None:
    main, side = write_session(claude_dir)
    for path in ([side, main] if replay_first else [main, side]):
        ingest(data_dir, path)
    assert_parent_kept(data_dir)


@pytest.mark.parametrize("replay_first", [False, True], ids=["parent-first", "replay-first"])
def test_one_batch_keeps_the_parent_line_whole(data_dir: Path, claude_dir: Path, replay_first: bool) -> None:
    main, side = write_session(claude_dir)
    ingest(data_dir, *([side, main] if replay_first else [main, side]))
    assert_parent_kept(data_dir)


@pytest.mark.parametrize("replay_first", [False, True], ids=["parent-first", "replay-first"])
def test_both_lines_in_one_file_keep_the_parent_line_whole(data_dir: Path, claude_dir: Path,
                                                           replay_first: bool) -> None:
    main, side = write_session(claude_dir, together=True, replay_first=replay_first)
    ingest(data_dir, main, side)
    assert_parent_kept(data_dir)


def hook(event: str, payload: dict) -> None:
    out = io.StringIO()
    assert run([event], io.StringIO(json.dumps(payload)), out, io.StringIO()) == 0


@pytest.mark.parametrize("replay_first", [False, True], ids=["parent-first", "replay-first"])
def test_real_hook_events_keep_the_parent_line_whole(data_dir: Path, claude_dir: Path, replay_first: bool) -> None:
    main, side = write_session(claude_dir)
    parent_lines, side_lines = main.read_bytes(), side.read_bytes()
    main.unlink()
    side.unlink()
    first, second = ((side, side_lines), (main, parent_lines)) if replay_first else \
        ((main, parent_lines), (side, side_lines))
    first[0].write_bytes(first[1])
    if first[0] == side:  # the aside finishes before the parent's line is written
        hook("SubagentStop", hook_payload("SubagentStop", main, session_id="s", agent_id="aside1",
                                          agent_transcript_path=str(side)))
    else:
        hook("Stop", hook_payload("Stop", main, session_id="s"))
    second[0].write_bytes(second[1])
    hook("Stop", hook_payload("Stop", main, session_id="s"))
    assert_parent_kept(data_dir)


@pytest.mark.parametrize("replay_first", [False, True], ids=["parent-first", "replay-first"])
def test_tokens_import_keeps_the_parent_line_whole(data_dir: Path, claude_dir: Path, replay_first: bool) -> None:
    main, side = write_session(claude_dir)
    held = (main if replay_first else side).read_bytes()
    (main if replay_first else side).unlink()
    runner = CliRunner()
    assert runner.invoke(cli, ["import", "--claude-dir", str(claude_dir)]).exit_code == 0
    (main if replay_first else side).write_bytes(held)
    result = runner.invoke(cli, ["import", "--claude-dir", str(claude_dir), "--json"])
    assert result.exit_code == 0, result.output
    assert_parent_kept(data_dir)
    again = runner.invoke(cli, ["import", "--claude-dir", str(claude_dir), "--json"])
    assert json.loads(again.output)["requests_added"] == 0


def test_tokens_import_of_the_whole_tree_at_once_keeps_the_parent_line_whole(data_dir: Path,
                                                                             claude_dir: Path) -> None:
    write_session(claude_dir)  # sorted by path, the subagent's folder comes after the parent's file
    write_session(claude_dir / "other", together=True, replay_first=True)  # and a second tree, replay first
    result = CliRunner().invoke(cli, ["import", "--claude-dir", str(claude_dir), "--json"])
    assert result.exit_code == 0, result.output
    assert_parent_kept(data_dir)


def event(total_read: int, *, sidechain: bool, ts: str = PARENT_TS) -> UsageEvent:
    return UsageEvent("m", ts, "claude-sonnet-4-5", input_tokens=1, cache_read_tokens=total_read,
                      is_sidechain=sidechain)


def test_lines_of_the_same_kind_compete_on_the_largest_total(data_dir: Path) -> None:
    small, big = event(10, sidechain=False), event(99, sidechain=False, ts=REPLAY_TS)
    assert strongest([small, big]) == strongest([big, small]) == [big]
    side_small, side_big = event(10, sidechain=True), event(99, sidechain=True)
    assert strongest([side_big, side_small]) == [side_big]
    assert strongest([side_big, small]) == strongest([small, side_big]) == [small]
    with Ledger.open(data_dir) as ledger:
        for batch in ([side_small], [small], [side_big], [big]):
            with ledger.transaction():
                ledger.record(batch, source="hook")
        (row,) = ledger.rows()
        assert (row["cache_read_tokens"], row["timestamp"], row["is_sidechain"]) == (99, REPLAY_TS, 0)
