"""Every billed token: requests that are in no transcript are added from Claude Code's own per-session totals.

Claude Code 2.1.332 writes a cost-state line into the main transcript with the session's cumulative figures per
model, subagents and auxiliary requests (titles, classifiers, prompt hooks) included. The fixtures below are built
like the real line (see tests/e2e/test_reconcile_cli.py for the real CLI). Prices: Sonnet 4.5 at 3 / 15 / 3.75
(5m write) / 6 (1h write) / 0.30 (read) USD per MTok, so micro-USD per token.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from builders import cost_state, hook_payload, response, subagent_path, transcript_path, write_lines
from click.testing import CliRunner

from token_budget.claude.hook import run
from token_budget.claude.transcript import ingest_files
from token_budget.cli import cli
from token_budget.config import load
from token_budget.ledger import Ledger
from token_budget.reconcile import summary

SONNET = "claude-sonnet-4-5-20250929"
RATES = {"input": 3, "output": 15, "cache_5m": 3.75, "cache_1h": 6, "cache_read": 0.3}


def micros(**counts: int) -> int:
    return round(sum(RATES[k] * v for k, v in counts.items()))


def figures(*parts: dict[str, int]) -> dict[str, dict[str, float]]:
    """Claude Code's cumulative figures for SONNET: the sum of `parts`, with its cost."""
    total = {k: sum(p.get(k, 0) for p in parts) for k in RATES}
    return {SONNET: {**total, "cost_usd": micros(**total) / 1e6}}


REQ1 = {"input": 1000, "output": 20, "cache_5m": 500, "cache_read": 4000}
REQ2 = {"input": 2000, "output": 30, "cache_1h": 800, "cache_read": 6000}
REQ3 = {"input": 3000, "output": 40, "cache_5m": 100, "cache_read": 9000}
AUX1 = {"input": 300, "output": 7}  # a prompt hook's request: in no transcript
AUX2 = {"input": 600, "output": 9}
AUX3 = {"input": 250, "output": 5}


def lines_for(counts: dict[str, int], **kw) -> list[dict]:
    return response(model=SONNET, input_tokens=counts.get("input", 0), output_tokens=counts.get("output", 0),
                    cache_5m=counts.get("cache_5m", 0), cache_1h=counts.get("cache_1h", 0),
                    cache_read=counts.get("cache_read", 0), **kw)


def ingest(data_dir: Path, *paths: Path, rescan: bool = False):
    with Ledger.open(data_dir) as ledger:
        return ingest_files(ledger, list(paths), source="hook", prices=load().prices, rescan=rescan)


def rows(data_dir: Path, **where: str) -> list[dict]:
    with Ledger.open(data_dir) as ledger:
        return [dict(r) for r in ledger.rows() if all(r[k] == v for k, v in where.items())]


def session_cost(data_dir: Path, session: str | None = None) -> int:
    return sum(r["cost_micros"] for r in rows(data_dir) if session is None or r["session_id"] == session)


def reconciled(data_dir: Path, session: str = "sess-1") -> tuple[int, ...]:
    found = rows(data_dir, source="reconciled", session_id=session)
    return tuple(sum(r[c] for r in found) for c in ("input_tokens", "output_tokens", "cache_creation_5m_tokens",
                                                    "cache_creation_1h_tokens", "cache_read_tokens"))


def test_an_auxiliary_request_in_no_transcript_is_added_as_a_priced_reconciled_row(data_dir: Path,
                                                                                   claude_dir: Path) -> None:
    path = write_lines(transcript_path(claude_dir), [*lines_for(REQ1, timestamp="2026-11-28T10:30:00.000Z"),
                                                     cost_state(models=figures(REQ1, AUX1))])
    result = ingest(data_dir, path)
    assert result.reconciled == 1
    (row,) = rows(data_dir, source="reconciled")
    assert (row["model"], row["session_id"], row["project"], row["timestamp"]) == (
        SONNET, "sess-1", "-tmp-proj", "2026-11-28T10:30:00.000Z")  # the newest timestamp before the figures
    assert (row["input_tokens"], row["output_tokens"], row["cost_micros"], row["cost_status"]) == (
        300, 7, micros(**AUX1), "priced")
    assert session_cost(data_dir) == micros(**REQ1) + micros(**AUX1)  # == Claude Code's totalCostUSD


def test_re_reading_and_re_importing_never_adds_it_twice(data_dir: Path, claude_dir: Path) -> None:
    path = write_lines(transcript_path(claude_dir), [*lines_for(REQ1), cost_state(models=figures(REQ1, AUX1))])
    ingest(data_dir, path)
    ingest(data_dir, path, rescan=True)
    runner = CliRunner()
    for args in (["import"], ["import", "--rescan"], ["import", "--rescan", "--json"]):
        assert runner.invoke(cli, [*args, "--claude-dir", str(claude_dir)]).exit_code == 0
    assert reconciled(data_dir) == (300, 7, 0, 0, 0)
    assert len(rows(data_dir, source="reconciled")) == 1


def test_a_resumed_session_adds_only_the_new_remainder(data_dir: Path, claude_dir: Path) -> None:
    path = write_lines(transcript_path(claude_dir), [*lines_for(REQ1), cost_state(models=figures(REQ1, AUX1))])
    ingest(data_dir, path)
    # --resume appends to the same file; the figures stay cumulative across runs
    write_lines(path, [*lines_for(REQ2, timestamp="2026-11-29T08:00:00.000Z"),
                       cost_state(models=figures(REQ1, AUX1, REQ2, AUX2))])
    ingest(data_dir, path)
    found = rows(data_dir, source="reconciled")
    assert [(r["timestamp"][:10], r["input_tokens"], r["output_tokens"]) for r in found] == [
        ("2026-11-28", 300, 7), ("2026-11-29", 600, 9)]  # each day keeps what was added on it
    assert session_cost(data_dir) == sum(micros(**p) for p in (REQ1, AUX1, REQ2, AUX2))


def test_a_request_made_after_the_figures_waits_for_the_next_ones(data_dir: Path, claude_dir: Path) -> None:
    """A resumed turn's request is recorded before Claude Code writes the figures that count it: the earlier
    figures do not cover it, so what was added for them stays as it was."""
    path = write_lines(transcript_path(claude_dir), [*lines_for(REQ1), cost_state(models=figures(REQ1, AUX1))])
    ingest(data_dir, path)
    before = rows(data_dir, source="reconciled")
    write_lines(path, lines_for(REQ2, timestamp="2026-11-28T11:00:00.000Z"))
    ingest(data_dir, path)
    assert rows(data_dir, source="reconciled") == before
    write_lines(path, cost_state(models=figures(REQ1, AUX1, REQ2)))
    ingest(data_dir, path)
    assert rows(data_dir, source="reconciled") == before


def test_subagent_requests_count_for_the_session_and_nothing_is_added(data_dir: Path, claude_dir: Path) -> None:
    main = transcript_path(claude_dir)
    side = write_lines(subagent_path(main, "a1"), lines_for(REQ2, is_sidechain=True, agent_id="a1"))
    write_lines(main, [*lines_for(REQ1), cost_state(models=figures(REQ1, REQ2))])
    ingest(data_dir, main, side)
    assert rows(data_dir, source="reconciled") == []
    with Ledger.open(data_dir) as ledger:
        found = summary(ledger)
    assert (found["sessions_checked"], found["drift"], found["ledger_above_client"]) == (1, [], [])


def test_a_late_subagent_line_shrinks_what_was_added(data_dir: Path, claude_dir: Path) -> None:
    """The figures may be read before a subagent line they already count: what was added then is taken back."""
    main = write_lines(transcript_path(claude_dir), [*lines_for(REQ1), cost_state(models=figures(REQ1, REQ2, AUX1))])
    ingest(data_dir, main)
    assert reconciled(data_dir) == (2300, 37, 0, 800, 6000)
    side = write_lines(subagent_path(main, "a1"), lines_for(REQ2, is_sidechain=True, agent_id="a1"))
    ingest(data_dir, main, side)
    assert reconciled(data_dir) == (300, 7, 0, 0, 0)
    assert session_cost(data_dir) == sum(micros(**p) for p in (REQ1, REQ2, AUX1))


def test_the_ledger_above_claude_codes_figure_is_reported_never_subtracted(data_dir: Path,
                                                                            claude_dir: Path) -> None:
    short = {k: v // 2 for k, v in REQ1.items()}
    path = write_lines(transcript_path(claude_dir), [*lines_for(REQ1), cost_state(models=figures(short))])
    ingest(data_dir, path)
    assert rows(data_dir, source="reconciled") == []
    with Ledger.open(data_dir) as ledger:
        (above,) = summary(ledger)["ledger_above_client"]
    assert above["above"][SONNET] == {"input": 500, "output": 10, "cache_creation_5m": 250, "cache_creation_1h": 0,
                                      "cache_read": 2000}
    result = CliRunner().invoke(cli, ["doctor", "--json", "--claude-dir", str(claude_dir)])
    check = next(c for c in json.loads(result.output)["checks"] if c["name"] == "reconciliation")
    assert check["status"] == "warn" and "ABOVE" in check["detail"] and "sess-1" in check["detail"]


def fork_tree(claude_dir: Path) -> tuple[Path, Path]:
    """A parent session of two turns (one prompt-hook request each), and a fork of it (--fork-session) that copies
    both turns' lines under its own session id, adds a turn, and starts its figures from the parent's."""
    parent = transcript_path(claude_dir, "parent")
    first = lines_for(REQ1, session_id="parent", timestamp="2026-11-28T10:00:00.000Z")
    second = lines_for(REQ2, session_id="parent", timestamp="2026-11-28T10:05:00.000Z")
    write_lines(parent, [*first, cost_state("parent", figures(REQ1, AUX1)),
                         *second, cost_state("parent", figures(REQ1, AUX1, REQ2, AUX2))])
    fork = transcript_path(claude_dir, "fork")
    copies = [dict(line, sessionId="fork") for line in (*first, *second)]
    own = lines_for(REQ3, session_id="fork", timestamp="2026-11-28T11:00:00.000Z")
    write_lines(fork, [*copies, *own, cost_state("fork", figures(REQ1, AUX1, REQ2, AUX2, REQ3, AUX3))])
    return parent, fork


@pytest.mark.parametrize("fork_first", [False, True], ids=["parent-first", "fork-first"])
def test_a_fork_starts_from_its_parents_totals_and_nothing_is_counted_twice(data_dir: Path, claude_dir: Path,
                                                                           fork_first: bool) -> None:
    parent, fork = fork_tree(claude_dir)
    if fork_first:
        ingest(data_dir, fork)
        ingest(data_dir, parent)
    else:
        ingest(data_dir, parent, fork)
    assert reconciled(data_dir, "parent") == (900, 16, 0, 0, 0)
    assert reconciled(data_dir, "fork") == (250, 5, 0, 0, 0)
    owners = [(r["input_tokens"], r["session_id"]) for r in rows(data_dir, source="hook")]
    assert sorted(owners) == [(1000, "parent"), (2000, "parent"), (3000, "fork")]  # copies stay with the parent
    everything = sum(micros(**p) for p in (REQ1, AUX1, REQ2, AUX2, REQ3, AUX3))
    assert session_cost(data_dir) == everything  # the fork's own figure: every request of both, once
    with Ledger.open(data_dir) as ledger:
        found = summary(ledger)
    assert (found["sessions_checked"], found["drift"], found["ledger_above_client"]) == (2, [], [])
    assert found["reconciled_tokens"] == 900 + 16 + 250 + 5


def test_a_stop_hook_reconciles_the_session(data_dir: Path, claude_dir: Path) -> None:
    path = write_lines(transcript_path(claude_dir), [*lines_for(REQ1), cost_state(models=figures(REQ1, AUX1))])
    out = io.StringIO()
    assert run(["Stop"], io.StringIO(json.dumps(hook_payload("Stop", path))), out, io.StringIO()) == 0
    assert reconciled(data_dir) == (300, 7, 0, 0, 0)


def test_figures_a_client_could_not_have_written_are_skipped_as_malformed(data_dir: Path, claude_dir: Path) -> None:
    bad = cost_state(models=figures(REQ1, AUX1))
    bad["modelUsage"][SONNET]["inputTokens"] = -5
    path = write_lines(transcript_path(claude_dir), [*lines_for(REQ1), bad])
    result = ingest(data_dir, path)
    assert (result.malformed, rows(data_dir, source="reconciled")) == (1, [])


def test_reports_and_doctor_show_what_was_added(data_dir: Path, claude_dir: Path) -> None:
    write_lines(transcript_path(claude_dir), [*lines_for(REQ1, timestamp="2026-11-28T10:30:00.000Z"),
                                              cost_state(models=figures(REQ1, AUX1))])
    runner = CliRunner()
    assert runner.invoke(cli, ["import", "--claude-dir", str(claude_dir)]).exit_code == 0
    report = json.loads(runner.invoke(cli, ["report", "--date", "2026-11-28", "--format", "json"]).output)
    assert report["reconciled"] == {"rows": 1, "tokens": 307, "cost": micros(**AUX1) / 1e6, "sessions_checked": 1,
                                    "drift": [], "ledger_above_client": []}
    other_day = json.loads(runner.invoke(cli, ["report", "--date", "2026-11-27", "--format", "json"]).output)
    assert (other_day["reconciled"]["rows"], other_day["reconciled"]["sessions_checked"]) == (0, 0)
    assert report["total_cost"] == (micros(**REQ1) + micros(**AUX1)) / 1e6
    yaml_text = runner.invoke(cli, ["report", "--date", "2026-11-28", "--format", "yaml"]).output
    assert "reconciled: 307 tokens ($0.00) in no transcript, from Claude Code's own totals; 1 sessions checked, " \
        "0 with a cost drift, 0 with the ledger above Claude Code" in yaml_text
    doctor = json.loads(runner.invoke(cli, ["doctor", "--json", "--claude-dir", str(claude_dir)]).output)
    check = next(c for c in doctor["checks"] if c["name"] == "reconciliation")
    assert check["status"] == "ok"
    assert "1 sessions checked" in check["detail"] and "added 307 tokens" in check["detail"]


def test_parallel_hooks_over_growing_figures_add_the_remainder_exactly_once(data_dir: Path, claude_dir: Path,
                                                                             subprocess_env: dict) -> None:
    """Real processes: hooks racing over a session whose turns and figures keep arriving reconcile to exactly
    Claude Code's last figure (each reconciliation runs in the ingesting transaction, under SQLite's writer lock)."""
    import subprocess
    import sys

    launcher = Path(__file__).resolve().parent.parent / "token_budget" / "claude" / "run_hook.py"
    path = transcript_path(claude_dir)
    parts: list[dict[str, int]] = []
    running = []
    for turn in range(6):
        request = {"input": 1000 + turn, "output": 10 + turn}
        aux = {"input": 100 * (turn + 1), "output": turn + 1}
        parts += [request, aux]
        write_lines(path, [*lines_for(request, timestamp=f"2026-11-28T10:0{turn}:00.000Z"),
                           cost_state(models=figures(*parts))])
        for _ in range(3):
            proc = subprocess.Popen([sys.executable, "-S", str(launcher), "Stop"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=subprocess_env)
            proc.stdin.write(json.dumps(hook_payload("Stop", path)).encode())  # type: ignore[union-attr]
            proc.stdin.close()  # type: ignore[union-attr]
            proc.stdin = None  # sent and closed: communicate() must not touch it again
            running.append(proc)
    for proc in running:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0 and json.loads(out) == {}, err
    aux_total = (sum(100 * (t + 1) for t in range(6)), sum(t + 1 for t in range(6)))
    assert reconciled(data_dir)[:2] == aux_total
    assert session_cost(data_dir) == micros(**{k: sum(p.get(k, 0) for p in parts) for k in RATES})


def test_a_cost_that_differs_beyond_rounding_is_reported_as_drift(data_dir: Path, claude_dir: Path) -> None:
    """Equal tokens, other prices (Claude Code's table is not ours): the session is listed with both costs."""
    dear = figures(REQ1, AUX1)
    dear[SONNET]["cost_usd"] += 0.01
    write_lines(transcript_path(claude_dir), [*lines_for(REQ1, timestamp="2026-11-28T10:30:00.000Z"),
                                              cost_state(models=dear)])
    runner = CliRunner()
    assert runner.invoke(cli, ["import", "--claude-dir", str(claude_dir)]).exit_code == 0
    report = json.loads(runner.invoke(cli, ["report", "--date", "2026-11-28", "--format", "json"]).output)
    (drift,) = report["reconciled"]["drift"]
    ours = (micros(**REQ1) + micros(**AUX1)) / 1e6
    assert (drift["session_id"], drift["ledger_cost_usd"]) == ("sess-1", ours)
    assert drift["client_cost_usd"] == pytest.approx(ours + 0.01, abs=1e-6)
    doctor = json.loads(runner.invoke(cli, ["doctor", "--json", "--claude-dir", str(claude_dir)]).output)
    check = next(c for c in doctor["checks"] if c["name"] == "reconciliation")
    assert check["status"] == "warn" and "cost differs beyond rounding in 1 session(s)" in check["detail"]


def test_figures_without_the_ttl_split_count_as_5_minute_writes() -> None:
    from token_budget.claude.transcript import totals_from_line

    line = cost_state(models={SONNET: {"input": 5, "output": 6, "cache_5m": 70, "cache_1h": 30, "cost_usd": 0.5}})
    usage = line["modelUsage"][SONNET]
    del usage["cacheCreationEphemeral5mInputTokens"], usage["cacheCreationEphemeral1hInputTokens"]
    found = totals_from_line(line, "2026-11-28T10:00:00.000Z")
    assert found is not None and found.models == ((SONNET, 5, 6, 100, 0, 0, 500_000),)
    assert totals_from_line({"type": "assistant"}, "2026-11-28T10:00:00.000Z") is None
    with pytest.raises(ValueError):
        totals_from_line({"type": "cost-state", "sessionId": "s"}, "2026-11-28T10:00:00.000Z")
