"""Drive the interactive Claude Code TUI under tmux, offline (shared/claude-code.md §12).

Inside ``unshare -n`` (only loopback), ``mock_api.py`` answers on 127.0.0.1 and a tmux server on a private ``-L``
socket runs ``claude``; keys go in with ``send-keys`` and the screen comes back with ``capture-pane``. The tmux
socket is a file, so this process talks to the server across the namespace. ``close()`` kills that one socket's
server and the mock this session started, nothing else.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .harness import API_KEY, DEFAULT_MODEL, MOCK_API, MOCK_PORT, QUIET_ENV, ClaudeEnv, read_jsonl


class Tui:
    def __init__(self, claude: ClaudeEnv, *, script: list[dict[str, Any]], env: Mapping[str, str],
                 plugin_dir: Path | None = None, label: str = "tui") -> None:
        self.claude = claude
        self.dir = claude.root / f"{label}-{os.getpid()}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.socket = f"tb12-{os.getpid()}-{label}"
        self.requests_file = self.dir / "requests.jsonl"
        (self.dir / "script.json").write_text(json.dumps(script))
        self._trust()
        variables = {**claude.base_env(env), **QUIET_ENV, "TERM": "xterm-256color"}
        inner = " ".join(f"{k}={shlex.quote(v)}" for k, v in variables.items())
        argv = [str(claude.binaries.claude), "--model", DEFAULT_MODEL, "--dangerously-skip-permissions"]
        if plugin_dir is not None:
            argv += ["--plugin-dir", str(plugin_dir)]
        command = f"cd {shlex.quote(str(claude.project))} && env -i {inner} {shlex.join(argv)}; sleep 600"
        ready = self.dir / "mock.ready"
        start = self.dir / "start.sh"
        start.write_text(
            "ip link set lo up || exit 97\n"
            f"{shlex.quote(sys.executable)} {shlex.quote(str(MOCK_API))} --port {MOCK_PORT} "
            f"--script {shlex.quote(str(self.dir / 'script.json'))} --record {shlex.quote(str(self.requests_file))} "
            f"--ready-file {shlex.quote(str(ready))} > {shlex.quote(str(self.dir / 'mock.log'))} 2>&1 &\n"
            f"echo $! > {shlex.quote(str(self.dir / 'mock.pid'))}\n"
            f"for i in $(seq 100); do [ -e {shlex.quote(str(ready))} ] && break; sleep 0.1; done\n"
            f"tmux -L {self.socket} new-session -d -x 160 -y 50 {shlex.quote(command)}\n"
            f"while tmux -L {self.socket} has-session 2>/dev/null; do sleep 0.5; done\n"
        )
        with open(self.dir / "start.log", "w") as log:
            self.process = subprocess.Popen(["unshare", "-n", "bash", str(start)], stdout=subprocess.DEVNULL,
                                            stderr=log, start_new_session=True)
        self.wait_for("bypass permissions", timeout=60)

    def _trust(self) -> None:
        path = self.claude.config_dir / ".claude.json"
        data = json.loads(path.read_text()) if path.exists() else {}
        data.update(hasCompletedOnboarding=True, bypassPermissionsModeAccepted=True,
                    customApiKeyResponses={"approved": [API_KEY[-20:]], "rejected": []})
        data.setdefault("projects", {})[str(self.claude.project)] = {"hasTrustDialogAccepted": True}
        path.write_text(json.dumps(data))

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True,
                              check=True).stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-S", "-400")

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                screen = self.screen()
            except subprocess.CalledProcessError:
                screen = ""
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not on screen after {timeout}s:\n{screen[-4000:]}")
            time.sleep(0.3)

    def type(self, text: str) -> None:
        """Type a prompt and press Enter (separately, as a user does)."""
        self.tmux("send-keys", "-l", text)
        time.sleep(0.5)
        self.tmux("send-keys", "Enter")

    def requests(self) -> list[dict[str, Any]]:
        if not self.requests_file.exists():
            return []
        return [r for r in read_jsonl(self.requests_file) if r.get("kind") == "messages"]

    def close(self) -> None:
        (self.dir / "screen.txt").write_text(self.screen() if self._alive() else "")
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)
        pid_file = self.dir / "mock.pid"
        if pid_file.exists():
            try:
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
            except (ProcessLookupError, ValueError):
                pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGTERM)
        # The server's socket file can outlive it: remove this session's own, once the server is gone.
        if not self._alive():
            base = Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}"
            (base / self.socket).unlink(missing_ok=True)

    def _alive(self) -> bool:
        return subprocess.run(["tmux", "-L", self.socket, "has-session"], capture_output=True).returncode == 0

    def __enter__(self) -> Tui:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
