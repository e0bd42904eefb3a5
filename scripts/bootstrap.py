"""Create the plugin's private Python environment: `<data dir>/venv` with token-budget's dependencies.

Standard library only: it runs before those dependencies exist (which is also why it locks with fcntl rather than
filelock). Offline installs: TOKEN_BUDGET_WHEELHOUSE=<folder of wheels> installs from there with --no-index.
The hook only uses the environment once the `.token-budget-ready` marker exists, written last. Then it imports
every transcript changed since it started (the sessions that ran while it was building, which no hook recorded)
and leaves the summary in `first-import.json` for the next hook to tell the user.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKER = ".token-budget-ready"
TEAM_MARKER = ".token-budget-team"  # psycopg is installed (the user's config has `team:`)
FIRST_IMPORT = "first-import.json"  # read (and removed) by token_budget/claude/hook.py
CATCH_UP_MARGIN = 120  # seconds before the bootstrap started: the session that triggered it began a little earlier
CONSTRAINTS = ROOT / "scripts" / "constraints.txt"  # the exact versions installed, shipped with the plugin


def dependencies() -> list[str]:
    """The `dependencies` list of pyproject.toml (no tomllib: Python 3.10 lacks it)."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    block = re.search(r"^dependencies\s*=\s*\[(.*?)\]", text, re.S | re.M)
    return re.findall(r'"([^"]+)"', block.group(1)) if block else []


def pip_arguments() -> list[str]:
    """What pip installs: pyproject's dependencies, held to the versions in constraints.txt."""
    return ["-c", str(CONSTRAINTS), *dependencies()]


def team_dependencies() -> list[str]:
    """The `team` extra of pyproject.toml (psycopg), for users whose config joins a team."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    block = re.search(r"^team\s*=\s*\[(.*?)\]\s*$", text, re.S | re.M)
    return re.findall(r'"([^"]+)"', block.group(1)) if block else []


def user_config() -> Path:
    explicit = os.environ.get("TOKEN_BUDGET_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(xdg, "token-budget", "token_budgets.yaml")


def wants_team() -> bool:
    """Does the user's own config have a top-level `team:` block? (No YAML parser here: a line starting `team:`.)"""
    try:
        text = user_config().read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return re.search(r"^team\s*:", text, re.M) is not None


def install_team(venv: Path, log) -> None:  # type: ignore[no-untyped-def]
    """psycopg, pinned by constraints.txt, into the plugin's environment (once: TEAM_MARKER)."""
    if (venv / TEAM_MARKER).exists():
        return
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    wheelhouse = os.environ.get("TOKEN_BUDGET_WHEELHOUSE")
    if wheelhouse:
        pip += ["--no-index", "--find-links", wheelhouse]
    subprocess.run([*pip, "-c", str(CONSTRAINTS), *team_dependencies()], check=True, stdout=log, stderr=log)
    (venv / TEAM_MARKER).write_text(f"{time.strftime('%Y-%m-%dT%H:%M:%S')}\n", encoding="utf-8")
    log.write("team extra installed\n")


def build(data: Path, log, *, team: bool = False) -> int:  # type: ignore[no-untyped-def]
    started = time.time()
    venv = data / "venv"
    if (venv / MARKER).exists() and os.access(venv / "bin" / "python", os.X_OK):
        if team or wants_team():
            install_team(venv, log)
        return 0  # ready (a dangling python link means its base interpreter was removed: rebuild)
    if venv.exists():
        shutil.rmtree(venv)  # a half-built environment from an interrupted run
    log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} creating {venv} with {sys.executable}\n")
    log.flush()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, stdout=log, stderr=log)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    wheelhouse = os.environ.get("TOKEN_BUDGET_WHEELHOUSE")
    if wheelhouse:
        pip += ["--no-index", "--find-links", wheelhouse]
    subprocess.run([*pip, *pip_arguments()], check=True, stdout=log, stderr=log)
    if team or wants_team():
        install_team(venv, log)
    (venv / MARKER).write_text(f"{time.strftime('%Y-%m-%dT%H:%M:%S')}\n", encoding="utf-8")
    log.write("ready\n")
    catch_up(data, venv, started - CATCH_UP_MARGIN, log)
    return 0


def catch_up(data: Path, venv: Path, since: float, log) -> None:  # type: ignore[no-untyped-def]
    """Import the transcripts written while the environment was being built: without it, a first session that
    ended before the environment was ready would never be recorded (no later hook reads its file)."""
    command = [str(venv / "bin" / "python"), "-m", "token_budget", "--data-dir", str(data), "import",
               "--changed-since", f"{since:.3f}", "--json"]
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    log.write(f"catch-up import (exit {done.returncode}): {done.stdout.strip()}\n")
    if done.returncode == 0:
        temp = data / f".{FIRST_IMPORT}.{os.getpid()}"
        temp.write_text(done.stdout, encoding="utf-8")
        os.replace(temp, data / FIRST_IMPORT)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, type=Path, help="the data dir (CLAUDE_PLUGIN_DATA)")
    parser.add_argument("--wait", action="store_true", help="wait for a bootstrap already running")
    parser.add_argument("--team", action="store_true", help="install the team extra (psycopg) as well")
    args = parser.parse_args()
    args.data.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(args.data / "venv.lock", "a") as lock, open(args.data / "bootstrap.log", "a") as log:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if args.wait else fcntl.LOCK_NB))
        except BlockingIOError:
            return 0  # parallel hooks: another process is already building it
        try:
            return build(args.data, log, team=args.team)
        except (OSError, subprocess.CalledProcessError) as exc:
            log.write(f"failed: {exc}\n")
            print(f"token-budget: could not set up {args.data / 'venv'}: {exc}. See {args.data / 'bootstrap.log'}.",
                  file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
