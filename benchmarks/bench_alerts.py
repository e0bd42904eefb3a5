"""A stalled Slack webhook adds nothing to hook latency: the hook only enqueues and Popens a detached sender.

    python3 benchmarks/bench_alerts.py [--runs N]

Each timed hook (UserPromptSubmit) finds one pending Slack delivery and no sender, so it starts one: the worst case
for the hook. Three cases: no alert pending (no sender started); a webhook that answers at once; a webhook that
stalls for 30 s. Senders time out after 5 s (TOKEN_BUDGET_ALERT_TIMEOUT) and give up at once, so they exit soon.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from common import (
    ROOT,
    Figure,
    hook_argv,
    hook_env,
    payload,
    table,
    time_process,
)

CONFIG = "alerts:\n  channels:\n    - type: slack\n      threshold: 0%\n      webhook: $SLACK_WEBHOOK\n"
_n = itertools.count()


def seed_pending(data: Path) -> None:
    """Claim a fresh alert with its Slack delivery, as a previous hook would have."""
    from token_budget import clock
    from token_budget.channels import channels
    from token_budget.ledger import Ledger
    from token_budget.models import Alert
    from token_budget.outbox import enqueue

    n = next(_n)
    with Ledger.open(data) as ledger, ledger.transaction():
        alert = Alert("daily", "alert", 80, f"bench-{n}", 800_000, 1_000_000, clock.timestamp())
        ledger.claim_alert(alert)
        enqueue(
            ledger,
            alert.key,
            alert.threshold,
            channels(
                {"alerts": {"channels": [{"type": "slack", "threshold": 0, "webhook": "$SLACK_WEBHOOK"}]}}
            ),
            now=clock.timestamp(),
        )


def delivery_summary(data: Path) -> dict[str, int]:
    import sqlite3

    db = sqlite3.connect(data / "ledger.db")
    try:
        summary = dict(db.execute("SELECT state, COUNT(*) FROM deliveries GROUP BY state").fetchall())
        summary["attempts"] = db.execute("SELECT COUNT(*) FROM delivery_attempts").fetchone()[0]
        return summary
    finally:
        db.close()


def senders_done(data: Path) -> bool:
    from token_budget.delivery import sender_running

    return not sender_running(data)


def measure(quick: bool = False, runs: int | None = None) -> list[Figure]:
    """Figures for benchmarks/run.py; also prints the delivery outcomes of each case."""
    from alert_servers import SlackServer, wait_for  # from tests/, which importing common put on sys.path

    runs = runs or (4 if quick else 15)
    work = ROOT / "benchmarks" / ".work"
    work.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=work))
    answering, stalling = SlackServer().start(), SlackServer().start()  # one server per case: no mode to switch
    stalling.mode, stalling.stall_seconds = "stall", 30
    try:
        config = tmp / "alerts.yaml"
        config.write_text(CONFIG)
        transcript = tmp / "claude" / "projects" / "-bench" / "s.jsonl"
        transcript.parent.mkdir(parents=True)
        transcript.write_text("")
        stdin = payload(transcript, "UserPromptSubmit", prompt="hello")
        cases = {"no alert pending": answering, "alert pending, webhook answers": answering,
                 "alert pending, webhook stalls 30 s": stalling}
        setups = {}
        for case, server in cases.items():
            data = tmp / case.replace(" ", "_").replace(",", "")
            env = hook_env(
                data,
                {
                    "TOKEN_BUDGET_CONFIG": str(config),
                    "SLACK_WEBHOOK": server.url,
                    "TOKEN_BUDGET_ALERT_TIMEOUT": "5",
                    "TOKEN_BUDGET_ALERT_GIVE_UP": "0",
                },
            )
            time_process(hook_argv("UserPromptSubmit"), stdin=stdin, env=env, runs=0)  # creates the ledger
            setups[case] = data, env

        def settled() -> bool:  # every sender started so far has made its attempt and let go of its lock
            return all(not delivery_summary(d).get("pending") and senders_done(d) for d, _e in setups.values())

        # Round robin, one hook per case per round: load that drifts during the minutes this takes (other jobs on
        # the machine) weighs on every case alike. Each timed hook starts its own sender and none runs beside it.
        samples: dict[str, list[float]] = {case: [] for case in cases}
        for _ in range(runs):
            for case in cases:
                data, env = setups[case]
                wait_for(settled, timeout=15)
                if not case.startswith("no alert"):
                    seed_pending(data)
                samples[case].append(time_process(hook_argv("UserPromptSubmit"), stdin=stdin, env=env, runs=1,
                                                  warm=False))
        results = {case: statistics.median(values) for case, values in samples.items()}
        wait_for(settled, timeout=15)
        outcomes = {case: delivery_summary(data) for case, (data, _env) in setups.items()}
        base = results["alert pending, webhook answers"]
        section = "Alert delivery (UserPromptSubmit hook that starts a sender)"
        figures = [Figure(section, f"hook, {case}", seconds, base, "webhook answers",
                          1.2 if "stalls" in case else None, "~1.0x (<= 1.2x)" if "stalls" in case else "")
                   for case, seconds in results.items()]
        for case, summary in outcomes.items():
            print(f"deliveries, {case}: {summary}")
        print(f"Slack posts received: answering server {len(answering.posts)}, stalling server {len(stalling.posts)}")
        return figures
    finally:
        answering.stop()
        stalling.stop()
        time.sleep(0.2)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(table(measure(args.quick, None if args.quick else args.runs)))


if __name__ == "__main__":
    main()
