"""The idle fast path: a hook with nothing new answers from the session's state file, without SQLite or the core,
and only while nothing its answer depends on has changed. One test per input that can change the answer: each
first proves the record is in use, then changes that one input and expects the full path's answer."""

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
from hook_processes import processes_with, stat_fields, wait_until_gone
from hypothesis import given, settings
from hypothesis import strategies as st

from token_budget.claude import fastpath, hook
from token_budget.cli import cli
from token_budget.ledger import Ledger

ROOT = Path(__file__).resolve().parent.parent
LAUNCHER = ROOT / "token_budget" / "claude" / "run_hook.py"
CONFIG = HALF_DAY_CONFIG
AGENT = {"description": "Check", "prompt": "Say hi.", "subagent_type": "general-purpose"}


@pytest.fixture
def full_paths(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The events that took the full path (hook.handle), in order; the others were answered by the record."""
    return events_through(monkeypatch, hook, "handle")


@pytest.fixture
def session(claude_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Session:
    return half_spent_session(claude_dir, tmp_path, monkeypatch)  # 50% of the daily budget: every answer is {}


def settle(session: Session, full_paths: list[str], event: str = "PreToolUse", **extra: object) -> None:
    """Run the event until the record answers it: the first call takes the full path, the second must not."""
    assert session.hook(event, **extra) == (0, {})
    taken = len(full_paths)
    assert session.hook(event, **extra) == (0, {})
    assert len(full_paths) == taken, "the second idle hook should have been answered from the record"


DENY = "deny"


def wait_for_deliveries(data_dir: Path) -> None:
    from token_budget.delivery import sender_running

    for _ in range(400):
        if not sender_running(data_dir):
            return
        time.sleep(0.05)
    raise AssertionError("the alert sender did not finish")


def decision(out: dict) -> str | None:
    return (out.get("hookSpecificOutput") or {}).get("permissionDecision")


# -- what it costs -----------------------------------------------------------------------------------------------


def imported(argv: list[str], stdin: str, env: dict[str, str]) -> tuple[str, set[str]]:
    proc = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], input=stdin, capture_output=True, text=True,
                          env=env, check=True)
    modules = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    return proc.stdout.strip(), modules


HEAVY = {"_sqlite3", "_datetime", "token_budget.ledger", "token_budget.config", "token_budget.budgets",
         "token_budget.policy", "token_budget.models", "token_budget.claude.enforce", "token_budget.claude.transcript"}


def test_an_idle_hook_imports_neither_sqlite_nor_the_core(data_dir: Path, claude_dir: Path,
                                                           subprocess_env: dict) -> None:
    path = write_lines(transcript_path(claude_dir), response())
    subprocess_env.pop("PYTHONPATH")
    argv = [sys.executable, "-S", str(LAUNCHER)]
    first, loaded = imported([*argv, "PreToolUse"], json.dumps(hook_payload("PreToolUse", path)), subprocess_env)
    assert first == "{}" and HEAVY <= loaded  # the full path: ingest and decide
    for event in ("PreToolUse", "PostToolUse", "Stop"):
        out, loaded = imported([*argv, event], json.dumps(hook_payload(event, path)), subprocess_env)
        assert out == "{}"
        assert not loaded & HEAVY, (event, sorted(loaded & HEAVY))
        assert not loaded & {"os", "stat", "posixpath", "token_budget.claude.hook", "token_budget.paths"}, event
        assert "token_budget.claude.fastpath" in loaded


def test_an_ingesting_hook_imports_only_what_it_uses(data_dir: Path, claude_dir: Path, subprocess_env: dict) -> None:
    """One new request: ingest, price, decide. Alert delivery, the outbox, reports, copy (for price overrides),
    the sqlite3 package around its extension and the json, re, typing and functools machinery stay unloaded."""
    path = write_lines(transcript_path(claude_dir), response())
    subprocess_env.pop("PYTHONPATH")
    argv = [sys.executable, "-S", str(LAUNCHER), "PreToolUse"]
    imported(argv, json.dumps(hook_payload("PreToolUse", path)), subprocess_env)  # compiles the config cache
    other = write_lines(transcript_path(claude_dir, "sess-2"), response(session_id="sess-2"))
    # Another session's first hook: no record of its own, so it ingests and decides (the full path).
    out, loaded = imported(argv, json.dumps(hook_payload("PreToolUse", other, session_id="sess-2")), subprocess_env)
    assert out == "{}" and {"_sqlite3", "token_budget.pricing", "token_budget.claude.enforce"} <= loaded
    unused = {"sqlite3", "functools", "collections", "datetime",  # the extensions without their Python modules
              "token_budget.safetext", "token_budget.workflows",  # an answer of {}, no workflow started
              "token_budget.claude.economy",  # neither economy mode nor a subagent
              "token_budget.claude.guard",  # `echo hi`: nothing the guard could find (enforce._plain_command)
              "token_budget.delivery", "token_budget.outbox", "token_budget.reports", "copy", "json", "re", "typing",
              "dataclasses", "pathlib", "contextlib", "yaml", "jsonschema", "click", "fnmatch", "zoneinfo",
              "decimal",  # prices come compiled from the config cache
              "token_budget.team", "token_budget.detached", "psycopg",  # no team: block, no team code
              "token_budget.reconcile",  # no client figures that count a new row: nothing to reconcile
              # the SQLite backend's queries that no hook decision runs (ledger._DefinedIn)
              "token_budget.ledger_reports", "token_budget.ledger_outbox", "token_budget.ledger_reconcile",
              "token_budget.ledger_team", "token_budget.ledger_diagnostics",
              "token_budget.config_files", "token_budget.price_parse"}  # the files and prices come compiled
    assert not loaded & unused, sorted(loaded & unused)
    with Ledger.open(data_dir) as ledger:
        assert ledger.count() == 2
    # Its next request, far below every level: ingested, and answered from the record's headroom, without
    # loading (or querying) anything of the decision.
    write_lines(other, response(session_id="sess-2"))
    out, loaded = imported(argv, json.dumps(hook_payload("PreToolUse", other, session_id="sess-2")), subprocess_env)
    assert out == "{}" and {"_sqlite3", "token_budget.pricing"} <= loaded
    assert not loaded & (unused | DECISION), sorted(loaded & (unused | DECISION))
    with Ledger.open(data_dir) as ledger:
        assert ledger.count() == 3



def test_an_ingesting_hook_does_not_look_for_orjson(data_dir: Path, claude_dir: Path, subprocess_env: dict,
                                                     tmp_path: Path) -> None:
    """A hook runs with -S, where orjson is not installed: it parses with jsonlite at once (a failed import would
    search every folder of sys.path twice), even when an orjson is within reach."""
    reach = tmp_path / "reach"
    reach.mkdir()
    marker = tmp_path / "orjson-imported"
    (reach / "orjson.py").write_text(f"open({str(marker)!r}, 'w').close()\nfrom json import loads\n")
    subprocess_env["PYTHONPATH"] = str(reach)
    path = write_lines(transcript_path(claude_dir), response())
    argv = [sys.executable, "-S", str(LAUNCHER), "PreToolUse"]
    imported(argv, json.dumps(hook_payload("PreToolUse", path)), subprocess_env)  # compiles the config cache: site
    marker.unlink(missing_ok=True)
    write_lines(path, response())
    out, _ = imported(argv, json.dumps(hook_payload("PreToolUse", path)), subprocess_env)
    assert out == "{}" and not marker.exists()
    with Ledger.open(data_dir) as ledger:
        assert ledger.count() == 2
    subprocess.run([sys.executable, "-c", "import orjson"], env=subprocess_env, check=True)  # it was within reach
    assert marker.exists()

# What only the decision loads (the ingest itself needs periods, families and levels: timestamps, prices, models).
DECISION = {"token_budget.claude.enforce", "token_budget.claude.economy", "token_budget.budgets", "token_budget.policy",
            "token_budget.windows", "token_budget.claude.commands", "token_budget.controls",
            "token_budget.claude.messages", "token_budget.workflows"}


# -- each input that can change the answer -----------------------------------------------------------------------


def test_another_sessions_usage(session: Session, full_paths: list[str], claude_dir: Path) -> None:
    settle(session, full_paths)
    other = Session(claude_dir, "sess-2")
    other.spend(6000)
    assert other.hook("Stop") == (0, {})  # its hook records it: 110% of the day's budget, across sessions
    code, out = session.hook("PreToolUse")
    assert out.get("continue") is False and "emergency stop" in out["stopReason"]


def test_a_new_day(session: Session, full_paths: list[str], claude_dir: Path) -> None:
    tomorrow = NOW + timedelta(days=1)
    early = Session(claude_dir, "sess-2")  # a request already stamped tomorrow (another machine's clock)
    early.spend(10_000, timestamp="2026-11-29T00:30:00.000Z")
    early.hook("Stop")
    settle(session, full_paths)  # today: 50%, allowed
    session.now = tomorrow
    code, out = session.hook("PreToolUse")
    assert decision(out) == DENY and "daily budget" in out["hookSpecificOutput"]["permissionDecisionReason"]


def test_a_config_edit(session: Session, full_paths: list[str], tmp_path: Path, monkeypatch) -> None:
    settle(session, full_paths)
    write_config(tmp_path, monkeypatch, CONFIG.replace("10000", "4800"))
    assert decision(session.hook("PreToolUse")[1]) == DENY


def test_a_mode_change(session: Session, full_paths: list[str]) -> None:
    settle(session, full_paths, tool_name="Agent", tool_input=AGENT)
    assert CliRunner().invoke(cli, ["mode", "economy"]).exit_code == 0
    code, out = session.hook("PreToolUse", tool_name="Agent", tool_input=AGENT)
    assert out["hookSpecificOutput"]["updatedInput"]["model"] == "haiku"  # economy sends subagents to Haiku


def test_an_ack(session: Session, full_paths: list[str], data_dir: Path) -> None:
    session.spend(6000)  # 110%... of a budget raised below: 11,000 / 10,500 is a 100% block
    runner = CliRunner()
    assert runner.invoke(cli, ["budget", "daily", "10500"]).exit_code == 0
    assert decision(session.hook("PreToolUse")[1]) == DENY
    assert decision(session.hook("PreToolUse")[1]) == DENY  # no record while blocked: the full path again
    assert full_paths.count("PreToolUse") == 2
    wait_for_deliveries(data_dir)  # the alerts' sender writes the ledger (renewing its version) while it runs
    result = runner.invoke(cli, ["ack", "daily/100/2026-11-28"])
    assert result.exit_code == 0, result.output
    told = session.hook("PreToolUse")[1]  # the ack is shown once (a change of what is enforced), and allowed
    assert "acknowledged" in told["systemMessage"] and decision(told) != DENY, told
    settle(session, full_paths)  # acknowledged: allowed up to the 110% stop, and idle again
    # An ack renews the ledger's version, so no record written before it answers after it.
    with Ledger.open(data_dir) as ledger, ledger.transaction() as db:
        db.execute("UPDATE alerts SET acked_at = NULL")  # what another `tokens` process could do
    assert decision(session.hook("PreToolUse")[1]) == DENY


def test_new_usage_in_this_session(session: Session, full_paths: list[str]) -> None:
    settle(session, full_paths)
    session.spend(5000)
    assert decision(session.hook("PreToolUse")[1]) == DENY


def test_a_subagent_transcript_appearing(session: Session, full_paths: list[str]) -> None:
    settle(session, full_paths)
    sub = session.path.with_suffix("") / "subagents" / "agent-a1.jsonl"
    write_lines(sub, response(session_id=session.session_id, input_tokens=6000, output_tokens=0,
                              timestamp="2026-11-28T14:59:00.000Z"))
    code, out = session.hook("PreToolUse")
    assert out.get("continue") is False


# -- what the event itself would decide or write -------------------------------------------------------------


def test_a_tool_call_whose_line_is_not_written_yet_waits_on_the_full_path(session: Session,
                                                                          full_paths: list[str]) -> None:
    line = response(session_id=session.session_id, timestamp="2026-11-28T14:59:00.000Z")[0]
    line["message"]["content"] = [{"type": "tool_use", "id": "toolu_01", "name": "Bash", "input": {}}]
    write_lines(session.path, [line, {"type": "user", "message": {"role": "user", "content": "tool result"}}])
    settle(session, full_paths, tool_use_id="toolu_01")  # its line is in: decided on it, and idle
    payload = hook_payload("PreToolUse", session.path, tool_use_id="toolu_not_yet_written")
    assert fastpath.answer("PreToolUse", payload, os.environ["TOKEN_BUDGET_HOME"], NOW.timestamp()) is None


def test_a_tool_call_about_the_budget_itself_takes_the_full_path(session: Session, full_paths: list[str]) -> None:
    settle(session, full_paths)
    for tool_input in ({"command": "tokens budget daily 999999"},
                       {"command": "sed -i s/10000/99999/ ~/.config/token-budget/token_budgets.yaml"}):
        session.hook("PreToolUse", tool_input=tool_input)
    assert full_paths.count("PreToolUse") == 3


def test_a_post_tool_use_that_records_a_read_takes_the_full_path(session: Session, full_paths: list[str],
                                                                 data_dir: Path, tmp_path: Path) -> None:
    settle(session, full_paths)
    assert session.hook("PostToolUse") == (0, {})  # Bash, with no searches to forget: nothing to write
    assert full_paths == ["PreToolUse"]
    target = tmp_path / "notes.txt"
    target.write_text("x")
    session.hook("PostToolUse", tool_name="Read", tool_input={"file_path": str(target)})
    with Ledger.open(data_dir) as ledger:
        assert ledger.db.execute("SELECT tool FROM tool_calls").fetchall() == [("Read",)]
    assert full_paths == ["PreToolUse", "PostToolUse"]


def test_no_record_when_the_ledger_moves_while_deciding(session: Session, data_dir: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process commits between the decision's reads (even one that bypasses the version token): the
    answer may be stale, so it is not recorded."""
    from token_budget.claude import enforce

    real = enforce.prepare

    def prepare_while_another_commits(*args, **kwargs):  # type: ignore[no-untyped-def]
        step = real(*args, **kwargs)
        other = sqlite3.connect(data_dir / "ledger.db", isolation_level=None)
        other.execute("UPDATE requests SET input_tokens = input_tokens + 6000")
        other.close()
        return step

    monkeypatch.setattr(enforce, "prepare", prepare_while_another_commits)
    assert session.hook("PreToolUse") == (0, {})
    assert not (data_dir / "cache" / fastpath.STATE_DIR / "sess-1.json").exists()


@pytest.mark.parametrize("content", [b"", b"{not json", b'{"format": 1}', b"[]"])
def test_a_damaged_record_means_the_full_path(session: Session, full_paths: list[str], data_dir: Path,
                                              content: bytes) -> None:
    settle(session, full_paths)
    (data_dir / "cache" / fastpath.STATE_DIR / "sess-1.json").write_bytes(content)
    before = len(full_paths)
    assert session.hook("PreToolUse") == (0, {})
    assert len(full_paths) == before + 1


def test_a_record_written_over_a_longer_one_is_cut_to_its_length(session: Session, full_paths: list[str],
                                                                 data_dir: Path, monkeypatch) -> None:
    """remember() writes over the last record and then cuts the file (no truncation first): a shorter record keeps
    none of the longer one's tail, and a reader that came between the write and the cut sees a file that does not
    parse, which means the full path."""
    settle(session, full_paths)
    path = data_dir / "cache" / fastpath.STATE_DIR / "sess-1.json"
    record = path.read_bytes()
    longer = json.loads(record)
    longer["post_writes"] = [f"Tool{n}" for n in range(200)]  # tools no PostToolUse records: still {} for Bash
    path.write_bytes(json.dumps(longer).encode())
    assert session.hook("PreToolUse") == (0, {})
    assert len(full_paths) == 1  # the longer record answered
    monkeypatch.setattr(hook, "HEADROOM", False)  # (the headroom would answer it, keeping the longer record's tools)
    session.spend(10)  # new usage: the full path, which writes the (shorter) record over the longer one
    assert session.hook("PreToolUse") == (0, {})
    written = path.read_bytes()
    assert len(written) < len(json.dumps(longer))
    assert json.loads(written)["post_writes"] == json.loads(record)["post_writes"]
    before = len(full_paths)
    assert session.hook("PreToolUse") == (0, {})
    assert len(full_paths) == before  # the cut record answers
    path.write_bytes(written + json.dumps(longer).encode()[len(written):])  # between the write and the cut
    assert session.hook("PreToolUse") == (0, {})
    assert len(full_paths) == before + 1


def test_a_session_id_is_never_a_path() -> None:
    for bad in ("../x", "a/b", "", "x" * 200, None, 5, "sess\x00"):
        assert fastpath.state_path("/data", bad) is None
    assert fastpath.state_path("/data", "0f1e-2d3c_4b") == "/data/cache/hot/0f1e-2d3c_4b.json"


def test_records_expire_at_the_day_boundary_and_after_max_age(session: Session, full_paths: list[str],
                                                              data_dir: Path) -> None:
    settle(session, full_paths)
    state = json.loads((data_dir / "cache" / fastpath.STATE_DIR / "sess-1.json").read_text())
    midnight = datetime(2026, 11, 29, tzinfo=timezone.utc).timestamp()
    assert state["valid_until"] == min(midnight, NOW.timestamp() + fastpath.MAX_AGE)


def test_the_recording_events_pass_over_new_lines_that_carry_no_usage(session: Session, full_paths: list[str],
                                                                       data_dir: Path) -> None:
    """A tool's result lands in the transcript between its PreToolUse and its PostToolUse: nothing to record, so
    the async events answer from the record; new usage, or any new byte before a PreToolUse, means the full path
    (PostToolUse leaves new usage to the next hook, which Claude Code always runs)."""
    settle(session, full_paths)
    write_lines(session.path, {"type": "user", "message": {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_01", "content": "hi"}]}})
    for event in ("PostToolUse", "Stop"):
        assert session.hook(event) == (0, {})
    assert full_paths == ["PreToolUse"]
    assert session.hook("PreToolUse") == (0, {})
    assert full_paths == ["PreToolUse", "PreToolUse"]
    session.spend(100)
    assert session.hook("PostToolUse") == (0, {})
    assert full_paths == ["PreToolUse", "PreToolUse"]
    assert session.hook("Stop") == (0, {})
    assert full_paths[-1] == "Stop"
    with Ledger.open(data_dir) as ledger:
        assert ledger.count() == 2


def test_stop_waits_for_the_answer_that_ended_the_turn(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stop can start before Claude Code has written the turn's last answer (its last line is still the tool
    result): it waits for it, briefly and in the background, rather than find nothing new."""
    write_lines(session.path, {"type": "user", "message": {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_01", "content": "hi"}]}})
    assert not fastpath.turn_written(str(session.path))
    polls: list[bool] = []
    real = fastpath.turn_written

    def answer_arrives_on_the_third_look(path: str) -> bool:
        polls.append(real(path))
        if len(polls) == 3:
            session.spend(100)
        return real(path)

    monkeypatch.setattr(fastpath, "turn_written", answer_arrives_on_the_third_look)
    assert session.hook("Stop") == (0, {})
    assert polls[:3] == [False, False, False] and fastpath.turn_written(str(session.path))
    with Ledger.open(os.environ["TOKEN_BUDGET_HOME"]) as ledger:
        assert ledger.count() == 2  # the answer written while Stop waited is recorded


def test_a_new_sessions_first_record_drops_records_idle_for_a_week(session: Session, full_paths: list[str],
                                                                     data_dir: Path, claude_dir: Path) -> None:
    settle(session, full_paths)
    folder = data_dir / "cache" / fastpath.STATE_DIR
    old, kept = folder / "gone.json", folder / "recent.json"
    for path, days in ((old, 8), (kept, 6)):
        path.write_text("{}")
        stamp = NOW.timestamp() - days * 86400
        os.utime(path, (stamp, stamp))
    other = Session(claude_dir, "sess-2")
    other.spend(10)
    assert other.hook("PreToolUse") == (0, {})
    assert sorted(p.name for p in folder.iterdir()) == ["recent.json", "sess-1.json", "sess-2.json"]


# -- the process entry (fastpath.start): what it spells without os must be what os would say ---------------------


def test_the_data_dir_is_named_as_the_full_path_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from token_budget.claude import plugin_data
    from token_budget.paths import data_dir

    home = tmp_path / "home"
    plain = [
        {"TOKEN_BUDGET_HOME": str(tmp_path / "tb")},
        {"TOKEN_BUDGET_HOME": str(tmp_path) + "//tb2/./x/"},
        {"TOKEN_BUDGET_HOME": "", "CLAUDE_PLUGIN_DATA": str(tmp_path / "plugin")},
        {"TOKEN_BUDGET_HOME": None, "XDG_DATA_HOME": str(tmp_path / "xdg") + "/"},
        {"TOKEN_BUDGET_HOME": None, "XDG_DATA_HOME": None, "HOME": str(home) + "/"},
    ]
    for env in plain:
        for name, value in env.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        expected = data_dir(host=plugin_data())  # creates it, 0700
        assert fastpath.idle_data_dir() == expected, env
    # Spellings it leaves to the full path, and folders the full path would refuse: None, never another folder.
    monkeypatch.setenv("TOKEN_BUDGET_HOME", "~/tb")
    assert fastpath.idle_data_dir() is None
    monkeypatch.setenv("TOKEN_BUDGET_HOME", "relative/tb")
    assert fastpath.idle_data_dir() is None
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    monkeypatch.setenv("TOKEN_BUDGET_HOME", str(tmp_path / "link"))
    assert fastpath.idle_data_dir() is None
    real.chmod(0o770)
    monkeypatch.setenv("TOKEN_BUDGET_HOME", str(real))
    assert fastpath.idle_data_dir() is None
    monkeypatch.setenv("TOKEN_BUDGET_HOME", str(tmp_path / "missing"))
    assert fastpath.idle_data_dir() is None


def test_environment_values_are_read_as_os_environ_reads_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TB_TEST_TEXT", "é and ü")
    monkeypatch.setitem(os.environb, b"TB_TEST_RAW", b"caf\xe9")  # not UTF-8: os.environ gives a surrogate
    monkeypatch.delenv("TB_TEST_NONE", raising=False)
    for name in ("TB_TEST_TEXT", "TB_TEST_RAW", "TB_TEST_NONE", "HOME"):
        assert fastpath.getenv(name) == os.environ.get(name), name


@given(st.text(alphabet="/a.b_", max_size=24))
@settings(max_examples=400, deadline=None)
def test_path_spellings_match_posixpath(tail: str) -> None:
    import posixpath

    path = "/" + tail
    assert fastpath.normpath(path) == posixpath.normpath(path)
    assert fastpath._stem(path) == os.path.splitext(path)[0]
    assert fastpath._stem(tail) == os.path.splitext(tail)[0]


def test_subagent_transcripts_are_found_as_os_walk_finds_them(tmp_path: Path) -> None:
    folder = tmp_path / "projects" / "p" / "sess" / "subagents"
    (folder / "deep" / "deeper").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "agent-x.jsonl").write_text("{}\n")
    for name in ("agent-b.jsonl", "agent-a.jsonl", "journal.jsonl", "notes.txt", "deep/agent-c.jsonl",
                 "deep/deeper/agent-d.jsonl", "deep/journal.jsonl"):
        (folder / name).write_text("{}\n")
    (folder / "linked").symlink_to(outside)  # a link to a folder: listed by neither, walked by neither
    (folder / "agent-l.jsonl").symlink_to(outside / "agent-x.jsonl")  # a link to a file: a name, as os.walk says
    (folder / "dir.jsonl").mkdir()  # a folder named like a transcript is no transcript
    expected: list[str] = []
    for root, _dirs, names in os.walk(folder):
        expected.extend(os.path.join(root, n) for n in sorted(names) if n.endswith(".jsonl") and n != "journal.jsonl")
    found: list[str] = []
    fastpath._walk_transcripts(str(folder), found)
    assert sorted(found) == sorted(expected) and len(found) == 5


BASH_WORDS = ["echo", "ls", "-la", "cat", "rm", "-rf", "python", "-m", "git", "status", "cp", "mv", "tee", "~", "$HOME",
              "${HOME}", "..", ".", "data", "config", "yaml", "json", "db", "hook", "sh", "scripts", "share", "local",
              "xdg", "claude", "plugin", "run", "hook.py", "budgets.yml", "overrides", "token", "tokens", "ledger"]


@given(st.lists(st.sampled_from(BASH_WORDS + [";", "&&", "|", "$(", ")", "`", "'", '"', "\\\n"]), max_size=12))
@settings(max_examples=400, deadline=None)
def test_the_guard_finds_nothing_in_a_bash_command_without_a_slash_or_a_marker(words: list[str]) -> None:
    """fastpath.guarded skips the guard (and its os import) for such a command: the guard must agree."""
    from token_budget.claude.guard import bash_problem, protected_paths

    command = " ".join(words)
    payload = {"tool_name": "Bash", "tool_input": {"command": command}}
    if "/" in command or fastpath.may_touch_budget(payload):
        return
    assert bash_problem(command, protected_paths(os.environ["TOKEN_BUDGET_HOME"], "/tmp/proj", [])) is None
    assert fastpath.guarded(payload, os.environ["TOKEN_BUDGET_HOME"], []) is False


@given(st.lists(st.sampled_from(BASH_WORDS + [";", "&&", "|", "$(", ")", "`", "'", '"', "\\\n", "token_budgets.yaml",
                                "ledger.db", "tokens budget daily 5", "tokens ack", "bash -c", "src/", "/tmp",
                                "/tmp/proj/.claude/token_budgets.yaml", "/tmp/proj/.claude/x"]), max_size=12))
@settings(max_examples=400, deadline=None)
def test_a_bash_command_without_a_slash_is_judged_without_the_protected_paths(words: list[str]) -> None:
    """guard.blocked_call resolves the protected paths (realpath, for each) only for a command holding a "/": every
    spelling of one holds one, so without it the answer is the same as with them."""
    from token_budget.claude.guard import bash_problem, blocked_call, protected_paths

    command = " ".join(words)
    home = os.path.expanduser("~")
    protected = [*protected_paths(os.environ["TOKEN_BUDGET_HOME"], "/tmp/proj", []), home + "/.config/token-budget"]
    if "/" not in command:
        assert bash_problem(command, protected) == bash_problem(command, [])
    why = bash_problem(command, protected_paths(os.environ["TOKEN_BUDGET_HOME"], "/tmp/proj", []))
    got = blocked_call("Bash", {"command": command}, os.environ["TOKEN_BUDGET_HOME"], "/tmp/proj", "/tokens", [])
    assert (got is None) == (why is None) and (why is None or why in got)


def test_a_command_naming_the_launcher_takes_the_full_path() -> None:
    payload = {"tool_name": "Bash", "tool_input": {"command": "python3 run_hook.py Stop < forged.json"}}
    assert fastpath.may_touch_budget(payload)


def test_a_hook_stuck_reading_its_input_answers_by_its_deadline(subprocess_env: dict) -> None:
    """Until the full path's watchdog thread runs, SIGALRM answers for the process entry (fail open)."""
    subprocess_env.pop("PYTHONPATH")
    subprocess_env["TOKEN_BUDGET_HOOK_DEADLINE"] = "0.5"
    with subprocess.Popen([sys.executable, "-S", str(LAUNCHER), "PreToolUse"], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=subprocess_env) as proc:
        try:
            code = proc.wait(timeout=30)  # stdin stays open: without the alarm this never returns
            out = json.loads(proc.stdout.read())  # type: ignore[union-attr]
        finally:
            proc.kill()
    assert code == 0 and "ran out of time (0.5 s)" in out["systemMessage"]


def test_a_session_end_with_nothing_to_end_keeps_every_record(session: Session, full_paths: list[str],
                                                               data_dir: Path, claude_dir: Path) -> None:
    """SessionEnd writes (and so renews the ledger's version, sending every session's next hook down the full path)
    only when the session has a workflow run to end; PreCompact only when it has tool calls to forget."""
    settle(session, full_paths)
    other = Session(claude_dir, "sess-2")
    other.spend(100)
    other.hook("Stop")
    settle(session, full_paths)
    version = (data_dir / "ledger.db.version").read_bytes()
    assert other.hook("SessionEnd", reason="exit") == (0, {})
    assert other.hook("PreCompact", trigger="manual") == (0, {})
    assert (data_dir / "ledger.db.version").read_bytes() == version
    taken = len(full_paths)
    assert session.hook("PreToolUse") == (0, {}) and len(full_paths) == taken  # still answered by the record
    with Ledger.open(data_dir) as ledger:  # a run to end: SessionEnd writes
        ledger.db.execute("INSERT INTO workflow_runs (session_id, name, started_at, source) "
                          "VALUES ('sess-2', 'sprint', '2026-11-28T09:00:00.000Z', 'env')")
    assert other.hook("SessionEnd", reason="exit") == (0, {})
    assert (data_dir / "ledger.db.version").read_bytes() != version
    with Ledger.open(data_dir) as ledger:
        assert ledger.db.execute("SELECT ended_at FROM workflow_runs").fetchone()[0] is not None


# -- what the events that decide nothing do with new bytes ----------------------------------------------------


def tool_result_line(tool_use_result: object = None) -> dict:
    line: dict = {"type": "user", "message": {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_01", "content": "done"}]}}
    if tool_use_result is not None:
        line["toolUseResult"] = tool_use_result
    return line


def append_bytes(path: Path, data: bytes) -> None:
    with open(path, "ab") as handle:
        handle.write(data)


def requests_in(data_dir: Path) -> int:
    with Ledger.open(data_dir) as ledger:
        return ledger.count()


def test_a_task_result_that_holds_a_usage_key_takes_the_full_path_and_counts_nothing(
        session: Session, full_paths: list[str], data_dir: Path) -> None:
    """The Task tool's result (toolUseResult) carries the subagent's own `usage`: a real key, not an escaped string,
    so the cheap scan cannot tell it from a request. It goes to the full path, which records no request for it."""
    settle(session, full_paths)
    write_lines(session.path, tool_result_line({"status": "completed", "totalTokens": 900,
                                                "usage": {"input_tokens": 800, "output_tokens": 100}}))
    assert session.hook("Stop") == (0, {})
    assert full_paths[-1] == "Stop"
    assert requests_in(data_dir) == 1


def test_usage_quoted_inside_a_string_is_passed_over(session: Session, full_paths: list[str],
                                                      data_dir: Path) -> None:
    """A tool's output that prints `"usage": {...}` is a JSON string in the transcript: its quotes are escaped,
    so the bytes hold no `"usage"` and the record still answers."""
    settle(session, full_paths)
    line = tool_result_line()
    line["message"]["content"][0]["content"] = '{"usage": {"input_tokens": 5}}'
    write_lines(session.path, line)
    taken = len(full_paths)
    assert session.hook("Stop") == (0, {})
    assert len(full_paths) == taken
    assert requests_in(data_dir) == 1


def test_a_line_still_being_written_is_read_whole_by_a_later_hook(session: Session, full_paths: list[str],
                                                                    data_dir: Path) -> None:
    """Claude Code appends a line in more than one write. Its first part, before the usage key, holds no usage:
    the record answers, and the read offsets stay where they were. Once the part with `"usage"` is there, the
    full path waits for the whole line; once it is whole, the request is counted, exactly once."""
    settle(session, full_paths)
    text = json.dumps(response(session_id=session.session_id, input_tokens=300, output_tokens=0)[0],
                      separators=(",", ":")).encode()
    cut = text.index(b'"usage"')
    append_bytes(session.path, text[:cut])
    taken = len(full_paths)
    assert session.hook("Stop") == (0, {})
    assert len(full_paths) == taken  # nothing to record yet: answered by the record
    append_bytes(session.path, text[cut:cut + 20])
    assert session.hook("Stop") == (0, {})
    assert full_paths[-1] == "Stop" and requests_in(data_dir) == 1  # usage begun, line not whole: not counted
    append_bytes(session.path, text[cut + 20:] + b"\n")
    assert session.hook("Stop") == (0, {})
    assert requests_in(data_dir) == 2
    assert session.hook("Stop") == (0, {})
    assert requests_in(data_dir) == 2


def test_garbage_bytes_never_cost_a_request(session: Session, full_paths: list[str], data_dir: Path) -> None:
    """Bytes that are not JSON: without a usage key the record answers; with one, the full path reads them (and
    counts nothing); the request written after them is counted either way."""
    settle(session, full_paths)
    append_bytes(session.path, b"\x00\xff not json {{{\n")
    taken = len(full_paths)
    assert session.hook("Stop") == (0, {})
    assert len(full_paths) == taken
    append_bytes(session.path, b'garbage "usage": 12 ]]\n')
    assert session.hook("Stop") == (0, {})
    assert full_paths[-1] == "Stop" and requests_in(data_dir) == 1
    session.spend(200)
    assert session.hook("Stop") == (0, {})
    assert requests_in(data_dir) == 2


# -- Stop under `claude -p`: answered at once, recorded by a worker nothing waits for ------------------------------


@pytest.mark.parametrize(("entrypoint", "event", "detached"), [
    ("sdk-cli", "Stop", True), ("sdk-ts", "Stop", True), ("sdk-py", "Stop", True),
    ("cli", "Stop", False), (None, "Stop", False),
    ("sdk-cli", "PostToolUse", False), ("sdk-cli", "SessionEnd", False), ("sdk-cli", "SubagentStop", False),
    ("sdk-cli", "PreToolUse", False),
])
def test_only_stop_detaches_and_only_where_the_process_ends_with_the_turn(
        entrypoint: str | None, event: str, detached: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """SessionEnd is the last ingest Claude Code waits for before it exits: it never detaches. In the TUI an
    async Stop costs no one any waiting, and keeps its output."""
    if entrypoint is None:
        monkeypatch.delenv("CLAUDE_CODE_ENTRYPOINT", raising=False)
    else:
        monkeypatch.setenv("CLAUDE_CODE_ENTRYPOINT", entrypoint)
    assert fastpath.detaches(event) is detached


def test_a_stop_under_claude_p_answers_before_its_work_which_a_worker_of_its_own_records(
        session: Session, data_dir: Path, subprocess_env: dict) -> None:
    """`claude -p` signals the async hooks still running when it ends and polls each until its process group is
    gone: Stop answers `{}` at once and leaves the work to a worker outside that group, holding none of the
    hook's pipes. Shown with the ledger's writer lock held, so the work cannot have been done when the hook's
    process ends; once the lock is free, the worker records the request, exactly once."""
    assert session.hook("PreToolUse") == (0, {})  # the ledger exists and holds the first request
    session.spend(100)
    subprocess_env["CLAUDE_CODE_ENTRYPOINT"] = "sdk-cli"
    marker = f"TOKEN_BUDGET_HOME={subprocess_env['TOKEN_BUDGET_HOME']}"
    holder = sqlite3.connect(data_dir / "ledger.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        hook_process = subprocess.Popen([sys.executable, "-S", str(LAUNCHER), "Stop"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=subprocess_env,
                                        start_new_session=True)  # as Claude Code starts a hook: its own group
        out, err = hook_process.communicate(json.dumps(hook_payload("Stop", session.path)).encode(), timeout=60)
        assert (hook_process.returncode, out, err) == (0, b"{}\n", b"")
        assert holder.execute("SELECT count(*) FROM requests").fetchone()[0] == 1  # not recorded yet
        [worker] = processes_with(marker)
        parent, group, _ = stat_fields(worker)
        assert hook_process.pid not in (parent, group)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    wait_until_gone(marker)
    assert requests_in(data_dir) == 2


def test_a_stop_in_the_tui_does_its_work_in_its_own_process(session: Session, data_dir: Path,
                                                            subprocess_env: dict) -> None:
    assert session.hook("PreToolUse") == (0, {})
    session.spend(100)
    subprocess_env["CLAUDE_CODE_ENTRYPOINT"] = "cli"
    done = subprocess.run([sys.executable, "-S", str(LAUNCHER), "Stop"], input=json.dumps(
        hook_payload("Stop", session.path)), capture_output=True, text=True, env=subprocess_env, timeout=60)
    assert (done.returncode, done.stdout) == (0, "{}\n")
    assert requests_in(data_dir) == 2  # recorded before the process ended
