"""What the budget decision adds to a hook: its imports plus its work, as a share of the hook's wall time.

    python3 benchmarks/bench_decision.py [--quick]

The decision is everything after ingest: budget states (daily, monthly, session, workflow, per-model SUMs over the
ledger), the policy, the alert claim check and the answer. Target: at most 10% of the hook's wall time.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from common import PYTHON, ROOT, hook_argv, hook_env, payload, time_process
from fixtures import fill_ledger, write_transcript

IMPORT_PROBE = """
import sys, time
sys.path[0] = {root!r}
import token_budget.claude.hook, token_budget.config, token_budget.ledger, token_budget.claude.transcript
start = time.perf_counter()
import token_budget.claude.enforce, token_budget.pricing
print(time.perf_counter() - start)
"""


def import_cost(runs: int) -> float:
    samples = []
    for _ in range(runs):
        out = subprocess.run([PYTHON, "-S", "-c", IMPORT_PROBE.format(root=str(ROOT))], capture_output=True,
                             text=True, check=True).stdout
        samples.append(float(out))
    return statistics.median(samples)


def decision_cost(data: Path, transcript: Path, event: str, runs: int) -> float:
    import json
    import os

    os.environ["TOKEN_BUDGET_HOME"] = str(data)
    from token_budget.claude import enforce
    from token_budget.config import load_cached
    from token_budget.ledger import Ledger

    config = load_cached(data, "/tmp/bench")
    body = json.loads(payload(transcript, event, prompt="go on"))
    now = datetime.now(timezone.utc)
    samples = []
    with Ledger.open(data) as ledger:
        for i in range(runs + 1):
            start = time.perf_counter()
            step = enforce.prepare(event, body, ledger, config, now)
            claimed = enforce.claim_alerts(ledger, step)
            enforce.respond(step, body, ledger, claimed)
            if i:
                samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller ledger and fewer runs")
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / ".work")
    args = parser.parse_args()
    runs = 8 if args.quick else 20
    requests = 20_000 if args.quick else 100_000
    args.work.mkdir(parents=True, exist_ok=True)
    # Byte-compile first, as an install does: with PYTHONDONTWRITEBYTECODE set, every run would compile the source.
    subprocess.run([PYTHON, "-m", "compileall", "-q", str(ROOT / "token_budget")], check=True)
    tmp = Path(tempfile.mkdtemp(dir=args.work))
    try:
        data = tmp / "data"
        fill_ledger(data, requests)
        transcript = tmp / "claude" / "projects" / "-bench" / "s.jsonl"
        write_transcript(transcript, 50 << 10, session="s")
        env = hook_env(data)
        time_process(hook_argv("PreToolUse"), stdin=payload(transcript, "PreToolUse"), env=env, runs=1)
        imports = import_cost(runs)
        print(f"\n## Budget decision cost ({requests:,}-request ledger, nothing new in the transcript)\n")
        print(f"| {'event':<18} | {'hook wall':>10} | {'decision':>9} | {'+ imports':>9} | {'share':>6} | target |")
        print(f"|{'-' * 20}|{'-' * 12}|{'-' * 11}|{'-' * 11}|{'-' * 8}|--------|")
        for event in ("PreToolUse", "UserPromptSubmit", "PostToolUse"):
            wall = time_process(hook_argv(event), stdin=payload(transcript, event, prompt="go on"), env=env,
                                runs=runs)
            work = decision_cost(data, transcript, event, runs)
            share = (work + imports) / wall
            print(f"| {event:<18} | {wall * 1000:7.1f} ms | {work * 1000:6.2f} ms | {imports * 1000:6.2f} ms | "
                  f"{share:6.1%} | <= 10% |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
