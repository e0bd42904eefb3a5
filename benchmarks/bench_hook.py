"""Hook overhead against bare interpreter start-up: the numbers behind "hooks that cost nothing noticeable".

    python3 benchmarks/bench_hook.py [--quick]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from common import PYTHON, ROOT, baseline, header, hook_argv, hook_env, payload, row, time_process
from fixtures import append_request, fill_ledger, write_transcript


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller ledger and fewer runs")
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / ".work")
    args = parser.parse_args()
    runs = 8 if args.quick else 20
    requests = 20_000 if args.quick else 100_000
    args.work.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=args.work))
    try:
        data = tmp / "data"
        fill_ledger(data, requests)
        big = tmp / "claude" / "projects" / "-bench" / "big.jsonl"
        small = tmp / "claude" / "projects" / "-bench" / "small.jsonl"
        write_transcript(big, 50 << 20, session="big")
        write_transcript(small, 50 << 10, session="small")
        env = hook_env(data)
        argv = hook_argv()
        for path in (big, small):  # first ingest: the hooks measured below only see what is appended
            time_process(argv, stdin=payload(path), env=env, runs=1)
        base = baseline()
        grew_big = time_process(argv, stdin=payload(big), env=env, runs=runs, before=lambda: append_request(big, "big"))
        same_big = time_process(argv, stdin=payload(big), env=env, runs=runs)
        grew_small = time_process(argv, stdin=payload(small), env=env, runs=runs,
                                  before=lambda: append_request(small, "small"))
        via_sh = time_process(["sh", str(ROOT / "scripts" / "hook.sh"), "PostToolUse"], stdin=payload(big),
                              env={**env, "TOKEN_BUDGET_PYTHON": PYTHON}, runs=runs)
        print(header(f"Hook overhead ({requests:,}-request ledger; baseline `python -c pass` = {base * 1000:.1f} ms)"))
        print(row("hook, 50 MB transcript gained one request", grew_big, base, "<= 2x"))
        print(row("hook, 50 MB transcript, nothing new", same_big, base, "<= 1x"))
        print(row("hook, 50 KB transcript gained one request", grew_small, base))
        print(row("plugin hook.sh wrapper, nothing new", via_sh, base))
        print(f"\n50 MB vs 50 KB transcript (one new request each): {grew_big / grew_small:.2f}x (target <= 1.2)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
