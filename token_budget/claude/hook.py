"""The hook adapter: Claude Code hook JSON in, hook JSON out. Never exits 1 (that silently disables the hook).

Hot path: this module and everything it imports at the top use only the standard library and the core.
"""

from __future__ import annotations

import os
import sys
import time

from .. import jsonlite
from ..errors import TokenBudgetError
from ..paths import daily_report_due
from ..paths import data_dir as resolve_data_dir
from . import fastpath, plugin_data
from .fastpath import ASYNC_EVENTS, FIRST_IMPORT, HookInputError, deadline, log, transcript_files

TYPE_CHECKING = False  # typing costs milliseconds of import on every hook; annotations are strings
if TYPE_CHECKING:
    from datetime import datetime
    from typing import Any, TextIO

    from ..paths import PathLike

HOOK_EVENTS = (
    "SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop", "SubagentStop", "SessionEnd",
    "PreCompact",
)  # fmt: skip
BLOCKING_EVENTS = ("UserPromptSubmit", "PreToolUse")
# Events whose systemMessage reaches the user at once (the async ones may be cancelled before theirs is read).
MESSAGE_EVENTS = ("SessionStart", "UserPromptSubmit", "PreToolUse")
NOTICE_KIND = "project_config"


class Watchdog:
    """Answers for the hook when it runs past its deadline, whatever it is stuck in, then ends the process.

    A thread of its own (`_thread`: no import cost) waits on a lock with a timeout, which releases the GIL, so it
    runs while the main thread waits in a system call or in SQLite's busy handler. The answer follows on_error as
    far as the hook got to read it (open until the config says closed). Whoever answers first holds `answering`:
    the hook's own answer and the watchdog's never both reach stdout. faulthandler's C thread is the backstop for
    code that never releases the GIL: it exits 1, which hook.sh turns into a message. Only `main()` arms one:
    in-process callers (tests, embedders) keep their process."""

    def __init__(self, seconds: float) -> None:
        import _thread

        self.seconds = seconds
        self.event = ""
        self.fails_closed = False
        self.data_dir: str | None = None
        self.answering = _thread.allocate_lock()
        self._claimed = False
        self._done = _thread.allocate_lock()
        self._done.acquire()
        _thread.start_new_thread(self._watch, ())
        try:
            import faulthandler

            faulthandler.dump_traceback_later(seconds + 5.0, exit=True)
        except (ValueError, OSError, RuntimeError):
            pass

    def _watch(self) -> None:
        if self._done.acquire(timeout=self.seconds) or not self.answering.acquire(blocking=False):
            return
        fastpath.out_of_time(self.event, self.data_dir, self.seconds, self.fails_closed)

    def claim(self) -> None:
        """Called before the hook answers; if the watchdog is answering already, wait for it to end the process."""
        if self._claimed:
            return  # a second answer after the first failed to write (_fail after _emit raised)
        if not self.answering.acquire(blocking=False):
            time.sleep(60)
        self._claimed = True

    def stop(self) -> None:
        self._done.release()
        try:
            import faulthandler

            faulthandler.cancel_dump_traceback_later()
        except (ValueError, OSError, RuntimeError):
            pass


_watchdog: Watchdog | None = None


def run(argv: list[str], stdin: TextIO | None = None, stdout: TextIO | None = None,
        stderr: TextIO | None = None, *, now: datetime | None = None, tried: bool = False) -> int:
    """`tokens hook EVENT`: returns the exit code, 0 or 2. Never raises. `now` is the clock (tests inject it);
    `tried`: the process's entry (fastpath.start) waited for the turn and asked the record already."""
    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    event = argv[0] if argv else ""
    data_dir: str | None = None
    try:
        payload = read_payload(stdin.read())
        event = payload.get("hook_event_name") or event
        if _watchdog is not None:
            _watchdog.event = event
        if event not in HOOK_EVENTS:
            return _emit(stdout, {})
        data_dir = resolve_data_dir(host=plugin_data())
        if _watchdog is not None:
            _watchdog.data_dir = data_dir
        response = None
        if event in ("Stop", "SubagentStop") and not tried:
            fastpath.await_turn_written(payload)
        if event in fastpath.EVENTS and not tried:  # nothing new and nothing changed: answered without the core
            response = fastpath.answer(event, payload, data_dir, _seconds(now))
        if response is None:
            response = handle(event, payload, data_dir, now=now)
        if event in MESSAGE_EVENTS:
            response = _with_first_import_notice(response, data_dir)
        return _emit(stdout, response)
    except Exception as exc:  # fail open (or closed, if configured), but always say why
        return _fail(event, exc, data_dir, stdout, stderr)


def _seconds(now: datetime | None) -> float | None:
    """The fast path's clock: the one tests inject or set (token_budget.clock, once something loaded it), else
    time.time(); the hook itself never loads datetime for it."""
    if now is not None:
        return now.timestamp()
    clock = sys.modules.get("token_budget.clock")
    return clock.now().timestamp() if clock is not None else None


def read_payload(raw: str) -> dict[str, Any]:
    if not raw.strip():
        raise HookInputError("the hook received no input on stdin",
                             "Claude Code sends the event as JSON; run hooks only from Claude Code or pipe a payload.")
    try:
        payload = jsonlite.loads(raw)
    except ValueError as exc:
        raise HookInputError(f"the hook input is not JSON ({exc.msg} at character {exc.pos})",
                             "Check the hook command in hooks.json or settings.json.") from None
    if not isinstance(payload, dict):
        raise HookInputError("the hook input is JSON but not an object",
                             "Check the hook command in hooks.json or settings.json.")
    return payload


def handle(event: str, payload: dict[str, Any], data_dir: PathLike, *, now: datetime | None = None) -> dict[str, Any]:
    """Ingest the transcript delta first, so every decision is made on fresh numbers; then evaluate and answer."""
    from .. import clock
    from ..config import load_cached, watched_files
    from ..ledger import Ledger
    from .transcript import await_tool_use_line, ingest_files

    stamps = [fastpath.stamp(p) for p in watched_files(jsonlite.text(payload.get("cwd")), data_dir)]  # before the load
    config = load_cached(data_dir, jsonlite.text(payload.get("cwd")))
    if _watchdog is not None:
        _watchdog.fails_closed = config.get("enforcement", "on_error") == "closed"
    files = transcript_files(payload)
    now = now or clock.now()
    # A tool call in a session whose record says how far every budget is from its next level: after the ingest,
    # `{}` without the decision if what this process recorded fits (_within_headroom); after a tool call, the record
    # carried past the PostToolUse's own bookkeeping (a remembered Read).
    record = fastpath.headroom(event, payload, os.fspath(data_dir), now.timestamp()) \
        if event in HEADROOM_EVENTS and HEADROOM else None
    ledger = Ledger.open(data_dir)
    with _LeftOpen(ledger, event) if _watchdog is not None and event in LEFT_OPEN_EVENTS else ledger:
        positions = None
        if event == "PreToolUse":  # its tool_use line can lag the hook by milliseconds: decide on it, not before
            positions = await_tool_use_line(files, payload.get("tool_use_id"), payload.get("agent_id"), ledger)
        if record is not None:  # each write transaction compares the ledger's version with the record's
            ledger.expected_version, ledger.recorded = record["ledger"][0], []
        result = ingest_files(ledger, files, source="hook", prices=config.prices, positions=positions)
        if result.errors:
            log(data_dir, event, "; ".join(result.errors))
        if record is not None and event == "PreToolUse" and _within_headroom(record, payload, files, ledger, result,
                                                                             data_dir, now):
            if config.get("team"):  # the sync starts when due, as on the full path
                _kick_team(data_dir, config, event)
            return {}
        from . import enforce
        if config.get("team"):  # team mode: the sync process talks to the server, never this hook
            stamps.append(fastpath.stamp(_kick_team(data_dir, config, event)))
        report_written = False
        try:  # yesterday's report, at the first hook of a day (one stat otherwise); it must never cost enforcement
            if daily_report_due(data_dir, config.timezone, now) is not None:
                from ..daily_report import write_daily_if_due

                written = write_daily_if_due(ledger, config, data_dir, now, jsonlite.text(payload.get("cwd")))
                report_written = written is not None
        except Exception as exc:
            log(data_dir, event, f"daily report not written: {type(exc).__name__}: {exc}")
        if event not in enforce.EVENT_KINDS:
            enforce.record_only(event, payload, ledger, now, config)
            if record is not None and not report_written:  # its writes change nothing a tool call's answer depends on
                post_writes = enforce.post_writes(jsonlite.text(payload.get("session_id")), config, ledger)
                _within_headroom(record, payload, files, ledger, result, data_dir, now, post_writes)
            if report_written:  # its deliveries (channels with `reports: true`) need a sender; never waits
                _kick(ledger, data_dir, event)
            return {}
        from ..controls import notice_config_changes, take_unshown
        from ..periods import iso

        stamp = iso(now)
        # Other connections' commits so far: one while the notices are taken (a change recorded just after they
        # were read) must not be covered by the record, so the next hook decides, and shows it.
        others = ledger.others_commits()
        notice_config_changes(ledger, config, jsonlite.text(payload.get("cwd")), stamp,
                              reload=lambda: load_cached(data_dir, jsonlite.text(payload.get("cwd"))))
        notices = take_unshown(ledger, stamp)
        if event == "UserPromptSubmit":
            from .commands import is_tokens_prompt

            if is_tokens_prompt(payload.get("prompt")):  # answered here: no request, the output on screen
                from .commands import respond

                return respond(payload["prompt"], str(data_dir), jsonlite.text(payload.get("cwd")), notices,
                               jsonlite.text(payload.get("session_id")))
        seen = _snapshot(data_dir, ledger)  # before reading anything the decision depends on
        step = enforce.prepare(event, payload, ledger, config, now)
        # Thresholds crossed and claimed by this process (once per scope, threshold, period, across processes):
        # the alert channels take this list; only this process shows the alert to the user.
        claimed_alerts = enforce.claim_alerts(ledger, step, jsonlite.text(payload.get("cwd")))
        # After that commit: enqueue the claims for Slack/email, start a sender if none runs; never waits.
        _kick(ledger, data_dir, event, config, jsonlite.text(payload.get("cwd")))
        response = _with_notices(enforce.respond(step, payload, ledger, claimed_alerts, notices), config, ledger,
                                 now)
        if config.get("team"):
            response = _with_team_notice(response, config, ledger, data_dir, now)
        if not response and seen[1] == others:
            try:
                _remember(data_dir, payload, files, ledger, step, stamps, seen, now)
            except Exception as exc:  # the record only saves time; never let it cost the answer
                log(data_dir, event, f"fast path state not written: {type(exc).__name__}: {exc}")
        return response


# The events Claude Code waits for: the blocking ones, and SessionEnd, which `claude -p` runs before it exits.
LEFT_OPEN_EVENTS = (*BLOCKING_EVENTS, "SessionStart", "SessionEnd")


class _LeftOpen:
    """The ledger of an event Claude Code waits for, in a hook process of its own (run_watched): left open when the
    hook ends. Closing the last connection makes SQLite checkpoint the WAL into the database and delete it, with
    four fsyncs in all (the WAL and its folder when the next hook creates it again, the WAL and the database at the
    checkpoint): milliseconds each on a busy disk, all of them waited for by the CLI. Left open, the process ends
    (posix._exit) as a killed one would after its commit, which WAL mode is made for (tests/test_crash.py): the next
    connection rebuilds the WAL index from the WAL, and the checkpoint falls to the next async event's close
    (PostToolUse, Stop, a SessionEnd that records something), or to the blocking hook that finds the WAL past half
    a megabyte (Ledger.leave_open: the next connection's rebuild reads the whole WAL, so it is kept short).
    SessionEnd (`claude -p` waits for it before it exits) closes the ledger only when this process wrote to it:
    most often the detached Stop has recorded the turn's last request already, and the commits in the WAL are not
    its own to sync. Durability is unchanged in kind: a commit reaches the disk at the next checkpoint (README,
    Performance)."""

    def __init__(self, ledger: Any, event: str) -> None:
        self.ledger, self.event = ledger, event

    def __enter__(self) -> Any:
        return self.ledger

    def __exit__(self, *exc: object) -> None:
        if self.event == "SessionEnd" and self.ledger.wrote():
            self.ledger.close()
        else:
            self.ledger.leave_open()


def _with_notices(response: dict[str, Any], config: Any, ledger: Any, now: datetime) -> dict[str, Any]:
    """Tell the user, once, what a repository's config file tried and what of it was ignored (see trust.py)."""
    notices = getattr(config, "notices", None)
    if not notices:
        return response
    fresh = [n for n in notices if not ledger.has_message(NOTICE_KIND, n)]
    if not fresh:
        return response
    from ..periods import iso

    with ledger.transaction():
        for notice in fresh:
            ledger.record_event(level="warn", kind=NOTICE_KIND, message=notice, created_at=iso(now))
    text = "\n".join(f"token-budget: {n}" for n in fresh)
    out = dict(response)
    out["systemMessage"] = f"{out['systemMessage']}\n\n{text}" if out.get("systemMessage") else text
    return out


def _kick_team(data_dir: PathLike, config: Any, event: str) -> str:
    """Start the team sync when due (team/sync.py); returns the team cache's path, which decisions depend on."""
    from ..team import cache_path, kick

    try:
        kick(data_dir, config)
    except Exception as exc:
        log(data_dir, event, f"team sync not started: {type(exc).__name__}: {exc}")
    return cache_path(data_dir)


def _with_team_notice(response: dict[str, Any], config: Any, ledger: Any, data_dir: PathLike,
                      now: datetime) -> dict[str, Any]:
    """Say once per outage that the team server is out of reach and what team.on_stale does meanwhile."""
    from ..team.states import stale_info

    info = stale_info(data_dir, config, now.timestamp())
    if info is None:
        return response
    logged = f"the team server is out of reach ({info['key']}); on_stale: {info['on_stale']}"  # one per outage
    if ledger.has_message("team_stale", logged):
        return response
    from ..periods import iso
    from .messages import team_stale

    text = team_stale(info)
    with ledger.transaction():
        ledger.record_event(level="warn", kind="team_stale", message=logged, created_at=iso(now), detail=text)
    out = dict(response)
    if out.get("decision") == "block":
        out["reason"] = f"{text}\n\n{out['reason']}"
    else:
        out["systemMessage"] = f"{out['systemMessage']}\n\n{text}" if out.get("systemMessage") else text
    return out


HEADROOM = True  # tests turn it off to compare every answer with the full decision's
HEADROOM_EVENTS = ("PreToolUse", "PostToolUse")


def _within_headroom(record: dict[str, Any], payload: dict[str, Any], files: list[str], ledger: Any, result: Any,
                     data_dir: PathLike, now: datetime, post_writes: list[str] | None = None) -> bool:
    """After a PreToolUse's ingest: may it answer `{}` from its record's headroom (fastpath.headroom)? Only when
    the ingest read every file cleanly and wrote request rows only (no reconciliation), no other writer came
    between the record and this ingest (the version token each transaction compared under the writer lock; with
    no write here, the token as it is now), no delivery waits for a sender, and what this process recorded fits
    inside every budget's headroom (levels.spend_headroom). Then the record is written again, with what is left of the
    headroom, this process's own token and the transcripts' new positions; its expiry is kept. A PostToolUse
    carries the record so past its ingest and its own bookkeeping (`post_writes`: the tools whose PostToolUse
    writes, after it)."""
    from ..ledger import MOVED

    token, rows = ledger.expected_version, ledger.recorded or []
    ledger.expected_version = ledger.recorded = None
    if result.errors or result.reconciled or token == MOVED:
        return False
    from ..levels import spend_headroom

    known = record["ledger"]
    if token == known[0] and fastpath.ledger_version(record["ledger_path"], record["version_path"]) != known:
        return False  # nothing written here, and another writer moved the ledger since the record
    if token == known[0] and post_writes is not None:
        return True  # a PostToolUse that wrote nothing: the record holds as it is
    left = spend_headroom(record["headroom"], rows)
    if left is None or any(ledger.outbox_backlog()):
        return False
    positions = _positions(ledger, files)
    if positions is None:
        return False
    fastpath.remember(os.fspath(data_dir), payload,
                      config_stamps=record["config"], ledger=[token, *known[1:]],
                      ledger_paths=(record["ledger_path"], record["version_path"]), files=positions,
                      valid_until=record["valid_until"],
                      post_writes=record["post_writes"] if post_writes is None else post_writes, now=now.timestamp(),
                      headroom=left)
    return True


def _positions(ledger: Any, files: list[str]) -> dict[str, Any] | None:
    """Each transcript's (device, inode, size, mtime_ns, offset) as last ingested, None for one not written yet;
    None in all when a file exists that was never read (an error): the full path must see it again."""
    from .transcript import _offsets

    offsets = _offsets(ledger, files)
    known: dict[str, Any] = {}
    for name in files:
        row = offsets.get(name)
        if row is None:
            if fastpath.file_stat(name) is not None:
                return None
            known[name] = None
        else:
            known[name] = list(row[:5])
    return known


def _snapshot(data_dir: PathLike, ledger: Any) -> tuple[Any, Any]:
    """The ledger's version token, then the store's count of others' commits: read before the decision's queries,
    compared after. Every writer renews the token before it commits, and the count moves with any other
    connection's commit, so a record can only be written for a decision that saw the ledger as of that token."""
    from ..ledger import version_path

    return fastpath.ledger_version(ledger.path, version_path(ledger.path)), ledger.others_commits()


def _remember(data_dir: PathLike, payload: dict[str, Any], files: list[str], ledger: Any, step: Any,
              stamps: list[list[Any]], seen: tuple[Any, Any], now: datetime) -> None:
    """After an answer of `{}` that wrote nothing: record what it depended on, for the fast path (fastpath.py)."""
    from ..budgets import headroom as room
    from ..periods import day_bounds, parse, today, zone
    from . import enforce

    facts = enforce.idle_facts(step, ledger)
    # (A delivery left pending waits for the next full path's kick: every new request takes one, but one answered
    # from the headroom, which finds the backlog and takes the full path.)
    if facts is None or daily_report_due(data_dir, step.config.timezone, now) is not None:
        return
    known = _positions(ledger, files)
    if known is None:
        return
    if _snapshot(data_dir, ledger) != seen:
        return  # the ledger moved while deciding (another hook, or this one's own writes)
    tz = zone(step.config.timezone)
    ends = [day_bounds(today(tz, now), tz)[1], *(s.resets_at for s in step.states if s.resets_at)]
    from ..ledger import version_path

    valid_until = min(parse(e).timestamp() for e in ends)
    classes = step.config.counted_classes
    if step.config.get("team"):  # the team cache's figures hold until a sync rewrites it (a config stamp)
        from ..team.states import stale_at

        classes, turns_stale = stale_at(data_dir, step.config, now.timestamp(), classes)
        valid_until = min(valid_until, turns_stale)
    # How far each budget is from its next level, for the next tool calls' ingests (_within_headroom).
    headroom = room(step.states, step.settings, step.model, classes)
    fastpath.remember(os.fspath(data_dir), payload, config_stamps=stamps, ledger=seen[0],
                      ledger_paths=(ledger.path, version_path(ledger.path)), files=known,
                      valid_until=valid_until, post_writes=facts["post_writes"],
                      now=now.timestamp(), headroom=headroom)


def _with_first_import_notice(response: dict[str, Any], data_dir: PathLike) -> dict[str, Any]:
    """Tell the user, once, what the plugin's first-run catch-up import recorded. One stat when there is none."""
    path = os.path.join(data_dir, FIRST_IMPORT)
    if not os.path.exists(path):
        return response
    taken = f"{path}.{os.getpid()}"
    try:
        os.rename(path, taken)  # parallel hooks: exactly one of them shows it
    except OSError:
        return response
    try:
        with open(taken, encoding="utf-8") as handle:
            summary = jsonlite.loads(handle.read())
        os.unlink(taken)
    except (OSError, ValueError):
        return response
    if not isinstance(summary, dict):
        return response
    added, files = summary.get("requests_added", 0), summary.get("files_read", 0)
    notice = (f"token-budget is ready: it recorded {_count(added, 'request')} from {_count(files, 'transcript')} "
              "written while it was setting up, so budgets count them too.")
    earlier = response.get("systemMessage")
    return {**response, "systemMessage": f"{earlier}\n{notice}" if earlier else notice}


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def _kick(ledger: Any, data_dir: PathLike, event: str, config: Any = None, project_dir: str | None = None) -> None:
    try:
        if not any(ledger.outbox_backlog()):
            return  # the common case: nothing to enqueue or send, so the delivery module is not even imported
        from ..delivery import kick
        from .commands import slash_prefix

        kick(ledger, data_dir, config, project_dir, hint_prefix=slash_prefix())
    except Exception as exc:
        log(data_dir, event, f"alert delivery not started: {type(exc).__name__}: {exc}")


MESSAGE_KEYS = ("systemMessage", "reason", "stopReason", "additionalContext", "permissionDecisionReason")


def _printable(response: dict[str, Any]) -> dict[str, Any]:
    """The answer with its messages free of control characters (they quote model, workflow and file names);
    updatedInput, the tool's own input, is left exactly as it is."""
    from ..safetext import printable

    out = {k: printable(v, lines=True) if k in MESSAGE_KEYS and isinstance(v, str) else v for k, v in response.items()}
    specific = out.get("hookSpecificOutput")
    if isinstance(specific, dict):
        out["hookSpecificOutput"] = _printable(specific)
    return out


def _emit(stdout: TextIO, response: dict[str, Any], code: int = 0) -> int:
    if _watchdog is not None:
        _watchdog.claim()
    response = _printable(response) if response else response
    try:
        stdout.write((jsonlite.dumps(response) if response else "{}") + "\n")
        stdout.flush()
    except BrokenPipeError:  # an async hook's reader may be gone (Claude Code ended): the work is done, say nothing
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), stdout.fileno())  # or the flush at exit fails again
        except (OSError, ValueError, AttributeError):
            pass
    return code


def _fail(event: str, exc: Exception, data_dir: PathLike | None, stdout: TextIO, stderr: TextIO) -> int:
    message = str(exc) if isinstance(exc, TokenBudgetError) else f"{type(exc).__name__}: {exc}"
    where = log(data_dir, event, message, exc)
    closed = _fails_closed(data_dir) and event in BLOCKING_EVENTS
    from ..safetext import printable

    summary = printable(message)
    if closed:
        if _watchdog is not None:
            _watchdog.claim()
        stderr.write(f"token-budget: blocked because the budget hook failed and on_error is 'closed': {summary}\n")
        return 2
    tail = f" Details: {where}." if where else ""
    return _emit(stdout, {"systemMessage": f"token-budget: {summary} (enforcement skipped for this event).{tail}"})


def _fails_closed(data_dir: PathLike | None) -> bool:
    try:
        from ..config import load_cached

        config = load_cached(data_dir or resolve_data_dir(host=plugin_data()), None)
        return config.get("enforcement", "on_error") == "closed"
    except Exception:
        return False


def run_watched(argv: list[str], stdin: TextIO | None = None, seconds: float | None = None, *,
                tried: bool = False, exits: bool = False) -> int:
    """run() in a hook process of its own, under the watchdog (`seconds`: what is left of the deadline). `exits`:
    the caller ends the process as soon as this returns (launch.main: fastpath.finish, posix._exit), and the
    watchdogs end with it: neither is stopped (cancelling faulthandler's timer joins its C thread, about 0.2 ms of
    every hook that takes the full path), and faulthandler's stays the backstop until the very end."""
    global _watchdog
    _watchdog = Watchdog(deadline() if seconds is None else seconds)
    code = run(argv, stdin, tried=tried)
    if not exits:
        _watchdog.stop()
    return code


def main() -> None:
    """Entry point of scripts/hook.py and `python -m token_budget.claude.hook EVENT`."""
    if sys.argv[1:2] and sys.argv[1] in ASYNC_EVENTS:
        # Claude Code signals an async hook still running when it ends (-p), then waits for it up to about 1.5 s:
        # finishing the few milliseconds of work left records the session's last requests instead of losing
        # them (_signal: the signal module would import enum).
        import _signal

        _signal.signal(_signal.SIGTERM, _signal.SIG_IGN)
    sys.exit(run_watched(sys.argv[1:]))


if __name__ == "__main__":
    main()
