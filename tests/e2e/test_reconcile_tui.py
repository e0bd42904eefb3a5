"""The interactive TUI (tmux, offline): two prompts, each with a prompt hook's request that no transcript shows, then
`/exit`. Claude Code writes its figures as the session ends and the SessionEnd hook reads them: the ledger then
holds every billed token, equal to Claude Code's own total to the micro-dollar.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import skip_or_fail
from .harness import API_KEY, MOCK_API, MOCK_PORT, REPO_ROOT, ClaudeEnv, ledger_rows, parse_strace
from .mock_api import text_turn

pytestmark = pytest.mark.e2e

MODEL = "claude-sonnet-4-5-20250929"
SCRIPT = [
    text_turn('{"ok": true}', input_tokens=320, output_tokens=9),  # the prompt hook's request
    text_turn("hello from mock", input_tokens=1200, output_tokens=40, cache_creation_input_tokens=400,
              cache_read_input_tokens=3000),
    text_turn('{"ok": true}', input_tokens=410, output_tokens=7),
    text_turn("second answer", input_tokens=1400, output_tokens=4, cache_read_input_tokens=3800),
]


def wait_for(text: str, socket: str, seconds: int = 30) -> str:
    """bash: poll the pane until it shows `text`."""
    return (f"for i in $(seq 1 {seconds * 4}); do tmux -L {socket} capture-pane -p 2>/dev/null | grep -qF "
            f"{shlex.quote(text)} "
            "&& break; sleep 0.25; done")


def test_the_tui_session_ends_with_every_billed_token_in_the_ledger(claude_env: ClaudeEnv, tmp_path: Path) -> None:
    if shutil.which("tmux") is None:
        skip_or_fail("tmux is not installed")
    env, data, run = claude_env, tmp_path / "tb-home", tmp_path / "tui"
    run.mkdir()
    (env.home / ".claude.json").write_text(json.dumps({
        "hasCompletedOnboarding": True, "bypassPermissionsModeAccepted": True,
        "customApiKeyResponses": {"approved": [API_KEY[-20:]], "rejected": []},
        "projects": {str(env.project): {"hasTrustDialogAccepted": True}},
        # The TUI's first start tries to clone the official marketplace (a DNS lookup of github.com): not now.
        "officialMarketplaceAutoInstallAttempted": True, "officialMarketplaceAutoInstalled": False,
        "officialMarketplaceAutoInstallRetryCount": 1, "officialMarketplaceAutoInstallNextRetryTime": 10**13}))
    (env.home / "settings.json").write_text(json.dumps({
        "statusLine": {"type": "command", "command": f"{sys.executable} -m token_budget statusline"},
        "hooks": {"UserPromptSubmit": [{"hooks": [{"type": "prompt", "prompt": 'Answer {"ok": true}: $ARGUMENTS'}]}]},
    }))
    (run / "script.json").write_text(json.dumps(SCRIPT))
    variables = env.base_env({"TOKEN_BUDGET_HOME": str(data), "TOKEN_BUDGET_PYTHON": sys.executable,
                              "PYTHONPATH": str(REPO_ROOT), "TERM": "xterm-256color"})
    claude = " ".join(["env", "-i", *(shlex.quote(f"{k}={v}") for k, v in variables.items()),
                       str(env.binaries.claude), "--model", MODEL, "--plugin-dir", str(REPO_ROOT)])
    socket = f"tb-e2e-{os.getpid()}"
    q = shlex.quote
    lines = [
        "ip link set lo up",
        f"{q(sys.executable)} {q(str(MOCK_API))} --port {MOCK_PORT} --script {q(str(run / 'script.json'))} "
        f"--record {q(str(run / 'requests.jsonl'))} --ready-file {q(str(run / 'ready'))} "
        f"2> {q(str(run / 'mock.log'))} &",
        f"for i in $(seq 1 200); do [ -e {q(str(run / 'ready'))} ] && break; sleep 0.05; done",
        f"tmux -L {socket} new-session -d -c {q(str(env.project))} -x 160 -y 45 {q(claude + '; sleep 2')}",
        wait_for("❯", socket),
        f"tmux -L {socket} send-keys 'say hi'; sleep 0.3; tmux -L {socket} send-keys Enter",
        wait_for("hello from mock", socket),
        "sleep 1",
        f"tmux -L {socket} send-keys 'and again'; sleep 0.3; tmux -L {socket} send-keys Enter",
        wait_for("second answer", socket),
        "sleep 2",
        f"tmux -L {socket} capture-pane -p > {q(str(run / 'screen.txt'))}",
        f"tmux -L {socket} send-keys '/exit'; sleep 0.3; tmux -L {socket} send-keys Enter",
        f"for i in $(seq 1 80); do tmux -L {socket} has-session 2>/dev/null || break; sleep 0.25; done",
        f"tmux -L {socket} kill-server 2>/dev/null; kill %1; exit 0",
    ]
    (run / "run.sh").write_text("\n".join(lines) + "\n")
    subprocess.run(["unshare", "-n", "strace", "-f", "-qq", "-e", "signal=none", "--seccomp-bpf", "-e",
                    "trace=connect,sendto,sendmsg,sendmmsg", "-o", str(run / "strace.txt"), "bash",
                    str(run / "run.sh")], check=True, timeout=180, env=variables)
    outside = [c for c in parse_strace((run / "strace.txt").read_text()) if c.outside]
    assert not outside, outside

    screen = (run / "screen.txt").read_text()
    assert "second answer" in screen and "day " in screen, screen  # the answer, and token-budget's status line
    requests = [json.loads(ln) for ln in (run / "requests.jsonl").read_text().splitlines()]
    assert len([r for r in requests if r.get("kind") == "messages"]) == 4
    (transcript,) = [p for p in (env.home / "projects").rglob("*.jsonl") if "subagents" not in p.parts]
    entries = [json.loads(ln) for ln in transcript.read_text().splitlines()]
    assert len({e["message"]["id"] for e in entries if e.get("type") == "assistant"}) == 2  # the hooks' are not
    total = [e for e in entries if e.get("type") == "cost-state"][-1]["totalCostUSD"]
    rows = ledger_rows(data)
    assert sum(r["cost_micros"] for r in rows) == round(total * 1e6)
    assert [(r["input_tokens"], r["output_tokens"]) for r in rows if r["source"] == "reconciled"] == [(730, 16)]
