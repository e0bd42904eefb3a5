"""Team mode's configuration: only the user's own config joins a team, the DSN comes from the environment, and
without `team:` (or with it, on a hook) nothing of the server side is loaded and no socket is opened."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from builders import hook_payload, response, transcript_path, write_lines
from test_untrusted import user_config

from token_budget.config import load
from token_budget.errors import ConfigError
from token_budget.team import TeamSettings

ROOT = Path(__file__).resolve().parent.parent
LAUNCHER = ROOT / "token_budget" / "claude" / "run_hook.py"
TEAM_BLOCK = "team:\n  name: acme\n  dsn: $TOKEN_BUDGET_TEAM_DSN\n  member: alice@example.com\n"


def project(tmp_path: Path, text: str) -> Path:
    root = tmp_path / "repo"
    (root / ".claude").mkdir(parents=True)
    (root / ".claude" / "token_budgets.yaml").write_text(text)
    return root


def test_the_user_config_joins_a_team_with_defaults(hermetic_env: Path) -> None:
    user_config(hermetic_env, TEAM_BLOCK + "  on_stale: closed\n")
    settings = TeamSettings.from_config(load())
    assert settings == TeamSettings("acme", "TOKEN_BUDGET_TEAM_DSN", "alice@example.com", None, 15.0, 600.0, "closed")


def test_a_dsn_written_into_the_config_is_refused(hermetic_env: Path) -> None:
    user_config(hermetic_env, "team:\n  name: acme\n  dsn: postgresql://alice:hunter2@db.example.com/team\n")
    with pytest.raises(ConfigError, match="dsn"):
        load()


@pytest.mark.parametrize("trusted", [False, True])
def test_a_project_file_cannot_join_or_change_a_team(hermetic_env: Path, tmp_path: Path, trusted: bool) -> None:
    root = project(tmp_path, "team:\n  name: evil\n  dsn: $EVIL_DSN\n")
    user_config(hermetic_env, TEAM_BLOCK + (f"trusted_projects: [{root}]\n" if trusted else ""))
    config = load(root)
    assert config.get("team", "name") == "acme" and config.get("team", "dsn") == "$TOKEN_BUDGET_TEAM_DSN"
    assert any("team" in notice for notice in config.notices)
    user_config(hermetic_env, "timezone: UTC\n")
    assert load(root).get("team") is None


def test_the_team_extra_is_pinned_and_installed_only_for_a_team_config(hermetic_env: Path) -> None:
    spec = importlib.util.spec_from_file_location("bootstrap", ROOT / "scripts" / "bootstrap.py")
    assert spec is not None and spec.loader is not None
    bootstrap = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bootstrap)
    pins = {line.split("==")[0].strip().lower() for line in (ROOT / "scripts" / "constraints.txt").read_text()
            .splitlines() if "==" in line and not line.startswith("#")}
    assert bootstrap.team_dependencies() == ["psycopg[binary]==3.3.9"]
    assert {"psycopg", "psycopg-binary", "typing_extensions"} <= pins
    assert not bootstrap.wants_team()
    user_config(hermetic_env, "timezone: UTC\n# team: not yet\n")
    assert not bootstrap.wants_team()
    user_config(hermetic_env, "timezone: UTC\n" + TEAM_BLOCK)
    assert bootstrap.wants_team()


def hook_imports(env: dict, claude_dir: Path) -> set[str]:
    path = write_lines(transcript_path(claude_dir), response())
    proc = subprocess.run([sys.executable, "-S", "-X", "importtime", str(LAUNCHER), "PreToolUse"],
                          input=json.dumps(hook_payload("PreToolUse", path)), capture_output=True, text=True,
                          env=env, check=True)
    assert proc.stdout.strip() == "{}", proc.stdout
    return {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}


def test_without_team_nothing_of_it_is_imported(claude_dir: Path, subprocess_env: dict) -> None:
    loaded = hook_imports(subprocess_env, claude_dir)
    assert "token_budget.claude.enforce" in loaded  # the full path ran
    assert not {m for m in loaded if m.startswith(("token_budget.team", "psycopg", "token_budget.detached"))}


def test_with_team_a_hook_reads_the_cache_but_loads_no_driver_and_opens_no_socket(
        hermetic_env: Path, claude_dir: Path, subprocess_env: dict) -> None:
    config = user_config(hermetic_env, "timezone: UTC\n" + TEAM_BLOCK)
    subprocess_env.update(TOKEN_BUDGET_CONFIG=str(config),
                          TOKEN_BUDGET_TEAM_DSN="postgresql://alice:secret@127.0.0.1:1/team")
    loaded = hook_imports(subprocess_env, claude_dir)
    assert "token_budget.team.states" in loaded
    # the sync's own code stays out of the hook too: `team.kick` starts it from the package's light __init__
    assert not {m for m in loaded if m.startswith(("psycopg", "token_budget.team.server", "token_budget.team.sync",
                                                   "socket", "ssl"))}
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed (tests/run.sh installs it)")
    path = write_lines(transcript_path(claude_dir), response())
    trace = hermetic_env / "strace.txt"
    # No -f: the hook's own system calls only; the sync it starts is another process (and may connect).
    subprocess.run(["strace", "-qq", "-e", "trace=socket,connect", "-o", str(trace), sys.executable, "-S",
                    str(LAUNCHER), "PreToolUse"], input=json.dumps(hook_payload("PreToolUse", path)),
                   capture_output=True, text=True, env=subprocess_env, check=True)
    calls = [line for line in trace.read_text().splitlines() if line.startswith(("socket(", "connect("))]
    assert calls == [], calls


@pytest.mark.slow
def test_the_plugin_environment_gets_psycopg_when_a_team_is_added_later(hermetic_env: Path, tmp_path: Path) -> None:
    """The plugin's venv was built before the user joined a team: the first sync has the bootstrap install the
    pinned team extra into it (from PyPI, or TOKEN_BUDGET_WHEELHOUSE), then goes on."""
    import os
    import venv

    data = tmp_path / "plugin-data"
    data.mkdir(mode=0o700)
    venv.EnvBuilder(with_pip=True).create(data / "venv")
    (data / "venv" / ".token-budget-ready").write_text("built before the team\n")
    python = str(data / "venv" / "bin" / "python")
    user_config(hermetic_env, "timezone: UTC\n" + TEAM_BLOCK)
    probe = "import importlib.util, sys; print(importlib.util.find_spec('psycopg') is not None)"
    assert subprocess.run([python, "-c", probe], capture_output=True, text=True).stdout.strip() == "False"
    code = (f"import sys; sys.path[0] = {str(ROOT)!r}; from token_budget.team.sync import ensure_driver; "
            f"ensure_driver({str(data)!r}); import psycopg; print(psycopg.__version__)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert done.stdout.strip() == "3.3.9", done.stderr + (data / "bootstrap.log").read_text()
    assert (data / "venv" / ".token-budget-team").exists()
    assert "installing the team extra" in (data / "team.log").read_text()
