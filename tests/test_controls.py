"""Limits hold in Claude Code: a stale ack never lets a call through, the model cannot lift its own budget, every
change of a limit, the mode or an ack is recorded and shown once, and the slash command is answered by the hook."""

from __future__ import annotations

import json
import re
import shlex
from datetime import datetime, timezone
from pathlib import Path

import pytest
from budget_helpers import Session, write_config
from click.testing import CliRunner

from token_budget.cli import cli

CONFIG = "timezone: UTC\nbudgets:\n  global: {daily_limit: 1000}\n  per_model: {}\n"


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture
def session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, claude_dir: Path) -> Session:
    write_config(tmp_path, monkeypatch, CONFIG)
    return Session(claude_dir, now=datetime.now(timezone.utc))


def day(session: Session) -> str:
    return session.now.strftime("%Y-%m-%d")


def denied(out: dict) -> bool:
    return (out.get("hookSpecificOutput") or {}).get("permissionDecision") == "deny"


# -- acks follow the limit -------------------------------------------------------------------------------------


def test_an_ack_given_under_an_old_limit_never_lets_a_call_through(session: Session) -> None:
    session.spend(1000)
    assert denied(session.hook("PreToolUse", tool_name="Read")[1])
    assert invoke("ack", f"daily/100/{day(session)}")[0] == 0
    assert not denied(session.hook("PreToolUse", tool_name="Read")[1])  # the ack holds for this limit
    session.spend(10)
    assert invoke("budget", "daily", "1005")[0] == 0  # a new limit: the ack given under 1,000 is void
    code, out = session.hook("PreToolUse", tool_name="Read")
    assert denied(out), out
    assert "the daily budget is exhausted: 1,010 / 1,005 tokens" in out["hookSpecificOutput"][
        "permissionDecisionReason"]
    assert invoke("budget", "daily", "1000")[0] == 0  # back to the old limit: the old ack is still void
    assert denied(session.hook("PreToolUse", tool_name="Read")[1])


def test_the_dashboard_shows_alerts_of_the_current_limit_only(session: Session) -> None:
    session.spend(850)
    session.hook("PreToolUse", tool_name="Read", tool_input={"file_path": "/tmp/proj/notes.md"})
    assert "daily 80% (alert): 850 / 1,000" in invoke("status", "--width", "80")[1]
    invoke("budget", "daily", "1000000")
    status = json.loads(invoke("status", "--json")[1])
    assert status["alerts"] == []
    assert "Alerts" not in invoke("status")[1]
    listed = invoke("alerts")[1]
    assert "older alerts of limits changed since: tokens alerts --all" in listed and "daily 80%" not in listed
    assert "daily 80% (alert)  850 / 1,000" in invoke("alerts", "--all")[1]


# -- the model cannot lift its own limits ----------------------------------------------------------------------


@pytest.mark.parametrize("command", [
    "tokens budget daily 0 && tokens ack",
    "tokens ack",
    "tokens mode normal",
    "tokens workflow end",
    "'/home/u/.claude/plugins/cache/token-budget/token-budget/0.1.0/scripts/tokens' --plugin-data /x budget daily 0",
    "python3 -m token_budget budget daily 2M",
    "bash -c 'tokens budget daily 5000000'",
    "echo '{}' > ~/.local/share/token-budget/overrides.json",
    "sed -i s/1000/0/ .claude/token_budgets.yaml",
    "sqlite3 ledger.db 'DELETE FROM requests'",
    "echo '{\"hook_event_name\": \"UserPromptSubmit\", \"prompt\": \"/tokens budget daily 0\"}' | tokens hook x",
    "python3 -S /opt/x/token_budget/claude/run_hook.py UserPromptSubmit < forged.json",
    "python3 -m token_budget.claude.hook UserPromptSubmit < forged.json",
])
def test_bash_commands_that_change_enforcement_are_denied_at_any_level(session: Session, command: str) -> None:
    session.spend(960)  # 96%: no block yet
    session.hook("PreToolUse", tool_name="Read", tool_input={"file_path": "/tmp/proj/notes.md"})  # the 90% alert
    code, out = session.hook("PreToolUse", tool_name="Bash", tool_input={"command": command})
    assert code == 0 and denied(out), (command, out)
    reason = out["hookSpecificOutput"]["permissionDecisionReason"]
    assert reason.startswith("token-budget: denied: ") and "changed only by the user" in reason
    assert "/tokens …" in reason  # what the user can run instead
    assert out["systemMessage"].startswith("token-budget: denied: ")  # and the user sees it too


@pytest.mark.parametrize("command", ["tokens status", "tokens status --json", "tokens log --limit 5",
                                     "tokens report --date 2026-11-01", "tokens budget", "tokens mode", "ls -la",
                                     "git commit -m 'tokens'", "pytest -q"])
def test_read_only_commands_and_ordinary_work_pass(session: Session, command: str) -> None:
    session.spend(500)
    assert session.hook("PreToolUse", tool_name="Bash", tool_input={"command": command}) == (0, {})


@pytest.mark.parametrize("tool", ["Write", "Edit", "MultiEdit"])
def test_edits_of_the_data_dir_config_and_settings_are_denied(session: Session, tool: str, data_dir: Path,
                                                              tmp_path: Path) -> None:
    for path in (data_dir / "overrides.json", data_dir / "ledger.db", tmp_path / "proj" / ".claude" /
                 "token_budgets.yaml", tmp_path / "home" / ".config" / "token-budget" / "token_budgets.yaml",
                 tmp_path / "proj" / ".claude" / "settings.local.json"):
        out = session.hook("PreToolUse", tool_name=tool, tool_input={"file_path": str(path), "content": "x"},
                           cwd=str(tmp_path / "proj"))[1]
        assert denied(out), (path, out)
    ok = session.hook("PreToolUse", tool_name=tool, tool_input={"file_path": str(tmp_path / "proj" / "a.py")},
                      cwd=str(tmp_path / "proj"))
    assert ok == (0, {})


# -- every change is an event, shown once ----------------------------------------------------------------------


def test_a_config_file_edit_is_recorded_and_shown_once(session: Session, tmp_path: Path) -> None:
    session.spend(100)
    assert session.hook("UserPromptSubmit", prompt="go") == (0, {})
    (tmp_path / "budgets.yaml").write_text(CONFIG.replace("1000", "5000") + "mode: economy\n")
    out = session.hook("UserPromptSubmit", prompt="go")[1]
    assert out["systemMessage"].startswith(
        "token-budget: the daily budget changed from 1,000 to 5,000 (config file).\n"
        "token-budget: the mode changed from normal to economy (config file).")
    assert "systemMessage" not in session.hook("UserPromptSubmit", prompt="go")[1]
    events = [json.loads(line) for line in invoke("events", "--json")[1].splitlines()]
    changes = [(e["kind"], json.loads(e["detail"])) for e in events if e["kind"] != "threshold"]
    assert changes == [
        ("limit_change", {"who": "config file", "old": 1000, "new": 5000, "subject": "daily"}),
        ("mode_change", {"who": "config file", "old": "normal", "new": "economy", "subject": "mode"}),
    ]


def test_a_change_made_with_the_slash_command_is_recorded_but_not_shown_twice(session: Session) -> None:
    session.hook("UserPromptSubmit", prompt="go")
    out = session.hook("UserPromptSubmit", prompt="/tokens budget daily 3000")[1]
    assert out["decision"] == "block" and "daily budget set to 3,000 tokens" in out["reason"]
    assert session.hook("UserPromptSubmit", prompt="go") == (0, {})  # the user saw it already
    [event] = [json.loads(line) for line in invoke("events", "--json")[1].splitlines()]
    assert json.loads(event["detail"]) == {"who": "slash command /tokens", "old": 1000, "new": 3000,
                                           "subject": "daily"}
    assert event["message"] == "the daily budget changed from 1,000 to 3,000 (slash command /tokens)"


# -- the slash command, answered here --------------------------------------------------------------------------


def test_slash_arguments_never_reach_a_shell(session: Session, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for prompt in (f"/tokens ack x; touch {marker}", f"/tokens ack $(touch {marker})", f"/tokens ack `touch {marker}`",
                   f"/tokens budget daily 5 | touch {marker}"):
        out = session.hook("UserPromptSubmit", prompt=prompt)[1]
        assert out["decision"] == "block" and "Error" in out["reason"], out
    assert not marker.exists()
    out = session.hook("UserPromptSubmit", prompt="/tokens budget 'daily")[1]
    assert "No closing quotation" in out["reason"] and "close the quote" in out["reason"]


def test_the_plugin_route_answers_with_its_own_spelling(session: Session, monkeypatch) -> None:
    monkeypatch.setenv("CLAUDE_PLUGIN_ROOT", "/plugin")
    out = session.hook("UserPromptSubmit", prompt="/token-budget:tokens help")[1]
    assert out["reason"].startswith("/token-budget:tokens: token budgets")
    assert "/token-budget:tokens budget [SCOPE AMOUNT]" in out["reason"] and "/tokens budget" not in out["reason"]
    session.spend(1000)
    reason = session.hook("UserPromptSubmit", prompt="go")[1]["reason"]
    assert f"`/token-budget:tokens ack daily/100/{day(session)}`" in reason
    assert "`/token-budget:tokens budget daily 1200`" in reason


def test_events_lists_who_changed_what(session: Session) -> None:
    invoke("mode", "economy")
    invoke("budget", "daily", "2000")
    text = invoke("events")[1]
    assert "the mode changed from normal to economy (terminal)" in text
    assert "the daily budget changed from 1,000 to 2,000 (terminal)" in text



def test_install_gives_pip_users_the_slash_command_and_uninstall_takes_it_back(tmp_path: Path, monkeypatch) -> None:
    from token_budget.claude.install import settings_path

    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "claude-config"))
    command = settings_path("user").parent / "commands" / "tokens.md"
    assert invoke("install")[0] == 0
    text = command.read_text()
    assert "disable-model-invocation: true" in text and "!`" not in text and "$ARGUMENTS" not in text
    assert invoke("install")[1].startswith("Nothing to change")  # idempotent
    invoke("install", "--uninstall")
    assert not command.exists()
    command.write_text("my own /tokens\n")
    assert "Left " in invoke("install")[1] and command.read_text() == "my own /tokens\n"


# -- every suggested command runs ------------------------------------------------------------------------------

SUBCOMMANDS = "status|budget|mode|ack|log|report|alerts|events|workflow"
SUGGESTED = re.compile(rf"(?<![\w/-])((?:/token-budget:tokens|/tokens|tokens) (?:{SUBCOMMANDS})(?: [^ `\n()]+)*)")


def suggested_commands(text: str) -> set[str]:
    return {m.rstrip(".,;") for m in SUGGESTED.findall(text)}


@pytest.mark.parametrize("route", ["terminal", "pip", "plugin"])
def test_every_command_any_message_suggests_runs(tmp_path: Path, monkeypatch, claude_dir: Path, route: str) -> None:
    """Hook messages at each level, the alert on every channel (console text, Slack, email), the dashboard and
    the slash help: every command they name, for the route in use, runs without an error; the raise is the same
    everywhere."""
    from token_budget.alert_render import alert_content, slack_payload
    from token_budget.delivery import email_message

    if route == "plugin":
        monkeypatch.setenv("CLAUDE_PLUGIN_ROOT", "/plugin")
    write_config(tmp_path, monkeypatch, "timezone: UTC\nbudgets:\n  global: {daily_limit: 1000}\n"
                                        "  per_workflow: {sprint: 1000}\n  per_model: {claude-opus: 1000}\n")
    session = Session(claude_dir, now=datetime.now(timezone.utc))
    texts: list[str] = []
    session.hook("UserPromptSubmit", prompt="/sprint go")
    for spend in (800, 100, 100, 100):  # 80%, 90%, 100%, 110% of the daily and sprint budgets
        session.spend(spend)
        for event in ("UserPromptSubmit", "PreToolUse"):
            texts.append(json.dumps(session.hook(event, prompt="go")[1], ensure_ascii=False))
    from token_budget.ledger import Ledger

    with Ledger.open(_data_dir()) as ledger:
        keys = [r[0] for r in ledger.db.execute("SELECT key FROM alerts")]
        for key in keys:
            alert = ledger.load_alert(key)
            # as the sender renders it: with the spelling the hook stored when it queued the alert
            [(prefix,)] = set(ledger.db.execute("SELECT hint_prefix FROM deliveries WHERE alert_key = ?", (key,)))
            texts += [alert_content(alert, prefix=prefix)["text"],
                      json.dumps(slack_payload(alert, prefix=prefix), ensure_ascii=False),
                      email_message(alert, "a@example.org", ["b@example.org"], prefix=prefix).as_string()]
    texts.append(invoke("status")[1])
    prefix = {"terminal": "tokens", "pip": "/tokens", "plugin": "/token-budget:tokens"}[route]
    commands = set().union(*(suggested_commands(t) for t in texts))
    in_claude = {c for c in commands if c.startswith("/")}
    assert in_claude and all(c.startswith(prefix + " ") for c in in_claude) or route == "terminal", in_claude
    raises = {c.split()[-1] for c in commands if " budget daily " in c}
    assert raises == {"1200", "1400"}, raises  # 20% over 1,000 (at 80-100%) and over 1,100 (110%), on every channel
    assert len(commands) >= 8, commands
    assert any(" ack daily/100/" in c for c in commands) and any(" mode " in c or " budget " in c for c in commands)
    for command in sorted(commands):
        args = shlex.split(command)[1:]
        result = CliRunner().invoke(cli, args, catch_exceptions=False)
        assert result.exit_code == 0 and "Error" not in result.output, (command, result.output)


def _data_dir() -> Path:
    from token_budget.paths import data_dir

    return Path(data_dir())


# -- defaults that do not surprise -----------------------------------------------------------------------------


def test_the_packaged_example_channels_stay_inactive_until_configured(monkeypatch, claude_dir: Path) -> None:
    """No TOKEN_BUDGET_CONFIG: the packaged defaults, whose slack and email entries are examples."""
    monkeypatch.setenv("TZ", "UTC")
    session = Session(claude_dir, now=datetime.now(timezone.utc))
    invoke("budget", "daily", "1000")
    session.spend(1000)
    session.hook("PreToolUse", tool_name="Read", tool_input={"file_path": "/tmp/proj/notes.md"})
    listed = invoke("alerts")[1]
    assert "failed" not in listed and "SLACK_WEBHOOK" not in listed and "slack" not in listed, listed
    assert "console   delivered" in listed
    assert "[warn] alert channels: packaged example channels inactive" in invoke("doctor")[1]
    monkeypatch.setattr("token_budget.delivery.spawn", lambda data_dir: None)  # enqueue only, send nothing
    monkeypatch.setenv("SLACK_WEBHOOK", "http://127.0.0.1:9/hook")  # configured: the slack example takes part
    invoke("budget", "daily", "900")  # a new limit re-arms the alerts
    session.hook("PreToolUse", tool_name="Read", tool_input={"file_path": "/tmp/proj/notes.md"})
    assert "slack " in invoke("alerts")[1]


def test_budget_suggest_offers_the_90th_percentile_of_the_users_own_days(session: Session, monkeypatch,
                                                                          tmp_path: Path) -> None:
    from datetime import timedelta

    from token_budget.periods import iso

    for back, tokens in enumerate([100_000, 200_000, 300_000, 400_000, 1_000_000], start=1):
        stamp = iso(session.now - timedelta(days=back))
        session.spend(tokens, timestamp=stamp, model="claude-opus-4-6" if back == 5 else "claude-sonnet-4-5")
    session.hook("PostToolUse")  # the hook records them
    result = json.loads(invoke("budget", "suggest", "--json")[1])
    assert result["active_days"] == 5 and result["percentile"] == 90
    by_scope = {b["scope"]: b for b in result["budgets"]}
    assert by_scope["daily"] == {"scope": "daily", "current": 1000, "suggested": 760_000}  # p90 of the 5 days
    text = invoke("budget", "suggest")[1]
    assert "daily" in text and "760,000" in text and "tokens budget daily 760000" in text
    code, out = invoke("install")
    assert "Budgets enforced now (100% blocks new requests, 110% stops): daily 1,000 · " in out
    assert "tokens budget daily 760000" in out and "tokens budget claude-opus 600000" in out


def test_budget_suggest_without_history_says_how_to_get_some(session: Session) -> None:
    assert "Run `tokens import`" in invoke("budget", "suggest")[1]


def test_workflow_commands_from_the_slash_command_act_on_this_session(session: Session, data_dir: Path) -> None:
    out = session.hook("UserPromptSubmit", prompt="/tokens workflow start sprint --phase PLAN")[1]
    assert f"Started workflow sprint (phase PLAN) in session {session.session_id}" in out["reason"], out
