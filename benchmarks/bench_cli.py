"""What the hooks add to a real Claude Code turn: a 20-tool-call `claude -p` turn against the mock Messages API.

    python3 benchmarks/bench_cli.py [--quick]

Three set-ups, run in turn round by round: no plugin; the plugin with only its blocking events (SessionStart,
UserPromptSubmit, PreToolUse: the decisions); and the whole plugin, which adds the async events (PostToolUse, Stop,
SubagentStop, SessionEnd, PreCompact). What the async events add is the whole plugin against the blocking events
alone (target: at most 5%); what the decisions cost is the blocking events against no plugin. Needs the pinned
CLI (`bash tests/e2e/install.sh`) and `unshare -n` (root): every run happens in a private network namespace, as
in tests/e2e, but without the e2e tests' strace: `strace -f` stops every process of the CLI's tree at each fork,
exec and exit, which costs each hook process time no user pays (the namespace holds only loopback, so nothing can
leave it anyway). The blocking events and the whole plugin also run under strace, as the e2e tests run them, in
rows of their own without a target.

Each set-up's row also says how much of its time falls after the mock received the turn's last request (until the
CLI's exit): where `claude -p` ends, signals the async hooks still running and waits for them and for SessionEnd.

The ratios are paired: each round's run of a set-up divided by the same round's run of its baseline, just before
it, and the median of those. One run of the turn spreads about 4% on this shared machine (sd 90-180 ms on 2-3.5 s),
mostly load that lasts longer than two runs: the two medians' ratio moved by 2% from one benchmark to the next,
the paired ratios' spread is about half of it.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import PYTHON, ROOT, Figure, run_alone

SECTION = "A 20-tool-call `claude -p` turn (real CLI, mock API)"
CALLS = 20
TRACED_BLOCKING, TRACED_WHOLE = "blocking events only, under strace", "whole plugin, under strace"


def _plugin(folder: Path, events: set[str] | None) -> Path:
    """This checkout as a plugin, with only `events` registered (None: all)."""
    folder.mkdir(parents=True)
    for name in (".claude-plugin", "scripts", "token_budget", "config", "schemas", "commands", "skills"):
        (folder / name).symlink_to(ROOT / name)
    hooks = json.loads((ROOT / "hooks" / "hooks.json").read_text())
    if events is not None:
        hooks["hooks"] = {e: h for e, h in hooks["hooks"].items() if e in events}
    (folder / "hooks").mkdir()
    (folder / "hooks" / "hooks.json").write_text(json.dumps(hooks))
    return folder


def measure(quick: bool = False) -> list[Figure]:
    sys.path.insert(0, str(ROOT / "tests"))
    from e2e.harness import ClaudeEnv, default_binaries, requirements_problem
    from e2e.mock_api import bash_turn, text_turn

    problem = requirements_problem()
    if problem:
        print(f"bench_cli skipped: {problem}", file=sys.stderr)
        return []
    rounds = 9 if quick else 21  # alternated: every round runs the set-ups in turn
    work = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    try:
        blocking = {"SessionStart", "UserPromptSubmit", "PreToolUse"}
        setups = {"no plugin": None, "blocking events only": _plugin(work / "blocking", blocking),
                  "whole plugin": _plugin(work / "all", None)}
        setups[TRACED_BLOCKING], setups[TRACED_WHOLE] = setups["blocking events only"], setups["whole plugin"]
        untraced, traced = (ClaudeEnv(work / "env", default_binaries(), trace_network=False),
                            ClaudeEnv(work / "env-traced", default_binaries()))
        envs = {name: traced if name in (TRACED_BLOCKING, TRACED_WHOLE) else untraced for name in setups}
        script = [bash_turn(f"echo {i}", input_tokens=100, output_tokens=5) for i in range(CALLS)]
        script.append(text_turn("done", input_tokens=100, output_tokens=5))
        samples: dict[str, list[float]] = {name: [] for name in setups}
        ends: dict[str, list[float]] = {name: [] for name in setups}
        for i in range(rounds + 1):
            for k, (name, plugin) in enumerate(setups.items()):
                run_env = {"TOKEN_BUDGET_PYTHON": PYTHON, "TOKEN_BUDGET_HOME": str(work / f"data-{k}")}
                start = time.perf_counter()
                res = envs[name].run("Run the commands", script=script, plugin_dir=plugin, env=run_env)
                elapsed = time.perf_counter() - start
                if res.output.get("num_turns") != CALLS + 1:
                    raise SystemExit(f"bench_cli: {name}: {res.describe()}")
                if i:
                    samples[name].append(elapsed)
                    ends[name].append(_after_last_request(res))
                _settle()
        t = {name: statistics.median(values) for name, values in samples.items()}
        end = {name: statistics.median(values) for name, values in ends.items()}
        pairs = {(name, of): _paired(samples[name], samples[of])
                 for name, of in (("blocking events only", "no plugin"), ("whole plugin", "blocking events only"),
                                  (TRACED_BLOCKING, "no plugin"), (TRACED_WHOLE, TRACED_BLOCKING))}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    base, blocking = "no plugin", "blocking events only"

    def after(name: str) -> str:
        return f"{end[name] * 1000:.0f} ms of it after the last request"

    return [
        Figure(SECTION, f"no plugin ({CALLS} Bash calls, {CALLS + 1} requests)", t[base], note=after(base)),
        Figure(SECTION, f"blocking events only ({CALLS} PreToolUse, a UserPromptSubmit, a SessionStart)", t[blocking],
               t[base], base, note=after(blocking), paired=pairs[(blocking, base)]),
        Figure(SECTION, "whole plugin: the async events added (PostToolUse, Stop, SessionEnd, …)", t["whole plugin"],
               t[blocking], blocking, 1.05, paired=pairs[("whole plugin", blocking)],
               note=f"{t['whole plugin'] / t[blocking]:.3f}x of the medians; {after('whole plugin')}"),
        Figure(SECTION, "blocking events only, the CLI under strace -f", t[TRACED_BLOCKING], t[base], base,
               note=after(TRACED_BLOCKING), paired=pairs[(TRACED_BLOCKING, base)]),
        Figure(SECTION, "whole plugin, the CLI under strace -f: the async events added", t[TRACED_WHOLE],
               t[TRACED_BLOCKING], TRACED_BLOCKING, note=after(TRACED_WHOLE),
               paired=pairs[(TRACED_WHOLE, TRACED_BLOCKING)]),
    ]


def _paired(runs: list[float], baseline_runs: list[float]) -> float:
    """The median of each round's ratio of a set-up's run to its baseline's run in the same round."""
    return statistics.median([run / base for run, base in zip(runs, baseline_runs, strict=True)])


def _settle(limit: float = 10.0) -> None:
    """Wait (untimed) until no hook process of the last run is left: a detached Stop worker or a SessionEnd still
    finishing would otherwise share the CPUs with the next set-up's run."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and _hooks_running():
        time.sleep(0.01)


def _hooks_running() -> bool:
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if b"run_hook.py" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    return True
            except OSError:
                pass  # ended meanwhile
    return False


def _after_last_request(res: Any) -> float:
    """Seconds from the mock's receipt of the turn's last request to the CLI's exit (run.sh writes that moment)."""
    exited = float((res.run_dir / "claude.end").read_text().strip())
    return exited - max(r["time"] for r in res.requests)


if __name__ == "__main__":
    run_alone(measure)
