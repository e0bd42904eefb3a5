"""Shared helpers for the benchmarks: time whole processes, compare against bare interpreter start-up.

Figures are medians of repeated runs, printed as ratios to a baseline measured in the same run, so a noisy shared
machine moves both sides together. Nothing here asserts a time.

PYTHON is the interpreter that runs the hooks, and the baselines are its own bare start: the plugin's venv (built by
scripts/bootstrap.py, as a user's first session does) unless benchmarks/run.py --python names another one. The
harness itself (fixtures, this module) runs on whatever Python started it.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
PYTHON = os.environ.get("TOKEN_BUDGET_BENCH_PYTHON") or sys.executable  # set by run.py --python
LAUNCHER = ROOT / "token_budget" / "claude" / "run_hook.py"
BARE = "bare `python -c pass`"  # the baseline's name in the table: the hook interpreter's own start, with site
BARE_S = "bare `python -S -c pass`"


def time_process(argv: list[str], *, stdin: bytes = b"", env: dict[str, str] | None = None, runs: int = 20,
                 before: Callable[[], None] | None = None, warm: bool = True) -> float:
    """Median wall time in seconds of `argv`, run `runs` times (after one untimed warm-up unless warm=False)."""
    samples = []
    for i in range(runs + 1) if warm else range(1, runs + 1):
        if before is not None:
            before()
        start = time.perf_counter()
        proc = subprocess.run(argv, input=stdin, env=env, capture_output=True, check=False)
        elapsed = time.perf_counter() - start
        if proc.returncode not in (0, 2):
            raise SystemExit(f"{argv} exited {proc.returncode}: {proc.stderr.decode()[-2000:]}")
        if i:
            samples.append(elapsed)
    return statistics.median(samples) if samples else 0.0


class Case:
    """One process to time among others, in turn (see alternate)."""

    def __init__(self, name: str, argv: list[str], *, stdin: bytes = b"", env: dict[str, str] | None = None,
                 before: Callable[[], None] | None = None,
                 beside: list[tuple[list[str], bytes]] | None = None) -> None:
        self.name, self.argv, self.stdin, self.env, self.before = name, argv, stdin, env, before
        self.beside = beside or []  # processes started just before this one and left running beside it

    def run_once(self) -> tuple[float, float]:
        """(wall seconds, CPU seconds: user + system of the timed process alone)."""
        if self.before is not None:
            self.before()
        others = [subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   env=self.env) for argv, _ in self.beside]
        for proc, (_, data) in zip(others, self.beside, strict=True):
            proc.stdin.write(data)  # type: ignore[union-attr]
            proc.stdin.close()  # type: ignore[union-attr]
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(self.argv, input=self.stdin, env=self.env, capture_output=True, check=False)
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)  # before the others are reaped: this process only
        for other in others:
            other.wait()
        if proc.returncode not in (0, 2):
            raise SystemExit(f"{self.argv} exited {proc.returncode}: {proc.stderr.decode()[-2000:]}")
        return elapsed, after.ru_utime + after.ru_stime - used.ru_utime - used.ru_stime


def alternate(cases: list[Case], rounds: int, cpu: dict[str, float] | None = None) -> dict[str, float]:
    """Median wall time of each case over `rounds` rounds, each round running every case once in turn (after one
    untimed round): load that comes and goes on a shared machine then falls on every case alike. `cpu`, when given,
    receives each case's median CPU time (user + system): other jobs on a shared machine stretch wall time, far
    less the CPU a process uses, so its ratios move less from run to run."""
    samples: dict[str, list[float]] = {case.name: [] for case in cases}
    used: dict[str, list[float]] = {case.name: [] for case in cases}
    for i in range(rounds + 1):
        for case in cases:
            elapsed, seconds = case.run_once()
            if i:
                samples[case.name].append(elapsed)
                used[case.name].append(seconds)
    if cpu is not None:
        cpu.update({name: statistics.median(values) for name, values in used.items()})
    return {name: statistics.median(values) for name, values in samples.items()}


def hook_argv(event: str = "PostToolUse") -> list[str]:
    """The command `tokens install` writes into settings.json (and the plugin's hook.sh runs), for PYTHON."""
    import shlex

    from token_budget.claude.install import hook_command

    return shlex.split(hook_command(event, PYTHON))


def site_imports(python: str) -> list[str]:
    """The modules that `python`'s site start-up imports beyond `python -S` (a .pth line such as an editable
    install's finder, or certifi's, is paid by every bare start with site but not by the hook)."""
    code = "import sys; print(' '.join(sorted(sys.modules)))"
    with_site = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    without = subprocess.run([python, "-S", "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return sorted(set(with_site) - set(without) - {"site", "_sitebuiltins", "sitecustomize", "usercustomize"})


def plugin_python(folder: Path) -> str:
    """The plugin's own venv, built by scripts/bootstrap.py exactly as a user's first session builds it (once;
    TOKEN_BUDGET_WHEELHOUSE makes it offline). Its python is what hook.sh runs and what the hooks divide by."""
    python = folder / "venv" / "bin" / "python"
    if not (folder / "venv" / ".token-budget-ready").exists():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "bootstrap.py"), "--data", str(folder), "--wait"],
                       check=True)
    return str(python)


def hook_env(data_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKEN_BUDGET", "CLAUDE_"))}
    env.update({"TOKEN_BUDGET_HOME": str(data_dir), "XDG_CONFIG_HOME": str(data_dir / "xdg"), "TZ": "UTC"})
    env.pop("PYTHONPATH", None)
    env.update(extra or {})
    return env


def payload(transcript: Path, event: str = "PostToolUse", **extra: object) -> bytes:
    data = {"session_id": transcript.stem, "transcript_path": str(transcript), "cwd": "/tmp/bench",
            "hook_event_name": event, "tool_name": "Bash", "tool_input": {"command": "true"}, "tool_use_id": "t"}
    data.update(extra)
    return json.dumps(data).encode()


def row(name: str, seconds: float, base: float, target: str = "") -> str:
    return f"| {name:<62} | {seconds * 1000:8.1f} ms | {seconds / base:6.2f}x | {target:<10} |"


def header(title: str) -> str:
    return (f"\n## {title}\n\n| {'measure':<62} | {'median':>11} | {'ratio':>7} | {'target':<10} |\n"
            f"|{'-' * 64}|{'-' * 13}|{'-' * 9}|{'-' * 12}|")


# -- figures, for benchmarks/run.py's one table -----------------------------------------------------------------


class Figure:
    """One measured figure: `value` in seconds (or MiB when unit is "MiB"), and its ratio to a named baseline: the
    ratio of the two medians, or `paired`, the median of each round's own ratio, where the caller has one."""

    def __init__(self, section: str, name: str, value: float, base: float | None = None, base_name: str = "",
                 target: float | None = None, target_text: str = "", unit: str = "s", note: str = "",
                 paired: float | None = None) -> None:
        self.section, self.name, self.value, self.base, self.base_name = section, name, value, base, base_name
        self.target, self.target_text, self.unit, self.note, self.paired = target, target_text, unit, note, paired

    @property
    def ratio(self) -> float | None:
        if self.paired is not None:
            return self.paired
        return self.value / self.base if self.base else None

    @property
    def verdict(self) -> str:
        if self.target is None or self.ratio is None:
            return ""
        return "ok" if self.ratio <= self.target else "MISSED"

    def shown(self) -> str:
        if self.unit == "MiB":
            return f"{self.value:,.0f} MiB"
        return f"{self.value * 1000:,.1f} ms" if self.value < 10 else f"{self.value:,.2f} s"


def table(figures: list[Figure]) -> str:
    """Markdown table: section, measure, value, ratio to its baseline, target, verdict."""
    lines = [
        "| measure | value | ratio | vs | target | |",
        "|---|---:|---:|---|---|---|",
    ]
    section = None
    for f in figures:
        if f.section != section:
            section = f.section
            lines.append(f"| **{section}** | | | | | |")
        ratio = f"{f.ratio:.2f}x" if f.ratio is not None else ""
        target = f.target_text or (f"<= {f.target:g}x" if f.target is not None else "")
        name = f.name + (f" ({f.note})" if f.note else "")
        lines.append(f"| {name} | {f.shown()} | {ratio} | {f.base_name} | {target} | {f.verdict} |")
    return "\n".join(lines)


def compile_package() -> None:
    """Byte-compile the package, as an install does: with PYTHONDONTWRITEBYTECODE set, every run would compile."""
    subprocess.run([PYTHON, "-m", "compileall", "-q", str(ROOT / "token_budget")], check=True)


def baseline_cases() -> list[Case]:
    """The two bare starts, as cases to alternate with what they are the baseline of."""
    return [Case(BARE, [PYTHON, "-c", "pass"]), Case(BARE_S, [PYTHON, "-S", "-c", "pass"])]


def bench_config(folder: Path) -> Path:
    """The packaged budgets with limits no benchmark ledger reaches, so hooks take the common "ok" path (every
    daily, monthly and per-model sum is still computed)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "bench_budgets.yaml"
    big = 10**13
    text = (f"budgets:\n  global:\n    daily_limit: {big}\n    monthly_limit: {big}\n"
            f"  per_model:\n    claude-opus: {big}\n    claude-sonnet: {big}\n    claude-haiku: {big}\n")
    if not path.exists() or path.read_text() != text:  # rewriting it would invalidate every config cache
        path.write_text(text)
    return path


def run_alone(measure: Callable[[bool], list[Figure]]) -> None:
    """`python3 benchmarks/bench_X.py [--quick]`: one part of benchmarks/run.py's table."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    print(table(measure(parser.parse_args().quick)))
