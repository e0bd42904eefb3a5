"""The README's set-up command on a fresh machine: Debian's own python3 (externally managed: plain `pip install`
refuses), a fresh HOME, PATH=/usr/bin:/bin, no root needed. It must install, register hooks that work, and say
where `tokens` is and whether it is on PATH. Offline: from a wheelhouse built once outside the test."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from builders import hook_payload, response, transcript_path, write_lines
from e2e.harness import build_wheelhouse

ROOT = Path(__file__).resolve().parent.parent
SYSTEM_PYTHON = Path("/usr/bin/python3")


def externally_managed(python: Path) -> bool:
    code = "import os, sysconfig; print(os.path.exists(sysconfig.get_path('stdlib') + '/EXTERNALLY-MANAGED'))"
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True).stdout.strip() == "True"


@pytest.fixture(scope="module")
def system_python() -> Path:
    if not SYSTEM_PYTHON.exists() or subprocess.run([str(SYSTEM_PYTHON), "-c", "import venv, ensurepip"]).returncode:
        if os.environ.get("CI"):
            pytest.fail("CI needs the distribution's python3 with venv: apt-get install python3 python3-venv")
        pytest.skip("needs the distribution's /usr/bin/python3 with venv (apt-get install python3-venv)")
    if os.environ.get("CI"):  # CI runs on Debian: the case this test is about
        assert externally_managed(SYSTEM_PYTHON), "expected Debian's externally managed python3"
    return SYSTEM_PYTHON


@pytest.fixture(scope="module")
def wheels(system_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Wheels for the system python's ABI, built with the pip of a venv made from it (Debian's python3 itself
    may have no pip). Needs the package index the first time; cached like the e2e wheelhouse after that."""
    builder = tmp_path_factory.mktemp("builder") / "venv"
    subprocess.run([str(system_python), "-m", "venv", str(builder)], check=True)
    return build_wheelhouse(str(builder / "bin" / "python"), extra=("setuptools>=68", "wheel"))


def fresh_user(tmp_path: Path, wheels: Path) -> dict[str, str]:
    home = tmp_path / "fresh-home"
    home.mkdir()
    return {"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "TOKEN_BUDGET_WHEELHOUSE": str(wheels)}


def test_setup_works_with_debians_python3_and_leaves_working_hooks(tmp_path: Path, system_python: Path,
                                                                    wheels: Path) -> None:
    env = fresh_user(tmp_path, wheels)
    home = Path(env["HOME"])
    claude = home / ".claude"
    write_lines(transcript_path(claude, "before"), response(session_id="before"))  # history to import
    proc = subprocess.run(["sh", str(ROOT / "scripts" / "setup")], env=env, capture_output=True, text=True,
                          timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tokens = home / ".local" / "bin" / "tokens"
    assert tokens.exists()
    last = proc.stdout.strip().splitlines()[-1]
    assert f"tokens is {tokens}, which is NOT on your PATH" in last and "~/.profile" in last

    # The history was imported, and the hooks registered in settings.json run and record the next request.
    assert "added 1 requests" in proc.stdout
    hooks = json.loads((claude / "settings.json").read_text())["hooks"]
    command = hooks["Stop"][0]["hooks"][0]["command"]
    assert "token-budget-env" in command
    path = write_lines(transcript_path(claude, "after"), response(session_id="after"))
    ran = subprocess.run(["sh", "-c", command], input=json.dumps(hook_payload("Stop", path)), env=env,
                         capture_output=True, text=True, timeout=60)
    assert (ran.returncode, ran.stdout.strip()) == (0, "{}"), ran.stderr
    log = subprocess.run([str(tokens), "log", "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert sorted(json.loads(line)["session_id"] for line in log.stdout.splitlines()) == ["after", "before"]


def test_setup_installs_into_an_active_virtual_environment(tmp_path: Path, system_python: Path,
                                                           wheels: Path) -> None:
    env = fresh_user(tmp_path, wheels)
    venv = tmp_path / "venv"
    subprocess.run([str(system_python), "-m", "venv", str(venv)], check=True)
    env.update(VIRTUAL_ENV=str(venv), PATH=f"{venv}/bin:/usr/bin:/bin")
    proc = subprocess.run(["sh", str(ROOT / "scripts" / "setup")], env=env, capture_output=True, text=True,
                          timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1].endswith(f"tokens is {venv}/bin/tokens, on your PATH.")
    assert not (Path(env["HOME"]) / ".local" / "bin" / "tokens").exists()
