"""Reports: golden YAML, JSON, CSV and ccusage output for a fixed ledger, with costs computed by hand.

1 USD per million tokens is 1 micro-USD per token, so each cost below is tokens x rate (USD/MTok), in micro-USD:
sonnet-4-5 3 / 15 / 3.75 (5m write) / 0.30 (read); opus-4-5 5 / 25 / 10 (1h write) / 0.50; haiku-4-5 1 / 5;
claude-opus-4-9 is an unknown opus version, priced as the newest opus (opus-5: 5 / 25) and flagged estimated.
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import subprocess
import sys
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from token_budget.cli import cli
from token_budget.config import load
from token_budget.daily_report import write_daily_if_due
from token_budget.ledger import Ledger
from token_budget.models import UsageEvent
from token_budget.report_render import ccusage_daily, render_yaml, yaml_layout
from token_budget.reports import aggregate, build_report, day_period, month_period

DAY = "2026-11-27"


def write_config(path: Path, timezone_name: str = "UTC", extra: str = "") -> Path:
    path.write_text(f"timezone: {timezone_name}\n{extra}", encoding="utf-8")
    return path


@pytest.fixture
def config(hermetic_env: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TOKEN_BUDGET_CONFIG", str(write_config(hermetic_env / "config.yaml")))
    return load()


def event(message_id: str, timestamp: str, model: str, **usage: int | str | bool) -> UsageEvent:
    return UsageEvent(message_id=message_id, timestamp=timestamp, model=model, **usage)  # type: ignore[arg-type]


def start_run(ledger: Ledger, session: str, name: str, started: str, ended: str | None = None) -> None:
    ledger.db.execute("INSERT INTO workflow_runs (session_id, name, started_at, ended_at, source) "
                      "VALUES (?, ?, ?, ?, 'test')", (session, name, started, ended))


def fixed_events() -> list[UsageEvent]:
    return [
        # sprint: 10000x3 + 2000x15 + 4000x3.75 + 20000x0.30 = 81000 µ$; counted 16000
        event("m1", f"{DAY}T09:00:00.000Z", "claude-sonnet-4-5-20250929", session_id="s1", input_tokens=10_000,
              output_tokens=2_000, cache_creation_5m_tokens=4_000, cache_read_tokens=20_000),
        # sprint: 2000x5 + 1000x25 + 1000x10 + 10000x0.50 = 50000 µ$; counted 4000
        event("m2", f"{DAY}T10:00:00.000Z", "claude-opus-4-5-20251101", session_id="s1", input_tokens=2_000,
              output_tokens=1_000, cache_creation_1h_tokens=1_000, cache_read_tokens=10_000),
        # no workflow: 5000x1 + 500x5 = 7500 µ$; counted 5500
        event("m3", f"{DAY}T11:00:00.000Z", "claude-haiku-4-5-20251001", session_id="s2", input_tokens=5_000,
              output_tokens=500),
        # no workflow, no price: counted 1100, $0
        event("m4", f"{DAY}T12:00:00.000Z", "gpt-5-codex", session_id="s2", input_tokens=1_000, output_tokens=100),
        # no workflow, estimated: 1000x5 + 100x25 = 7500 µ$; counted 1100
        event("m5", f"{DAY}T13:00:00.000Z", "claude-opus-4-9", session_id="s2", input_tokens=1_000,
              output_tokens=100),
        # the next day: 1000x3 + 100x15 = 4500 µ$
        event("m6", "2026-11-28T08:00:00.000Z", "claude-sonnet-4-5-20250929", session_id="s2", input_tokens=1_000,
              output_tokens=100),
    ]


@pytest.fixture
def ledger(data_dir: Path, config):
    with Ledger.open(data_dir) as ledger:
        with ledger.transaction():
            start_run(ledger, "s1", "sprint", f"{DAY}T08:00:00.000Z", f"{DAY}T10:30:00.000Z")
            ledger.record(fixed_events(), source="test", prices=config.price_table())
        yield ledger


# -- JSON ----------------------------------------------------------------------------------------------------


def test_json_report_matches_interface_and_hand_computed_costs(ledger: Ledger, config) -> None:
    report = build_report(ledger, config, day_period(date(2026, 11, 27), config))
    fixed = {key: report[key] for key in ("date", "timezone", "total_tokens", "total_cost", "tokens", "by_workflow",
                                          "by_model", "efficiency_score", "optimization_savings", "unpriced_models")}
    assert fixed == {
        "date": "2026-11-27",
        "timezone": "UTC",
        "total_tokens": 27_700,
        "total_cost": 0.146,  # 81000 + 50000 + 7500 + 0 + 7500 µ$
        "tokens": {"input": 19_000, "output": 3_700, "cache_creation": 5_000, "cache_read": 30_000},
        "by_workflow": {"sprint": 20_000, "(none)": 7_700},
        "by_model": {
            "claude-sonnet-4-5-20250929": {"tokens": 16_000, "cost": 0.081, "cost_status": "priced"},
            "claude-haiku-4-5-20251001": {"tokens": 5_500, "cost": 0.0075, "cost_status": "priced"},
            "claude-opus-4-5-20251101": {"tokens": 4_000, "cost": 0.05, "cost_status": "priced"},
            "claude-opus-4-9": {"tokens": 1_100, "cost": 0.0075, "cost_status": "estimated"},
            "gpt-5-codex": {"tokens": 1_100, "cost": 0.0, "cost_status": "unpriced"},
        },
        "efficiency_score": 0.5556,  # 30000 cache reads / (19000 + 5000 + 30000) input side
        # without caching: m1 34000x3 + 2000x15 = 132000; m2 13000x5 + 1000x25 = 90000; m3 7500; m5 7500
        # = 237000 µ$ against 146000 paid: 91000 / 237000
        "optimization_savings": 0.384,
        "unpriced_models": ["gpt-5-codex"],
    }
    assert report["estimated_models"] == ["claude-opus-4-9"]
    assert report["savings"] == {"cost_without_optimizations": 0.237, "saved": 0.091, "caching": 0.091,
                                 "model_downgrades": 0.0}
    assert report["requests"] == 5
    assert list(report["by_workflow"]) == ["sprint", "(none)"]


def test_cli_json_is_the_library_report(ledger: Ledger, config) -> None:
    result = CliRunner().invoke(cli, ["report", "--date", DAY, "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0
    assert json.loads(result.output) == build_report(ledger, config, day_period(date(2026, 11, 27), config))
    again = CliRunner().invoke(cli, ["report", "--date", DAY, "--json"], catch_exceptions=False)
    assert again.output == result.output


def test_month_report_sums_its_days(ledger: Ledger, config) -> None:
    report = build_report(ledger, config, month_period(2026, 11, config))
    assert report["month"] == "2026-11" and "date" not in report
    assert report["total_tokens"] == 27_700 + 1_100
    assert report["total_cost"] == 0.1505  # 146000 + 4500 µ$


def test_empty_day_is_all_zeros(ledger: Ledger, config) -> None:
    report = build_report(ledger, config, day_period(date(2026, 1, 1), config))
    assert (report["total_tokens"], report["total_cost"], report["by_model"], report["efficiency_score"],
            report["optimization_savings"]) == (0, 0.0, {}, 0.0, 0.0)


# -- YAML ----------------------------------------------------------------------------------------------------


GOLDEN_YAML = """\
daily_report:
  date: 2026-11-27
  timezone: UTC
  total_tokens: 27700
  total_cost: $0.15

  tokens:
    input: 19000
    output: 3700
    cache_creation: 5000
    cache_read: 30000

  by_workflow:
    sprint: 20000
    (none): 7700

  by_model:
    claude-sonnet-4-5-20250929: 16000 ($0.08)
    claude-haiku-4-5-20251001: 5500 ($0.01)
    claude-opus-4-5-20251101: 4000 ($0.05)
    claude-opus-4-9: 1100 ($0.01 estimated)
    gpt-5-codex: 1100 (unpriced)

  efficiency_score: 0.5556
  optimization_savings: 38.4%
  unpriced_models:
  - gpt-5-codex
"""


def test_yaml_is_the_seed_layout_rounded_to_the_cent(ledger: Ledger) -> None:
    result = CliRunner().invoke(cli, ["report", "--date", DAY], catch_exceptions=False)
    assert result.exit_code == 0
    assert result.output == GOLDEN_YAML
    parsed = yaml.safe_load(result.output)["daily_report"]
    assert parsed["by_workflow"] == {"sprint": 20000, "(none)": 7700}
    assert parsed["date"] == date(2026, 11, 27)


def test_month_yaml_is_a_monthly_report(ledger: Ledger) -> None:
    result = CliRunner().invoke(cli, ["report", "--month", "2026-11"], catch_exceptions=False)
    assert result.output.startswith("monthly_report:\n  month: 2026-11\n")
    assert yaml.safe_load(result.output)["monthly_report"]["total_tokens"] == 28_800


def test_yaml_quotes_names_yaml_would_misread(config) -> None:
    report = {"date": "2026-01-02", "timezone": "UTC", "total_tokens": 1, "total_cost": 0.0,
              "tokens": {"input": 1, "output": 0, "cache_creation": 0, "cache_read": 0},
              "by_workflow": {"yes": 1, "a: b": 2, "#x": 3}, "by_model": {}, "efficiency_score": 0.0,
              "optimization_savings": 0.0, "unpriced_models": []}
    parsed = yaml.safe_load(render_yaml(report))["daily_report"]
    assert parsed["by_workflow"] == {"yes": 1, "a: b": 2, "#x": 3}
    assert parsed["by_model"] == {} and parsed["unpriced_models"] == []


@settings(max_examples=300, deadline=None)
@given(workflows=st.dictionaries(st.text(min_size=1), st.integers(min_value=0, max_value=10**12), max_size=4),
       models=st.lists(st.text(min_size=1), unique=True, max_size=4),
       month=st.booleans())
def test_yaml_reads_back_as_its_layout_for_any_workflow_or_model_name(workflows, models, month) -> None:
    statuses = ("priced", "estimated", "unpriced")
    report = {("month" if month else "date"): "2026-11" if month else "2026-01-02", "timezone": "Europe/Paris",
              "total_tokens": 1, "total_cost": 1.5,
              "tokens": {"input": 1, "output": 0, "cache_creation": 0, "cache_read": 0},
              "by_workflow": workflows,
              "by_model": {m: {"tokens": n, "cost": n / 7, "cost_status": statuses[n % 3]}
                           for n, m in enumerate(models)},
              "efficiency_score": 0.25, "optimization_savings": -0.125,
              "unpriced_models": sorted(m for n, m in enumerate(models) if n % 3 == 2)}
    parsed = yaml.safe_load(render_yaml(report))
    assert parsed == yaml_layout(report)
    body = parsed["monthly_report" if month else "daily_report"]
    assert body["by_workflow"] == workflows
    assert list(body["by_model"]) == models
    assert body["unpriced_models"] == report["unpriced_models"]


# -- CSV -----------------------------------------------------------------------------------------------------


GOLDEN_CSV = """\
date,workflow,model,requests,input_tokens,output_tokens,cache_creation_tokens,cache_read_tokens,counted_tokens,cost_usd,cost_status
2026-11-27,(none),claude-haiku-4-5-20251001,1,5000,500,0,0,5500,0.007500,priced
2026-11-27,(none),claude-opus-4-9,1,1000,100,0,0,1100,0.007500,estimated
2026-11-27,(none),gpt-5-codex,1,1000,100,0,0,1100,0.000000,unpriced
2026-11-27,sprint,claude-opus-4-5-20251101,1,2000,1000,1000,10000,4000,0.050000,priced
2026-11-27,sprint,claude-sonnet-4-5-20250929,1,10000,2000,4000,20000,16000,0.081000,priced
2026-11-28,(none),claude-sonnet-4-5-20250929,1,1000,100,0,0,1100,0.004500,priced
"""


def test_csv_has_a_row_per_day_workflow_and_model(ledger: Ledger) -> None:
    result = CliRunner().invoke(cli, ["report", "--month", "2026-11", "--format", "csv"], catch_exceptions=False)
    assert result.output == GOLDEN_CSV
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert sum(float(r["cost_usd"]) for r in rows) == pytest.approx(0.1505)


# -- ccusage -------------------------------------------------------------------------------------------------


def test_ccusage_format_is_ccusage_daily_json(ledger: Ledger, config) -> None:
    result = CliRunner().invoke(cli, ["report", "--month", "2026-11", "--format", "ccusage"], catch_exceptions=False)
    data = json.loads(result.output)
    assert data["totals"] == {"inputTokens": 20_000, "outputTokens": 3_800, "cacheCreationTokens": 5_000,
                              "cacheReadTokens": 30_000, "totalTokens": 58_800, "totalCost": 0.1505}
    first, second = data["daily"]
    assert (first["date"], first["period"], second["date"]) == ("2026-11-27", "2026-11-27", "2026-11-28")
    assert first["totalTokens"] == 19_000 + 3_700 + 5_000 + 30_000  # every class, as ccusage counts
    assert first["totalCost"] == 0.146
    assert first["modelsUsed"] == ["claude-haiku-4-5-20251001", "claude-opus-4-5-20251101", "claude-opus-4-9",
                                   "claude-sonnet-4-5-20250929", "gpt-5-codex"]
    assert first["modelBreakdowns"][0] == {
        "modelName": "claude-sonnet-4-5-20250929", "inputTokens": 10_000, "outputTokens": 2_000,
        "cacheCreationTokens": 4_000, "cacheReadTokens": 20_000, "cost": 0.081,
    }
    assert [b["modelName"] for b in first["modelBreakdowns"]][-1] == "gpt-5-codex"  # by cost, highest first
    assert second == {
        "date": "2026-11-28", "period": "2026-11-28", "inputTokens": 1_000, "outputTokens": 100,
        "cacheCreationTokens": 0, "cacheReadTokens": 0, "totalTokens": 1_100, "totalCost": 0.0045,
        "modelsUsed": ["claude-sonnet-4-5-20250929"],
        "modelBreakdowns": [{"modelName": "claude-sonnet-4-5-20250929", "inputTokens": 1_000, "outputTokens": 100,
                             "cacheCreationTokens": 0, "cacheReadTokens": 0, "cost": 0.0045}],
    }


def _ccusage_binary() -> Path | None:
    cache = Path(os.environ.get("TOKEN_BUDGET_E2E_CACHE") or Path.home() / ".cache" / "token-budget-e2e")
    for root in (cache, Path("/root/.cache/token-budget-e2e")):
        found = root / "node_modules" / "@ccusage" / "ccusage-linux-x64" / "bin" / "ccusage"
        if found.is_file() and os.access(found, os.X_OK):
            return found
    return None


def test_ccusage_format_agrees_with_the_pinned_ccusage(hermetic_env: Path, data_dir: Path, config) -> None:
    binary = _ccusage_binary()
    if binary is None:
        if os.environ.get("CI"):  # CI installs it: a silent skip there would hide a missing install step
            pytest.fail("the pinned ccusage is not installed (bash tests/e2e/install.sh)")
        pytest.skip("the pinned ccusage is not installed (bash tests/e2e/install.sh)")
    from builders import response, transcript_path

    from token_budget.claude.transcript import ingest_files

    claude = hermetic_env / "claude"
    path = transcript_path(claude, "s1")
    path.parent.mkdir(parents=True)
    lines = [
        *response(timestamp=f"{DAY}T09:00:00.000Z", input_tokens=10_000, output_tokens=2_000, cache_5m=4_000,
                  cache_read=20_000),
        *response(timestamp=f"{DAY}T10:00:00.000Z", model="claude-opus-4-5-20251101", input_tokens=2_000,
                  output_tokens=1_000, cache_1h=1_000, cache_read=10_000),
        *response(timestamp="2026-11-28T08:00:00.000Z", model="claude-haiku-4-5-20251001", input_tokens=5_000,
                  output_tokens=500),
    ]
    # compact separators, as Claude Code writes them: ccusage skips lines without a literal `"usage":{`
    path.write_text("".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines))
    with Ledger.open(data_dir) as ledger:
        ingest_files(ledger, [path], source="test", prices=config.price_table())
        ours = ccusage_daily(aggregate(ledger, config, month_period(2026, 11, config)))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(hermetic_env / "home"), "CLAUDE_CONFIG_DIR": str(claude),
           "TZ": "UTC"}
    out = subprocess.run([str(binary), "daily", "--json", "--offline", "--timezone", "UTC", "--breakdown"],
                         env=env, capture_output=True, text=True, timeout=120, check=True).stdout
    theirs = json.loads(out)
    token_keys = ("inputTokens", "outputTokens", "cacheCreationTokens", "cacheReadTokens", "totalTokens")
    assert [(d["period"], *(d[k] for k in token_keys), d["modelsUsed"]) for d in theirs["daily"]] == \
           [(d["period"], *(d[k] for k in token_keys), d["modelsUsed"]) for d in ours["daily"]]
    assert [d["totalCost"] for d in ours["daily"]] == pytest.approx([d["totalCost"] for d in theirs["daily"]])
    assert ours["totals"]["totalCost"] == pytest.approx(theirs["totals"]["totalCost"])


# -- time zones, savings from downgrades ---------------------------------------------------------------------


def test_days_follow_the_configured_time_zone(hermetic_env: Path, data_dir: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKEN_BUDGET_CONFIG", str(write_config(hermetic_env / "paris.yaml", "Europe/Paris")))
    config = load()
    with Ledger.open(data_dir) as ledger:
        ledger.record([event("late", "2026-11-27T23:30:00.000Z", "claude-haiku-4-5", input_tokens=10)],
                      source="test", prices=config.price_table())
        # 23:30 UTC is 00:30 in Paris: the next local day
        assert build_report(ledger, config, day_period(date(2026, 11, 27), config))["total_tokens"] == 0
        report = build_report(ledger, config, day_period(date(2026, 11, 28), config))
    assert (report["total_tokens"], report["timezone"]) == (10, "Europe/Paris")


def _degradations_table(ledger: Ledger) -> None:
    """The enforcement engine's table; created here only if no migration has made it yet."""
    ledger.db.execute(
        "CREATE TABLE IF NOT EXISTS degradations (id INTEGER PRIMARY KEY, session TEXT, kind TEXT NOT NULL, "
        "tool TEXT, detail TEXT, from_model TEXT, to_model TEXT, created_at TEXT NOT NULL)"
    )


def _record_degradation(ledger: Ledger, **values: str) -> None:
    columns = {row[1] for row in ledger.db.execute("PRAGMA table_info(degradations)")}
    values = {k: v for k, v in values.items() if k in columns}
    marks = ", ".join("?" for _ in values)
    ledger.db.execute(f"INSERT INTO degradations ({', '.join(values)}) VALUES ({marks})", list(values.values()))


def test_downgraded_subagent_requests_are_priced_at_the_model_asked_for(data_dir: Path, config) -> None:
    with Ledger.open(data_dir) as ledger:
        _degradations_table(ledger)
        # as claude/enforce.py records it: the Task call's model (or the session's) and the family it moved to
        _record_degradation(ledger, session_id="s9", session="s9", kind="model_downgrade", tool="Task",
                            detail='{"reason": "economy"}', from_model="claude-opus-4-5", to_model="haiku",
                            created_at=f"{DAY}T09:59:00.000Z")
        ledger.record([
            # the downgraded subagent: 10000x1 + 1000x5 = 15000 µ$ paid; asked for opus: 10000x5 + 1000x25 = 75000
            event("sub", f"{DAY}T10:00:00.000Z", "claude-haiku-4-5-20251001", session_id="s9", agent_id="a1",
                  is_sidechain=True, input_tokens=10_000, output_tokens=1_000),
            # the main thread on haiku in the same session was not downgraded: no saving claimed
            event("main", f"{DAY}T10:01:00.000Z", "claude-haiku-4-5-20251001", session_id="s9",
                  input_tokens=10_000, output_tokens=1_000),
            # a subagent that started before the downgrade was recorded: no saving either
            event("early", f"{DAY}T09:00:00.000Z", "claude-haiku-4-5-20251001", session_id="s9", agent_id="a0",
                  is_sidechain=True, input_tokens=10_000, output_tokens=1_000),
            # a second haiku subagent after the first: one downgrade claims one subagent, so no saving
            event("later", f"{DAY}T10:05:00.000Z", "claude-haiku-4-5-20251001", session_id="s9", agent_id="a2",
                  is_sidechain=True, input_tokens=10_000, output_tokens=1_000),
        ], source="test", prices=config.price_table())
        report = build_report(ledger, config, day_period(date(2026, 11, 27), config))
    # baseline 75000 + 3 x 15000 = 120000 µ$; paid 60000; caching saved nothing
    assert report["savings"] == {"cost_without_optimizations": 0.12, "saved": 0.06, "caching": 0.0,
                                 "model_downgrades": 0.06}
    assert report["optimization_savings"] == 0.5
    assert report["optimizations"] == {"model_downgrade": 1}


def test_cache_writes_without_reads_are_negative_savings(data_dir: Path, config) -> None:
    with Ledger.open(data_dir) as ledger:
        # written to the 5m cache and never read: 1000x3.75 = 3750 µ$ against 3000 uncached
        ledger.record([event("w", f"{DAY}T10:00:00.000Z", "claude-sonnet-4-5", cache_creation_5m_tokens=1_000)],
                      source="test", prices=config.price_table())
        report = build_report(ledger, config, day_period(date(2026, 11, 27), config))
    assert report["optimization_savings"] == -0.25


# -- CLI errors and output -----------------------------------------------------------------------------------


def test_date_and_month_together_exit_2(config) -> None:
    result = CliRunner().invoke(cli, ["report", "--date", DAY, "--month", "2026-11"])
    assert result.exit_code == 2
    assert "--date and --month cannot be used together" in result.output


def test_output_writes_the_file(ledger: Ledger, tmp_path: Path) -> None:
    target = tmp_path / "out.yaml"
    result = CliRunner().invoke(cli, ["report", "--date", DAY, "--output", str(target)], catch_exceptions=False)
    assert result.exit_code == 0
    assert target.read_text() == GOLDEN_YAML


# -- the daily summary ---------------------------------------------------------------------------------------


def test_first_hook_of_a_day_writes_yesterdays_report_once(ledger: Ledger, config, data_dir: Path) -> None:
    now = datetime(2026, 11, 28, 7, 0, tzinfo=timezone.utc)
    path = write_daily_if_due(ledger, config, data_dir, now=now)
    assert path == data_dir / "reports" / "2026-11-27.yaml"
    assert path.read_text() == GOLDEN_YAML
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert write_daily_if_due(ledger, config, data_dir, now=now) is None
    # the claim's lock file may stay (unlinking a lock file races with its next taker); it holds nothing
    assert sorted(p.name for p in path.parent.iterdir() if not p.name.endswith(".claim")) == ["2026-11-27.yaml"]


def test_a_live_claim_means_another_hook_is_writing(ledger: Ledger, config, data_dir: Path,
                                                    subprocess_env: dict) -> None:
    reports = data_dir / "reports"
    reports.mkdir()
    claim = reports / ".2026-11-27.yaml.claim"
    holder = subprocess.Popen(  # another process holds the claim, as a hook writing the report would
        [sys.executable, "-c", "import sys, filelock; lock = filelock.FileLock(sys.argv[1]); lock.acquire(); "
         "print('held', flush=True); sys.stdin.read()", str(claim)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=subprocess_env)
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    now = datetime(2026, 11, 28, 7, 0, tzinfo=timezone.utc)
    assert write_daily_if_due(ledger, config, data_dir, now=now) is None
    holder.kill()  # its writer died: the kernel releases the lock at once, no waiting for a timeout
    holder.communicate()
    assert write_daily_if_due(ledger, config, data_dir, now=now) == reports / "2026-11-27.yaml"


def test_reports_module_keeps_the_hook_light() -> None:
    code = ("import sys, token_budget.reports; "
            "print(sorted(m for m in ('yaml', 'click', 'jsonschema', 'csv', 'html') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1]).stdout
    assert out.strip() == "[]"


def test_the_hook_writes_yesterdays_report(hermetic_env: Path, data_dir: Path, config) -> None:
    from builders import hook_payload, response, transcript_path, write_lines

    from token_budget.claude.hook import handle

    path = write_lines(transcript_path(hermetic_env / "claude"), response(timestamp=f"{DAY}T09:00:00.000Z"))
    handle("Stop", hook_payload("Stop", path), data_dir, now=datetime(2026, 11, 28, 7, 0, tzinfo=timezone.utc))
    written = yaml.safe_load((data_dir / "reports" / "2026-11-27.yaml").read_text())["daily_report"]
    assert written["total_tokens"] == 150  # the builder's default request: 100 in, 50 out


def test_a_hook_started_with_dash_s_writes_yesterdays_report(hermetic_env: Path, data_dir: Path, config,
                                                              subprocess_env: dict) -> None:
    # As Claude Code runs it: `python -S run_hook.py`, no site-packages until a path needs one (filelock here).
    from datetime import date, timedelta

    from builders import hook_payload, response, transcript_path, write_lines

    yesterday = (date.today() - timedelta(days=1)).isoformat()  # the subprocess runs on the real clock
    path = write_lines(transcript_path(hermetic_env / "claude"), response(timestamp=f"{yesterday}T12:00:00.000Z"))
    env = {k: v for k, v in subprocess_env.items() if k != "PYTHONPATH"}
    launcher = Path(__file__).resolve().parents[1] / "token_budget" / "claude" / "run_hook.py"
    report = data_dir / "reports" / f"{yesterday}.yaml"
    for _ in range(2):  # the second hook finds the config cache warm, so nothing else has loaded site for it
        report.unlink(missing_ok=True)
        done = subprocess.run([sys.executable, "-S", str(launcher), "Stop"],
                              input=json.dumps(hook_payload("Stop", path)), capture_output=True, text=True, env=env,
                              timeout=60)
        assert (done.returncode, done.stdout.strip()) == (0, "{}"), done.stderr
        assert not (data_dir / "hook.log").exists(), (data_dir / "hook.log").read_text()
        assert report.exists()
