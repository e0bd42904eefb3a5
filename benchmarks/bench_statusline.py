"""`tokens status` and the status line against bare interpreter start-up, on a 1M-request ledger.

    python3 benchmarks/bench_statusline.py [--quick]

Targets: the status line (Claude Code runs it after every assistant message) at most 1.5x `python -c pass`;
`tokens status` at most 2x. The installed status line is `python -S …/run_statusline.py` (see
`tokens install --statusline`); the hook's compiled config cache is warm, as it is inside a session.
"""

from __future__ import annotations

import json

from common import (
    BARE,
    BARE_S,
    PYTHON,
    ROOT,
    Case,
    Figure,
    alternate,
    baseline_cases,
    bench_config,
    compile_package,
    hook_env,
    run_alone,
    time_process,
)
from fixtures import CACHE, cached_ledger

LAUNCHER = ROOT / "token_budget" / "claude" / "run_statusline.py"


def measure(quick: bool = False, requests: int = 1_000_000) -> list[Figure]:
    compile_package()
    runs = 15 if quick else 21
    data = cached_ledger(requests)
    env = hook_env(data, {"TOKEN_BUDGET_CONFIG": str(bench_config(CACHE))})
    stdin = json.dumps(
        {
            "session_id": "bench",
            "cwd": "/tmp/bench",
            "model": {"id": "claude-sonnet-4-5-20250929", "display_name": "Sonnet 4.5"},
            "context_window": {"used_percentage": 42.0, "context_window_size": 200000},
        }
    ).encode()
    argv = [PYTHON, "-S", str(LAUNCHER)]
    time_process(argv, stdin=stdin, env=env, runs=1)  # builds the config cache, as the first hook does
    entry_env = {**env, "PYTHONPATH": str(ROOT)}
    cpu: dict[str, float] = {}
    t = alternate([*baseline_cases(), Case("fast", argv, stdin=stdin, env=env),
                   Case("entry", [PYTHON, "-m", "token_budget", "statusline"], stdin=stdin, env=entry_env),
                   Case("status", [PYTHON, "-m", "token_budget", "status", "--color", "never"], env=entry_env)],
                  runs, cpu)
    base, base_s, fast, via_entry, status = t[BARE], t[BARE_S], t["fast"], t["entry"], t["status"]
    bare = BARE
    label = f"{requests // 1000:,}k-request ledger"
    return [
        Figure("Status at scale", f"tokens status, {label}", status, base, bare, 2.0,
               note=f"{status / base_s:.1f}x {BARE_S}; CPU time {cpu['status'] / cpu[BARE]:.2f}x"),
        Figure("Status line", f"python -S run_statusline.py (installed), {label}", fast, base, bare, 1.5,
               note=f"{fast / base_s:.1f}x {BARE_S}; CPU time {cpu['fast'] / cpu[BARE]:.2f}x"),
        Figure("Status line", f"tokens statusline (console script, site-packages on), {label}", via_entry, base,
               bare),
    ]


if __name__ == "__main__":
    run_alone(measure)
