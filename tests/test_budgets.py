"""Budget states: calendar periods (midnight, month end, DST days), model keys, config errors, the CLI, real
concurrent hooks claiming one alert, and the overshoot guarantee."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from budget_helpers import Session, write_config
from builders import hook_payload, response, transcript_path, write_lines
from click.testing import CliRunner

from token_budget.budgets import budget_states, model_matches
from token_budget.cli import cli
from token_budget.config import load
from token_budget.config_files import validate
from token_budget.errors import ConfigError
from token_budget.ledger import Ledger
from token_budget.models import UsageEvent

ROOT = Path(__file__).resolve().parent.parent


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def ledger_with(data_dir: Path, *stamps_and_tokens: tuple[str, int], model: str = "claude-sonnet-4-5") -> Ledger:
    ledger = Ledger.open(data_dir)
    events = [UsageEvent(message_id=f"msg_{i}", timestamp=ts, model=model, input_tokens=n, session_id="s")
              for i, (ts, n) in enumerate(stamps_and_tokens)]
    with ledger.transaction():
        ledger.record(events, source="test")
    return ledger


def states_at(tmp_path, monkeypatch, data_dir, zone: str, now: str, rows) -> dict:
    write_config(tmp_path, monkeypatch, f"timezone: {zone}\nbudgets:\n  global: {{daily_limit: 1000, "
                                        "monthly_limit: 10000}\n  per_model: {}\n")
    with ledger_with(data_dir, *rows) as ledger:
        return {s.scope: s for s in budget_states(ledger, load(), now=utc(now))}


@pytest.mark.parametrize(("zone", "now", "rows", "daily", "period", "resets_at"), [
    # midnight UTC: the last millisecond of a day and the first of the next
    ("UTC", "2026-11-28T00:00:00Z", [("2026-11-27T23:59:59.999Z", 5), ("2026-11-28T00:00:00.000Z", 7)], 7,
     "2026-11-28", "2026-11-29T00:00:00.000Z"),
    ("UTC", "2026-11-27T23:59:59.999Z", [("2026-11-27T23:59:59.999Z", 5), ("2026-11-28T00:00:00.000Z", 7)], 5,
     "2026-11-27", "2026-11-28T00:00:00.000Z"),
    # New York springs forward on 2026-03-08: a 23-hour day, 05:00Z to 04:00Z
    ("America/New_York", "2026-03-08T12:00:00Z",
     [("2026-03-08T04:59:59.000Z", 1), ("2026-03-08T05:00:00.000Z", 10), ("2026-03-09T03:59:59.000Z", 100),
      ("2026-03-09T04:00:00.000Z", 1000)], 110, "2026-03-08", "2026-03-09T04:00:00.000Z"),
    # ...and falls back on 2026-11-01: a 25-hour day, 04:00Z to 05:00Z
    ("America/New_York", "2026-11-01T23:30:00Z",
     [("2026-11-01T03:59:59.000Z", 1), ("2026-11-01T04:00:00.000Z", 10), ("2026-11-02T04:59:59.000Z", 100),
      ("2026-11-02T05:00:00.000Z", 1000)], 110, "2026-11-01", "2026-11-02T05:00:00.000Z"),
    # the hour that repeats on 2026-11-01 (01:00-02:00 local happens twice) belongs to that one day
    ("America/New_York", "2026-11-01T06:30:00Z", [("2026-11-01T05:30:00.000Z", 3), ("2026-11-01T06:30:00.000Z", 4)],
     7, "2026-11-01", "2026-11-02T05:00:00.000Z"),
])
def test_daily_periods_follow_the_configured_zone(tmp_path, monkeypatch, data_dir, zone, now, rows, daily, period,
                                                  resets_at) -> None:
    daily_state = states_at(tmp_path, monkeypatch, data_dir, zone, now, rows)["daily"]
    assert (daily_state.used, daily_state.period, daily_state.resets_at) == (daily, period, resets_at)


@pytest.mark.parametrize(("zone", "now", "used", "period", "resets_at"), [
    ("UTC", "2026-01-31T23:59:59.999Z", 1, "2026-01", "2026-02-01T00:00:00.000Z"),
    ("UTC", "2026-02-01T00:00:00Z", 10, "2026-02", "2026-03-01T00:00:00.000Z"),
    ("America/New_York", "2026-02-01T03:00:00Z", 11, "2026-01", "2026-02-01T05:00:00.000Z"),  # still Jan 31 there
    ("America/New_York", "2026-12-31T12:00:00Z", 0, "2026-12", "2027-01-01T05:00:00.000Z"),
])
def test_monthly_periods_end_at_the_local_month_end(tmp_path, monkeypatch, data_dir, zone, now, used, period,
                                                    resets_at) -> None:
    rows = [("2026-01-31T23:59:59.999Z", 1), ("2026-02-01T00:00:00.000Z", 10)]
    monthly = states_at(tmp_path, monkeypatch, data_dir, zone, now, rows)["monthly"]
    assert (monthly.used, monthly.period, monthly.resets_at) == (used, period, resets_at)


@pytest.mark.parametrize(("key", "model", "matches"), [
    ("claude-opus", "claude-3-opus-20240229", True),
    ("claude-opus", "claude-opus-4-1-20250805", True),
    ("claude-opus", "claude-opus-4-6", True),
    ("claude-opus", "us.anthropic.claude-opus-4-20250514-v1:0", True),
    ("claude-opus", "claude-sonnet-4-5-20250929", False),
    ("claude-opus-4", "claude-opus-4-1-20250805", True),
    ("claude-opus-4", "claude-3-opus-20240229", False),
    ("claude-haiku", "claude-3-5-haiku-20241022", True),
    ("opus", "claude-opus-4-6", True),
    ("*sonnet*", "claude-3-5-sonnet-20241022", True),
    ("claude-sonnet-4-5-*", "claude-sonnet-4-5-20250929", True),
    ("claude-sonnet-4-5-*", "claude-sonnet-4-6", False),
    ("claude-opus-4-6", "claude-opus-4-6", True),
    ("claude-opus-4-6", "claude-opus-4-5", False),
])
def test_model_keys_cover_old_and_new_naming_globs_and_exact_ids(key: str, model: str, matches: bool) -> None:
    assert model_matches(key, model) is matches


def test_usd_limits_set_the_level_when_they_bind_first(tmp_path, monkeypatch, data_dir) -> None:
    write_config(tmp_path, monkeypatch, "timezone: UTC\nbudgets:\n  global: {daily_limit: 100000000, "
                                        "daily_limit_usd: 0.01}\n  per_model: {}\n")
    with ledger_with(data_dir, ("2026-11-28T10:00:00.000Z", 3000)) as ledger:
        ledger.db.execute("UPDATE requests SET cost_micros = 9000")
        daily = budget_states(ledger, load(), now=utc("2026-11-28T12:00:00Z"))[0]
    assert (daily.used_usd, daily.limit_usd, daily.percent, daily.level) == (0.009, 0.01, 90.0, "suggest")


# -- config ----------------------------------------------------------------------------------------------------


def test_the_seed_config_validates() -> None:
    config = load()
    assert config.get("budgets", "per_model", "claude-opus") == 200000
    assert config.get("budgets", "global", "alert_threshold") == "80%"


def test_a_config_with_the_retired_settings_still_loads_without_them(tmp_path: Path) -> None:
    """caching.cache_embeddings and context_compression.method were accepted though nothing read them: a user's file
    that still has them loads, the keys are dropped, and its other settings apply; a new unknown key is refused."""
    path = tmp_path / "token_budgets.yaml"
    path.write_text("optimizations:\n  context_compression:\n    method: summarize_old_context\n"
                    "    trigger: usage > 70%\n  caching:\n    cache_embeddings: true\n"
                    "    cache_repeated_queries: false\n")
    config = load(explicit=str(path))
    assert config.get("optimizations", "context_compression") == {"enabled": True, "trigger": "usage > 70%",
                                                                  "min_context": "50%"}
    assert config.get("optimizations", "caching") == {"enabled": True, "cache_repeated_queries": False}
    path.write_text("optimizations:\n  caching:\n    cache_everything: true\n")
    with pytest.raises(ConfigError, match="cache_everything"):
        load(explicit=str(path))


SEED = (ROOT / "config" / "token_budgets.yaml").read_text()


@pytest.mark.parametrize(("old", "new", "where", "message"), [
    ("    daily_limit: 1000000", "    daily_limit: lots", "budgets.global.daily_limit", "'lots' is not valid"),
    ("    daily_limit: 1000000", "    daily_limits: 1000000", "budgets.global",
     "unknown setting ('daily_limits' was unexpected)"),
    ("    alert_threshold: 80%", "    alert_threshold: eighty", "budgets.global.alert_threshold",
     "'eighty' is not valid"),
    ("    sprint: 500000", "    sprint: -5", "budgets.per_workflow.sprint", "-5 is not valid"),
    ("    claude-opus: 200000", "    claude-opus: {tokens: 1, dollars: 2}", "budgets.per_model.claude-opus",
     "unknown setting ('dollars' was unexpected)"),
    ("    block: 100%", "    block: 100 percent", "enforcement.thresholds.block", "'100 percent' is not valid"),
    ("    - batch_remaining_work", "    - panic", "degradation_strategy.on_budget_exceeded.2", "'panic' is not valid"),
    ("priority: low}", "priority: urgent}", "workflows.test_backend.priority", "'urgent' is not valid"),
    ("\nmode: normal", "\nmode: turbo", "mode", "'turbo' is not valid"),
    ("    trigger: usage > 80%", "    trigger: sometimes", "optimizations.model_downgrade.trigger",
     "'sometimes' is not valid"),
])
def test_each_broken_variant_names_file_line_and_key(tmp_path: Path, old: str, new: str, where: str,
                                                      message: str) -> None:
    import yaml

    assert old in SEED
    path = tmp_path / "token_budgets.yaml"
    text = SEED.replace(old, new, 1)
    path.write_text(text)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if new.strip() in row)
    if message.startswith("unknown setting") and where == "budgets.global":
        line -= 1  # an unknown key is reported at the mapping that does not allow it
    with pytest.raises(ConfigError) as info:
        validate(yaml.safe_load(text), path)
    assert info.value.message.startswith(f"{path}:{line}: {where}: ")
    assert message in info.value.message
    assert info.value.hint and info.value.hint.startswith("Expected")


# -- the CLI ---------------------------------------------------------------------------------------------------


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_tokens_budget_persists_an_override_that_the_next_hook_uses(tmp_path, monkeypatch, claude_dir,
                                                                     data_dir, set_clock) -> None:
    write_config(tmp_path, monkeypatch, "timezone: UTC\nbudgets:\n  global: {daily_limit: 1000}\n  per_model: {}\n")
    session = Session(claude_dir)
    set_clock(session.now)
    session.spend(1000)
    assert session.hook("UserPromptSubmit", prompt="go")[1]["decision"] == "block"
    code, out, _ = invoke("budget", "daily", "2k")
    assert code == 0 and out.startswith("daily budget set to 2,000 tokens (budgets.global.daily_limit in ")
    assert json.loads((data_dir / "overrides.json").read_text()) == {"budgets": {"global": {"daily_limit": 2000}}}
    # The change is shown to the user once, at the next hook, with who made it; then never again.
    changed = {"systemMessage": "token-budget: the daily budget changed from 1,000 to 2,000 (terminal)."}
    assert session.hook("UserPromptSubmit", prompt="go") == (0, changed)
    assert session.hook("UserPromptSubmit", prompt="go") == (0, {})
    code, out, _ = invoke("budget", "--json")
    daily = json.loads(out)["budgets"][0]
    assert {k: daily[k] for k in ("scope", "used", "limit", "percent", "level", "resets_at")} == {
        "scope": "daily", "used": 1000, "limit": 2000, "percent": 50.0, "level": "ok",
        "resets_at": daily["resets_at"]}


@pytest.mark.parametrize(("args", "error"), [
    (("budget", "daily", "lots"), "Error: 'lots' is not an amount.\nGive tokens (500000, 500k, 1.5M) or dollars"),
    (("budget", "weekly", "5"), "Error: 'weekly' is not a budget scope.\nUse daily, monthly, session, a workflow"),
    (("budget", "daily"), "Error: No amount for daily."),
    (("ack", "daily|80|1999-01-01"), "Error: No alert 'daily/80/1999-01-01'."),
    (("workflow", "phase", "BUILD", "--session", "nope"), "Error: Session nope has no workflow run."),
])
def test_cli_errors_exit_2_and_say_what_to_do(args, error: str) -> None:
    code, _, err = invoke(*args)
    assert code == 2 and err.startswith(error), err


def test_model_and_workflow_budgets_keep_both_limits(data_dir) -> None:
    assert invoke("budget", "claude-opus", "$3")[0] == 0
    assert invoke("budget", "sprint", "300k")[0] == 0
    overrides = json.loads((data_dir / "overrides.json").read_text())["budgets"]
    assert overrides == {"per_model": {"claude-opus": {"tokens": 200000, "usd": 3.0}},
                         "per_workflow": {"sprint": 300000}}


def test_mode_and_workflow_commands(data_dir) -> None:
    assert invoke("mode", "economy") == (0, "mode: economy (economy measures are on); it applies from the next "
                                            "hook.\n", "")
    assert invoke("mode", "--json")[1] == '{\n  "mode": "economy",\n  "economy": true\n}\n'
    assert invoke("workflow", "start", "sprint", "--phase", "PLAN", "--session", "s1")[1] == (
        "Started workflow sprint (phase PLAN) in session s1 (from --session).\n")
    assert invoke("workflow", "phase", "BUILD", "--session", "s1")[1] == "Workflow sprint is now in phase BUILD.\n"
    status = json.loads(invoke("budget", "--json", "--session", "s1")[1])
    assert (status["workflow"]["name"], status["workflow"]["phase"]) == ("sprint", "BUILD")
    assert invoke("workflow", "end", "--session", "s1")[1] == "Ended the workflow run of session s1.\n"
    assert json.loads(invoke("budget", "--json", "--session", "s1")[1])["workflow"] is None


def test_phase_changes_are_recorded_on_the_requests_that_follow(claude_dir, data_dir, tmp_path, monkeypatch) -> None:
    write_config(tmp_path, monkeypatch, "timezone: UTC\n")
    session = Session(claude_dir)
    invoke("workflow", "start", "sprint", "--phase", "PLAN", "--session", "sess-1")
    time.sleep(0.002)
    session.now = datetime.now(timezone.utc)
    session.spend(10)
    session.hook("PostToolUse")
    invoke("workflow", "phase", "BUILD", "--session", "sess-1")
    time.sleep(0.002)
    session.now = datetime.now(timezone.utc)
    session.spend(20)
    session.hook("PostToolUse")
    with Ledger.open(data_dir) as ledger:
        rows = ledger.db.execute("SELECT workflow, phase, input_tokens FROM requests ORDER BY input_tokens").fetchall()
    assert rows == [("sprint", "PLAN", 10), ("sprint", "BUILD", 20)]


def test_ack_and_events(tmp_path, monkeypatch, claude_dir) -> None:
    write_config(tmp_path, monkeypatch, "timezone: UTC\nbudgets:\n  global: {daily_limit: 1000}\n  per_model: {}\n")
    session = Session(claude_dir, now=datetime.now(timezone.utc))
    session.spend(1000)
    session.hook("UserPromptSubmit", prompt="go")
    day = session.now.strftime("%Y-%m-%d")
    assert invoke("ack", f"daily/100/{day}") == (0, "Acknowledged 1 alert.\n", "")
    shown = f"token-budget: the 100% alert of the daily budget (daily/100/{day}) acknowledged (terminal)."
    assert session.hook("UserPromptSubmit", prompt="go") == (0, {"systemMessage": shown})
    assert session.hook("UserPromptSubmit", prompt="go") == (0, {})
    events = [json.loads(line) for line in invoke("events", "--json")[1].splitlines()]
    assert [(e["level"], e["kind"], e["alert_key"]) for e in events] == [
        *((level, "threshold", f"daily/{t}/{day}") for level, t in
          (("warn", 70), ("alert", 80), ("suggest", 90), ("block", 100))), ("info", "ack", None)]
    assert json.loads(events[-1]["detail"]) == {"who": "terminal", "old": None, "new": f"daily/100/{day}",
                                                "subject": f"the 100% alert of the daily budget (daily/100/{day})"}


def test_an_id_written_with_pipes_before_is_still_accepted(tmp_path, monkeypatch, claude_dir, set_clock) -> None:
    write_config(tmp_path, monkeypatch, "timezone: UTC\nbudgets:\n  global: {daily_limit: 1000}\n  per_model: {}\n")
    session = Session(claude_dir)
    set_clock(session.now)
    session.spend(1000)
    session.hook("PreToolUse", tool_name="Read", tool_input={"file_path": "/tmp/proj/notes.md"})  # claims the alert
    day = session.now.strftime("%Y-%m-%d")
    assert invoke("ack", f"daily|100|{day}") == (0, "Acknowledged 1 alert.\n", "")


# -- real processes --------------------------------------------------------------------------------------------


def test_concurrent_hooks_crossing_a_threshold_together_show_one_alert(tmp_path, monkeypatch, claude_dir, data_dir,
                                                                        subprocess_env) -> None:
    write_config(tmp_path, monkeypatch, "timezone: UTC\nbudgets:\n  global: {daily_limit: 1000}\n  per_model: {}\n")
    subprocess_env["TOKEN_BUDGET_CONFIG"] = str(tmp_path / "budgets.yaml")
    subprocess_env.pop("PYTHONPATH")
    path = transcript_path(claude_dir)
    write_lines(path, response(input_tokens=850, output_tokens=0,
                               timestamp=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")))
    launcher = ROOT / "token_budget" / "claude" / "run_hook.py"
    payload = json.dumps(hook_payload("PreToolUse", path)).encode()
    procs = [subprocess.Popen([sys.executable, "-S", str(launcher), "PreToolUse"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=subprocess_env) for _ in range(12)]
    outputs = [p.communicate(payload, timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outputs]
    shown = [json.loads(out) for out, _ in outputs if out.strip() != b"{}"]
    assert len(shown) == 1, outputs
    assert shown[0]["systemMessage"].startswith("⚠️ TOKEN BUDGET ALERT: the daily budget is at 850 / 1,000 tokens")
    with Ledger.open(data_dir) as ledger:
        assert ledger.db.execute("SELECT threshold FROM alerts ORDER BY threshold").fetchall() == [(70,), (80,)]


# -- the overshoot guarantee -------------------------------------------------------------------------------------


@pytest.mark.parametrize("request_tokens", [7, 30, 99, 250])
def test_a_session_never_runs_past_the_stop_by_more_than_the_request_in_flight(
        tmp_path, monkeypatch, claude_dir, data_dir, request_tokens: int) -> None:
    """An agent loop that only sees hook answers: every request is followed by PreToolUse (a tool call) and the
    agent goes on after a deny (it reads the denial: one more request), until a hook says continue: false."""
    write_config(tmp_path, monkeypatch, "timezone: UTC\nbudgets:\n  global: {daily_limit: 1000}\n  per_model: {}\n")
    session = Session(claude_dir)
    session.hook("PreToolUse", tool_name="Read", tool_input={"file_path": "/tmp/proj/notes.md"})
    session.tool_input = None

    stopped = False
    acked = False
    for _ in range(1000):
        session.spend(request_tokens)
        out = session.hook("PreToolUse")[1]
        if out.get("continue") is False:
            stopped = True
            break
        if out.get("hookSpecificOutput", {}).get("permissionDecision") == "deny" and not acked:
            with Ledger.open(data_dir) as ledger, ledger.transaction():  # the user acknowledges the block
                ledger.acknowledge(None, "2026-11-28T15:00:00.000Z")
            acked = True
    assert stopped
    with Ledger.open(data_dir) as ledger:
        used = ledger.db.execute("SELECT SUM(input_tokens) FROM requests").fetchone()[0]
    assert 1100 <= used < 1100 + request_tokens
    assert session.hook("UserPromptSubmit", prompt="one more")[1]["continue"] is False
