"""Every benchmark, one table: `python3 benchmarks/run.py [--quick]`.

Runs bench_hook, bench_decision, bench_import, bench_statusline, bench_alerts and bench_cli in this process (each
times real processes) and prints one Markdown table of figures, each as a ratio to a baseline measured in the same
run, with its target. Generated fixtures (ledgers of 100k and 1M requests, 50 KB and 50 MB transcripts, a 200 MB
transcript tree) are cached in benchmarks/.work/cache, so only the first run pays for them. Nothing here asserts a
time: targets are checked by reading the table (the last column says ok or MISSED).

    --quick     fewer repetitions (about 3 minutes once the fixtures are cached)
    --only X    a comma-separated subset: hook, decision, import, status, alerts, cli (the real CLI: a 20-tool-call
                turn with and without the hooks; needs tests/e2e/install.sh and root), team (team mode on a
                throw-away PostgreSQL: hook on vs off, sync of 100k rows, team status over 10M rows)
    --profile   also print where `tokens import`'s time goes (cProfile, top functions)
    --python P  the interpreter that runs the hooks, and whose bare start is every hook's baseline: `plugin` (the
                default: the plugin's own venv, built once by scripts/bootstrap.py into benchmarks/.work, offline
                with TOKEN_BUDGET_WHEELHOUSE), `current` (the Python running this script), or a path
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from common import Figure

BENCHES = ("hook", "decision", "import", "status", "alerts", "cli", "team")


def run(name: str, quick: bool, args: argparse.Namespace) -> list[Figure]:
    if name == "hook":
        from bench_hook import measure
    elif name == "decision":
        from bench_decision import measure
    elif name == "import":
        from bench_import import measure as import_measure

        return import_measure(quick, args.size_mb, args.profile)
    elif name == "status":
        from bench_statusline import measure
    elif name == "cli":
        from bench_cli import measure
    elif name == "team":
        from bench_team import measure
    else:
        from bench_alerts import measure
    return measure(quick)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default=",".join(BENCHES))
    parser.add_argument("--size-mb", type=int, default=200, help="size of the generated import tree")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--python", default="plugin")
    args = parser.parse_args()
    python = hook_python(args.python)
    os.environ["TOKEN_BUDGET_BENCH_PYTHON"] = python
    import common

    common.PYTHON = python  # before any bench module imports it
    from common import site_imports, table

    version = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                             capture_output=True, text=True, check=True).stdout.strip()
    chosen = [b.strip() for b in args.only.split(",") if b.strip()]
    figures: list[Figure] = []
    start = time.perf_counter()
    for name in chosen:
        if name not in BENCHES:
            raise SystemExit(f"unknown benchmark {name!r}; choose from {', '.join(BENCHES)}")
        began = time.perf_counter()
        print(f"running bench_{'statusline' if name == 'status' else name}…", file=sys.stderr, flush=True)
        figures.extend(run(name, args.quick, args))
        print(f"  done in {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)
    figures.sort(key=lambda f: ORDER.index(f.section) if f.section in ORDER else len(ORDER))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n# token-budget benchmarks{' (--quick)' if args.quick else ''}\n")
    extra = site_imports(python)
    print(f"Hooks run on Python {version} ({python}); its site start-up imports "
          + (", ".join(extra) if extra else "nothing beyond the standard start-up")
          + f". Harness: Python {platform.python_version()}. {os.cpu_count()} CPUs, load {load:.1f}; medians of "
          f"alternated runs (import: best of runs), {time.perf_counter() - start:.0f} s in all.\n")
    print(table(figures))
    missed = [f for f in figures if f.verdict == "MISSED"]
    print(f"\n{len(missed)} of {sum(1 for f in figures if f.verdict)} targets missed"
          + (": " + "; ".join(f.name for f in missed) if missed else "."))


def hook_python(choice: str) -> str:
    if choice == "current":
        return sys.executable
    if choice == "plugin":
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from common import plugin_python  # PYTHON is not read here

        return plugin_python(Path(__file__).resolve().parent / ".work" / "plugin-data")
    if not os.access(choice, os.X_OK):
        raise SystemExit(f"--python {choice}: not an executable")
    return choice


ORDER = ["Baselines", "Hook overhead (`python -S run_hook.py`, as `tokens install` writes it)",
         "Hook beside 8 other hooks (PostToolUse, Stop, PreToolUse) started at the same moment",
         "Ingest cost vs transcript size",
         "Budget decision share of hook time (100k ledger, one new request)", "Import (`tokens import`, fresh ledger)",
         "Status at scale", "Status line", "Alert delivery (UserPromptSubmit hook that starts a sender)",
         "A 20-tool-call `claude -p` turn (real CLI, mock API)", "Team mode (PostgreSQL)"]

if __name__ == "__main__":
    main()
