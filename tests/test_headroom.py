"""The headroom: a tool call that records a request far below every budget's next level is answered `{}` without
the decision (hook._within_headroom), and only while that answer is the decision's. One test per input that can
change the answer: each first lets the headroom answer, then changes that one input and expects the decision's
answer. The arithmetic itself (budgets.headroom, levels.spend_headroom) is tested on plain budget states."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from budget_helpers import HALF_DAY_CONFIG, NOW, Session, events_through, half_spent_session, write_config
from builders import hook_payload, response, transcript_path, write_lines
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from token_budget import budgets, levels
from token_budget.claude import enforce, fastpath, hook
from token_budget.cli import cli
from token_budget.ledger import Ledger, version_path
from token_budget.models import BudgetState
from token_budget.paths import LEDGER_NAME
from token_budget.policy import Settings

ROOT = Path(__file__).resolve().parent.parent
LAUNCHER = ROOT / "token_budget" / "claude" / "run_hook.py"
CONFIG = HALF_DAY_CONFIG
AGENT = {"description": "Check", "prompt": "Say hi.", "subagent_type": "general-purpose"}


# -- the arithmetic ------------------------------------------------------------------------------------------------


def state(scope: str, used: int, limit: int, level: str = "ok", **extra: object) -> BudgetState:
    return BudgetState(scope, used, limit, level, "2026-11-28", None, **extra)  # type: ignore[arg-type]


COUNTED = ["input", "output", "cache_creation"]  # the packaged config's counted_token_classes


def row(model: str, tokens: int, micros: int = 0, *, cache_read: int = 0, status: str = "priced") -> tuple:
    """A request row as Ledger.recorded collects it: input tokens only (and cache reads)."""
    return (model, tokens, 0, 0, cache_read, micros, status)


def test_each_budget_has_room_up_to_just_below_its_next_level() -> None:
    states = [state("daily", 5000, 10000), state("monthly", 7500, 10000, "warn")]
    room = budgets.headroom(states, Settings(), None, COUNTED)
    assert room is not None
    (_, daily, _, _), (_, monthly, _, _) = room["budgets"]
    assert daily == 1989  # 69.9% is 6,990 tokens: 1,989 more stay below it, the 1,990th could round up to 70.0%
    assert monthly == 489  # past 70%: the next level is 80%
    for scope, used, room_left in (("daily", 5000, daily), ("monthly", 7500, monthly)):
        settings = Settings()
        from token_budget.levels import level_for

        limits = settings.thresholds
        before = level_for(BudgetState(scope, used, 10000, "ok", "p").percent, limits)
        assert level_for(BudgetState(scope, used + room_left, 10000, "ok", "p").percent, limits) == before
        assert level_for(BudgetState(scope, used + room_left + 11, 10000, "ok", "p").percent, limits) != before


@given(limit=st.integers(1, 10**9), share=st.floats(0, 1.3), usd=st.one_of(st.none(), st.tuples(
    st.integers(0, 10**9), st.integers(1, 10**9))), trigger=st.floats(1, 120), auto=st.booleans(),
    spent=st.floats(0, 1))
@settings(max_examples=300, deadline=None)
def test_what_fits_in_the_room_never_changes_a_level_or_the_economy_trigger(
        limit: int, share: float, usd: tuple[int, int] | None, trigger: float, auto: bool, spent: float) -> None:
    """Property: any use up to a budget's room (tokens and micro-USD alike) leaves its level, and which side of the
    economy trigger it is on, as they were."""
    from token_budget.levels import level_for

    used = int(limit * share)
    used_micros, limit_micros = usd or (0, 0)
    cost = dict(used_usd=round(used_micros / 1e6, 6), limit_usd=limit_micros / 1e6) if usd else {}
    settings_ = Settings(mode="auto" if auto else "normal", economy_trigger=trigger)
    now = BudgetState("daily", used, limit, "ok", "p", None, **cost)  # type: ignore[arg-type]
    room = budgets.headroom([now], settings_, None, COUNTED)
    assert room is not None
    [[_, tokens, micros, _]] = room["budgets"]
    if tokens is not None and tokens < 0 or micros is not None and micros < 0:
        return  # no room: any request decides
    more_tokens = int((tokens or 0) * spent) if tokens is not None else 10 * limit
    more_micros = int((micros or 0) * spent) if micros is not None else 10 * max(limit_micros, 1)
    later = BudgetState("daily", used + more_tokens, limit, "ok", "p", None,  # type: ignore[arg-type]
                        **(dict(used_usd=round((used_micros + more_micros) / 1e6, 6),
                                limit_usd=limit_micros / 1e6) if usd else {}))
    if tokens is None and micros is None:
        return  # past every level: nothing left to cross
    assert level_for(later.percent, settings_.thresholds) == level_for(now.percent, settings_.thresholds)
    if auto:
        assert (later.percent >= trigger) == (now.percent >= trigger)


def test_a_cost_limit_has_room_in_micro_usd() -> None:
    room = budgets.headroom([state("daily", 0, 0, used_usd=1.5, limit_usd=2.0)], Settings(), None, COUNTED)
    assert room is not None and room["budgets"] == [["daily", None, 97_999, True]]  # 75% of $2 → 79.9%: $0.098


def test_in_auto_mode_the_economy_trigger_is_a_level() -> None:
    auto = Settings(mode="auto", economy_trigger=75.0)
    warn = [state("daily", 7200, 10000, "warn")]
    assert budgets.headroom(warn, auto, None, COUNTED)["budgets"][0][1] == 289  # to 74.9%
    assert budgets.headroom(warn, Settings(economy_trigger=75.0), None, COUNTED)["budgets"][0][1] == 789  # to 79.9%


def test_a_model_budget_counts_only_its_models_requests_and_others_are_not_followed() -> None:
    states = [state("daily", 0, 10000), state("model:claude-opus", 0, 1000)]
    room = budgets.headroom(states, Settings(), "claude-sonnet-4-5", COUNTED)
    assert room is not None and [b[3] for b in room["budgets"]] == [True, False]
    sonnet = row("claude-sonnet-4-5", 900)
    assert levels.spend_headroom(room, [sonnet])["budgets"][1][1] == room["budgets"][1][1]  # the opus budget: untouched
    assert levels.spend_headroom(room, [row("claude-opus-4-5", 10)]) is None  # which budgets? unknown: decide
    no_model_budgets = budgets.headroom(states[:1], Settings(), "claude-sonnet-4-5", COUNTED)
    assert levels.spend_headroom(no_model_budgets, [row("claude-opus-4-5", 10)]) is not None


def test_spending_past_any_room_or_an_inexact_cost_under_a_cost_limit_needs_the_decision() -> None:
    room = budgets.headroom([state("daily", 5000, 10000), state("session", 0, 100_000)], Settings(), "m", COUNTED)
    assert levels.spend_headroom(room, [row("m", 1000, 5), row("m", 989, status="unpriced")])["budgets"][0][1] == 0
    assert levels.spend_headroom(room, [row("m", 1990)]) is None
    assert levels.spend_headroom(room, [row("m", 1000, cache_read=100_000)])["budgets"][0][1] == 989  # not counted
    usd = budgets.headroom([state("daily", 0, 0, used_usd=0.0, limit_usd=1.0)], Settings(), "m", COUNTED)
    assert levels.spend_headroom(usd, [row("m", 10, 100)]) is not None
    assert levels.spend_headroom(usd, [row("m", 10, 100, status="estimated")]) is None  # priced by its family only


def test_budgets_the_requests_cannot_move_have_none_and_an_unknown_scope_means_no_headroom() -> None:
    window = BudgetState("five_hour", 5000, 10000, "ok", "open", None)
    assert budgets.headroom([window], Settings(), None, COUNTED)["budgets"] == []
    assert budgets.headroom([state("someday:budget", 0, 10000)], Settings(), None, COUNTED) is None


def test_team_budgets_have_room_like_local_ones_and_a_team_model_budget_counts_only_its_models() -> None:
    states = [state("team:daily", 5000, 10000), state("team:member:monthly", 0, 100_000),
              state("team:workflow:release", 0, 10000), state("team:model:claude-opus", 0, 1000)]
    room = budgets.headroom(states, Settings(), "claude-sonnet-4-5", COUNTED)
    assert room is not None and [b[1:] for b in room["budgets"]] == [
        [1989, None, True], [69_899, None, True], [6989, None, True], [698, None, False]]
    assert levels.spend_headroom(room, [row("claude-sonnet-4-5", 1989)])["budgets"][0][1] == 0
    assert levels.spend_headroom(room, [row("claude-sonnet-4-5", 1990)]) is None  # team:daily at its 70%
    assert levels.spend_headroom(room, [row("claude-opus-4-5", 10)]) is None  # which budgets? unknown: decide


# -- the hook ------------------------------------------------------------------------------------------------------


@pytest.fixture
def decisions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The events the decision ran for (enforce.prepare), in order; the others were answered without it."""
    return events_through(monkeypatch, enforce, "prepare")


@pytest.fixture
def session(claude_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Session:
    return half_spent_session(claude_dir, tmp_path, monkeypatch)  # 50% of the daily budget


def record_of(data_dir: Path, session_id: str = "sess-1") -> dict:
    return json.loads((data_dir / "cache" / fastpath.STATE_DIR / f"{session_id}.json").read_bytes())


def room_of(data_dir: Path, scope: str = "daily", session_id: str = "sess-1") -> int:
    return next(b[1] for b in record_of(data_dir, session_id)["headroom"]["budgets"] if b[0] == scope)


def with_headroom(session: Session, decisions: list[str], tokens: int = 100, **extra: object) -> None:
    """A request that fits, answered from the headroom: the decision does not run."""
    session.spend(tokens)
    before = len(decisions)
    assert session.hook("PreToolUse", **extra) == (0, {})
    assert len(decisions) == before, "the request should have been answered from the headroom"


def settled(session: Session, decisions: list[str], **extra: object) -> None:
    """The decision answers `{}` and records the headroom; the next small request is answered from it."""
    assert session.hook("PreToolUse", **extra) == (0, {})
    with_headroom(session, decisions, **extra)


def alert_text(out: dict) -> str:
    return out.get("systemMessage") or ""


def decision(out: dict) -> str | None:
    return (out.get("hookSpecificOutput") or {}).get("permissionDecision")


def test_a_request_far_below_every_level_is_answered_without_the_decision(session: Session, decisions: list[str],
                                                                          data_dir: Path) -> None:
    assert session.hook("PreToolUse") == (0, {})
    assert decisions == ["PreToolUse"]
    room = room_of(data_dir)
    assert room == 1989
    with_headroom(session, decisions, 300)
    record = record_of(data_dir)
    assert room_of(data_dir) == room - 300  # what this hook recorded, taken off
    assert record["ledger"][0] == Path(version_path(record["ledger_path"])).read_text()  # this hook's own write
    with Ledger.open(data_dir) as ledger:
        assert ledger.count() == 2
    assert session.hook("PostToolUse") == (0, {})  # and the record answers the idle hooks after it
    assert session.hook("PreToolUse") == (0, {}) and decisions == ["PreToolUse"]


def test_crossing_each_level_after_headroom_answers_is_told_exactly_as_the_decision_tells_it(
        claude_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, decisions: list[str]) -> None:
    """The same requests, approaching and passing 70/80/90/100/110% (and the 80% economy trigger of `auto`), with
    the headroom on and off: every answer is the same, and the headroom answered most of them."""
    write_config(tmp_path, monkeypatch, CONFIG + "mode: auto\n")

    def run(on: bool, home: str) -> list[tuple[str, dict]]:
        monkeypatch.setattr(hook, "HEADROOM", on)
        monkeypatch.setenv("TOKEN_BUDGET_HOME", str(tmp_path / home))
        s = Session(claude_dir, f"sess-{home}")
        answers = []
        s.spend(5000)
        for step in range(40):  # 5,000 → 11,000 tokens in steps of 150
            s.spend(150)
            tool = {"tool_name": "Agent", "tool_input": AGENT} if step % 3 == 0 else {}
            code, out = s.hook("PreToolUse", **tool)
            answers.append((f"{5150 + 150 * step}", json.loads(json.dumps(out).replace(f"sess-{home}", "S"))))
            if out.get("continue") is False:
                break
        return answers

    off = run(False, "off")
    decided_off = len(decisions)
    on = run(True, "on")
    assert on == off
    shown = [out for _, out in on if out]
    assert any("80" in alert_text(o) for o in shown) and any(decision(o) == "deny" for o in shown)
    assert any((o.get("hookSpecificOutput") or {}).get("updatedInput") for o in shown)  # economy: a cheaper model
    assert on[-1][1].get("continue") is False
    assert len(decisions) - decided_off < decided_off * 2 // 3, "the headroom should have answered many of them"


def test_another_writer_between_the_record_and_the_ingest(session: Session, decisions: list[str],
                                                          claude_dir: Path) -> None:
    settled(session, decisions)
    other = Session(claude_dir, "sess-2")
    other.spend(3300)  # 5,100 + 3,300 + 100: past 80%, though this session's own request fits its headroom
    assert other.hook("Stop") == (0, {})  # its hook records it (and claims nothing: Stop decides nothing)
    session.spend(100)
    code, out = session.hook("PreToolUse")
    assert "80" in alert_text(out) and "daily budget" in alert_text(out)


def test_a_new_day(session: Session, decisions: list[str], claude_dir: Path) -> None:
    early = Session(claude_dir, "sess-2")  # a request already stamped tomorrow (another machine's clock)
    early.spend(10_000, timestamp="2026-11-29T00:30:00.000Z")
    early.hook("Stop")
    settled(session, decisions)  # today: 51%, allowed
    session.now = NOW + timedelta(days=1)
    session.spend(100, timestamp="2026-11-29T15:00:00.000Z")
    code, out = session.hook("PreToolUse")
    assert decision(out) == "deny" and "daily budget" in out["hookSpecificOutput"]["permissionDecisionReason"]


def test_a_config_edit(session: Session, decisions: list[str], tmp_path: Path, monkeypatch) -> None:
    settled(session, decisions)
    write_config(tmp_path, monkeypatch, CONFIG.replace("10000", "5000"))
    session.spend(100)
    assert decision(session.hook("PreToolUse")[1]) == "deny"


def test_a_mode_change(session: Session, decisions: list[str]) -> None:
    settled(session, decisions, tool_name="Agent", tool_input=AGENT)
    assert CliRunner().invoke(cli, ["mode", "economy"]).exit_code == 0
    session.spend(100)
    code, out = session.hook("PreToolUse", tool_name="Agent", tool_input=AGENT)
    assert out["hookSpecificOutput"]["updatedInput"]["model"] == "haiku"  # economy sends subagents to Haiku


def test_an_ack_or_a_limit_set_with_the_cli(session: Session, decisions: list[str], data_dir: Path) -> None:
    settled(session, decisions)
    assert CliRunner().invoke(cli, ["budget", "daily", "6000"]).exit_code == 0  # 5,200 + 100: 88%
    session.spend(100)
    code, out = session.hook("PreToolUse")
    assert "6,000" in alert_text(out) and "80" in alert_text(out)


def test_an_ack_withdrawn(session: Session, decisions: list[str], data_dir: Path) -> None:
    """An acknowledged 100% block lets work go on up to 110%: the headroom runs to the stop, and only while the ack
    holds."""
    from test_fastpath import wait_for_deliveries

    session.spend(6000)  # 11,000 of a budget raised to 10,500: a 100% block
    runner = CliRunner()
    assert runner.invoke(cli, ["budget", "daily", "10500"]).exit_code == 0
    assert decision(session.hook("PreToolUse")[1]) == "deny"
    wait_for_deliveries(data_dir)  # the alerts' sender writes the ledger while it runs
    assert runner.invoke(cli, ["ack", "daily/100/2026-11-28"]).exit_code == 0
    assert "acknowledged" in alert_text(session.hook("PreToolUse")[1])  # shown once
    settled(session, decisions)
    assert 0 < room_of(data_dir) < 500  # 11,200 of 10,500: up to 109.9%, 11,539
    with Ledger.open(data_dir) as ledger, ledger.transaction() as db:
        db.execute("UPDATE alerts SET acked_at = NULL")  # what another `tokens` process could do
    session.spend(10)
    assert decision(session.hook("PreToolUse")[1]) == "deny"


def test_a_request_on_another_model_while_model_budgets_exist(session: Session, decisions: list[str],
                                                               tmp_path: Path, monkeypatch) -> None:
    write_config(tmp_path, monkeypatch, CONFIG + "  per_model: {claude-opus: 2000}\n")
    settled(session, decisions)  # a Sonnet session: the Opus budget is not its own, untouched by its requests
    session.spend(1700, model="claude-opus-4-5-20251101")  # a request on Opus: 85% of the Opus budget
    code, out = session.hook("PreToolUse")
    assert "claude-opus model budget" in alert_text(out) and "80" in alert_text(out)


def test_a_workflow_run_started(session: Session, decisions: list[str], tmp_path: Path, monkeypatch,
                                set_clock) -> None:
    write_config(tmp_path, monkeypatch, CONFIG + "  per_workflow: {review: 1000}\n")
    set_clock(NOW)  # the run starts at the session's moment
    settled(session, decisions)
    result = CliRunner().invoke(cli, ["workflow", "start", "review", "--session", "sess-1"])
    assert result.exit_code == 0, result.output
    session.spend(850, timestamp="2026-11-28T15:00:01.000Z")  # in the run: 85% of its budget
    session.now = NOW + timedelta(seconds=2)
    code, out = session.hook("PreToolUse")
    assert "review workflow budget" in alert_text(out)


def test_the_economy_trigger(session: Session, decisions: list[str], tmp_path: Path, monkeypatch) -> None:
    write_config(tmp_path, monkeypatch, CONFIG + "mode: auto\noptimizations:\n  model_downgrade: {trigger: 60%}\n")
    settled(session, decisions, tool_name="Agent", tool_input=AGENT)  # 51%: below the trigger, below 70%
    session.spend(1000)  # 61%: economy mode, though no level was crossed
    code, out = session.hook("PreToolUse", tool_name="Agent", tool_input=AGENT)
    assert out["hookSpecificOutput"]["updatedInput"]["model"] == "haiku"


def test_a_cost_limit_with_a_request_not_priced_exactly(session: Session, decisions: list[str], tmp_path: Path,
                                                          data_dir: Path, monkeypatch) -> None:
    write_config(tmp_path, monkeypatch, CONFIG.replace("10000}", "10000, daily_limit_usd: 100}"))
    unknown = "claude-unknown-9"  # no price: a request's cost is not known
    session.spend(10, model=unknown)
    assert session.hook("PreToolUse") == (0, {})  # decided: a record for a session on that model
    assert record_of(data_dir)["headroom"]["model"] == unknown
    session.spend(10, model=unknown)
    before = len(decisions)
    assert session.hook("PreToolUse") == (0, {})
    assert len(decisions) == before + 1  # decided again: the cost limit cannot be followed without the cost
    write_config(tmp_path, monkeypatch, CONFIG)  # no cost limit: the tokens alone decide
    assert "daily_usd budget changed" in alert_text(session.hook("PreToolUse")[1])  # (the change, told once)
    assert session.hook("PreToolUse") == (0, {})
    session.spend(10, model=unknown)
    before = len(decisions)
    assert session.hook("PreToolUse") == (0, {}) and len(decisions) == before


def test_a_cost_limit_crossed_by_cost_alone(session: Session, decisions: list[str], tmp_path: Path,
                                            monkeypatch) -> None:
    write_config(tmp_path, monkeypatch, CONFIG.replace("10000}", "1000000, daily_limit_usd: 1}"))
    settled(session, decisions)  # 5,200 Sonnet input tokens: $0.0156 of $1
    write_lines(session.path, response(timestamp="2026-11-28T15:00:00.000Z", input_tokens=0, output_tokens=60_000))
    # ...$0.90 of output: 6.5% of the tokens, 91.6% of the dollars
    code, out = session.hook("PreToolUse")
    assert "daily budget" in alert_text(out) and "$" in alert_text(out)


def test_only_a_tool_call_uses_it(session: Session, decisions: list[str]) -> None:
    settled(session, decisions)
    for event in ("UserPromptSubmit", "SessionStart"):
        session.spend(100)
        before = len(decisions)
        assert session.hook(event, prompt="hi", source="resume") == (0, {})
        assert len(decisions) == before + 1, event


def test_a_compaction_hint_is_given_by_the_next_prompt(session: Session, decisions: list[str]) -> None:
    """The hint depends on the context size of the session's last request, and only a prompt gives it: a tool call
    answered from the headroom never could, and the prompt after it always decides."""
    settled(session, decisions)
    session.spend(1400, cache_read=150_000)  # 66% of the day (cache reads are not counted), a 151k context
    before = len(decisions)
    assert session.hook("PreToolUse") == (0, {}) and len(decisions) == before
    code, out = session.hook("UserPromptSubmit", prompt="go on")
    assert "/compact" in alert_text(out)


def test_no_headroom_while_a_delivery_waits(session: Session, decisions: list[str], data_dir: Path) -> None:
    settled(session, decisions)
    record = record_of(data_dir)
    with Ledger.open(data_dir) as ledger, ledger.transaction() as db:  # an alert claimed, not yet queued for sending
        db.execute("INSERT INTO alerts (key, scope, level, threshold, period, used, limit_tokens, created_at) "
                   "VALUES ('daily/70/x', 'daily', 'warn', 70, 'x', 1, 1, '2026-11-28T00:00:00.000Z')")
    # ...and the record written as if that had been there already (its token now the current one)
    record["ledger"][0] = Path(record["version_path"]).read_text()
    (data_dir / "cache" / fastpath.STATE_DIR / "sess-1.json").write_text(json.dumps(record))
    session.spend(100)
    before = len(decisions)
    session.hook("PreToolUse")
    assert len(decisions) == before + 1  # the decision's hook kicks the sender


# -- real processes --------------------------------------------------------------------------------------------------


def start_hook(path: Path, env: dict, *argv: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, *argv, "-S", str(LAUNCHER), "PreToolUse"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(hook_payload("PreToolUse", path, session_id=path.stem)).encode())
    proc.stdin.close()
    proc.stdin = None
    return proc


def answer(proc: subprocess.Popen) -> tuple[dict, str]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    return json.loads(out), err.decode()


def decided(path: Path, env: dict, data_dir: Path) -> None:
    """A hook of the session, then its record (if any) dated by the hooks' own clock: a session's first record
    drops records idle for a week by their mtime, which under a shifted clock (CI runs the suite under faketime)
    the file system gives unshifted."""
    answer(start_hook(path, env))
    for record in (data_dir / "cache" / fastpath.STATE_DIR).glob("*.json"):
        os.utime(record, (time.time(), time.time()))


def spend_now(path: Path, tokens: int) -> None:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    write_lines(path, response(session_id=path.stem, timestamp=stamp, input_tokens=tokens, output_tokens=0))


def waiting_for_the_ledger(pid: int, ledger: Path) -> bool:
    """Has the process opened the ledger and gone to sleep (SQLite's busy handler waiting for the writer lock)?"""
    try:
        opened = any(os.readlink(f"/proc/{pid}/fd/{fd}") == str(ledger) for fd in os.listdir(f"/proc/{pid}/fd"))
        with open(f"/proc/{pid}/wchan") as handle:
            return opened and "sleep" in handle.read()
    except OSError:
        return False


def test_two_sessions_at_once_never_both_spend_the_same_headroom(data_dir: Path, claude_dir: Path, tmp_path: Path,
                                                                   subprocess_env: dict, monkeypatch) -> None:
    """Two sessions' records, written at the same ledger version, each with room for its own next request but not
    for both: hooks of both, started together while another writer holds the ledger, each compare the version under
    the writer lock, so the second to write sees the first's and decides, and says the 80% alert."""
    write_config(tmp_path, monkeypatch, CONFIG)
    subprocess_env.update(TOKEN_BUDGET_CONFIG=os.environ["TOKEN_BUDGET_CONFIG"])
    subprocess_env.pop("PYTHONPATH")
    until_midnight = 86400 - (time.time() % 86400)
    if until_midnight < 120:  # the requests and hooks below must fall on one UTC day
        time.sleep(until_midnight + 1)
    day = datetime.now(timezone.utc).date()
    paths = [transcript_path(claude_dir, f"sess-{n}") for n in (1, 2)]
    spend_now(paths[0], 7300)  # 73%: past 70%, the next level 80%
    spend_now(paths[1], 100)
    for path in paths:  # each session decides (the first also claims 70%), then records its headroom
        decided(path, subprocess_env, data_dir)
    decided(paths[0], subprocess_env, data_dir)  # the first: a record at the version after the second's
    spend_now(paths[1], 10)  # the second: one more request, answered from its headroom (nothing of the decision)
    proc = start_hook(paths[1], subprocess_env, "-X", "importtime")
    out, err = answer(proc)
    assert out == {} and "token_budget.claude.enforce" not in err
    first, second = record_of(data_dir, "sess-1"), record_of(data_dir, "sess-2")
    assert first["ledger"] != second["ledger"]
    decided(paths[0], subprocess_env, data_dir)  # (idle) ...so the first decides again: both at one version
    assert record_of(data_dir, "sess-1")["ledger"] == record_of(data_dir, "sess-2")["ledger"]
    assert min(room_of(data_dir, session_id=s) for s in ("sess-1", "sess-2")) >= 400  # 7,410 of 7,990
    spend_now(paths[0], 300)
    spend_now(paths[1], 300)  # each fits alone; both make 8,010: 80.1%
    holder = sqlite3.connect(data_dir / LEDGER_NAME, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        procs = [start_hook(path, subprocess_env) for path in paths]
        deadline = time.monotonic() + 30
        while not all(waiting_for_the_ledger(p.pid, data_dir / LEDGER_NAME) for p in procs):
            assert time.monotonic() < deadline, "the hooks never reached the ledger's writer lock"
            time.sleep(0.01)
        time.sleep(0.2)  # both past their records, in the busy handler
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    answers = [answer(p)[0] for p in procs]
    told = [a for a in answers if "80" in alert_text(a)]
    assert len(told) == 1 and answers.count({}) == 1, answers
    with Ledger.open(data_dir) as ledger:
        assert ledger.alert_limits([f"daily/80/{day.isoformat()}"]) == {f"daily/80/{day.isoformat()}": 10000}


def test_a_notice_recorded_while_the_notices_are_taken_is_shown_by_the_next_tool_call(
        session: Session, decisions: list[str], data_dir: Path, monkeypatch) -> None:
    """A change another process records just after a decision took the unshown notices: the decision's record
    must not cover it (its version is read before the notices), so the next tool call decides and shows it."""
    from token_budget import controls

    real = controls.take_unshown

    def take_then_another_records(ledger, now):  # type: ignore[no-untyped-def]
        taken = real(ledger, now)
        with Ledger.open(data_dir) as other, other.transaction():
            other.record_event(level="info", kind="limit_change", message="token-budget: a change made elsewhere",
                               created_at=now)
        return taken

    monkeypatch.setattr(controls, "take_unshown", take_then_another_records)
    assert session.hook("PreToolUse") == (0, {})
    monkeypatch.setattr(controls, "take_unshown", real)
    session.spend(10)
    assert "a change made elsewhere" in alert_text(session.hook("PreToolUse")[1])


GREP = {"tool_name": "Grep", "tool_input": {"pattern": "budget", "path": "/tmp/proj"}}


def test_a_tool_calls_own_bookkeeping_carries_the_record(session: Session, decisions: list[str],
                                                          data_dir: Path) -> None:
    """A read-only call's PostToolUse remembers it (economy mode's repeat check): a write of the session's own that
    no answer outside economy mode depends on. It carries the record to its new version, so the next tool call's
    request is still answered from the headroom; and the tools whose PostToolUse writes are named again (after a
    search is remembered, a Bash call's forgets it)."""
    settled(session, decisions)
    assert "Bash" not in record_of(data_dir)["post_writes"]
    assert session.hook("PostToolUse", **GREP) == (0, {})  # the full path: it writes
    assert "Bash" in record_of(data_dir)["post_writes"]
    with_headroom(session, decisions)
    assert session.hook("PostToolUse") == (0, {})  # Bash: forgets the search, and carries the record again
    with Ledger.open(data_dir) as ledger:
        assert not ledger.has_calls(session.session_id, keep_tool="Read")
    assert "Bash" not in record_of(data_dir)["post_writes"]
    with_headroom(session, decisions)


def test_no_record_carried_past_another_writer(session: Session, decisions: list[str], claude_dir: Path) -> None:
    settled(session, decisions)
    other = Session(claude_dir, "sess-2")
    other.spend(3300)
    assert other.hook("Stop") == (0, {})  # 5,100 + 3,300: 84%, not yet claimed by anyone
    assert session.hook("PostToolUse", **GREP) == (0, {})
    session.spend(100)
    assert "80" in alert_text(session.hook("PreToolUse")[1])


def test_the_first_tool_call_of_a_day_writes_yesterdays_report(session: Session, decisions: list[str],
                                                                 data_dir: Path) -> None:
    from token_budget.paths import daily_report_due

    settled(session, decisions)
    session.now = NOW + timedelta(hours=9, minutes=1)  # 00:01 the next day: yesterday's report is due
    assert daily_report_due(data_dir, "UTC", session.now) is not None
    session.spend(10, timestamp="2026-11-29T00:01:00.000Z")
    assert session.hook("PreToolUse") == (0, {})
    assert daily_report_due(data_dir, "UTC", session.now) is None  # written by the decision's hook
