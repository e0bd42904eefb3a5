"""What the core needs from storage, as typing Protocols: a second backend is one new module that implements them.

`ledger.Ledger` is the SQLite backend (the only one today). The core calls these methods and never writes SQL
itself (tests/test_storage.py checks both: the methods exist on `Ledger` with these signatures, and no module
outside the backend and `migrations` holds a query: the core, the team client `team/` (but for the team
server's own PostgreSQL backend, team/server.py and team/schema.py), and the Claude Code adapter `claude/`).

Conventions every backend keeps:
- Timestamps are `clock.timestamp()` strings (UTC, milliseconds, `…T10:00:00.123Z`); they sort as text, and every
  `start`/`end` pair is a half-open range [start, end) unless a docstring says otherwise.
- Token counts are integers; money is integer micro-USD (`cost_micros`).
- `classes` is the configured counted token classes (`Config.counted_classes`: a sequence of "input", "output",
  "cache_creation", "cache_read"): a "counted" figure sums those classes of each request.
- Writes that must be atomic together run inside `with store.transaction():`; a method that writes outside one
  commits at once. A method documented "inside a transaction" is only ever called that way.
- A failure of the store raises `errors.LedgerError` with what to do about it.

The protocols are split by concept so that a backend for one purpose (a team's shared PostgreSQL store, say) can
state which it implements; `Storage` is all of them. Method names are stable: a new need is a new method.

This module is imported only by type checkers and tests (the hook must not pay for `typing` at import time).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .models import Alert, Degradation, UsageEvent
    from .pricing import PriceTable


class Transactional(Protocol):
    def transaction(self) -> Any:
        """A context manager for one write transaction (`with store.transaction(): …`): every write inside it
        commits together or not at all, and concurrent writers serialise on it. Entering it may also return a
        backend-specific handle; core code does not use that handle."""
        ...

    def close(self) -> None:
        """Release the connection. The store is not used afterwards."""
        ...

    def others_commits(self) -> int:
        """A number that changes whenever another connection commits (SQLite's data_version): read before a
        decision's queries and compared after, it tells whether the decision saw one state of the store."""
        ...

    def leave_open(self) -> None:
        """Instead of close(), for a process about to end that must not wait for the store's closing work (a hook
        Claude Code waits for): leave what the next process pays to open the store small. Never waits for another
        process and never raises; the store is not used afterwards."""
        ...


class UsageStore(Protocol):
    """The requests: one row per API request, and the sums budgets, status and the log need."""

    def record(self, events: Sequence[UsageEvent], *, source: str,
               prices: PriceTable | None = None) -> tuple[int, int]:
        """Upsert requests by message id; returns (inserted, updated). A request already held is replaced only by
        a line that wins it (`ledger.replaces`: a parent's own line beats a sidechain copy, then the larger total),
        so replays and concurrent writers neither lose nor double count. Each row is priced with `prices` (none:
        cost 0, status "unpriced") and attributed to the workflow run open in its session at its timestamp."""
        ...

    def rows(self, *, since: str | None = None, until: str | None = None, session: str | None = None,
             limit: int | None = None, newest_first: bool = False) -> Sequence[Mapping[str, Any]]:
        """Request rows (every column of the requests table, by name) in [since, until), optionally of one
        session, ordered by (timestamp, message_id), oldest first unless `newest_first`; at most `limit`."""
        ...

    def totals(self, *, since: str | None = None, until: str | None = None,
               session: str | None = None) -> dict[Any, dict[str, int]]:
        """{None: sums} over the requests in [since, until) (optionally of one session), the sums keyed
        requests, input, output, cache_creation_5m, cache_creation_1h, cache_creation, cache_read, cost_micros.
        Empty when there is no request."""
        ...

    def count(self) -> int:
        """How many requests are recorded."""
        ...

    def totals_by_model(self, classes: Sequence[str], start: str, end: str) -> list[tuple[str, int, int]]:
        """(model, counted tokens, cost_micros) per model that has requests in [start, end). The daily, monthly
        and per-model budgets sum these; it runs on every hook, so a backend keeps it cheap for a month."""
        ...

    def session_totals(self, classes: Sequence[str], session_id: str) -> tuple[int, int]:
        """(counted tokens, cost_micros) of every request of one session (the per-session budget)."""
        ...

    def run_totals(self, classes: Sequence[str], run_id: int) -> tuple[int, int]:
        """(counted tokens, cost_micros) of every request attributed to one workflow run."""
        ...

    def largest_run(self, classes: Sequence[str], workflow: str, start: str, end: str) -> int:
        """The counted tokens of the largest run of `workflow`, counting its requests in [start, end); 0 if none."""
        ...

    def counted_between(self, classes: Sequence[str], start: str, end: str) -> int:
        """Counted tokens of the requests with start <= timestamp <= end (both bounds inclusive: the burn rate's
        last hour up to now)."""
        ...

    def counted_before(self, classes: Sequence[str], timestamp: str, message_id: str, *,
                       since: str | None = None, run_id: int | None = None) -> int:
        """Counted tokens of the requests strictly before (timestamp, message_id) in that order, within either
        the requests at or after `since` or the requests of workflow run `run_id` (the log's running totals)."""
        ...

    def latest_session(self) -> str | None:
        """The session of the most recently timestamped request, None when no request has one."""
        ...

    def latest_main_request(self, session_id: str) -> tuple[str, str, int] | None:
        """(model, timestamp, input tokens of every input class: the context it sent) of the session's newest
        request made by the session itself (not by a subagent), None when it has none. Runs on every hook."""
        ...


class ReportStore(Protocol):
    """The rows reports aggregate."""

    def report_rows(self, start: str, end: str) -> Sequence[tuple[Any, ...]]:
        """The requests in [start, end) ordered by timestamp, each as the tuple (timestamp, model, workflow,
        cost_status, input_tokens, output_tokens, cache_creation_5m_tokens, cache_creation_1h_tokens,
        cache_read_tokens, speed, session_id, agent_id, cost_micros)."""
        ...

    def subagent_starts(self, sessions: Sequence[str]) -> list[tuple[str, str, str, str]]:
        """(session_id, agent_id, first timestamp, model) per subagent of the given sessions, ordered by first
        timestamp (the reports' downgrade savings)."""
        ...

    def reconciled_usage(self, start: str, end: str) -> tuple[int, int, int]:
        """(rows, tokens of every class, cost_micros) of the auxiliary rows reconciliation added in [start, end)."""
        ...


class AlertStore(Protocol):
    """Alerts (claimed once per scope, threshold and period) and their acknowledgements."""

    def claim_alert(self, alert: Alert) -> bool:
        """Record the alert unless its key (scope/threshold/period) is claimed already; True when this call
        claimed it. A claim made under another token limit is taken over and its acknowledgement dropped (a
        changed budget re-arms its alerts). Inside a transaction: concurrent hooks agree on one winner."""
        ...

    def alert_limits(self, keys: Sequence[str]) -> dict[str, int]:
        """{key: the token limit it was claimed under} of the given keys that are claimed (most hooks find every
        alert they would claim claimed already, and write nothing)."""
        ...

    def load_alert(self, key: str) -> Alert | None:
        """The alert claimed under `key`, None when there is none."""
        ...

    def list_alerts(self, *, limit: int | None = None,
                    unacknowledged: bool = False) -> list[tuple[Alert, str | None]]:
        """(alert, acked_at or None), newest claim first (ties by key); only the unacknowledged ones if asked."""
        ...

    def open_alert_keys(self, *, key: str | None = None, limit: int | None = None) -> list[str]:
        """Keys of the unacknowledged alerts (only `key`, if given and open), newest first, at most `limit`."""
        ...

    def acknowledge(self, key: str | None, now: str) -> int:
        """Acknowledge the alert `key`, or every unacknowledged one when None; returns how many changed."""
        ...

    def acknowledged_limits(self, periods: Sequence[str]) -> dict[tuple[str, str], dict[int, int]]:
        """{(scope, period): {acknowledged threshold: the token limit it was claimed under}} for acknowledged
        alerts whose period is one of `periods` or a workflow run's ("run-<id>")."""
        ...

    def acknowledged_thresholds(self, scopes: Sequence[str]) -> dict[tuple[str, str], set[int]]:
        """{(scope, period): acknowledged thresholds} for acknowledged alerts of the given scopes, any period."""
        ...


class EventStore(Protocol):
    """The events log (crossings, blocks, control changes shown once) and the degradations record."""

    def record_event(self, *, level: str, kind: str, message: str, created_at: str, scope: str | None = None,
                     session_id: str | None = None, alert_key: str | None = None, detail: str | None = None,
                     shown_at: str | None = None) -> None:
        """Append an event. Control events (kinds limit_change, mode_change, ack) keep shown_at empty unless
        given, so the next hook shows them; every other kind counts as shown when it happens."""
        ...

    def has_event(self, kind: str, session_id: str | None, since: str) -> bool:
        """Whether the session (None: no session) has an event of `kind` created at or after `since`."""
        ...

    def has_message(self, kind: str, message: str) -> bool:
        """Whether an event of `kind` with exactly this message was ever recorded (a notice shown once)."""
        ...

    def list_events(self, *, limit: int | None = 50, since: str | None = None) -> list[dict[str, Any]]:
        """Events at or after `since`, oldest first: the newest `limit` of them. Keys: id, created_at, level,
        kind, scope, session_id, alert_key, message, detail."""
        ...

    def last_change_detail(self, subject: str) -> str | None:
        """The JSON detail of the newest limit_change or mode_change event whose detail's subject is `subject`."""
        ...

    def take_unshown(self, now: str) -> list[str]:
        """The messages of the events nobody has shown yet, oldest first, marking them shown at `now`: of
        concurrent callers, each event goes to exactly one."""
        ...

    def record_degradation(self, step: Degradation, created_at: str) -> None:
        """Append a graceful-degradation step (a model downgrade, a deferred workflow, …)."""
        ...

    def has_degradation(self, session_id: str | None, kind: str, since: str | None = None) -> bool:
        """Whether the session (None: no session) has a degradation of `kind`, at or after `since` if given."""
        ...

    def list_degradations(self, *, since: str | None = None, until: str | None = None,
                          kind: str | None = None) -> list[dict[str, Any]]:
        """Degradations in [since, until), of one kind if given, in the order recorded. Keys: id, session_id,
        kind, tool, detail, from_model, to_model, created_at."""
        ...

    def degradation_counts(self, start: str, end: str) -> dict[str, int]:
        """{kind: how many} of the degradations recorded in [start, end)."""
        ...

    def downgrades(self, until: str) -> list[tuple[str, str, str, str]]:
        """(session_id, created_at, from_model, to_model) of every model downgrade recorded before `until` in a
        session, in the order recorded."""
        ...


class WorkflowStore(Protocol):
    """Workflow runs: named stretches of a session that requests are attributed to."""

    def active_runs(self, session_id: str | None = None) -> list[dict[str, Any]]:
        """Open runs, newest first: the session's (at most one), or every open run when no session is given.
        Keys: id, session_id, name, phase, started_at, source."""
        ...

    def start_run(self, session_id: str, name: str, now: str, *, phase: str | None = None,
                  source: str = "cli") -> int:
        """End the session's open run, if any, and open a new one; returns its id. Inside a transaction."""
        ...

    def set_run_phase(self, run_id: int, phase: str) -> None:
        """Set an open run's phase."""
        ...

    def end_runs(self, session_id: str, now: str) -> int:
        """End the session's open runs at `now`; returns how many."""
        ...

    def has_runs(self, session_id: str) -> bool:
        """Whether the session ever had a run."""
        ...


class SettingsStore(Protocol):
    """What the hooks remember between runs: the subscription's windows and the limits last seen."""

    def window_rows(self) -> list[tuple[Any, ...]]:
        """(name, used_percentage, resets_at, used_usd, limit_usd, period, observed_at) per subscription window
        as last reported; empty when none was (or the store predates them)."""
        ...

    def record_windows(self, rows: Sequence[tuple[Any, ...]], observed_at: str,
                       session_id: str | None = None) -> None:
        """Upsert windows by name, each row (name, used_percentage, resets_at, used_usd, limit_usd, period)."""
        ...

    def seen_limits(self, project: str) -> str | None:
        """The limits (canonical JSON text) last seen for a project ("" for none), None before the first look."""
        ...

    def remember_limits(self, project: str, limits: str, now: str) -> None:
        """Store the limits seen for a project (replacing what was there)."""
        ...


class OutboxStore(Protocol):
    """The outbox: one delivery per (alert, channel) and per (daily report, reports channel), and the sender's
    attempts. `kind` is "alert" (the key names an alert) or "report" (it names a stored report message)."""

    def outbox_backlog(self) -> tuple[bool, bool]:
        """(a claimed alert waits to be enqueued, a delivery is pending): whether a hook has anything to kick.
        Runs on every evaluated hook: a backend answers it from indexes."""
        ...

    def alerts_to_enqueue(self) -> list[tuple[str, int]]:
        """(key, threshold) of every claim whose deliveries are not queued yet (new, or re-armed by a new limit),
        oldest claim first."""
        ...

    def enqueue_delivery(self, key: str, channel: str, channel_type: str, spec: str, *, project_dir: str | None,
                         done: bool, now: str, hint_prefix: str | None = None) -> None:
        """Queue the alert `key` for one channel (name, type and its spec as JSON, secrets left as `$NAME`): pending,
        or delivered at once when `done` (the console). Queuing a key and channel again resets that delivery (a
        re-armed alert is a new alert). `hint_prefix`: how the queuing client spells commands (hints.Hints), kept
        for the sender's rendering. Inside a transaction, with `mark_enqueued`."""
        ...

    def mark_enqueued(self, key: str) -> None:
        """The claim `key` has its deliveries queued (until it is re-armed)."""
        ...

    def deliveries_of(self, key: str, kind: str) -> list[dict[str, Any]]:
        """The deliveries of one alert or report in the order queued. Keys: channel, type, state (pending,
        delivered, failed), attempts, next_attempt_at (None unless pending), last_error, delivered_at."""
        ...

    def store_report(self, key: str, period: str, report: str, yaml: str, now: str) -> None:
        """Keep a daily report (its mapping as JSON, and its YAML) for the sender under `key`; storing the same key
        again replaces the content."""
        ...

    def enqueue_report_delivery(self, key: str, channel: str, channel_type: str, spec: str, *,
                                project_dir: str | None, now: str) -> int:
        """Queue the stored report `key` for one channel; 1 when added, 0 when that delivery exists already."""
        ...

    def stored_report(self, key: str) -> tuple[str, str, str, str] | None:
        """(key, period, report JSON, YAML) of a stored report, None when there is none."""
        ...

    def stored_reports(self, *, limit: int | None = None) -> list[tuple[str, str, str]]:
        """(key, period, created_at) of the stored reports, newest period first, at most `limit`."""
        ...

    def next_due_delivery(self, now: str) -> dict[str, Any] | None:
        """The pending delivery due first (next_attempt_at <= now), None when none is due. Keys: id, alert_key,
        channel, type, spec, project_dir, attempts, created_at, kind, hint_prefix."""
        ...

    def next_attempt_at(self) -> str | None:
        """When the earliest pending delivery is due; None when nothing is pending."""
        ...

    def start_attempt(self, delivery_id: int, now: str) -> int:
        """Count an attempt on a delivery and record its start (committed before sending, so a crash while
        sending repeats the delivery rather than losing it); returns the attempt's id."""
        ...

    def attempt_failed(self, attempt_id: int, delivery_id: int, now: str, error: str, *, give_up: bool,
                       retry_at: str) -> None:
        """Record a failed attempt (its redacted error): the delivery is failed for good when `give_up`, else
        pending again from `retry_at`. Commits."""
        ...

    def attempt_succeeded(self, attempt_id: int, delivery_id: int, now: str) -> None:
        """Record a successful attempt: the delivery is delivered at `now`. Commits."""
        ...


class ReconcileStore(Protocol):
    """Reconciliation with the client's own per-session totals (reconcile.py): snapshots of the client's figures,
    requests shared between a session and its forks, and the auxiliary rows (source "reconciled") that make the
    ledger add up to what the client counted. A store that never ingests transcripts need not implement it."""

    def add_client_totals(self, session_id: str, fingerprint: str, taken_at: str, total_cost_micros: int,
                          model_usage: str, unknown_model_cost: bool, path: str | None, now: str) -> bool:
        """Keep one snapshot of the client's figures (model_usage: JSON {model: [5 classes, cost]}); False when
        the session already has a snapshot with this fingerprint."""
        ...

    def latest_client_totals(self, sessions: Sequence[str]) -> dict[str, str]:
        """{session: taken_at of its latest snapshot} for the given sessions that have one."""
        ...

    def sessions_to_reconcile(self, sessions: Sequence[str]) -> set[str]:
        """Of the given sessions, those with client figures, plus every session sharing requests with one of
        them (as owner or as holder of a copy)."""
        ...

    def client_snapshots(self, session_id: str) -> list[tuple[str, int, str, int]]:
        """(taken_at, total_cost_micros, model_usage JSON, unknown_model_cost) of a session's snapshots, in the
        order taken (ties by cost)."""
        ...

    def shared_with(self, session_id: str) -> list[tuple[str, str]]:
        """(other session, the latest timestamp of a request they share) for every session that owns a request
        this one holds a copy of, or holds a copy of a request this one owns."""
        ...

    def return_copies(self, fork: str, parent: str, cut: str) -> None:
        """Give the parent back the requests up to `cut` (inclusive) that the fork owns and the parent holds
        copies of (the fork's file was read first); the fork keeps them as copies. Not the reconciled rows."""
        ...

    def session_figures(self, session_id: str, cut: str | None, upto: str) -> dict[str, list[int]]:
        """{model: [5 token classes, cost_micros, requests]} of the session's requests (those it owns or holds a
        copy of, not reconciled rows) with timestamp <= upto, leaving out, when `cut` is given, the requests up
        to `cut` that are copies or another session's."""
        ...

    def reconciled_figures(self, session_id: str) -> dict[str, list[int]]:
        """{model: [5 token classes, cost_micros, rows]} of the session's reconciled rows."""
        ...

    def session_place(self, session_id: str) -> tuple[str | None, str | None, str | None]:
        """(project, cwd, git_branch) of the session's latest request that is not a reconciled row."""
        ...

    def drop_reconciled(self, session_id: str, model: str) -> None:
        """Delete the session's reconciled rows of one model."""
        ...

    def has_request(self, message_id: str) -> bool:
        """Whether a request with this message id is recorded."""
        ...

    def set_cost(self, message_id: str, cost_micros: int, cost_status: str) -> None:
        """Replace one request's cost and cost status."""
        ...

    def record_reconciliation(self, session_id: str, *, checked_at: str, taken_at: str, parent_session: str | None,
                              client_cost_micros: int, ledger_cost_micros: int, requests: int,
                              reconciled_cost_micros: int, reconciled_tokens: str, above: str,
                              unknown_model_cost: int) -> None:
        """Keep the latest reconciliation result of a session (replacing the previous one); reconciled_tokens and
        above are JSON {model: [5 classes]}."""
        ...

    def reconciliations(self, *, start: str | None = None, end: str | None = None) -> list[tuple[Any, ...]]:
        """The results, ordered by taken_at, those whose figures were taken in [start, end) when both are given:
        (session_id, checked_at, taken_at, parent_session, client_cost_micros, ledger_cost_micros, requests,
        reconciled_cost_micros, reconciled_tokens, above, unknown_model_cost)."""
        ...


class ReadPositions(Protocol):
    """How far each append-only source (a file that only grows, read line by line) has been read, so that the next
    read starts where the last stopped. A source is named by its path; its identity is (device, inode), and the
    hash of its first bytes tells a file rewritten in place. The rows read and the positions they moved are
    written in one transaction, so a crash neither loses a line nor counts one twice."""

    def read_positions(self, sources: Sequence[str]) -> dict[str, tuple[int, int, int, int, int]]:
        """{source: (device, inode, size, mtime_ns, offset)} as last saved, of the given sources that have a
        position (the cheap "unchanged since the last read" check, outside a transaction)."""
        ...

    def read_position(self, source: str) -> tuple[int, int, int, str | None, int, int] | None:
        """(device, inode, offset, head hash, lines read, malformed lines skipped) of one source, None before its
        first read. Inside a transaction (the writer's view: a parallel reader may have moved it)."""
        ...

    def save_read_positions(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Upsert positions by source, each row (source, device, inode, size, mtime_ns, offset, head hash, lines,
        malformed lines, updated_at). Inside a transaction, with the rows read up to them."""
        ...

    def malformed_lines(self) -> int:
        """How many malformed lines were skipped over every source."""
        ...


class SessionMemory(Protocol):
    """What a session remembers between its hooks: the tool calls that ran (to tell a repeated call) and the model
    the session switched to."""

    def remember_call(self, session_id: str, key: str, tool: str, summary: str, call_id: str | None,
                      now: str) -> None:
        """Remember a call under its key (the call's identity); a key remembered already keeps its first call.
        Inside a transaction."""
        ...

    def recall_call(self, session_id: str, key: str) -> tuple[str, str | None, str] | None:
        """(summary, call id, when) of the session's call remembered under `key`, None when there is none."""
        ...

    def has_calls(self, session_id: str, *, keep_tool: str | None = None) -> bool:
        """Whether the session remembers any call (any of another tool than `keep_tool`, when given)."""
        ...

    def forget_calls(self, session_id: str, *, keep_tool: str | None = None) -> None:
        """Forget the session's calls (all but those of `keep_tool`, when given). Inside a transaction."""
        ...

    def set_session_model(self, session_id: str, model: str, now: str) -> None:
        """Remember the model the session switched to at `now` (replacing the previous one). Inside a
        transaction."""
        ...

    def chosen_model(self, session_id: str) -> tuple[str | None, str] | None:
        """(model, when set) of the session's last switch, None when it never switched."""
        ...


class TeamSpool(Protocol):
    """This machine's side of a team (token_budget/team/): the link to a team server, the spool of requests the
    server does not have yet (every request written after the link is marked by the store itself), what of each
    request was pushed, and which team alerts this machine put to the server. The server's own store is its own
    backend (team/server.py); these are the local questions the hook and the team sync ask."""

    def team_link(self) -> tuple[str, str, str] | None:
        """(team, server label, member) this store syncs with, None before its first sync."""
        ...

    def link_team(self, team: str, server: str, member: str, since: str, now: str) -> None:
        """Link this store to a team (or another team, server or member): forget the previous link's spool, pushed
        copies and claims, and mark every request at or after `since` to push. One transaction of its own."""
        ...

    def unpushed_rows(self, after: str, limit: int) -> list[dict[str, Any]]:
        """At most `limit` marked requests with message id > `after`, in message id order, as the team server
        takes them. Keys: message_id, ts, model, workflow ("" for none), session_id, project, is_sidechain (bool),
        input_tokens, output_tokens, cache_creation_5m_tokens, cache_creation_1h_tokens, cache_read_tokens,
        total_tokens, cost_micros."""
        ...

    def mark_pushed(self, rows: Sequence[Mapping[str, Any]], now: str) -> None:
        """The server committed these rows (unpushed_rows' shape): keep what it has of each, and unmark each one
        that is still what was pushed (a request that grew since stays marked, to be pushed again). One
        transaction of its own; called only after the server's commit, so a crash before it pushes again, never
        loses."""
        ...

    def unpushed_usage(self, day: tuple[str, str], month: tuple[str, str]) -> list[tuple[Any, ...]]:
        """What the team server's totals lack of this machine's usage: (model, workflow ("" for none), in `day`,
        in `month`, input, output, cache_creation_5m, cache_creation_1h, cache_read, cost_micros) per group of
        the marked requests in either [start, end) range, each counted as it is now less what of it was pushed
        before. Runs on every hook in team mode: a backend drives it from the spool (a few rows)."""
        ...

    def unpushed_count(self) -> int:
        """How many recorded requests wait to be pushed."""
        ...

    def has_unpushed(self) -> bool:
        """Whether any recorded request waits to be pushed (the sync's "is there work left" between passes)."""
        ...

    def unclaimed_team_alerts(self) -> list[tuple[str, int, int]]:
        """(key, threshold, limit_tokens) of the claimed team alerts (scope "team:…") not yet put to the team
        server under their current limit."""
        ...

    def record_team_claim(self, key: str, limit_tokens: int, won: bool, now: str) -> None:
        """Remember the server's answer for a team alert under a limit (a claim already recorded is kept). Inside
        a transaction, with the deliveries of a claim won."""
        ...


class Diagnostics(Protocol):
    """What a health check (`tokens doctor`) asks of the store."""

    def quick_check(self) -> str:
        """The text "ok", or what the store's own integrity check found wrong."""
        ...

    def pending_migrations(self) -> list[str]:
        """The names of the schema migrations not applied yet, in order."""
        ...

    def cost_statuses(self) -> dict[str, tuple[int, int]]:
        """{cost status (priced, estimated, unpriced): (requests, cost_micros)} over every request."""
        ...

    def unpriced_models(self) -> list[str]:
        """The models of the requests whose cost is not from a published price (estimated or unpriced), sorted."""
        ...

    def failed_deliveries(self) -> int:
        """How many deliveries failed for good."""
        ...


class Storage(Transactional, UsageStore, ReportStore, AlertStore, EventStore, WorkflowStore, SettingsStore,
              OutboxStore, ReconcileStore, ReadPositions, SessionMemory, TeamSpool, Diagnostics, Protocol):
    """Everything the core and the client adapter need from storage."""
