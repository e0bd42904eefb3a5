"""Fuzzing what a repository and the model control: generated hostile `.claude/token_budgets.yaml` files, and
transcript folders full of FIFOs, links and garbage. Whatever they hold, the user's limits hold, no alert goes
anywhere the user did not configure, prices stay the user's, and every hook answers.

TOKEN_BUDGET_FUZZ_EXAMPLES sets the total number of generated cases: 10,000 when $CI is set (9,000 config layers
checked through `load`, 1,000 whole hooks in a hostile repo over a hostile transcript folder; about 4 minutes of one
core), 1,000 otherwise and in CI's shifted-clock reruns.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from builders import hook_payload, response, subagent_path, transcript_path, write_lines
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from token_budget.budgets import split_limit, thresholds
from token_budget.claude.hook import run
from token_budget.config import load
from token_budget.ledger import Ledger

# The full run once per CI run: the shifted-clock reruns (.ci/run, under faketime) test the clock, not the fuzz.
FULL = bool(os.environ.get("CI")) and not os.environ.get("FAKETIME")
TOTAL = int(os.environ.get("TOKEN_BUDGET_FUZZ_EXAMPLES") or (10_000 if FULL else 1_000))
HOOK_EXAMPLES = max(TOTAL // 10, 1)
CONFIG_EXAMPLES = max(TOTAL - HOOK_EXAMPLES, 1)
WATCHDOG = 20.0  # seconds: the hook's own deadline (claude/hook.py); an in-process run has no watchdog to end it

USER = {
    "timezone": "UTC",
    "counted_token_classes": ["input", "output", "cache_creation"],
    "budgets": {"global": {"daily_limit": 1000, "monthly_limit": 30000, "daily_limit_usd": 50},
                "per_model": {"claude-sonnet": 800}, "per_session": 5000},
    "enforcement": {"on_error": "open", "thresholds": {"log": "70%", "suggest": "90%", "block": "100%",
                                                      "stop": "110%"}},
    "alerts": {"channels": [{"type": "console", "threshold": "70%"}]},
}

# Values the schema accepts (so the file is read, and only the layering rule stands between it and the user's
# budgets), and values it rejects (so the whole file is refused): most generated files are valid.
counts = st.one_of(st.integers(min_value=0, max_value=10**13), st.sampled_from([0, 1, 999, 1000, 10**12, 2**62]))
usd = st.one_of(st.floats(min_value=0, max_value=1e9, allow_nan=False), st.sampled_from([0, 0.001, 49.99, 1e9]))
valid_percents = st.one_of(st.integers(min_value=0, max_value=10**6),
                           st.floats(min_value=0, max_value=1e6, allow_nan=False),
                           st.sampled_from(["0%", "0.001%", "50%", "69.9%", "100000%", " 5 %"]))
valid_limits = st.one_of(counts, st.fixed_dictionaries({}, optional={"tokens": counts, "usd": usd}))
bad_values = st.one_of(st.integers(max_value=-1), st.text(max_size=5), st.none(), st.floats(allow_nan=True),
                       st.lists(st.integers(), max_size=2))


def sometimes_bad(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(valid, valid, valid, valid, valid, valid, valid, valid, valid, bad_values)


hosts = st.sampled_from(["http://127.0.0.1:9/leak?k=$ANTHROPIC_API_KEY", "$ANTHROPIC_API_KEY", "${SLACK_WEBHOOK}",
                         "https://evil.example/x", "$SLACK_WEBHOOK_X", "ftp://x"])
channel = st.fixed_dictionaries({"type": st.sampled_from(["console", "slack", "email"])}, optional={
    "threshold": valid_percents, "webhook": hosts, "reports": st.booleans(),
    "to": st.sampled_from(["someone@elsewhere.example", ["a@b.example", "c@d.example"]]),
})
levels = st.dictionaries(st.sampled_from(["log", "alert", "suggest", "block", "stop"]), sometimes_bad(valid_percents),
                         max_size=5)
project_config = st.fixed_dictionaries({}, optional={
    "timezone": st.sampled_from(["Not/AZone", "Pacific/Kiritimati", "Etc/GMT+12", "local", "../../etc/passwd"]),
    "counted_token_classes": st.lists(st.sampled_from(["input", "output", "cache_read"]), min_size=1, max_size=3,
                                      unique=True),
    "mode": st.sampled_from(["normal", "economy", "auto"]),
    "budgets": st.fixed_dictionaries({}, optional={
        "global": st.fixed_dictionaries({}, optional={
            "daily_limit": sometimes_bad(counts), "monthly_limit": sometimes_bad(counts),
            "daily_limit_usd": sometimes_bad(usd), "monthly_limit_usd": usd,
            "alert_threshold": sometimes_bad(valid_percents)}),
        "per_model": st.dictionaries(st.sampled_from(["claude-sonnet", "claude-opus", "*", "claude-haiku"]),
                                     sometimes_bad(valid_limits), max_size=3),
        "per_workflow": st.dictionaries(st.sampled_from(["sprint", "orchestrate", "x"]), valid_limits, max_size=2),
        "per_session": sometimes_bad(counts),
    }),
    "enforcement": st.fixed_dictionaries({}, optional={"thresholds": levels,
                                                       "on_error": st.sampled_from(["open", "closed"])}),
    "alerts": st.fixed_dictionaries({}, optional={"channels": st.lists(channel, max_size=3),
                                                  "allowed_env": st.lists(st.sampled_from(["ANTHROPIC_API_KEY",
                                                                                           "HOME"]), max_size=2)}),
    "pricing": st.dictionaries(st.sampled_from(["claude-sonnet-4-5", "claude-sonnet-4-5-20250929", "*"]),
                               st.fixed_dictionaries({}, optional={"input": usd, "output": usd, "cache_read": usd}),
                               max_size=2),
    "trusted_projects": st.lists(st.sampled_from(["/", "~", ".", "/tmp"]), max_size=2),
    "optimizations": st.just({"model_downgrade": {"enabled": False}}),
    "degradation_strategy": st.just({"on_budget_exceeded": []}),
    "workflows": st.dictionaries(st.sampled_from(["sprint", "x"]), st.fixed_dictionaries(
        {"commands": st.lists(st.text(alphabet="abc-", min_size=1, max_size=5), max_size=2)},
        optional={"priority": st.sampled_from(["critical", "low", "normal"])}), max_size=2),
})
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
ALIASES = "a: &x {daily_limit: 99999999999}\nbudgets:\n  global: *x\n"
valid_text = project_config.map(lambda d: yaml.dump(d, Dumper=DUMPER, allow_unicode=True))
project_text = st.one_of(
    valid_text, valid_text, valid_text, valid_text, valid_text, valid_text,
    st.dictionaries(st.text(max_size=8), bad_values, max_size=3).map(lambda d: yaml.dump(d, Dumper=DUMPER)),
    st.sampled_from([ALIASES, "- a\n- b\n", "[unclosed", "budgets: " + "[" * 200 + "]" * 200, "\x00\xff", ""]),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
)


def write_user(hermetic_env: Path) -> None:
    path = hermetic_env / "xdg-config" / "token-budget" / "token_budgets.yaml"
    if not path.exists():  # once per test, not per example
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(USER))


def assert_never_looser(config: Any) -> None:
    glob = config.get("budgets", "global")
    for key in ("daily_limit", "monthly_limit", "daily_limit_usd"):
        assert 0 < glob[key] <= USER["budgets"]["global"][key], (key, glob[key])
    sonnet = split_limit(config.get("budgets", "per_model", "claude-sonnet"))
    assert 0 < sonnet[0] <= 800
    assert 0 < split_limit(config.get("budgets", "per_session"))[0] <= 5000
    mine = thresholds(type("C", (), {"get": lambda self, *k, default=None: _get(USER, k, default)})())
    for level, pct in thresholds(config).items():
        assert 0 < pct <= mine[level], (level, pct)
    assert config.get("alerts") == USER["alerts"]
    assert config.get("pricing") is None
    assert config.timezone == "UTC"
    assert config.counted_classes == tuple(USER["counted_token_classes"])
    assert config.get("enforcement", "on_error") == "open"
    assert config.get("optimizations", "model_downgrade", "enabled") is not False
    assert config.get("trusted_projects") is None


def _get(data: dict, keys: tuple, default: Any) -> Any:
    node: Any = data
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


@settings(max_examples=CONFIG_EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=project_text)
def test_no_project_file_loosens_the_users_config(text: str, tmp_path: Path, hermetic_env: Path) -> None:
    write_user(hermetic_env)
    repo = tmp_path / "repo"
    (repo / ".claude").mkdir(parents=True, exist_ok=True)
    (repo / ".claude" / "token_budgets.yaml").write_text(text, encoding="utf-8", errors="surrogateescape")
    assert_never_looser(load(repo))  # never raises: a bad project file is a notice, not an error


# -- whole hooks in a hostile repo, over a hostile transcript folder -------------------------------------------

planted = st.sampled_from(["fifo", "dev-zero", "dev-urandom", "outside-link", "dir-link", "garbage", "long-line",
                           "usage", "meta-fifo", "empty"])


def plant(kind: str, main: Path, n: int, outside: Path) -> None:
    path = subagent_path(main, f"a{n}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "dev-urandom":
        path.symlink_to("/dev/urandom")
    elif kind == "outside-link":
        path.symlink_to(outside)
    elif kind == "dir-link":
        (path.parent / f"d{n}").symlink_to(outside.parent, target_is_directory=True)
    elif kind == "garbage":
        path.write_bytes(os.urandom(512) + b"\n" + b'{"type":"assistant","usage"' * 20 + b"\n")
    elif kind == "long-line":
        path.write_bytes(b'{"usage":' + b"9" * (1 << 20))
    elif kind == "usage":
        write_lines(path, response(input_tokens=5, timestamp="2026-11-28T15:00:00.000Z", agent_id=f"a{n}"))
    elif kind == "meta-fifo":
        write_lines(path, response(input_tokens=5, timestamp="2026-11-28T15:00:00.000Z", agent_id=f"a{n}"))
        os.mkfifo(str(path)[: -len(".jsonl")] + ".meta.json")
    else:
        path.touch()


@pytest.fixture
def hostile_session(tmp_path: Path, hermetic_env: Path, claude_dir: Path) -> dict[str, Any]:
    write_user(hermetic_env)
    main = write_lines(transcript_path(claude_dir),
                       response(input_tokens=1200, output_tokens=0, timestamp="2026-11-28T15:00:00.000Z"))
    outside = tmp_path / "outside" / "agent-out.jsonl"
    write_lines(outside, response(input_tokens=10**9, timestamp="2026-11-28T15:00:00.000Z"))
    return {"main": main, "outside": outside, "repo": tmp_path / "repo", "data": hermetic_env / "data"}


@settings(max_examples=HOOK_EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=project_text, kinds=st.lists(planted, max_size=4),
       event=st.sampled_from(["UserPromptSubmit", "PreToolUse", "SessionStart"]))  # the deciding events
def test_every_hook_in_a_hostile_repo_still_stops_at_120_percent(text: str, kinds: list[str], event: str,
                                                                 hostile_session: dict[str, Any]) -> None:
    from datetime import datetime, timezone

    main, repo = hostile_session["main"], hostile_session["repo"]
    (repo / ".claude").mkdir(parents=True, exist_ok=True)
    (repo / ".claude" / "token_budgets.yaml").write_text(text, encoding="utf-8", errors="surrogateescape")
    shutil.rmtree(main.with_suffix(""), ignore_errors=True)
    for n, kind in enumerate(kinds):
        plant(kind, main, n, hostile_session["outside"])
    payload = hook_payload(event, main, cwd=str(repo), prompt="go on")
    out, err, answer = io.StringIO(), io.StringIO(), []
    now = datetime(2026, 11, 28, 15, 0, tzinfo=timezone.utc)
    worker = threading.Thread(target=lambda: answer.append(run([event], io.StringIO(json.dumps(payload)), out, err,
                                                               now=now)), daemon=True)
    worker.start()
    worker.join(WATCHDOG)
    assert answer, "the hook did not answer within the watchdog's deadline"
    assert answer[0] in (0, 2)
    result = json.loads(out.getvalue())
    assert result.get("continue") is False, result  # 120% of the user's daily limit: stop, whatever the repo says
    with Ledger.open(hostile_session["data"]) as ledger:
        kinds_sent = {row[0] for row in ledger.db.execute("SELECT DISTINCT type FROM deliveries")}
        costs = ledger.db.execute("SELECT MIN(cost_micros) FROM requests").fetchone()[0]
        total = ledger.db.execute("SELECT SUM(input_tokens) FROM requests").fetchone()[0]
    assert kinds_sent <= {"console"}  # no slack or email the user did not configure
    assert costs > 0  # the repo's zero prices never reached the ledger
    assert total < 10**9  # nothing was read through a link out of the session's folder
