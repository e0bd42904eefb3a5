"""Shared helpers for the benchmarks: time whole processes, compare against bare interpreter start-up.

Figures are medians of repeated runs, printed as ratios to a baseline measured in the same run, so a noisy shared
machine moves both sides together. Nothing here asserts a time.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
PYTHON = sys.executable  # the real interpreter, not a shim script in front of it
LAUNCHER = ROOT / "token_budget" / "claude" / "run_hook.py"


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


def baseline(runs: int = 30) -> float:
    """Bare `python3 -c pass` of the same interpreter with default flags."""
    return time_process([PYTHON, "-c", "pass"], runs=runs)


def hook_argv(event: str = "PostToolUse") -> list[str]:
    """The command the plugin's hook.sh runs (and `tokens install` writes)."""
    return [PYTHON, "-S", str(LAUNCHER), event]


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
    """One measured figure: `value` in seconds (or MiB when unit is "MiB"), and its ratio to a named baseline."""

    def __init__(self, section: str, name: str, value: float, base: float | None = None, base_name: str = "",
                 target: float | None = None, target_text: str = "", unit: str = "s", note: str = "") -> None:
        self.section, self.name, self.value, self.base, self.base_name = section, name, value, base, base_name
        self.target, self.target_text, self.unit, self.note = target, target_text, unit, note

    @property
    def ratio(self) -> float | None:
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


def bare_baselines(runs: int) -> tuple[float, float]:
    """(`python3 -c pass`, `python3 -S -c pass`): the site-packages scan is most of the first here."""
    return baseline(runs), time_process([PYTHON, "-S", "-c", "pass"], runs=runs)


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
