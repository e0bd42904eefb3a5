"""`tokens import` of a generated 200 MB transcript tree against ccusage 20.0.24 on the same tree, and its peak memory.

    python3 benchmarks/bench_import.py [--size-mb 200]

ccusage runs offline inside `unshare -n` when available (it must never reach the network from a benchmark).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import PYTHON, ROOT, header, row
from fixtures import write_transcript

CCUSAGE = Path.home() / ".cache" / "token-budget-e2e" / "node_modules" / "@ccusage" / "ccusage-linux-x64" / "bin" / "ccusage"


def build_tree(claude_dir: Path, total_bytes: int, seed: int = 5) -> int:
    """Files sized like a real profile (median ~100 KB, a long tail of multi-MB sessions)."""
    rng = random.Random(seed)
    written = files = 0
    while written < total_bytes:
        size = int(min(rng.lognormvariate(11.6, 1.3), 40 << 20))
        session = f"s{files:05d}"
        path = claude_dir / "projects" / f"-work-p{files % 40}" / f"{session}.jsonl"
        write_transcript(path, size, session=session)
        written += path.stat().st_size
        files += 1
    return files


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Wall seconds and the child's peak RSS in KiB (one fresh process per call)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{argv[:3]} failed: {proc.stderr.decode()[-1500:]}")
    return elapsed, max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=200)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(dir=ROOT / "benchmarks" / ".work" if (ROOT / "benchmarks" / ".work").is_dir() else None))
    try:
        claude = work / "claude"
        files = build_tree(claude, args.size_mb << 20)
        size = sum(p.stat().st_size for p in claude.rglob("*.jsonl"))
        env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "TOKEN_BUDGET_HOME": str(work / "data"),
               "XDG_CONFIG_HOME": str(work / "xdg"), "PYTHONPATH": str(ROOT), "TZ": "UTC"}
        ours, rss = timed([PYTHON, "-m", "token_budget", "import", "--claude-dir", str(claude)], env)
        again, _ = timed([PYTHON, "-m", "token_budget", "import", "--claude-dir", str(claude)], env)
        print(header(f"Import: {files:,} files, {size / (1 << 20):,.0f} MB"))
        if CCUSAGE.exists():
            cc_env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "CLAUDE_CONFIG_DIR": str(claude)}
            jail = ["unshare", "-n"] if shutil.which("unshare") and subprocess.run(
                ["unshare", "-n", "true"], capture_output=True).returncode == 0 else []
            theirs, _ = timed([*jail, str(CCUSAGE), "claude", "daily", "--json", "--offline"], cc_env)
            print(row("ccusage claude daily --json --offline (baseline)", theirs, theirs))
            print(row("tokens import, empty ledger", ours, theirs, "<= 1x"))
            print(row("tokens import again, nothing new", again, theirs))
        else:
            print(f"(ccusage not installed at {CCUSAGE}: run tests/e2e/install.sh for the comparison)")
            print(f"tokens import: {ours:.2f} s; again: {again:.2f} s")
        print(f"\nPeak memory of the import: {rss / 1024:,.0f} MiB for {size / (1 << 20):,.0f} MB of transcripts "
              f"(streamed in 4 MiB chunks; bounded by the largest batch of rows, not the tree)")
        print(json.dumps({"import_s": round(ours, 3), "peak_rss_mib": round(rss / 1024, 1), "files": files}))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
