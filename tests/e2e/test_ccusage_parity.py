"""`tokens import` agrees with ccusage 20.0.24 per day and per token class, except where ccusage is not billing.

ccusage 20.0.24 differs from what Anthropic bills in three known cases; there the ledger follows billing and each
case has its own test naming the difference:
1. content-block lines of one response that carry no requestId are counted once per line by ccusage (it merges
   them only when session and timestamp also match);
2. a valid line containing the text "model":null anywhere (say, in a tool input) is dropped by ccusage before
   parsing, leaving an earlier partial line;
3. tokens on a <synthetic> line are counted by ccusage.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TESTS))
from builders import response, subagent_path, synthetic, transcript_path, user_line, write_lines  # noqa: E402

ROOT = TESTS.parent
CLASSES = {"inputTokens": "input", "outputTokens": "output", "cacheCreationTokens": "cache_creation",
           "cacheReadTokens": "cache_read"}


def ccusage_days(claude_env) -> dict[str, dict[str, int]]:  # type: ignore[no-untyped-def]
    result = claude_env.ccusage("claude", "daily", "--json", "--offline", "--timezone", "UTC")
    data = json.loads(result.stdout)
    return {row["date"]: {ours: row[theirs] for theirs, ours in CLASSES.items()} for row in data["daily"]}


def ledger_days(claude_env, tmp_path: Path) -> dict[str, dict[str, int]]:  # type: ignore[no-untyped-def]
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "TZ": "UTC", "HOME": str(tmp_path),
           "TOKEN_BUDGET_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    run = [sys.executable, "-m", "token_budget"]
    subprocess.run([*run, "import", "--claude-dir", str(claude_env.home)], env=env, check=True, capture_output=True)
    again = subprocess.run([*run, "import", "--json", "--claude-dir", str(claude_env.home)], env=env, check=True,
                           capture_output=True, text=True)
    assert json.loads(again.stdout)["requests_added"] == 0  # idempotent
    out = subprocess.run([*run, "log", "--json", "--limit", "0"], env=env, check=True, capture_output=True, text=True)
    days: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(CLASSES.values(), 0))
    for line in out.stdout.splitlines():
        entry = json.loads(line)
        for cls in CLASSES.values():
            days[entry["timestamp"][:10]][cls] += entry["tokens"][cls]
    return dict(days)


def build_realistic_tree(home: Path, seed: int = 3) -> None:
    """Several projects, days and models; multi-block responses with partial output; subagents; forks; resumes;
    sidechain replays; torn and malformed lines."""
    rng = random.Random(seed)
    models = ["claude-sonnet-4-5-20250929", "claude-opus-4-5-20251101", "claude-haiku-4-5-20251001",
              "claude-opus-4-6", "claude-sonnet-4-6"]
    for p in range(3):
        for s in range(4):
            session = f"p{p}-s{s}"
            path = transcript_path(home, session, project=f"-work-proj{p}")
            lines: list[dict] = []
            for turn in range(rng.randint(3, 12)):
                day = 20 + (s + turn // 4) % 5
                ts = (f"2026-11-{day:02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:"
                      f"{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}Z")
                lines.append(user_line(session_id=session, timestamp=ts))
                lines += response(session_id=session, timestamp=ts, model=rng.choice(models),
                                  blocks=rng.randint(1, 4), partial_output=rng.choice([None, 1, 7]),
                                  input_tokens=rng.randint(1, 30_000), output_tokens=rng.randint(1, 8_000),
                                  cache_5m=rng.choice([0, rng.randint(1, 50_000)]),
                                  cache_1h=rng.choice([0, rng.randint(1, 90_000)]),
                                  cache_read=rng.randint(0, 400_000), speed=rng.choice(["standard", None]))
            write_lines(path, lines)
            if s == 0:  # a subagent with its own requests, plus a sidechain replay of a parent message
                side = subagent_path(path, f"agent{p}")
                replay = [dict(line, isSidechain=True, requestId="req_replay_" + line["requestId"], agentId=f"agent{p}")
                          for line in lines if line["type"] == "assistant"][:1]
                write_lines(side, [*replay, *response(session_id=session, is_sidechain=True, agent_id=f"agent{p}",
                                                      timestamp="2026-11-21T12:00:00.000Z",
                                                      model="claude-haiku-4-5-20251001", blocks=2,
                                                      input_tokens=500, output_tokens=60)])
            if s == 1:  # a fork copies the history into a new file with a new session id, then goes on
                fork = transcript_path(home, f"{session}-fork", project=f"-work-proj{p}")
                write_lines(fork, [dict(line, sessionId=f"{session}-fork") for line in lines])
                write_lines(fork, response(session_id=f"{session}-fork", timestamp="2026-11-24T08:00:00.000Z"))
            if s == 2:  # a resume appends to the same file later
                write_lines(path, response(session_id=session, timestamp="2026-11-24T23:59:59.999Z", blocks=3,
                                           partial_output=2, output_tokens=444))
            if s == 3:  # a torn line at the end of a crashed session
                with open(path, "a") as handle:
                    handle.write('{"type":"assistant","message":{"id":"msg_torn","usage":{"input_tok')


@pytest.mark.slow
def test_import_matches_ccusage_per_day_and_class_on_a_realistic_tree(claude_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    build_realistic_tree(claude_env.home)
    theirs = ccusage_days(claude_env)
    ours = ledger_days(claude_env, tmp_path)
    assert len(ours) >= 4
    assert ours == theirs


def test_lines_without_request_id_ccusage_counts_each_block_the_ledger_once(claude_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lines = response(blocks=3, request_id=None, input_tokens=100, output_tokens=10,
                     timestamp="2026-11-25T10:00:00.000Z")
    for i, line in enumerate(lines):  # real block lines are written milliseconds apart
        line["timestamp"] = f"2026-11-25T10:00:00.{i:03d}Z"
    write_lines(transcript_path(claude_env.home), lines)
    assert ledger_days(claude_env, tmp_path)["2026-11-25"]["input"] == 100  # billed once
    assert ccusage_days(claude_env)["2026-11-25"]["input"] == 300  # ccusage: per line


def test_model_null_text_ccusage_drops_the_final_line_the_ledger_keeps_it(claude_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lines = response(blocks=2, partial_output=1, output_tokens=900, timestamp="2026-11-25T10:00:00.000Z")
    lines[1]["message"]["content"] = [{"type": "tool_use", "name": "Agent",
                                        "input": {"prompt": "look around", "model": None}}]
    write_lines(transcript_path(claude_env.home), lines)
    assert ledger_days(claude_env, tmp_path)["2026-11-25"]["output"] == 900
    assert ccusage_days(claude_env)["2026-11-25"]["output"] == 1  # only the partial line survived


def test_synthetic_lines_ccusage_counts_their_tokens_the_ledger_does_not(claude_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    line = synthetic(timestamp="2026-11-25T10:00:00.000Z")
    line["message"]["usage"]["input_tokens"] = 40
    write_lines(transcript_path(claude_env.home), [line, *response(timestamp="2026-11-25T11:00:00.000Z",
                                                                  input_tokens=5)])
    assert ledger_days(claude_env, tmp_path)["2026-11-25"]["input"] == 5
    assert ccusage_days(claude_env)["2026-11-25"]["input"] == 45
