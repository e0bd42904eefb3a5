from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from postgres import PostgresServer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


@pytest.fixture(autouse=True)
def hermetic_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test touches the real home: data dir, config, XDG folders and Claude's folder all live in tmp_path."""
    home = tmp_path / "home"
    home.mkdir()
    for name in ("CLAUDE_PLUGIN_DATA", "CLAUDE_PLUGIN_ROOT", "TOKEN_BUDGET_CONFIG", "SLACK_WEBHOOK",
                 "SMTP_HOST", "SMTP_PASSWORD", "TOKEN_BUDGET_WORKFLOW",
                 "CLAUDE_CODE_ENTRYPOINT"):  # set when the suite runs inside Claude Code: it detaches Stop
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TOKEN_BUDGET_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "claude"))
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.setenv("NO_COLOR", "1")
    return tmp_path


@pytest.fixture
def data_dir(hermetic_env: Path) -> Path:
    return hermetic_env / "data"


@pytest.fixture
def claude_dir(hermetic_env: Path) -> Path:
    path = hermetic_env / "claude"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """The environment for real `tokens` processes: the hermetic variables, and this checkout importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture
def set_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[datetime], None]:
    """Sets token_budget's clock for this test's in-process calls (the CLI through CliRunner, hooks through
    `run`), so fixtures dated to one day keep meaning "today" whatever day the suite runs."""

    def set_to(moment: datetime) -> None:
        monkeypatch.setattr("token_budget.clock.now", lambda: moment)

    return set_to


# -- PostgreSQL: one throw-away server for the session ------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    from postgres import PostgresServer, bin_dir

    binaries = bin_dir()
    if binaries is None:
        pytest.skip("PostgreSQL is not installed: apt-get install postgresql (tests/run.sh does it as root)")
    server = PostgresServer(binaries)
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture
def postgres(postgres_server: PostgresServer) -> PostgresServer:
    """The session's PostgreSQL server, running (a test that stopped it and failed does not leave it down)."""
    if not postgres_server.running():
        postgres_server.start()
    return postgres_server


# -- skips: counted, and under CI a failure -----------------------------------------------------------------------

# Reasons a skip is expected even under CI. Empty: CI installs every prerequisite and runs as root, so a skip
# there means a missing install step or a test that stopped proving what it says.
EXPECTED_SKIPS: tuple[str, ...] = ()
_sessions: list[pytest.Session] = []


def pytest_sessionstart(session: pytest.Session) -> None:
    _sessions.append(session)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    unexpected = [r for r in skipped if not any(reason in str(r.longrepr) for reason in EXPECTED_SKIPS)]
    terminalreporter.write_line(f"skipped tests: {len(skipped)} ({len(unexpected)} not expected)")
    if os.environ.get("CI") and unexpected:
        for report in unexpected:
            terminalreporter.write_line(f"  unexpected skip under CI: {report.nodeid}: {report.longrepr}")
        _sessions[-1].exitstatus = pytest.ExitCode.TESTS_FAILED
