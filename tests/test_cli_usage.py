"""`tokens import`, `tokens log`, `tokens install` and `tokens doctor`, run as a user would."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from builders import response, subagent_path, transcript_path, write_lines
from click.testing import CliRunner

from token_budget.cli import cli

ROOT = Path(__file__).resolve().parent.parent


def tokens(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


@pytest.fixture
def transcripts(claude_dir: Path) -> Path:
    main = write_lines(transcript_path(claude_dir), [
        *response(blocks=2, partial_output=1, input_tokens=15000, output_tokens=3500,
                  timestamp="2026-11-28T10:30:00.000Z", message_id="msg_A", request_id="req_A"),
        *response(input_tokens=100, output_tokens=50, cache_5m=1000, cache_read=4000,
                  timestamp="2026-11-28T10:31:00.000Z", message_id="msg_B", request_id="req_B"),
    ])
    write_lines(subagent_path(main, "sub1"), response(
        input_tokens=10, output_tokens=5, is_sidechain=True, agent_id="sub1", model="claude-haiku-4-5-20251001",
        timestamp="2026-11-29T09:00:00.000Z", message_id="msg_C", request_id="req_C"))
    return claude_dir


def test_import_reports_what_it_added_and_is_idempotent(transcripts: Path) -> None:
    first = tokens("import", "--claude-dir", str(transcripts))
    assert first.exit_code == 0
    assert "added 3 requests" in first.output
    again = tokens("import", "--claude-dir", str(transcripts), "--json")
    assert json.loads(again.output)["requests_added"] == 0


def test_import_defaults_to_claude_config_dir(transcripts: Path) -> None:
    assert "added 3 requests" in tokens("import").output


def test_import_from_a_folder_without_transcripts_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["import", "--claude-dir", str(tmp_path / "empty")])
    assert result.exit_code == 2
    assert "No transcripts" in result.output


def test_log_json_is_one_object_per_request_in_the_interface_shape(transcripts: Path) -> None:
    tokens("import")
    lines = [json.loads(line) for line in tokens("log", "--json").output.splitlines()]
    assert [e["request_id"] for e in lines] == ["msg_A:req_A", "msg_B:req_B", "msg_C:req_C"]
    first = lines[0]
    assert first["tokens"] == {"input": 15000, "output": 3500, "cache_creation": 0, "cache_read": 0,
                               "total": 18500, "counted": 18500}
    assert first["cost_usd"] == pytest.approx(15000 * 3e-6 + 3500 * 15e-6)
    assert first["model"] == "claude-sonnet-4-5-20250929"
    assert first["session_id"] == "sess-1"
    assert {"timestamp", "project", "workflow", "phase", "cumulative"} <= set(first)
    # counted = input + output + cache writes by default; cache reads are kept but not counted
    assert lines[1]["tokens"]["counted"] == 1150
    assert [e["cumulative"]["daily"] for e in lines] == [18500, 18500 + 1150, 15]  # a new day starts over


def test_log_counts_cache_reads_when_the_config_says_so(transcripts: Path, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("counted_token_classes: [input, output, cache_creation, cache_read]\n")
    tokens("import")
    lines = [json.loads(x) for x in tokens("--config", str(config), "log", "--json").output.splitlines()]
    assert lines[1]["tokens"]["counted"] == 5150


def test_log_filters_by_day_session_and_limit(transcripts: Path) -> None:
    tokens("import")
    def ids(*args: str) -> list[str]:
        return [json.loads(x)["request_id"] for x in tokens("log", "--json", *args).output.splitlines()]
    assert ids("--since", "2026-11-29") == ["msg_C:req_C"]
    assert ids("--until", "2026-11-28") == ["msg_A:req_A", "msg_B:req_B"]
    assert ids("--limit", "1") == ["msg_C:req_C"]
    assert ids("--session", "nope") == []


def test_log_text_is_the_seed_token_log(transcripts: Path) -> None:
    tokens("import")
    text = tokens("log", "--limit", "3").output
    block = text.split("token_log:")[1]
    assert re.sub(r"\s+", " ", block).strip().startswith(
        "request_id: msg_A:req_A timestamp: 2026-11-28T10:30:00.000Z workflow: - phase: - "
        "model: claude-sonnet-4-5-20250929 tokens: input: 15,000 output: 3,500")
    assert "daily: 18,500" in block


def test_log_on_an_empty_ledger_says_how_to_fill_it() -> None:
    assert "tokens import" in tokens("log").output


def test_a_broken_config_is_exit_2_naming_file_line_and_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("budgets:\n  per_workflow:\n    sprint: -5\n")
    result = CliRunner().invoke(cli, ["--config", str(config), "log"])
    assert result.exit_code == 2
    assert f"Error: {config}:3: budgets.per_workflow.sprint" in result.output


def test_install_writes_hooks_once_and_uninstall_removes_only_ours(hermetic_env: Path) -> None:
    settings = hermetic_env / "claude" / "settings.json"
    settings.parent.mkdir(parents=True, exist_ok=True)
    mine = {"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "echo mine"}]}]}, "model": "opus"}
    settings.write_text(json.dumps(mine))
    assert "Wrote token-budget hooks" in tokens("install").output
    assert "Nothing to change" in tokens("install").output
    data = json.loads(settings.read_text())
    assert data["model"] == "opus"
    assert len(data["hooks"]["Stop"]) == 2
    assert "run_hook.py Stop" in data["hooks"]["Stop"][1]["hooks"][0]["command"]
    assert {"SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop", "SubagentStop",
            "SessionEnd"} <= set(data["hooks"])
    tokens("install", "--uninstall")
    assert json.loads(settings.read_text()) == mine


def test_install_registers_the_plugins_events_and_drops_a_retired_post_model_switch(hermetic_env: Path) -> None:
    """Both install routes register the same events; an older install's PostModelSwitch entry (an event only some
    Claude Code builds send, which the plugin never registered) is removed, a user's own entry there is kept."""
    settings = hermetic_env / "claude" / "settings.json"
    settings.parent.mkdir(parents=True, exist_ok=True)
    old = {"type": "command", "command": "python3 /x/token_budget/claude/run_hook.py PostModelSwitch"}
    mine = {"type": "command", "command": "echo mine"}
    settings.write_text(json.dumps({"hooks": {"PostModelSwitch": [{"hooks": [old, mine]}]}}))
    tokens("install")
    hooks = json.loads(settings.read_text())["hooks"]
    plugin = json.loads((ROOT / "hooks" / "hooks.json").read_text())["hooks"]
    assert set(hooks) - {"PostModelSwitch"} == set(plugin)
    assert hooks["PostModelSwitch"] == [{"hooks": [mine]}]
    tokens("install", "--uninstall")
    assert json.loads(settings.read_text())["hooks"] == {"PostModelSwitch": [{"hooks": [mine]}]}


def test_install_runs_the_events_that_decide_nothing_async_like_the_plugin(hermetic_env: Path) -> None:
    """Claude Code waits for a hook only when it can decide something: the same events are async on both install
    routes, the prompt and tool gates are not."""
    settings = hermetic_env / "claude" / "settings.json"
    tokens("install")
    written = {event: groups[0]["hooks"][0] for event, groups in json.loads(settings.read_text())["hooks"].items()}
    plugin = {event: groups[0]["hooks"][0] for event, groups in
              json.loads((ROOT / "hooks" / "hooks.json").read_text())["hooks"].items()}
    asynchronous = {"PostToolUse", "Stop", "SubagentStop", "SessionEnd", "PreCompact"}
    assert {e for e, h in written.items() if h.get("async")} == asynchronous
    assert {e for e, h in plugin.items() if h.get("async")} == asynchronous
    assert not written["PreToolUse"].get("async") and not written["UserPromptSubmit"].get("async")
    for handlers in (written, plugin):  # Python itself gets the signal Claude Code sends an async hook at its end
        assert all(h["command"].startswith("exec ") == bool(h.get("async")) for h in handlers.values())


def test_doctor_is_unhealthy_without_hooks_and_healthy_after_install(transcripts: Path) -> None:
    result = CliRunner().invoke(cli, ["doctor"])
    assert result.exit_code == 2
    assert "[FAIL] hooks" in result.output
    tokens("install")
    result = CliRunner().invoke(cli, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["healthy"] is True
    assert {c["name"] for c in report["checks"]} >= {"data dir", "config", "ledger", "hooks", "transcripts"}


def test_doctor_explains_a_corrupt_ledger(transcripts: Path, data_dir: Path) -> None:
    tokens("install")
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "ledger.db").write_bytes(b"this is not a database" * 100)
    result = CliRunner().invoke(cli, ["doctor"])
    assert result.exit_code == 2
    assert "tokens import" in result.output


def test_data_dir_and_ledger_are_private(transcripts: Path, data_dir: Path) -> None:
    tokens("import")
    assert data_dir.stat().st_mode & 0o777 == 0o700
    assert (data_dir / "ledger.db").stat().st_mode & 0o777 == 0o600


def test_price_overrides_in_the_config_change_recorded_costs(claude_dir: Path, tmp_path: Path) -> None:
    write_lines(transcript_path(claude_dir), response(model="claude-sonnet-4-5-20250929", input_tokens=100_000,
                                                      output_tokens=0, message_id="msg_P"))
    config = tmp_path / "prices.yaml"
    config.write_text("pricing:\n  claude-sonnet-4-5-20250929:\n    input: 2.5\n    output: 12\n")
    tokens("--config", str(config), "import")
    [entry] = [json.loads(x) for x in tokens("--config", str(config), "log", "--json").output.splitlines()]
    assert entry["cost_usd"] == pytest.approx(0.25)  # 100k input at the overridden $2.50 per million


def test_a_model_of_no_known_family_is_unpriced_never_a_silent_zero(claude_dir: Path) -> None:
    write_lines(transcript_path(claude_dir), response(model="gpt-4o", message_id="msg_G"))
    tokens("import")
    [entry] = [json.loads(x) for x in tokens("log", "--json").output.splitlines()]
    assert (entry["cost_usd"], entry["cost_status"]) == (0, "unpriced")
    assert "(unpriced)" in tokens("log").output
