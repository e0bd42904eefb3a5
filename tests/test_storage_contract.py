"""What any storage backend must do, written against storage.Storage's methods only (no SQL, no backend
internals), so a second backend runs the same tests by adding itself to the `store` fixture's params."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from token_budget.models import Alert, Degradation, UsageEvent

DAY = "2026-11-28"
START, END = f"{DAY}T00:00:00.000Z", "2026-11-29T00:00:00.000Z"


@pytest.fixture(params=["sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    if request.param == "sqlite":
        from token_budget.ledger import Ledger

        opened = Ledger.open(tmp_path / "data")
    yield opened
    opened.close()


@pytest.fixture
def second_connection(store: object, tmp_path: Path) -> Iterator[object]:
    """Another connection to the same store, as a parallel hook holds."""
    from token_budget.ledger import Ledger

    opened = Ledger.open(tmp_path / "data") if isinstance(store, Ledger) else None
    yield opened
    if opened is not None:
        opened.close()


def request_at(message_id: str, timestamp: str, *, model: str = "claude-sonnet-4-5", session: str = "s1",
               input_tokens: int = 100, output_tokens: int = 10, cache_read: int = 0, **extra: object) -> UsageEvent:
    return UsageEvent(message_id, timestamp, model, input_tokens=input_tokens, output_tokens=output_tokens,
                      cache_read_tokens=cache_read, session_id=session, **extra)  # type: ignore[arg-type]


def alert(threshold: int = 80, *, limit: int = 1000, period: str = DAY, created: str = f"{DAY}T10:00:00.000Z") -> Alert:
    return Alert("daily", "alert", threshold, period, threshold * limit // 100, limit, created)


def test_a_replayed_request_is_counted_once_and_the_larger_copy_wins(store) -> None:
    with store.transaction():
        assert store.record([request_at("m1", f"{DAY}T10:00:00.000Z", output_tokens=5)], source="hook") == (1, 0)
    with store.transaction():
        assert store.record([request_at("m1", f"{DAY}T10:00:00.000Z", output_tokens=50)], source="hook") == (0, 1)
        store.record([request_at("m1", f"{DAY}T10:00:00.000Z", output_tokens=7)], source="hook")
    assert store.count() == 1
    [row] = store.rows()
    assert (row["message_id"], row["output_tokens"], row["cost_status"]) == ("m1", 50, "unpriced")


def test_a_batch_of_new_and_held_requests_counts_the_same_inside_a_transaction_or_not(store) -> None:
    """Inside a transaction the SQLite ledger inserts what its lookup did not find (nothing can add it meanwhile)
    and upserts the rest; outside one it upserts all: the counts, the rows and the hourly sums are the same."""
    with store.transaction():
        assert store.record([request_at("m1", f"{DAY}T10:00:00.000Z", output_tokens=5)], source="hook") == (1, 0)
    with store.transaction():
        assert store.record([request_at("m2", f"{DAY}T11:00:00.000Z"),
                             request_at("m1", f"{DAY}T10:00:00.000Z", output_tokens=50)], source="hook") == (1, 1)
    assert store.record([request_at("m3", f"{DAY}T12:00:00.000Z"),
                         request_at("m2", f"{DAY}T11:00:00.000Z", output_tokens=20)], source="hook") == (1, 1)
    assert [(r["message_id"], r["output_tokens"]) for r in store.rows()] == [("m1", 50), ("m2", 20), ("m3", 10)]
    assert store.totals_by_model(("input", "output"), START, END) == [("claude-sonnet-4-5", 380, 0)]


def test_sums_per_model_session_and_period(store) -> None:
    with store.transaction():
        store.record([request_at("a", f"{DAY}T01:30:00.000Z", cache_read=1000),
                      request_at("b", f"{DAY}T05:00:00.000Z", model="claude-opus-4-1", session="s2"),
                      request_at("c", f"{DAY}T23:59:59.999Z"),
                      request_at("d", "2026-11-29T00:00:00.000Z")], source="hook")
    assert sorted(store.totals_by_model(("input", "output"), START, END)) == [
        ("claude-opus-4-1", 110, 0), ("claude-sonnet-4-5", 220, 0)]
    assert sorted(store.totals_by_model(("cache_read",), START, END)) == [
        ("claude-opus-4-1", 0, 0), ("claude-sonnet-4-5", 1000, 0)]
    assert store.session_totals(("input",), "s1") == (300, 0)
    assert store.counted_between(("input",), f"{DAY}T05:00:00.000Z", f"{DAY}T23:59:59.999Z") == 200  # inclusive
    assert store.counted_before(("input",), f"{DAY}T23:59:59.999Z", "c", since=START) == 200
    assert store.totals(since=START, until=END)[None]["requests"] == 3
    assert store.latest_session() == "s1"
    assert [r[1] for r in store.report_rows(START, END)] == ["claude-sonnet-4-5", "claude-opus-4-1",
                                                            "claude-sonnet-4-5"]


def test_a_workflow_run_attributes_its_requests(store) -> None:
    with store.transaction():
        run = store.start_run("s1", "sprint", f"{DAY}T09:00:00.000Z", phase="BUILD")
        store.record([request_at("in", f"{DAY}T09:30:00.000Z"), request_at("before", f"{DAY}T08:00:00.000Z")],
                     source="hook")
    [active] = store.active_runs("s1")
    assert (active["id"], active["name"], active["phase"]) == (run, "sprint", "BUILD")
    assert store.run_totals(("input", "output"), run) == (110, 0)
    assert store.largest_run(("input",), "sprint", START, END) == 100
    store.set_run_phase(run, "TEST")
    assert store.active_runs()[0]["phase"] == "TEST"
    assert store.end_runs("s1", f"{DAY}T10:00:00.000Z") == 1
    assert store.active_runs("s1") == [] and store.has_runs("s1") and not store.has_runs("s2")


def test_an_alert_is_claimed_once_per_limit_and_a_new_limit_rearms_it(store) -> None:
    with store.transaction():
        assert store.claim_alert(alert())
        assert not store.claim_alert(alert())
    assert store.load_alert(f"daily/80/{DAY}") == alert()
    assert store.acknowledge(None, f"{DAY}T11:00:00.000Z") == 1
    assert store.acknowledged_limits([DAY]) == {("daily", DAY): {80: 1000}}
    assert store.acknowledged_thresholds(["daily"]) == {("daily", DAY): {80}}
    assert store.open_alert_keys() == []
    with store.transaction():
        assert store.claim_alert(alert(limit=2000, created=f"{DAY}T12:00:00.000Z"))  # re-armed, its ack dropped
    assert store.open_alert_keys() == [f"daily/80/{DAY}"]
    [(held, acked_at)] = store.list_alerts(unacknowledged=True)
    assert (held.limit, acked_at) == (2000, None)


def test_control_events_are_shown_once_and_others_count_as_shown(store) -> None:
    with store.transaction():
        store.record_event(level="info", kind="limit_change", message="the daily budget changed",
                           created_at=f"{DAY}T10:00:00.000Z", detail='{"subject": "daily", "new": 5}')
        store.record_event(level="block", kind="block", message="blocked", created_at=f"{DAY}T10:01:00.000Z")
    assert store.take_unshown(f"{DAY}T10:02:00.000Z") == ["the daily budget changed"]
    assert store.take_unshown(f"{DAY}T10:03:00.000Z") == []
    assert [e["kind"] for e in store.list_events()] == ["limit_change", "block"]
    assert [e["kind"] for e in store.list_events(limit=1)] == ["block"]
    assert store.last_change_detail("daily") == '{"subject": "daily", "new": 5}'
    assert store.last_change_detail("monthly") is None


def test_degradations_are_recorded_and_counted(store) -> None:
    with store.transaction():
        store.record_degradation(Degradation("model_downgrade", "s1", "Task", None, "claude-opus-4-1",
                                             "claude-haiku-4-5"), f"{DAY}T10:00:00.000Z")
        store.record_degradation(Degradation("cache_hit", "s1", "Read"), f"{DAY}T11:00:00.000Z")
    assert store.has_degradation("s1", "cache_hit") and not store.has_degradation("s2", "cache_hit")
    assert not store.has_degradation("s1", "cache_hit", since=f"{DAY}T12:00:00.000Z")
    assert store.degradation_counts(START, END) == {"cache_hit": 1, "model_downgrade": 1}
    assert store.downgrades(END) == [("s1", f"{DAY}T10:00:00.000Z", "claude-opus-4-1", "claude-haiku-4-5")]
    assert [d["kind"] for d in store.list_degradations(kind="cache_hit")] == ["cache_hit"]


def test_the_outbox_queues_once_and_keeps_the_spelling(store) -> None:
    key = f"daily/80/{DAY}"
    with store.transaction():
        store.claim_alert(alert())
        assert store.outbox_backlog() == (True, False)
        assert store.alerts_to_enqueue() == [(key, 80)]
        store.enqueue_delivery(key, "slack", "slack", '{"type": "slack"}', project_dir=None, done=False,
                               now=f"{DAY}T10:00:00.000Z", hint_prefix="/tokens")
        store.mark_enqueued(key)
    assert store.outbox_backlog() == (False, True)
    due = store.next_due_delivery(f"{DAY}T10:00:01.000Z")
    assert (due["alert_key"], due["hint_prefix"], due["kind"]) == (key, "/tokens", "alert")
    attempt = store.start_attempt(due["id"], f"{DAY}T10:00:02.000Z")
    store.attempt_failed(attempt, due["id"], f"{DAY}T10:00:03.000Z", "HTTP 500", give_up=False,
                         retry_at=f"{DAY}T10:05:00.000Z")
    assert store.next_due_delivery(f"{DAY}T10:01:00.000Z") is None
    assert store.next_attempt_at() == f"{DAY}T10:05:00.000Z"
    attempt = store.start_attempt(due["id"], f"{DAY}T10:05:00.000Z")
    store.attempt_succeeded(attempt, due["id"], f"{DAY}T10:05:01.000Z")
    [delivery] = store.deliveries_of(key, "alert")
    assert (delivery["state"], delivery["attempts"], delivery["last_error"]) == ("delivered", 2, None)
    assert store.outbox_backlog() == (False, False)


def test_a_report_is_queued_once_per_channel(store) -> None:
    with store.transaction():
        store.store_report("report:x", DAY, '{"date": "x"}', "date: x\n", f"{DAY}T00:01:00.000Z")
        assert store.enqueue_report_delivery("report:x", "email", "email", "{}", project_dir=None,
                                             now=f"{DAY}T00:01:00.000Z") == 1
        assert store.enqueue_report_delivery("report:x", "email", "email", "{}", project_dir=None,
                                             now=f"{DAY}T00:02:00.000Z") == 0
    assert store.stored_report("report:x") == ("report:x", DAY, '{"date": "x"}', "date: x\n")
    assert store.stored_reports() == [("report:x", DAY, f"{DAY}T00:01:00.000Z")]


def test_windows_and_limits_seen_are_remembered(store) -> None:
    assert store.window_rows() == [] and store.seen_limits("") is None
    with store.transaction():
        store.record_windows([("five_hour", 40.0, f"{DAY}T15:00:00.000Z", None, None, None)],
                             f"{DAY}T10:00:00.000Z", "s1")
        store.remember_limits("", '{"daily": 5}', f"{DAY}T10:00:00.000Z")
    assert store.window_rows() == [("five_hour", 40.0, f"{DAY}T15:00:00.000Z", None, None, None,
                                    f"{DAY}T10:00:00.000Z")]
    assert store.seen_limits("") == '{"daily": 5}'


def test_the_latest_main_request_leaves_subagents_out(store) -> None:
    assert store.latest_main_request("s1") is None
    with store.transaction():
        store.record([request_at("a", f"{DAY}T10:00:00.000Z", cache_read=50),
                      request_at("b", f"{DAY}T11:00:00.000Z", model="claude-haiku-4-5", is_sidechain=True)],
                     source="hook")
    assert store.latest_main_request("s1") == ("claude-sonnet-4-5", f"{DAY}T10:00:00.000Z", 150)


def test_claimed_alert_limits_and_events_since(store) -> None:
    with store.transaction():
        store.claim_alert(alert())
        store.record_event(level="block", kind="block", message="blocked", created_at=f"{DAY}T10:01:00.000Z",
                           session_id="s1")
    assert store.alert_limits([f"daily/80/{DAY}", f"daily/90/{DAY}"]) == {f"daily/80/{DAY}": 1000}
    assert store.alert_limits([]) == {}
    assert store.has_event("block", "s1", f"{DAY}T10:01:00.000Z")
    assert not store.has_event("block", "s1", f"{DAY}T10:01:00.001Z")
    assert not store.has_event("block", "s2", START) and not store.has_event("block", None, START)
    assert not store.has_event("threshold", "s1", START)


def test_a_notice_is_known_by_its_exact_message(store) -> None:
    store.record_event(level="info", kind="notice", message="the repository's budgets.daily was ignored",
                       created_at=f"{DAY}T10:00:00.000Z")
    assert store.has_message("notice", "the repository's budgets.daily was ignored")
    assert not store.has_message("notice", "the repository's budgets.monthly was ignored")
    assert not store.has_message("block", "the repository's budgets.daily was ignored")


def test_anothers_commit_moves_the_counter_and_ones_own_does_not(store, second_connection) -> None:
    before = store.others_commits()
    with store.transaction():
        store.record([request_at("m-own", f"{DAY}T10:00:00.000Z")], source="hook")
    assert store.others_commits() == before
    with second_connection.transaction():
        second_connection.record([request_at("m-other", f"{DAY}T10:00:01.000Z")], source="hook")
    assert store.others_commits() != before


def test_read_positions_are_saved_with_the_rows_or_not_at_all(store) -> None:
    row = ("/t/a.jsonl", 1, 2, 300, 4, 300, "head", 3, 1, f"{DAY}T10:00:00.000Z")
    assert store.read_positions(["/t/a.jsonl"]) == {}
    with pytest.raises(RuntimeError), store.transaction():
        store.record([request_at("m1", f"{DAY}T10:00:00.000Z")], source="hook")
        store.save_read_positions([row])
        raise RuntimeError("a crash before the commit")
    assert store.read_positions(["/t/a.jsonl"]) == {} and store.count() == 0
    with store.transaction():
        assert store.read_position("/t/a.jsonl") is None
        store.save_read_positions([row])
    with store.transaction():
        assert store.read_position("/t/a.jsonl") == (1, 2, 300, "head", 3, 1)
        store.save_read_positions([(*row[:5], 600, "head", 7, 2, row[-1])])
    names = [f"/t/{n}.jsonl" for n in range(1200)] + ["/t/a.jsonl"]  # more than one query's worth of names
    assert store.read_positions(names) == {"/t/a.jsonl": (1, 2, 300, 4, 600)}
    assert store.malformed_lines() == 2


def test_a_session_remembers_its_calls_and_its_model(store) -> None:
    with store.transaction():
        store.remember_call("s1", "k-read", "Read", "a.py", "t1", f"{DAY}T10:00:00.000Z")
        store.remember_call("s1", "k-read", "Read", "a.py again", "t9", f"{DAY}T10:05:00.000Z")  # first one kept
        store.remember_call("s1", "k-grep", "Grep", "TODO", None, f"{DAY}T10:01:00.000Z")
        store.remember_call("s2", "k-grep", "Grep", "TODO", "t3", f"{DAY}T10:02:00.000Z")
    assert store.recall_call("s1", "k-read") == ("a.py", "t1", f"{DAY}T10:00:00.000Z")
    assert store.recall_call("s1", "k-other") is None
    assert store.has_calls("s1", keep_tool="Read")
    with store.transaction():
        store.forget_calls("s1", keep_tool="Read")
    assert not store.has_calls("s1", keep_tool="Read") and store.has_calls("s1")
    assert store.recall_call("s1", "k-read") is not None and store.recall_call("s2", "k-grep") is not None
    with store.transaction():
        store.forget_calls("s1")
    assert not store.has_calls("s1") and store.has_calls("s2")
    assert store.chosen_model("s1") is None
    with store.transaction():
        store.set_session_model("s1", "claude-opus-4-1", f"{DAY}T10:00:00.000Z")
        store.set_session_model("s1", "claude-haiku-4-5", f"{DAY}T11:00:00.000Z")
    assert store.chosen_model("s1") == ("claude-haiku-4-5", f"{DAY}T11:00:00.000Z")


def test_diagnostics(store) -> None:
    assert (store.quick_check(), store.pending_migrations(), store.failed_deliveries()) == ("ok", [], 0)
    with store.transaction():
        store.record([request_at("a", f"{DAY}T10:00:00.000Z"),
                      request_at("b", f"{DAY}T10:01:00.000Z", model="claude-opus-4-1")], source="hook")
    assert store.cost_statuses() == {"unpriced": (2, 0)}
    assert store.unpriced_models() == ["claude-opus-4-1", "claude-sonnet-4-5"]
    with store.transaction():
        store.claim_alert(alert())
        store.enqueue_delivery(f"daily/80/{DAY}", "slack", "slack", "{}", project_dir=None, done=False,
                               now=f"{DAY}T10:00:00.000Z")
    due = store.next_due_delivery(f"{DAY}T10:00:01.000Z")
    store.attempt_failed(store.start_attempt(due["id"], f"{DAY}T10:00:02.000Z"), due["id"], f"{DAY}T10:00:03.000Z",
                         "HTTP 404", give_up=True, retry_at=f"{DAY}T10:05:00.000Z")
    assert store.failed_deliveries() == 1


MONTH = "2026-11-01T00:00:00.000Z", "2026-12-01T00:00:00.000Z"
NOON = f"{DAY}T12:00:00.000Z"


def spooled(store) -> list[tuple[str, int]]:  # type: ignore[no-untyped-def]
    return [(r["message_id"], r["output_tokens"]) for r in store.unpushed_rows("", 100)]


def test_a_team_link_spools_the_requests_since_it_and_every_one_written_after(store) -> None:
    with store.transaction():
        store.record([request_at("m-old", "2026-10-31T23:00:00.000Z"), request_at("m1", f"{DAY}T09:00:00.000Z")],
                     source="hook")
    assert store.team_link() is None
    assert (store.unpushed_count(), store.has_unpushed()) == (0, False)  # no team: nothing is spooled
    store.link_team("core", "db:5432/team", "alice@example.com", MONTH[0], NOON)
    assert store.team_link() == ("core", "db:5432/team", "alice@example.com")
    with store.transaction():
        store.record([request_at("m2", f"{DAY}T10:00:00.000Z", model="claude-opus-4-5", output_tokens=20)],
                     source="hook")
    assert spooled(store) == [("m1", 10), ("m2", 20)]  # in message id order, the month's only
    assert (store.unpushed_count(), store.has_unpushed()) == (2, True)
    [first] = store.unpushed_rows("", 1)
    assert first == {"message_id": "m1", "ts": f"{DAY}T09:00:00.000Z", "model": "claude-sonnet-4-5", "workflow": "",
                     "session_id": "s1", "project": None, "is_sidechain": False, "input_tokens": 100,
                     "output_tokens": 10, "cache_creation_5m_tokens": 0, "cache_creation_1h_tokens": 0,
                     "cache_read_tokens": 0, "total_tokens": 110, "cost_micros": 0}
    assert [r["message_id"] for r in store.unpushed_rows("m1", 100)] == ["m2"]


def test_pushed_requests_leave_the_spool_unless_they_grew_since(store) -> None:
    store.link_team("core", "db:5432/team", "alice@example.com", MONTH[0], NOON)
    with store.transaction():
        store.record([request_at("m1", f"{DAY}T09:00:00.000Z"), request_at("m2", f"{DAY}T10:00:00.000Z")],
                     source="hook")
    pushed = store.unpushed_rows("", 100)
    with store.transaction():  # a line that grew while the push was on its way
        store.record([request_at("m2", f"{DAY}T10:00:00.000Z", output_tokens=50)], source="hook")
    store.mark_pushed(pushed, NOON)
    assert spooled(store) == [("m2", 50)]
    # the server has m2 at 110 tokens: only its growth is missing from the team's totals
    assert store.unpushed_usage((START, END), MONTH) == [("claude-sonnet-4-5", "", 1, 1, 0, 40, 0, 0, 0, 0)]
    store.mark_pushed(store.unpushed_rows("", 100), NOON)
    assert (store.unpushed_count(), store.has_unpushed(), store.unpushed_usage((START, END), MONTH)) == (0, False, [])


def test_unpushed_usage_is_grouped_by_model_workflow_day_and_month(store) -> None:
    store.link_team("core", "db:5432/team", "alice@example.com", MONTH[0], NOON)
    with store.transaction():
        store.record([request_at("m1", f"{DAY}T09:00:00.000Z", cache_read=7),
                      request_at("m2", f"{DAY}T10:00:00.000Z", output_tokens=5),
                      request_at("m3", "2026-11-03T10:00:00.000Z", model="claude-opus-4-5"),
                      request_at("m4", "2026-12-01T00:00:00.000Z")], source="hook")  # next month: in neither
    assert sorted(store.unpushed_usage((START, END), MONTH)) == [
        ("claude-opus-4-5", "", 0, 1, 100, 10, 0, 0, 0, 0),
        ("claude-sonnet-4-5", "", 1, 1, 200, 15, 0, 0, 7, 0)]
    assert store.unpushed_usage(("2026-11-03T00:00:00.000Z", "2026-11-04T00:00:00.000Z"), MONTH)[0][2:4] == (1, 1)


def test_linking_again_forgets_the_previous_spool_and_claims(store) -> None:
    store.link_team("core", "db:5432/team", "alice@example.com", MONTH[0], NOON)
    with store.transaction():
        store.record([request_at("m1", "2026-11-02T09:00:00.000Z"), request_at("m2", f"{DAY}T09:00:00.000Z")],
                     source="hook")
        store.claim_alert(Alert("team:monthly", "alert", 80, "2026-11", 800, 1000, NOON))
        store.record_team_claim("team:monthly/80/2026-11", 1000, True, NOON)
    store.mark_pushed(store.unpushed_rows("", 100), NOON)
    store.link_team("core", "db:5432/team", "alice@laptop", START, NOON)  # another member: push again, from `since`
    assert store.team_link() == ("core", "db:5432/team", "alice@laptop")
    assert spooled(store) == [("m2", 10)]
    assert store.unpushed_usage((START, END), MONTH) == [("claude-sonnet-4-5", "", 1, 1, 100, 10, 0, 0, 0, 0)]
    assert store.unclaimed_team_alerts() == [("team:monthly/80/2026-11", 80, 1000)]


def test_a_team_alert_is_put_to_the_server_once_per_limit(store) -> None:
    with store.transaction():
        store.claim_alert(Alert("team:monthly", "alert", 80, "2026-11", 800, 1000, NOON))
        store.claim_alert(alert())  # a local budget's alert is this machine's own
    assert store.unclaimed_team_alerts() == [("team:monthly/80/2026-11", 80, 1000)]
    with store.transaction():
        store.record_team_claim("team:monthly/80/2026-11", 1000, False, NOON)
    assert store.unclaimed_team_alerts() == []
    with store.transaction():  # the team's budget changed: the alert is re-armed, and put to the server again
        store.claim_alert(Alert("team:monthly", "alert", 80, "2026-11", 1600, 2000, f"{DAY}T13:00:00.000Z"))
    assert store.unclaimed_team_alerts() == [("team:monthly/80/2026-11", 80, 2000)]
