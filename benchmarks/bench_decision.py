"""What the budget decision adds to a hook: its imports plus its work, as a share of the hook's wall time.

    python3 benchmarks/bench_decision.py [--quick]

The decision is everything after ingest: budget states (daily, monthly, session, workflow, per-model SUMs over the
ledger), the policy, the alert claim check and the answer. Target: at most 10% of the wall time of a hook that
takes the full path (one new request to ingest; a hook with nothing new answers from its state file instead).
"""

from __future__ import annotations

import statistics
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

from common import (
    PYTHON,
    ROOT,
    Figure,
    bench_config,
    compile_package,
    hook_argv,
    hook_env,
    payload,
    run_alone,
    time_process,
)
from fixtures import CACHE, append_request, cached_ledger, cached_transcript

IMPORT_PROBE = """
import sys, time
sys.path[0] = {root!r}
import token_budget.claude.hook, token_budget.config, token_budget.ledger, token_budget.claude.transcript
start = time.perf_counter()
import token_budget.claude.enforce  # what a hook with nothing new adds for the decision (pricing is ingest's)
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


def measure(quick: bool = False, requests: int = 100_000) -> list[Figure]:
    import os

    runs = 8 if quick else 20
    compile_package()
    data = cached_ledger(requests)
    config = bench_config(CACHE)
    os.environ["TOKEN_BUDGET_CONFIG"] = str(config)  # decision_cost loads the config in this process
    transcript = cached_transcript("small", 50 << 10)
    env = hook_env(data, {"TOKEN_BUDGET_CONFIG": str(config)})
    time_process(hook_argv("PreToolUse"), stdin=payload(transcript, "PreToolUse"), env=env, runs=1)
    imports = import_cost(runs)
    figures = []
    for event in ("PreToolUse", "UserPromptSubmit", "SessionStart"):  # the events that decide (the others record)
        wall = time_process(hook_argv(event), stdin=payload(transcript, event, prompt="go on"), env=env, runs=runs,
                            before=lambda: append_request(transcript, "small"))
        work = decision_cost(data, transcript, event, runs)
        figures.append(Figure(f"Budget decision share of hook time ({requests // 1000:,}k ledger, one new request)",
                              f"{event}: decision {work * 1000:.2f} ms + its imports {imports * 1000:.2f} ms",
                              work + imports, wall, "hook wall time", 0.10, "<= 10%"))
    return figures


if __name__ == "__main__":
    run_alone(measure)
