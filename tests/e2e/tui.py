"""The interactive Claude Code TUI under tmux, offline: what a user really sees.

`-p` runs miss what the screen shows (claude-code.md §12). `TUI` starts the real CLI in a tmux session inside the
env's network namespace (only loopback), against the scripted mock Messages API, with the dialogs that would block
a first run already answered in `.claude.json`. The test types with `send` and reads the screen with `screen` or
`wait_for`; the tmux socket is a file, so the test drives it from outside the namespace. On exit the session is
killed, the namespace ends, and every connection the CLI attempted is checked against loopback (strace).

    with TUI(claude_env, script=[text_turn("Hi.")], plugin_dir=REPO_ROOT) as tui:
        tui.send("hello")
        tui.wait_for("Hi.")
        assert len(tui.requests()) == 1
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from . import mock_api
from .harness import API_KEY, DEFAULT_MODEL, MOCK_API, MOCK_PORT, ClaudeEnv, _read, parse_strace

WIDTH, HEIGHT = 160, 45


def accept_first_run_dialogs(env: ClaudeEnv, project: Path) -> None:
    """Onboarding, the API-key prompt, bypass-permissions and workspace trust, answered as a user would."""
    path = env.config_dir / ".claude.json"
    state: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    state["hasCompletedOnboarding"] = True
    state["bypassPermissionsModeAccepted"] = True
    state.setdefault("customApiKeyResponses", {"approved": [], "rejected": []})
    approved = state["customApiKeyResponses"].setdefault("approved", [])
    if API_KEY[-20:] not in approved:
        approved.append(API_KEY[-20:])
    state.setdefault("projects", {}).setdefault(str(project), {})["hasTrustDialogAccepted"] = True
    path.write_text(json.dumps(state, indent=1))


class TUI:
    def __init__(self, env: ClaudeEnv, *, script: Any = (), plugin_dir: str | os.PathLike[str] | None = None,
                 model: str | None = DEFAULT_MODEL, extra_env: Mapping[str, str | None] | None = None,
                 args: Sequence[str] = ("--dangerously-skip-permissions",), label: str = "tui") -> None:
        self.env = env
        self.run_dir = env._new_run_dir(label)
        self.socket = self.run_dir / "tmux.sock"
        self.script = script if isinstance(script, Mapping) else list(script)
        argv = env.claude_argv(*args)
        if model:
            argv += ["--model", model]
        if plugin_dir is not None:
            argv += ["--plugin-dir", str(plugin_dir)]
        argv += ["--debug-file", str(self.run_dir / "debug.txt")]
        self.argv = argv
        # Interactive runs also try to fetch the official marketplace over ssh to github.com: switched off, so
        # the network guard sees loopback only.
        self.process_env = env.base_env({"CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL": "1",
                                         **(extra_env or {})})
        self.proc: subprocess.Popen[str] | None = None

    # -- lifecycle -----------------------------------------------------------------------------------------
    def __enter__(self) -> TUI:
        accept_first_run_dialogs(self.env, self.env.project)
        q = shlex.quote
        d = self.run_dir
        (d / "script.json").write_text(json.dumps(self.script, indent=1))
        ready = d / "mock.ready"
        claude = (f"strace -f -qq -e signal=none --seccomp-bpf -e trace=connect,sendto,sendmsg,sendmmsg"
                  f" -o {q(str(d / 'claude.strace'))} -- {shlex.join(self.argv)}; echo TUI-EXITED; sleep 600")
        lines = [
            "set -u",
            "ip link set lo up || exit 97",
            f"{q(self.env.python)} {q(str(MOCK_API))} --port {MOCK_PORT} --script {q(str(d / 'script.json'))}"
            f" --record {q(str(d / 'requests.jsonl'))} --ready-file {q(str(ready))} 2> {q(str(d / 'mock.log'))} &",
            "MOCK_PID=$!",
            f"for _ in $(seq 1 400); do [ -e {q(str(ready))} ] && break; sleep 0.025; done",
            f"cd {q(str(self.env.project))} || exit 96",
            f"tmux -S {q(str(self.socket))} -f /dev/null new-session -d -x {WIDTH} -y {HEIGHT} {q(claude)}",
            f"while tmux -S {q(str(self.socket))} has-session 2>/dev/null; do sleep 0.2; done",
            "kill $MOCK_PID 2>/dev/null; wait $MOCK_PID 2>/dev/null",
            "exit 0",
        ]
        (d / "run.sh").write_text("\n".join(lines) + "\n")
        self.proc = subprocess.Popen(["unshare", "-n", "bash", str(d / "run.sh")], env=self.process_env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, start_new_session=True)
        try:
            deadline = time.monotonic() + 30
            while not self._tmux_ok("has-session") and time.monotonic() < deadline:
                time.sleep(0.1)
            self.wait_for_prompt()
        except BaseException:
            self.__exit__(AssertionError, None, None)  # __exit__ does not run when __enter__ fails: end the session
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._tmux_ok("kill-server")
        if self.proc is not None:
            try:
                self.proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.communicate()
        (self.run_dir / "screen.txt").write_text(getattr(self, "_last_screen", ""))
        if exc[0] is None:
            bad = [c for c in parse_strace(_read(self.run_dir / "claude.strace")) if c.outside]
            assert not bad, f"the TUI tried to reach beyond loopback: {[c.line for c in bad[:10]]}"

    # -- driving -------------------------------------------------------------------------------------------
    def _tmux(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-S", str(self.socket), *args], capture_output=True, text=True, timeout=30)

    def _tmux_ok(self, *args: str) -> bool:
        return self._tmux(*args).returncode == 0

    def send(self, text: str, *, enter: bool = True) -> None:
        """Type `text` (literally), then Enter as a separate key, as a person would."""
        self._tmux("send-keys", "-t", "0", "-l", text)
        if enter:
            time.sleep(0.3)  # the TUI reads pasted text and Enter separately
            self._tmux("send-keys", "-t", "0", "Enter")

    def key(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "0", *keys)

    def screen(self) -> str:
        text = self._tmux("capture-pane", "-p", "-J", "-S", "-200", "-t", "0").stdout
        self._last_screen = text
        return text

    def wait_for(self, needle: str | tuple[str, ...], timeout: float = 60) -> str:
        """The screen once it shows `needle` (or any of several); fails with the screen when it does not in time."""
        needles = (needle,) if isinstance(needle, str) else needle
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if any(n in text for n in needles):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"the TUI never showed {needle!r} (see {self.run_dir}); screen:\n{text}")
            time.sleep(0.25)

    def wait_for_prompt(self, timeout: float = 60) -> str:
        """The input box is drawn: the TUI is ready for a prompt. The bypass-permissions warning, which some
        states of .claude.json still show, is accepted as a user would."""
        ready = ("? for shortcuts", "shift+tab to cycle")
        deadline = time.monotonic() + timeout
        while True:
            text = self.wait_for((*ready, "Yes, I accept"), max(1.0, deadline - time.monotonic()))
            if any(n in text for n in ready):
                return text
            self.key("Down")
            time.sleep(0.2)
            self.key("Enter")
            time.sleep(0.5)

    def requests(self) -> list[dict[str, Any]]:
        """Every request the mock Messages API received so far."""
        return mock_api.load_records(self.run_dir / "requests.jsonl")
