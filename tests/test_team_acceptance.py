"""Team mode end to end, every part real: three data dirs act as three machines of one team, each with 16 hooks
at once over growing transcripts; the hooks start the detached syncs themselves; the PostgreSQL server is killed
(`pg_ctl stop -m immediate`) in the middle of syncs and started again. The server's totals must equal the
transcripts' exactly, with no duplicate, and the team alert must reach Slack once for the whole team."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from alert_servers import SlackServer
from builders import hook_payload, response, transcript_path, write_lines
from team_helpers import Machine, TeamDb

from token_budget.periods import iso

ROOT = Path(__file__).resolve().parent.parent
LAUNCHER = ROOT / "token_budget" / "claude" / "run_hook.py"
PARALLEL = 16
CHANNEL = "alerts:\n  channels:\n    - {type: slack, threshold: 80%, webhook: $SLACK_WEBHOOK}\n"


def start_hook(m: Machine, event: str, path: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-S", str(LAUNCHER), event], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=m.env)
    assert proc.stdin is not None
    payload = hook_payload(event, path, session_id=path.stem, prompt="go on", cwd=str(m.root))
    proc.stdin.write(json.dumps(payload).encode())
    proc.stdin.close()
    proc.stdin = None
    return proc


def finish(procs: list[subprocess.Popen]) -> list[dict]:
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode in (0, 2), (out + err).decode()
        assert b"enforcement skipped" not in out, (out + err).decode()
        outs.append(json.loads(out or b"{}") if proc.returncode == 0 else {"blocked": err.decode()})
    return outs


def expected_totals(paths: list[Path]) -> dict[str, int]:
    best: dict[str, tuple[int, int]] = {}
    for path in paths:
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            usage = entry["message"]["usage"]
            value = (usage["input_tokens"], usage["output_tokens"])
            best[entry["message"]["id"]] = max(best.get(entry["message"]["id"], value), value, key=sum)
    return {"requests": len(best), "input": sum(v[0] for v in best.values()),
            "output": sum(v[1] for v in best.values())}


def team_sync(m: Machine) -> dict:
    """`tokens team sync`: waits for a running sync, then pushes whatever is left."""
    proc = subprocess.run([sys.executable, "-m", "token_budget", "team", "sync", "--json"], env=m.env,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def wait_until_idle(machines: list[Machine]) -> None:
    from token_budget.delivery import sender_running
    from token_budget.detached import running
    from token_budget.team import LOCK_NAME

    for _ in range(1200):
        if not any(running(m.data_dir, LOCK_NAME) or sender_running(m.data_dir) for m in machines):
            return
        time.sleep(0.05)
    raise AssertionError("a team sync or an alert sender is still running")


def grow(rng: random.Random, paths: list[Path]) -> None:
    now = iso(datetime.now(timezone.utc))
    for path in paths:
        for _ in range(rng.randint(1, 2)):
            write_lines(path, response(session_id=path.stem, timestamp=now, blocks=rng.randint(1, 3), partial_output=1,
                                       input_tokens=rng.randint(1, 4_000), output_tokens=rng.randint(2, 2_000)))


def wave(rng: random.Random, machines: list[Machine], sessions: dict[str, list[Path]]) -> list[dict]:
    procs = []
    for m in machines:
        grow(rng, sessions[m.member])
        for _ in range(PARALLEL):  # 16 hooks at once on each machine, over transcripts still being written
            procs.append(start_hook(m, rng.choice(("UserPromptSubmit", "PostToolUse", "Stop", "PreToolUse")),
                                    rng.choice(sessions[m.member])))
    return finish(procs)


def machines_of(team: TeamDb, tmp_path: Path, slack: SlackServer, extra: str = "") -> list[Machine]:
    out = []
    for name in ("ann", "ben", "cy"):
        m = Machine(tmp_path / name, f"{name}@example.com", team.member(f"{name}@example.com"),
                    extra_config=CHANNEL, env={"SLACK_WEBHOOK": slack.url})
        m.write_config(f"  sync_interval: 1\n{extra}")
        out.append(m)
    return out


@pytest.mark.slow
def test_three_machines_sixteen_hooks_each_exact_team_totals_and_one_team_alert(
        postgres, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(17)
    team = TeamDb(postgres)
    slack = SlackServer().start()
    try:
        machines = machines_of(team, tmp_path, slack)
        sessions = {m.member: [transcript_path(m.claude_dir, f"{m.member[:3]}-{i}") for i in range(4)]
                    for m in machines}
        team.set_budget("team:monthly", 10**12)  # not near yet: the alert must come from the real usage below
        for _ in range(5):
            wave(rng, machines, sessions)
        expected = expected_totals([p for paths in sessions.values() for p in paths])
        # The budget now sits just under the usage: 80% crossed, 90% not, on every machine's next look.
        team.set_budget("team:monthly", int((expected["input"] + expected["output"]) / 0.85))
        wait_until_idle(machines)
        for m in machines:  # the last lines of each session, then whatever is left to push
            finish([start_hook(m, "Stop", p) for p in sessions[m.member]])
            team_sync(m)
        assert team.totals() == expected
        assert team.rollup_matches_requests()
        for m in machines:  # each machine crosses 80% on its own hook and tells its own user ...
            team_sync(m)
            out, = finish([start_hook(m, "UserPromptSubmit", sessions[m.member][0])])
            assert "team's monthly budget is at" in out.get("systemMessage", ""), out
        for m in machines:
            team_sync(m)
        wait_until_idle(machines)
        team_posts = [p for p in slack.posts if "team" in json.dumps(p)]
        assert len(team_posts) == 1, slack.posts  # ... and the team's channel hears it once
        assert team.sql("SELECT COUNT(*) FROM token_budget.alert_claims WHERE key LIKE 'team:monthly/80/%%'") == [(1,)]
    finally:
        slack.stop()


@pytest.mark.slow
def test_the_server_killed_mid_sync_loses_and_duplicates_nothing_and_on_stale_applies(
        postgres, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(18)
    team = TeamDb(postgres)
    team.set_budget("team:monthly", 10**12)
    slack = SlackServer().start()
    try:
        machines = machines_of(team, tmp_path, slack, "  max_staleness: 10\n  on_stale: closed\n")
        sessions = {m.member: [transcript_path(m.claude_dir, f"{m.member[:3]}-{i}") for i in range(3)]
                    for m in machines}
        for _ in range(2):
            wave(rng, machines, sessions)
        wait_until_idle(machines)
        for m in machines:
            team_sync(m)
        wave(rng, machines, sessions)  # their syncs are starting and running ...
        postgres.stop("immediate")  # ... when the server dies
        try:
            wave(rng, machines, sessions)  # hooks go on from the last totals plus local usage: nothing blocks yet
            time.sleep(11)  # past team.max_staleness
            outs = wave(rng, machines, sessions)
            blocked = [o for o in outs if o.get("decision") == "block" or o.get("permissionDecision") == "deny"
                       or "deny" in json.dumps(o)]
            assert blocked, outs  # on_stale: closed
            assert any("team server has not answered" in json.dumps(o) for o in outs)
        finally:
            postgres.start()
        wait_until_idle(machines)
        for m in machines:
            finish([start_hook(m, "Stop", p) for p in sessions[m.member]])
            team_sync(m)
        assert team.totals() == expected_totals([p for paths in sessions.values() for p in paths])
        assert team.rollup_matches_requests()
        for m in machines:
            assert team_sync(m)["pushed"] == 0  # everything went exactly once
            log = (m.data_dir / "team.log").read_text()
            assert m.dsn.split(":")[2].split("@")[0] not in log
    finally:
        slack.stop()
