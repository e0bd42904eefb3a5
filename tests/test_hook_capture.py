"""The hook as Claude Code runs it: JSON in, JSON out, exit 0 (or 2 to block), never 1, whatever it is fed."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from builders import hook_payload, response, subagent_path, transcript_path, write_lines

from token_budget.claude.hook import run
from token_budget.ledger import Ledger

ROOT = Path(__file__).resolve().parent.parent
LAUNCHER = ROOT / "token_budget" / "claude" / "run_hook.py"


def call(event: str, stdin: str) -> tuple[int, dict, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run([event], io.StringIO(stdin), out, err)
    return code, json.loads(out.getvalue() or "{}"), err.getvalue()


def test_stop_records_the_new_requests_and_answers_empty_json(data_dir: Path, claude_dir: Path) -> None:
    path = write_lines(transcript_path(claude_dir), [*response(blocks=2), *response()])
    code, output, _ = call("Stop", json.dumps(hook_payload("Stop", path)))
    assert (code, output) == (0, {})
    with Ledger.open(data_dir) as ledger:
        assert ledger.count() == 2
        assert {r["source"] for r in ledger.rows()} == {"hook"}


def test_a_hook_inside_a_subagent_reads_the_subagent_transcript(data_dir: Path, claude_dir: Path) -> None:
    main = write_lines(transcript_path(claude_dir), response())
    write_lines(subagent_path(main, "a7"), response(is_sidechain=True, agent_id="a7"))
    payload = hook_payload("PreToolUse", main, agent_id="a7", agent_type="general-purpose")
    assert call("PreToolUse", json.dumps(payload))[0] == 0
    with Ledger.open(data_dir) as ledger:
        assert sorted(str(r["agent_id"]) for r in ledger.rows()) == ["None", "a7"]


def test_subagent_stop_reads_agent_transcript_path(data_dir: Path, claude_dir: Path) -> None:
    main = transcript_path(claude_dir)
    side = write_lines(subagent_path(main, "b2"), response(is_sidechain=True, agent_id="b2"))
    payload = hook_payload("SubagentStop", main, agent_id="b2", agent_transcript_path=str(side))
    assert call("SubagentStop", json.dumps(payload))[0] == 0
    with Ledger.open(data_dir) as ledger:
        assert ledger.count() == 1


def test_session_start_before_the_transcript_exists_is_fine(data_dir: Path, claude_dir: Path) -> None:
    payload = hook_payload("SessionStart", transcript_path(claude_dir), source="startup")
    assert call("SessionStart", json.dumps(payload))[:2] == (0, {})


@pytest.mark.parametrize(
    ("stdin", "says"),
    [
        ("", "no input on stdin"),
        ("not json", "not JSON"),
        ("[1, 2]", "not an object"),
        ('{"hook_event_name": "Stop", "transcript_path": "/etc/../etc/passwd.jsonl"}', "not a Claude Code transcript"),
        ('{"hook_event_name": "Stop", "transcript_path": "/tmp/elsewhere/x.jsonl"}', "not a Claude Code transcript"),
    ],
)
def test_bad_input_fails_open_with_a_message_that_says_what_is_wrong(stdin: str, says: str) -> None:
    code, output, _ = call("Stop", stdin)
    assert code == 0
    assert says in output["systemMessage"]
    assert "enforcement skipped" in output["systemMessage"]


def test_failures_are_logged_in_the_data_dir(data_dir: Path) -> None:
    call("Stop", "not json")
    assert "not JSON" in (data_dir / "hook.log").read_text()


def test_a_missing_transcript_is_not_an_error(data_dir: Path, claude_dir: Path) -> None:
    payload = hook_payload("Stop", claude_dir / "projects" / "p" / "gone.jsonl")
    assert call("Stop", json.dumps(payload))[:2] == (0, {})


def test_an_unreadable_transcript_fails_open(data_dir: Path, claude_dir: Path) -> None:
    path = write_lines(transcript_path(claude_dir), response())
    path.chmod(0)
    if os.access(path, os.R_OK):  # root reads anything: make the path a directory instead
        path.chmod(0o600)
        path.unlink()
        path.mkdir()
    code, output, _ = call("Stop", json.dumps(hook_payload("Stop", path)))
    assert code == 0


def test_a_broken_config_fails_open_naming_the_file_and_key(data_dir: Path, claude_dir: Path,
                                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text("budgets:\n  global:\n    daily_limit: lots\n")
    monkeypatch.setenv("TOKEN_BUDGET_CONFIG", str(config))
    path = write_lines(transcript_path(claude_dir), response())
    code, output, _ = call("Stop", json.dumps(hook_payload("Stop", path)))
    assert code == 0
    assert f"{config}:3: budgets.global.daily_limit" in output["systemMessage"]


def test_unknown_events_are_a_no_op(data_dir: Path) -> None:
    assert call("Notification", json.dumps({"hook_event_name": "Notification"}))[:2] == (0, {})


def test_the_launcher_runs_without_site_packages(data_dir: Path, claude_dir: Path, subprocess_env: dict) -> None:
    path = write_lines(transcript_path(claude_dir), response())
    subprocess_env.pop("PYTHONPATH")
    proc = subprocess.run([sys.executable, "-S", str(LAUNCHER), "Stop"], input=json.dumps(hook_payload("Stop", path)),
                          capture_output=True, text=True, env=subprocess_env, check=False)
    assert (proc.returncode, proc.stdout.strip()) == (0, "{}"), proc.stderr
    with Ledger.open(data_dir) as ledger:
        assert ledger.count() == 1


def test_the_hot_path_imports_nothing_heavy(subprocess_env: dict) -> None:
    code = (
        "import sys; sys.path[0] = sys.argv[1]; import token_budget.claude.hook as h; import token_budget.ledger, "
        "token_budget.config, token_budget.claude.transcript; "
        "print(sorted(m for m in ('click', 'yaml', 'jsonschema', 'filelock', 'asyncio', 'smtplib', 'urllib.request') "
        "if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-S", "-c", code, str(ROOT)], capture_output=True, text=True,
                          env=subprocess_env, check=True)
    assert proc.stdout.strip() == "[]"


def test_a_hook_with_nothing_new_on_a_utc_machine_loads_no_module_it_can_do_without(data_dir: Path, claude_dir: Path,
                                                                  subprocess_env: dict) -> None:
    path = write_lines(transcript_path(claude_dir), response())
    payload = json.dumps(hook_payload("PreToolUse", path))
    code = (
        "import io, sys; sys.path[0] = sys.argv[1]; from token_budget.claude.hook import run; "
        "run(['PreToolUse'], io.StringIO(sys.argv[2]), io.StringIO(), io.StringIO()); "
        "print(sorted(m for m in ('zoneinfo', 'token_budget.reports', 'token_budget.outbox', 'dataclasses', "
        "'typing', 'click', 'yaml', 'json', 're', 'pathlib', 'contextlib', 'fnmatch', 'urllib.parse') "
        "if m in sys.modules))"
    )  # json, re and pathlib were a third of the hook's own start-up: jsonlite and os.path replace them
    subprocess_env.pop("PYTHONPATH")
    first = subprocess.run([sys.executable, "-S", "-c", code, str(ROOT), payload], capture_output=True, text=True,
                           env={**subprocess_env, "TZ": "UTC"}, check=True)  # compiles the config cache (yaml)
    proc = subprocess.run([sys.executable, "-S", "-c", code, str(ROOT), payload], capture_output=True, text=True,
                          env={**subprocess_env, "TZ": "UTC"}, check=True)
    assert first.returncode == 0
    assert proc.stdout.strip() == "[]", proc.stderr


def test_an_async_hook_whose_reader_is_gone_still_records_and_exits_0(data_dir: Path, claude_dir: Path,
                                                                      subprocess_env: dict) -> None:
    """Claude Code closes an async hook's stdout when it stops listening (a `-p` run ending): the hook's work
    is done by then, so the closed pipe is neither an error nor a hook.log entry."""
    path = write_lines(transcript_path(claude_dir), response())
    read_end, write_end = os.pipe()
    os.close(read_end)
    subprocess_env.pop("PYTHONPATH")
    try:
        proc = subprocess.run([sys.executable, "-S", str(LAUNCHER), "SessionEnd"],
                              input=json.dumps(hook_payload("SessionEnd", path)).encode(), stdout=write_end,
                              stderr=subprocess.PIPE, env=subprocess_env, check=False)
    finally:
        os.close(write_end)
    assert (proc.returncode, proc.stderr) == (0, b"")
    assert not (data_dir / "hook.log").exists()
    with Ledger.open(data_dir) as ledger:
        assert ledger.count() == 1


def _ignores_sigterm(pid: int) -> bool:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


@pytest.mark.parametrize("event", ["Stop", "SessionEnd", "PostToolUse"])
def test_an_async_hook_signalled_by_claude_code_finishes_its_work(event: str, data_dir: Path, claude_dir: Path,
                                                                   subprocess_env: dict) -> None:
    """`claude -p` signals the async hooks still running when it ends, then waits for them a little: the hook
    records the session's last requests rather than dying with them (a SessionStart, which decides, does not)."""
    path = write_lines(transcript_path(claude_dir), response())
    subprocess_env.pop("PYTHONPATH")
    proc = subprocess.Popen([sys.executable, "-S", str(LAUNCHER), event], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=subprocess_env)
    for _ in range(2000):  # until it has started and set its signal disposition (it is waiting for stdin)
        if _ignores_sigterm(proc.pid):
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(json.dumps(hook_payload(event, path)).encode(), timeout=60)
    assert (proc.returncode, out.strip(), err) == (0, b"{}", b"")
    with Ledger.open(data_dir) as ledger:
        assert ledger.count() == 1

