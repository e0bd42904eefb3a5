"""`tokens pricing import FILE`: LiteLLM's price file read offline into the user's overrides, with effective dates;
`tokens doctor` says how much of the cost is estimated or unpriced.

The fixture holds real entries of LiteLLM's model_prices_and_context_window.json (litellm 1.110.2): Claude Code's
current default model, claude-opus-5-5, is in it but not in the packaged table, which prices it "estimated" from
its family.
"""

from __future__ import annotations

import json
from pathlib import Path

from builders import response, transcript_path, write_lines
from click.testing import CliRunner

from token_budget.cli import cli
from token_budget.config import load
from token_budget.ledger import Ledger
from token_budget.models import UsageEvent
from token_budget.price_import import litellm_prices, read_litellm

LITELLM = Path(__file__).parent / "fixtures" / "litellm" / "model_prices_and_context_window.json"


def tokens(*args: str) -> dict:
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code in (0, 2), result.output
    return json.loads(result.output)


def price_on(data_dir: Path, model: str, day: str, **counts: int) -> tuple[int, str]:
    found = load(data_dir=data_dir).price_table().cost(UsageEvent("m", f"{day}T12:00:00.000Z", model, **counts))
    return found.micros, found.status


def test_litellm_entries_become_prices_per_million_tokens() -> None:
    prices, skipped = litellm_prices(read_litellm(LITELLM))
    assert sorted(prices) == ["claude-haiku-4-5-20251001", "claude-opus-4-6", "claude-opus-5-5",
                              "claude-sonnet-4-5-20250929", "claude-sonnet-5-5"]  # Bedrock and Vertex: other providers
    assert prices["claude-opus-5-5"] == {"input": 4.0, "output": 20.0, "cache_write_5m": 5.0, "cache_write_1h": 8.0,
                                         "cache_read": 0.2, "fast_multiplier": 2.0}
    assert skipped == []
    bedrock, _ = litellm_prices(read_litellm(LITELLM), provider="bedrock_converse")
    assert list(bedrock) == ["us.anthropic.claude-sonnet-4-5-20250929-v1:0"]
    assert bedrock["us.anthropic.claude-sonnet-4-5-20250929-v1:0"]["long_context"]["input"] == 6.6  # us: 1.1x


def test_import_prices_the_clis_default_model_and_keeps_what_litellm_lacks(data_dir: Path) -> None:
    assert price_on(data_dir, "claude-opus-5-5", "2026-11-30", input_tokens=1000)[1] == "estimated"
    summary = tokens("pricing", "import", str(LITELLM), "--effective", "2026-12-01")
    assert summary["added"] == ["claude-opus-5-5", "claude-sonnet-5-5"]
    assert summary["changed"] == [] and summary["unchanged"] == 3
    assert summary["written"] == str(data_dir / "overrides.json")
    assert price_on(data_dir, "claude-opus-5-5", "2026-12-02", input_tokens=1000, output_tokens=100) == (
        4000 + 2000, "priced")
    # LiteLLM's Anthropic entry for Sonnet 4.5 has no long-context rates and Opus 4.6's no fast multiplier:
    # neither is taken as "none" (they were unchanged, so nothing of theirs was even written).
    assert price_on(data_dir, "claude-sonnet-4-5-20250929", "2026-12-02", input_tokens=250_000) == (
        1_500_000, "priced")  # the premium $6/MTok for the whole request
    assert price_on(data_dir, "claude-opus-4-6", "2026-12-02", input_tokens=1000)[0] == 5000
    again = tokens("pricing", "import", str(LITELLM), "--effective", "2026-12-01")
    assert (again["added"], again["changed"], again["written"]) == ([], [], None)  # nothing twice


def test_a_changed_price_starts_on_its_effective_date_and_earlier_requests_keep_theirs(data_dir: Path,
                                                                                     tmp_path: Path) -> None:
    data = json.loads(LITELLM.read_text())
    haiku = data["claude-haiku-4-5-20251001"]
    haiku.update(input_cost_per_token=8e-07, output_cost_per_token=4e-06, cache_creation_input_token_cost=1e-06,
                 cache_creation_input_token_cost_above_1hr=1.6e-06, cache_read_input_token_cost=8e-08)
    changed = tmp_path / "prices.json"
    changed.write_text(json.dumps(data))
    preview = tokens("pricing", "import", str(changed), "--effective", "2026-12-01", "--dry-run")
    assert preview["changed"] == ["claude-haiku-4-5-20251001"] and not (data_dir / "overrides.json").exists()
    tokens("pricing", "import", str(changed), "--effective", "2026-12-01")
    counts = {"input_tokens": 1000, "output_tokens": 100}
    assert price_on(data_dir, "claude-haiku-4-5-20251001", "2026-11-30", **counts) == (1000 + 500, "priced")
    assert price_on(data_dir, "claude-haiku-4-5-20251001", "2026-12-01", **counts) == (800 + 400, "priced")
    assert price_on(data_dir, "claude-haiku-4-5", "2026-12-01", **counts)[0] == 800 + 400  # the undated id too


def test_doctor_reports_the_estimated_share_until_prices_are_imported_and_applied(data_dir: Path,
                                                                                 claude_dir: Path) -> None:
    write_lines(transcript_path(claude_dir), [
        *response(model="claude-opus-5-5", input_tokens=1000, output_tokens=100, timestamp="2026-12-02T10:00:00.000Z"),
        *response(model="claude-sonnet-4-5-20250929", input_tokens=1000, output_tokens=100,
                  timestamp="2026-12-02T10:01:00.000Z"),
        *response(model="gpt-9-turbo", input_tokens=10, output_tokens=1, timestamp="2026-12-02T10:02:00.000Z"),
    ])
    runner = CliRunner()
    assert runner.invoke(cli, ["import", "--claude-dir", str(claude_dir)]).exit_code == 0

    def check() -> dict:
        result = runner.invoke(cli, ["doctor", "--json", "--claude-dir", str(claude_dir)])
        return next(c for c in json.loads(result.output)["checks"] if c["name"] == "prices")

    before = check()
    # opus-5-5 estimated at Opus 5's $5/$25: 7500 of 7500 + 4500 micro-USD
    assert before["status"] == "warn"
    assert "62.5% of recorded cost is estimated (1 requests), 1 requests unpriced" in before["detail"]
    assert "claude-opus-5-5" in before["detail"] and "gpt-9-turbo" in before["detail"]
    tokens("pricing", "import", str(LITELLM), "--effective", "2026-12-01")
    assert check()["detail"] == before["detail"]  # recorded costs change only when re-priced
    assert tokens("pricing", "reprice")["changed"] == 1
    after = check()
    assert "0.0% of recorded cost is estimated (0 requests), 1 requests unpriced" in after["detail"]
    with Ledger.open(data_dir) as ledger:
        opus = next(r for r in ledger.rows() if r["model"] == "claude-opus-5-5")
        assert (opus["cost_micros"], opus["cost_status"]) == (4000 + 2000, "priced")
        day = ledger.db.execute("SELECT SUM(cost_micros) FROM hourly_totals").fetchone()[0]
        assert day == 6000 + 4500  # the budgets' rollup follows the new price


def test_a_file_that_is_not_litellms_says_what_to_give(tmp_path: Path) -> None:
    bad = tmp_path / "prices.json"
    bad.write_text("[1, 2]")
    result = CliRunner().invoke(cli, ["pricing", "import", str(bad)])
    assert result.exit_code == 2 and "not LiteLLM's price file" in result.output
    missing = CliRunner().invoke(cli, ["pricing", "import", str(tmp_path / "nope.json")])
    assert missing.exit_code == 2 and "Download model_prices_and_context_window.json" in missing.output
