"""The team sync and team enforcement, on a real PostgreSQL: what one machine pushes the others see, hooks add their
own usage not yet pushed, a team alert is claimed once for the whole team, and an outage loses nothing.

Hooks run in process (hook.run) on the test's clock; the sync runs in process too (sync_once), so every step
happens when the test says."""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from budget_helpers import NOW, Session, events_through
from team_helpers import Machine, TeamDb, quiet, sync_once

from token_budget.ledger import Ledger, version_path
from token_budget.team.states import read_cache

LIMIT = 100_000


@pytest.fixture
def team(postgres, set_clock) -> TeamDb:  # type: ignore[no-untyped-def]
    set_clock(NOW)
    db = TeamDb(postgres)
    db.set_budget("team:monthly", LIMIT)
    return db


def machine(team: TeamDb, tmp_path: Path, member: str, extra: str = "") -> Machine:
    m = Machine(tmp_path / member.split("@")[0], member, team.member(member), extra_config=extra)
    quiet(m)
    return m


def spend(m: Machine, monkeypatch: pytest.MonkeyPatch, tokens: int, event: str = "UserPromptSubmit",
          now=NOW, **extra) -> dict:  # type: ignore[no-untyped-def]
    m.use(monkeypatch)
    session = Session(m.claude_dir, f"sess-{m.member.split('@')[0]}", now=now)
    if tokens:
        session.spend(tokens, **extra)
    code, out = session.hook(event, prompt="go on")
    assert code == 0
    return out


def team_state(m: Machine, monkeypatch: pytest.MonkeyPatch, now=NOW) -> dict:  # type: ignore[no-untyped-def]
    from token_budget.budgets import budget_states
    from token_budget.config import load_cached

    m.use(monkeypatch)
    with Ledger.open(m.data_dir) as ledger:
        states = {s.scope: s for s in budget_states(ledger, load_cached(m.data_dir), now=now)}
    s = states.get("team:monthly")
    return {"used": s.used, "level": s.level} if s else {}


def test_a_machine_sees_the_team_totals_plus_its_own_unpushed_usage(team: TeamDb, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    alice, bob = machine(team, tmp_path, "alice@example.com"), machine(team, tmp_path, "bob@example.com")
    spend(alice, monkeypatch, 30_000)
    assert team_state(alice, monkeypatch) == {}  # before the first sync the team's budgets are unknown here
    assert sync_once(alice)["pushed"] == 1
    spend(bob, monkeypatch, 20_000)
    assert sync_once(bob)["ok"]
    assert team_state(bob, monkeypatch) == {"used": 50_000, "level": "ok"}
    out = spend(bob, monkeypatch, 35_000)  # not pushed yet: counted from bob's own ledger
    assert team_state(bob, monkeypatch) == {"used": 85_000, "level": "alert"}
    assert "team's monthly budget is at 85,000 / 100,000" in out["systemMessage"]
    assert "a team lead's `tokens team budget team:monthly AMOUNT`" in out["systemMessage"]
    assert team_state(alice, monkeypatch) == {"used": 30_000, "level": "ok"}  # alice's last pull
    sync_once(alice)
    assert team_state(alice, monkeypatch) == {"used": 50_000, "level": "ok"}  # bob's 35k is still on his laptop
    sync_once(bob)
    out = spend(bob, monkeypatch, 30_000, event="UserPromptSubmit")  # 115k: past the 110% stop
    assert out.get("continue") is False and "team's monthly budget" in out["stopReason"]
    assert "tokens team budget team:monthly" in out["stopReason"]
    sync_once(bob)
    assert team.totals()["input"] == 115_000 and team.rollup_matches_requests()
    with Ledger.open(bob.data_dir) as ledger:
        assert ledger.db.execute("SELECT COUNT(*) FROM team_unpushed").fetchone()[0] == 0


def test_a_request_that_grows_after_a_push_is_pushed_again_and_counted_once(
        team: TeamDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from builders import response, write_lines

    alice = machine(team, tmp_path, "alice@example.com")
    session = Session(alice.claude_dir, "sess-a")
    first = response(session_id="sess-a", timestamp="2026-11-28T14:00:00.000Z", blocks=2, partial_output=1,
                     input_tokens=1000, output_tokens=9000)
    write_lines(session.path, first[:1])  # the early streaming line: 1,000 + 1 tokens
    alice.use(monkeypatch)
    session.hook("UserPromptSubmit", prompt="x")
    sync_once(alice)
    assert team.totals() == {"requests": 1, "input": 1000, "output": 1}
    write_lines(session.path, first[1:])  # the final line of the same request
    session.hook("UserPromptSubmit", prompt="x")
    assert team_state(alice, monkeypatch)["used"] == 10_000  # the server's 1,001 plus the 8,999 it lacks
    sync_once(alice)
    assert team.totals() == {"requests": 1, "input": 1000, "output": 9000}
    assert team_state(alice, monkeypatch)["used"] == 10_000 and team.rollup_matches_requests()


def test_a_request_that_grows_before_its_push_is_recorded_and_pushed_once(
        team: TeamDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The spool marks a request once however often it grows (SQLite lets the ledger's upsert turn a trigger's
    INSERT OR IGNORE into an error: m015)."""
    from builders import response, write_lines

    alice = machine(team, tmp_path, "alice@example.com")
    assert sync_once(alice)["ok"]  # linked, nothing to push yet
    session = Session(alice.claude_dir, "sess-a")
    first = response(session_id="sess-a", timestamp="2026-11-28T14:00:00.000Z", blocks=2, partial_output=1,
                     input_tokens=1000, output_tokens=9000)
    alice.use(monkeypatch)
    write_lines(session.path, first[:1])
    session.hook("UserPromptSubmit", prompt="x")
    write_lines(session.path, first[1:])  # the same request, grown, still waiting to be pushed
    session.hook("UserPromptSubmit", prompt="x")
    with Ledger.open(alice.data_dir) as ledger:
        assert [r["output_tokens"] for r in ledger.unpushed_rows("", 10)] == [9000]
    assert team_state(alice, monkeypatch)["used"] == 10_000
    assert sync_once(alice)["pushed"] == 1
    assert team.totals() == {"requests": 1, "input": 1000, "output": 9000}


def test_a_team_alert_is_claimed_once_for_the_whole_team(team: TeamDb, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    channels = "alerts:\n  channels:\n    - {type: slack, threshold: 80%, webhook: $SLACK_WEBHOOK}\n"
    alice = machine(team, tmp_path, "alice@example.com", channels)
    bob = machine(team, tmp_path, "bob@example.com", channels)
    monkeypatch.setenv("SLACK_WEBHOOK", "http://127.0.0.1:9/services/T/B/X")  # the claim is what is tested here
    for m, tokens in ((alice, 40_000), (bob, 45_000)):
        spend(m, monkeypatch, tokens)
        sync_once(m)
    sync_once(alice)  # now both know the team is at 85%
    for m in (alice, bob):  # each crosses 80% on its own figures, each tells its own user
        out = spend(m, monkeypatch, 0)
        assert "ALERT: the team's monthly budget is at 85,000" in out.get("systemMessage", ""), out
    won = [sync_once(m)["claimed"] for m in (alice, bob)]
    assert sorted(won) == [0, 2]  # the 70% (logged) and 80% alerts: the first machine to sync claims both
    claims = dict(team.sql("SELECT key, member FROM token_budget.alert_claims"))
    assert sorted(claims) == ["team:monthly/70/2026-11", "team:monthly/80/2026-11"]
    key, member = "team:monthly/80/2026-11", claims["team:monthly/80/2026-11"]
    for m in (alice, bob):
        with Ledger.open(m.data_dir) as ledger:
            deliveries = ledger.db.execute("SELECT COUNT(*) FROM deliveries WHERE alert_key = ?", (key,)).fetchone()[0]
        assert deliveries == (1 if m.member == member else 0)


@pytest.mark.parametrize("on_stale", ["local", "open", "closed"])
def test_an_outage_loses_nothing_and_follows_on_stale(team: TeamDb, postgres, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                      monkeypatch: pytest.MonkeyPatch, set_clock,
                                                      on_stale: str) -> None:
    bob = machine(team, tmp_path, "bob@example.com")
    bob.write_config(f"  sync_interval: 3600\n  on_stale: {on_stale}\n")
    spend(bob, monkeypatch, 40_000)
    sync_once(bob)
    postgres.stop("immediate")
    try:
        later = NOW + timedelta(minutes=5)
        set_clock(later)
        spend(bob, monkeypatch, 30_000, now=later)
        failed = sync_once(bob)
        assert not failed["ok"] and team.server.password not in json.dumps(failed)
        assert team_state(bob, monkeypatch, later) == {"used": 70_000, "level": "warn"}  # last totals + local
        stale = NOW + timedelta(minutes=11)
        set_clock(stale)
        out = spend(bob, monkeypatch, 0, now=stale)
        assert "team server has not answered" in json.dumps(out)
        again = spend(bob, monkeypatch, 0, now=stale)
        assert "team server has not answered" not in json.dumps(again)  # said once
        state = team_state(bob, monkeypatch, stale)
        if on_stale == "open":
            assert state == {} and again == {}
        elif on_stale == "local":
            assert state == {"used": 70_000, "level": "warn"} and again == {}
        else:
            assert state["level"] == "block" and again.get("decision") == "block"
        log = (bob.data_dir / "team.log").read_text()
        assert "sync failed" in log and team.server.password not in log and bob.dsn not in log
        assert bob.dsn.split(":")[2].split("@")[0] not in (bob.data_dir / "cache" / "team.json").read_text()
    finally:
        postgres.start()
    assert sync_once(bob)["pushed"] == 1
    assert sync_once(bob)["pushed"] == 0
    assert team.totals() == {"requests": 2, "input": 70_000, "output": 0} and team.rollup_matches_requests()
    assert read_cache(bob.data_dir)["error"] is None


def test_the_overshoot_across_machines_is_bounded_by_one_sync_interval_each(
        team: TeamDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """N machines each spend until their own view (the last pulled totals plus their own unpushed usage) blocks.
    What a machine cannot see is the others' usage since their last push: at most one sync interval each, plus the
    request each had in flight when it learned. The team's overshoot stays within that, and is not zero."""
    request, per_interval, machines = 1_000, 3, 3
    team.set_budget("team:monthly", 50_000)
    fleet = [machine(team, tmp_path, f"m{i}@example.com") for i in range(machines)]
    sessions = {m.member: Session(m.claude_dir, f"sess-{i}") for i, m in enumerate(fleet)}
    blocked = {m.member: False for m in fleet}
    for m in fleet:
        sync_once(m)
    rounds = 0
    while not all(blocked.values()):
        rounds += 1
        for m in fleet:
            if blocked[m.member]:
                continue
            m.use(monkeypatch)
            sessions[m.member].spend(request)  # the request the last "allow" let through
            code, out = sessions[m.member].hook("UserPromptSubmit", prompt="next")
            blocked[m.member] = out.get("decision") == "block" or out.get("continue") is False
        if rounds % per_interval == 0:
            for m in fleet:
                sync_once(m)
        assert rounds < 100
    for m in fleet:
        sync_once(m)
    overshoot = team.totals()["input"] - 50_000
    bound = machines * per_interval * request + machines * request
    assert 0 < overshoot <= bound, (overshoot, bound)


def test_new_team_totals_end_the_idle_fast_path(team: TeamDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hook with nothing new answers from the session's record; a sync that brings other machines' usage
    changes the team cache, and the next hook decides again on it (and blocks)."""
    from token_budget.claude import hook

    alice, bob = machine(team, tmp_path, "alice@example.com"), machine(team, tmp_path, "bob@example.com")
    spend(alice, monkeypatch, 10_000)
    sync_once(alice)
    alice.use(monkeypatch)
    session = Session(alice.claude_dir, "sess-alice")
    taken: list[str] = []  # the events that took the full path (hook.handle), as tests/test_fastpath.py records
    real = hook.handle
    monkeypatch.setattr(hook, "handle", lambda event, *a, **k: taken.append(event) or real(event, *a, **k))
    assert session.hook("PreToolUse") == (0, {})
    assert session.hook("PreToolUse") == (0, {}) and taken == ["PreToolUse"]  # the second from the record
    spend(bob, monkeypatch, 95_000)
    sync_once(bob)
    sync_once(alice)
    alice.use(monkeypatch)
    code, out = session.hook("PreToolUse")
    assert taken == ["PreToolUse", "UserPromptSubmit", "PreToolUse"]  # bob's prompt, then alice's full path
    assert out["hookSpecificOutput"]["permissionDecision"] == "deny" and "team's monthly" in json.dumps(out)


def test_team_model_and_workflow_budgets_bind_only_their_sessions(team: TeamDb, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from token_budget.budgets import budget_states
    from token_budget.config import load_cached

    team.set_budget("team:model:claude-opus", 50_000)
    team.set_budget("team:workflow:review", 20_000)
    alice = machine(team, tmp_path, "alice@example.com")
    spend(alice, monkeypatch, 30_000, model="claude-opus-4-6")  # alice's opus session
    sync_once(alice)
    monkeypatch.setenv("TOKEN_BUDGET_WORKFLOW", "review")
    alice.use(monkeypatch)
    reviewer = Session(alice.claude_dir, "sess-review")
    reviewer.spend(1_000, model="claude-sonnet-4-5-20250929")
    reviewer.hook("UserPromptSubmit", prompt="review it")  # opens the review run (from the environment)
    monkeypatch.delenv("TOKEN_BUDGET_WORKFLOW")
    reviewer.spend(20_500, model="claude-sonnet-4-5-20250929")  # the run: 20,500 of 20,000
    out = reviewer.hook("UserPromptSubmit", prompt="go on")[1]
    assert "team's review workflow budget (this month) is exhausted" in out.get("reason", ""), out
    sync_once(alice)

    def scopes(session: str | None, model: str | None) -> dict[str, int]:
        with Ledger.open(alice.data_dir) as ledger:
            states = budget_states(ledger, load_cached(alice.data_dir), now=NOW, session_id=session, model=model)
        return {s.scope: s.used for s in states if s.scope.startswith("team:")}

    assert scopes(None, None) == {"team:monthly": 51_500, "team:model:claude-opus": 30_000,
                                  "team:workflow:review": 20_500}  # the dashboard sees them all
    assert scopes("sess-review", "claude-sonnet-4-5-20250929") == {"team:monthly": 51_500,
                                                                   "team:workflow:review": 20_500}
    assert scopes("sess-alice", "claude-opus-4-6") == {"team:monthly": 51_500, "team:model:claude-opus": 30_000}


# -- the headroom in team mode (hook._within_headroom): team budgets get their room like the local ones ----------


def team_session(m: Machine, monkeypatch: pytest.MonkeyPatch, name: str) -> Session:
    m.use(monkeypatch)
    return Session(m.claude_dir, name)


def test_headroom_in_team_mode_far_from_every_level_and_a_sync_ends_it(
        team: TeamDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from token_budget.claude import enforce, fastpath
    from token_budget.detached import hold
    from token_budget.team import DUE_NAME, LOCK_NAME

    decisions = events_through(monkeypatch, enforce, "prepare")
    alice = machine(team, tmp_path, "alice@example.com")
    sync_once(alice)
    session = team_session(alice, monkeypatch, "sess-a")
    session.spend(10_000)
    assert session.hook("PreToolUse") == (0, {}) and decisions == ["PreToolUse"]
    record = json.loads(next((alice.data_dir / "cache").glob("*/sess-a.json")).read_bytes())
    assert ["team:monthly", 59_899, None, True] in record["headroom"]["budgets"]  # 69.9% of 100k, less 10k, less 1
    session.spend(100)
    assert session.hook("PreToolUse") == (0, {}) and decisions == ["PreToolUse"]  # from the headroom
    # A sync due: the headroom path starts it as the full path does (a sync already running: the lock held here,
    # so none is spawned, but the due file is touched, which is kick's "started or found running").
    due = alice.data_dir / DUE_NAME
    old = time.time() - 7200
    os.utime(due, (old, old))
    lock = hold(alice.data_dir, LOCK_NAME)
    try:
        session.spend(100)
        assert session.hook("PreToolUse") == (0, {}) and decisions == ["PreToolUse"]
    finally:
        os.close(lock)
    assert due.stat().st_mtime > old + 3600
    quiet(alice)
    sync_once(alice)  # pushes the 10,200 tokens and rewrites the team cache
    alice.use(monkeypatch)
    session.spend(100)
    assert session.hook("PreToolUse") == (0, {}) and decisions == ["PreToolUse"] * 2  # the decision again
    sync_once(alice)  # pushes that one
    alice.use(monkeypatch)
    assert session.hook("PreToolUse") == (0, {}) and decisions == ["PreToolUse"] * 3  # nothing new: records
    version = Path(version_path(Ledger.open(alice.data_dir).path)).read_text()
    before = fastpath.stamp(str(alice.data_dir / "cache" / "team.json"))
    sync_once(alice)  # nothing to push: the team cache rewritten (the same figures on the test's clock)
    assert fastpath.stamp(str(alice.data_dir / "cache" / "team.json")) != before
    assert Path(version_path(Ledger.open(alice.data_dir).path)).read_text() == version  # the cache alone changed
    alice.use(monkeypatch)
    session.spend(100)
    assert session.hook("PreToolUse") == (0, {}) and decisions == ["PreToolUse"] * 4


def test_headroom_in_team_mode_answers_as_the_decision_across_every_team_level(
        team: TeamDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same requests, approaching and passing 70/80/90/100/110% of a team budget, with the headroom on and off
    (each on a machine of its own, both synced before any use): every answer is the same, most from the headroom."""
    from token_budget.claude import enforce, hook

    decisions = events_through(monkeypatch, enforce, "prepare")
    machines = {on: machine(team, tmp_path, f"{'with' if on else 'without'}@example.com") for on in (False, True)}
    for m in machines.values():
        sync_once(m)

    def run(on: bool) -> list[tuple[int, str]]:
        monkeypatch.setattr(hook, "HEADROOM", on)
        s = team_session(machines[on], monkeypatch, "sess-s")
        answers = []
        s.spend(60_000)
        for _ in range(40):  # 61,500 → 120,000 tokens
            s.spend(1_500)
            code, out = s.hook("PreToolUse")
            answers.append((code, json.dumps(out).replace("without@", "X@").replace("with@", "X@")))
            if out.get("continue") is False:
                break
        return answers

    off = run(False)
    decided_off = len(decisions)
    on = run(True)
    assert on == off
    shown = [out for _, out in on if out != "{}"]
    assert any("team's monthly" in o for o in shown) and any('"deny"' in o for o in shown)
    assert len(decisions) - decided_off < decided_off * 2 // 3, "the headroom should have answered many of them"


def test_headroom_in_team_mode_never_hides_the_stale_notice(team: TeamDb, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch, set_clock) -> None:
    """The record holds no later than the moment the team cache turns stale (team.max_staleness after the last
    sync): the first tool call after it tells the outage, with the headroom on exactly as with it off."""
    from token_budget.claude import hook

    machines = {on: machine(team, tmp_path, f"{'with' if on else 'without'}@example.com") for on in (False, True)}

    def run(on: bool) -> list[dict]:
        monkeypatch.setattr(hook, "HEADROOM", on)
        set_clock(NOW)
        sync_once(machines[on])  # ok_at: NOW; stale after NOW + 10 min
        s = team_session(machines[on], monkeypatch, "sess-s")
        answers = []
        for at in (timedelta(minutes=8), timedelta(minutes=9), timedelta(minutes=10, seconds=1),
                   timedelta(minutes=10, seconds=2)):
            set_clock(NOW + at)
            s.now = NOW + at
            s.spend(100)
            answers.append(s.hook("PreToolUse")[1])
        return answers

    off, on = run(False), run(True)
    assert on == off
    assert [("team server has not answered" in json.dumps(a)) for a in on] == [False, False, True, False]
