"""Hook overhead against bare interpreter start-up: the numbers behind "hooks that cost nothing noticeable".

    python3 benchmarks/bench_hook.py [--quick]

The hook is `python -S token_budget/claude/run_hook.py PreToolUse` (what `tokens install` and hook.sh run), on
ledgers of 0, 100k and 1M requests, with a 50 MB transcript that gained one request and with nothing new, and
with a 50 KB transcript that gained one. Baselines: bare `python3 -c pass` (default flags: the target's baseline)
and, for honesty, `python3 -S -c pass` (the hook skips site-packages; the bare start-up does not).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from common import (
    PYTHON,
    ROOT,
    Figure,
    bare_baselines,
    bench_config,
    compile_package,
    hook_argv,
    hook_env,
    payload,
    run_alone,
    time_process,
)
from fixtures import CACHE, append_request, cached_ledger, cached_transcript

SECTION = "Hook overhead (PreToolUse)"


def measure(quick: bool = False) -> list[Figure]:
    compile_package()
    runs = 8 if quick else 20
    base, base_s = bare_baselines(runs * 2)
    big = cached_transcript("big", 50 << 20)
    small = cached_transcript("small", 50 << 10)
    config = bench_config(CACHE)
    bare = "python3 -c pass"
    figures = [Figure("Baselines", "bare `python3 -c pass` (site .pth imports certifi here)", base),
               Figure("Baselines", "bare `python3 -S -c pass`", base_s, base, bare)]
    argv = hook_argv("PreToolUse")
    scratch = CACHE.parent / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    empty = Path(tempfile.mkdtemp(dir=scratch))
    try:
        for requests in (0, 100_000, 1_000_000):
            data = cached_ledger(requests) if requests else empty / "data"
            env = hook_env(data, {"TOKEN_BUDGET_CONFIG": str(config)})
            for path in (big, small):  # catch up first: the hooks timed below only see what is appended
                time_process(argv, stdin=payload(path, "PreToolUse"), env=env, runs=1)
            grew = time_process(argv, stdin=payload(big, "PreToolUse"), env=env, runs=runs,
                                before=lambda: append_request(big, "big"))
            same = time_process(argv, stdin=payload(big, "PreToolUse"), env=env, runs=runs)
            label = f"{requests // 1000:,}k-request ledger" if requests else "empty ledger"
            figures.append(Figure(SECTION, f"{label}, 50 MB transcript gained one request", grew, base, bare, 2.0,
                                  note=f"{grew / base_s:.1f}x bare -S"))
            figures.append(Figure(SECTION, f"{label}, 50 MB transcript, nothing new", same, base, bare, 1.0,
                                  note=f"{same / base_s:.1f}x bare -S"))
            if requests == 100_000:
                grew_small = time_process(argv, stdin=payload(small, "PreToolUse"), env=env, runs=runs,
                                          before=lambda: append_request(small, "small"))
                figures.append(Figure("Ingest cost vs transcript size", "100k ledger, 50 KB transcript gained one "
                                      "request (baseline of the next row)", grew_small))
                figures.append(Figure("Ingest cost vs transcript size", "100k ledger, 50 MB transcript gained one "
                                      "request", grew, grew_small, "50 KB case", 1.2, "~1.0x (<= 1.2x)"))
                via_sh = time_process(["sh", str(ROOT / "scripts" / "hook.sh"), "PreToolUse"],
                                      stdin=payload(big, "PreToolUse"), env={**env, "TOKEN_BUDGET_PYTHON": PYTHON},
                                      runs=runs)
                figures.append(Figure(SECTION, "100k ledger, nothing new, through the plugin's hook.sh", via_sh,
                                      base, bare))
    finally:
        shutil.rmtree(empty, ignore_errors=True)
    return figures


if __name__ == "__main__":
    run_alone(measure)
