"""The HTML report: one self-contained page whose charts draw in headless Chromium with no network and no errors.

Needs Debian's `chromium` (apt-get install -y chromium); skipped without it, failed without it when $CI is set.
Screenshots (laptop and phone) land in tmp_path, or in $TOKEN_BUDGET_SCREENSHOTS when set.
"""

from __future__ import annotations

import os
import re
import shutil
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from token_budget.cli import cli
from token_budget.config import load
from token_budget.ledger import Ledger
from token_budget.models import UsageEvent
from token_budget.report_html import html_data, render_html
from token_budget.reports import day_period

NOW = datetime(2026, 11, 28, 18, 0, tzinfo=timezone.utc)
MODELS = ("claude-sonnet-4-5-20250929", "claude-opus-4-5-20251101", "claude-haiku-4-5-20251001")


@pytest.fixture
def config(hermetic_env: Path, monkeypatch: pytest.MonkeyPatch):
    path = hermetic_env / "config.yaml"
    path.write_text("timezone: UTC\nbudgets:\n  global: {daily_limit: 400000, monthly_limit: 6000000}\n"
                    "  per_workflow: {sprint: 500000, code_review: 25000}\n"
                    "  per_model: {claude-opus: 200000, claude-sonnet: 500000, claude-haiku: 1000000}\n")
    monkeypatch.setenv("TOKEN_BUDGET_CONFIG", str(path))
    return load()


@pytest.fixture
def ledger(data_dir: Path, config):
    """30 days of uneven use on three models, in two workflows and outside any."""
    events = []
    with Ledger.open(data_dir) as ledger:
        with ledger.transaction():
            for back in range(30):
                day = date(2026, 11, 28) - timedelta(days=back)
                for n, model in enumerate(MODELS):
                    if (back + n) % 4 == 3:
                        continue
                    session = f"s{back}-{n}"
                    stamp = f"{day.isoformat()}T{9 + n:02d}:00:00.000Z"
                    if n < 2:
                        ledger.db.execute(
                            "INSERT INTO workflow_runs (session_id, name, started_at, source) VALUES (?, ?, ?, 't')",
                            (session, ("sprint", "code_review")[n], f"{day.isoformat()}T08:00:00.000Z"))
                    scale = 1 + (back * 7 + n * 3) % 10
                    events.append(UsageEvent(
                        message_id=f"m{back}-{n}", timestamp=stamp, model=model, session_id=session,
                        input_tokens=2_000 * scale, output_tokens=1_500 * scale,
                        cache_creation_5m_tokens=4_000 * scale, cache_read_tokens=30_000 * scale))
            ledger.record(events, source="test", prices=config.price_table())
        yield ledger


def test_page_is_self_contained(ledger: Ledger, config) -> None:
    page = render_html(html_data(ledger, config, day_period(date(2026, 11, 28), config), now=NOW))
    assert page.count("<script") == 3  # the data, Chart.js, the page's own script: all inline
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", page)
    assert "default-src 'none'" in page  # the browser itself forbids any request
    assert "Chart.js v4" in page  # the vendored library, licence header kept


def test_cli_writes_html_to_the_data_dir_by_default(ledger: Ledger, data_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["report", "--date", "2026-11-28", "--format", "html"], catch_exceptions=False)
    assert result.exit_code == 0
    assert (data_dir / "reports" / "2026-11-28.html").read_text().startswith("<!doctype html>")
    assert result.output == f"Wrote {data_dir / 'reports' / '2026-11-28.html'}\n"


CANVAS_INK = """[...document.querySelectorAll('canvas')].map(c => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let ink = 0;
  for (let i = 3; i < d.length; i += 4) if (d[i] > 0) ink++;
  return [c.id, ink, c.width * c.height];
})"""


def test_charts_draw_in_headless_chromium_offline_and_without_errors(ledger: Ledger, config, tmp_path: Path) -> None:
    from cdp import Browser, chromium_path

    binary = chromium_path()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (apt-get install -y chromium)")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    page_path = tmp_path / "report.html"
    page_path.write_text(render_html(html_data(ledger, config, day_period(date(2026, 11, 28), config), now=NOW)))
    shots = Path(os.environ.get("TOKEN_BUDGET_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    browser = Browser.launch(binary)
    try:
        page = browser.page()
        page.call("Emulation.setDeviceMetricsOverride", width=1280, height=900, deviceScaleFactor=1, mobile=False)
        page.open(page_path.as_uri())
        assert page.evaluate("document.documentElement.getAttribute('data-charts-drawn')") == "4"
        ink = page.evaluate(CANVAS_INK)
        assert [name for name, _, _ in ink] == ["daily", "budgets", "workflows", "cache"]
        for name, painted, area in ink:
            assert painted > area * 0.02, f"the {name} chart is (nearly) blank"
        assert page.evaluate("document.querySelectorAll('tbody tr').length") == 3
        page.screenshot(shots / "report-laptop.png", 1280, 900)
        page.screenshot(shots / "report-phone.png", 390, 844, mobile=True)
        for name, painted, area in page.evaluate(CANVAS_INK):
            assert painted > area * 0.02, f"the {name} chart is (nearly) blank on a phone"
        # on a phone nothing is wider than the screen
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert page.requests() == [page_path.as_uri()]
        # our own getImageData probes draw Chromium's willReadFrequently advice; anything else is the page's
        assert [p for p in page.problems() if "willReadFrequently" not in p] == []
    finally:
        browser.close()
    for name in ("report-laptop.png", "report-phone.png"):
        assert (shots / name).stat().st_size > 10_000
    assert shutil.which(binary)
