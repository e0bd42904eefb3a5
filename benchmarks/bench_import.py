"""`tokens import` of a generated 200 MB transcript tree against ccusage 20.0.24 on the same tree, its peak memory,
and `tokens status` on the resulting ledger against ccusage's daily report over the same history.

    python3 benchmarks/bench_import.py [--quick] [--size-mb 200] [--profile]

ccusage runs offline inside `unshare -n` when available (it must never reach the network from a benchmark). The
tree is generated once and cached in benchmarks/.work/cache; every run imports it into a fresh ledger.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import PYTHON, ROOT, Figure, bench_config, compile_package, table
from fixtures import CACHE, write_transcript

CCUSAGE = (Path.home() / ".cache" / "token-budget-e2e" / "node_modules" / "@ccusage" / "ccusage-linux-x64" / "bin"
           / "ccusage")
SECTION = "Import (`tokens import`, fresh ledger)"


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


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, int, bytes]:
    """Wall seconds, this child's own peak RSS in KiB (wait4, not RUSAGE_CHILDREN's all-time max), and stdout."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{argv[:4]} failed: {err.decode()[-1500:]}")
    return elapsed, usage.ru_maxrss, out


def best(argv: list[str], env: dict[str, str] | None, runs: int) -> float:
    return min(timed(argv, env)[0] for _ in range(runs))


def jail() -> list[str]:
    ok = shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0
    return ["unshare", "-n"] if ok else []


def measure(quick: bool = False, size_mb: int = 200, profile: bool = False) -> list[Figure]:
    from fixtures import cached_tree

    compile_package()
    claude = cached_tree(size_mb)
    files = list(claude.rglob("*.jsonl"))
    size = sum(p.stat().st_size for p in files)
    scratch = CACHE.parent / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=scratch))
    runs = 1 if quick else 3
    figures: list[Figure] = []
    try:
        env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "TOKEN_BUDGET_HOME": str(work / "data"),
               "XDG_CONFIG_HOME": str(work / "xdg"), "PYTHONPATH": str(ROOT), "TZ": "UTC",
               "TOKEN_BUDGET_CONFIG": str(bench_config(work))}
        tokens = [PYTHON, "-m", "token_budget"]
        label = f"{len(files):,} files, {size / (1 << 20):,.0f} MB"
        theirs = None
        if CCUSAGE.exists():
            cc_env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "CLAUDE_CONFIG_DIR": str(claude), "TZ": "UTC"}
            cc = [*jail(), str(CCUSAGE), "claude", "daily", "--json", "--offline"]
            timed(cc, cc_env)  # warm the page cache for both sides
            theirs = best(cc, cc_env, runs)
            figures.append(Figure(SECTION, f"ccusage claude daily --json --offline, {label}", theirs))
        cc_name = "ccusage daily" if theirs else ""
        ours, rss, _ = timed([*tokens, "import", "--claude-dir", str(claude)], env)
        for _ in range(runs - 1):  # best of `runs`, each into a fresh ledger
            shutil.rmtree(work / "data")
            ours = min(ours, timed([*tokens, "import", "--claude-dir", str(claude)], env)[0])
        figures.append(Figure(SECTION, f"tokens import, {label}", ours, theirs, cc_name, 1.0 if theirs else None))
        again = best([*tokens, "import", "--claude-dir", str(claude)], env, runs)
        figures.append(Figure(SECTION, "tokens import again, nothing new", again, theirs, cc_name))
        figures.append(Figure(SECTION, f"peak memory (RSS) of the {size / (1 << 20):,.0f} MB import", rss / 1024,
                              unit="MiB", note="streamed in 4 MiB chunks"))
        status = best([*tokens, "status", "--color", "never"], env, max(runs, 3))
        figures.append(Figure("Status at scale", "tokens status on that imported history", status, theirs, cc_name,
                              1.0 if theirs else None))
        if profile:
            shutil.rmtree(work / "data")
            prof = work / "import.prof"
            subprocess.run([PYTHON, "-m", "cProfile", "-o", str(prof), "-m", "token_budget", "import",
                            "--claude-dir", str(claude)], env=env, check=True, capture_output=True)
            import pstats

            pstats.Stats(str(prof)).sort_stats("tottime").print_stats(18)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="one run of each instead of the best of three")
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--profile", action="store_true", help="also print where the import's time goes")
    args = parser.parse_args()
    print(table(measure(args.quick, args.size_mb, args.profile)))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
