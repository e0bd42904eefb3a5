"""`tokens team …` and the Team section of `tokens status`, against the real PostgreSQL fixture."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from budget_helpers import NOW, Session
from click.testing import CliRunner
from team_helpers import Machine, TeamDb, quiet

from token_budget.cli import cli

ROOT = Path(__file__).resolve().parent.parent


def tokens(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture
def team(postgres, set_clock) -> TeamDb:  # type: ignore[no-untyped-def]
    set_clock(NOW)
    return TeamDb(postgres)


def test_init_budget_members_status_sync_and_doctor(team: TeamDb, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    lead = Machine(tmp_path / "lead", "lead@example.com", team.admin_dsn)
    quiet(lead)
    lead.use(monkeypatch)
    code, out = tokens("team", "init", "--timezone", "Europe/Paris")
    assert code == 0 and "already existed" in out and "lead@example.com" in out
    code, out = tokens("team", "budget", "monthly", "50M")
    assert code == 0 and "team:monthly set to 50,000,000 tokens" in out
    code, out = tokens("team", "budget", "member", "$300")
    assert code == 0 and "team:member:monthly" in out
    role, password = team.role()
    code, out = tokens("team", "members", "add", "bob@example.com", "--db-role", role)
    assert code == 0, out

    bob = Machine(tmp_path / "bob", "bob@example.com", team.server.dsn(team.dbname, role, password))
    quiet(bob)
    bob.use(monkeypatch)
    code, out = tokens("team", "budget", "team:monthly", "1000M")
    assert code == 2 and "Only the team lead role" in out
    code, out = tokens("team", "budget", "--json")
    assert {b["scope"]: b["tokens"] for b in json.loads(out)} == {"team:monthly": 50_000_000,
                                                                  "team:member:monthly": 0}
    session = Session(bob.claude_dir, "sess-b")
    session.spend(12_345)
    session.hook("UserPromptSubmit", prompt="x")
    code, out = tokens("team", "sync")
    assert code == 0 and "Pushed 1 requests" in out
    code, out = tokens("team", "status", "--json")
    data = json.loads(out)
    assert data["my_tokens"] == 12_345 and data["share"] == 100.0 and data["unpushed"] == 0
    assert {b["scope"]: b["used"] for b in data["budgets"]}["team:monthly"] == 12_345
    code, out = tokens("team", "status")
    assert "team:monthly" in out and "your share 100.0%" in out and "bob@example.com" in out
    code, out = tokens("team", "members")
    assert "bob@example.com" in out and "12,345" in out
    code, out = tokens("status", "--json")
    status = json.loads(out)
    assert status["team"]["team"] == "acme" and status["team"]["top_members"][0]["member"] == "bob@example.com"
    import jsonschema

    jsonschema.validate(status, json.loads((ROOT / "schemas" / "status.schema.json").read_text()))
    code, out = tokens("status", "--width", "80")
    assert "Team acme" in out and "Team month" in out and "you: 100.0%" in out
    code, out = tokens("team", "doctor")
    assert code == 0 and "ok   member: bob@example.com" in out, out
    monkeypatch.setenv("TOKEN_BUDGET_TEAM_DSN", bob.dsn.replace(password, "wrong"))
    code, out = tokens("team", "doctor")
    assert code == 1 and "FAIL server" in out and password not in out and "wrong" not in out


def test_without_a_team_the_commands_say_how_to_join(hermetic_env: Path) -> None:
    code, out = tokens("team", "status")
    assert code == 2 and "team:" in out and "TOKEN_BUDGET_TEAM_DSN" in out


def test_the_team_report_by_member_workflow_and_model_in_every_format(
        team: TeamDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import csv
    import io
    import os

    import yaml

    team.set_budget("team:monthly", 100_000)
    fleet = []
    for i, name in enumerate(("ann", "ben")):
        m = Machine(tmp_path / name, f"{name}@example.com", team.member(f"{name}@example.com"))
        quiet(m)
        m.use(monkeypatch)
        session = Session(m.claude_dir, f"sess-{name}")
        session.spend(1000 * (i + 1), model="claude-opus-4-6")
        session.spend(100, model="claude-haiku-4-5")
        session.hook("UserPromptSubmit", prompt="x")
        assert tokens("team", "sync")[0] == 0
        fleet.append(m)
    code, out = tokens("report", "--team", "--date", "2026-11-28")
    body = yaml.safe_load(out)["daily_report"]
    assert body["team"] == "acme" and body["by_member"] == {"ben@example.com": 2100, "ann@example.com": 1100}
    assert body["by_model"]["claude-opus-4-6"].startswith("3000 ")
    data = json.loads(tokens("report", "--team", "--date", "2026-11-28", "--json")[1])
    assert data["total_tokens"] == 3200 and data["requests"] == 4
    rows = list(csv.DictReader(io.StringIO(tokens("report", "--team", "--month", "2026-11", "--format", "csv")[1])))
    assert {(r["member"], r["model"], r["counted_tokens"]) for r in rows} == {
        ("ann@example.com", "claude-opus-4-6", "1000"), ("ann@example.com", "claude-haiku-4-5", "100"),
        ("ben@example.com", "claude-opus-4-6", "2000"), ("ben@example.com", "claude-haiku-4-5", "100")}
    ccusage = json.loads(tokens("report", "--team", "--date", "2026-11-28", "--format", "ccusage")[1])
    assert ccusage["totals"]["inputTokens"] == 3200
    page = tmp_path / "team.html"
    code, _ = tokens("report", "--team", "--month", "2026-11", "--format", "html", "-o", str(page))
    html = page.read_text()
    assert code == 0 and "By member" in html and "ben@example.com 2,100" in html
    from cdp import Browser, chromium_path

    binary = chromium_path()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (apt-get install -y chromium)")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    browser = Browser.launch(binary)
    try:
        tab = browser.page()
        tab.call("Emulation.setDeviceMetricsOverride", width=1280, height=900, deviceScaleFactor=1, mobile=False)
        tab.open(page.as_uri())
        assert tab.evaluate("document.documentElement.getAttribute('data-charts-drawn')") == "4"
        assert tab.requests() == [page.as_uri()]
        assert [p for p in tab.problems() if "willReadFrequently" not in p] == []
        tab.screenshot(tmp_path / "team-report.png", 1280, 900)
    finally:
        browser.close()
