"""Hook overhead against the bare start of the interpreter that runs it: "hooks that cost nothing noticeable".

    python3 benchmarks/bench_hook.py [--quick]

The hook is the command `tokens install` writes (`<python> -S …/token_budget/claude/run_hook.py EVENT`; the
plugin's hook.sh runs the same), timed on ledgers of 0, 100k and 1M requests with a 50 MB transcript: a PreToolUse
that ingests one new request, twice: after another session's hook wrote to the ledger (the full decision: the
session's record no longer holds) and with no other writer since the session's last decision (its record's
headroom answers), and a PreToolUse and a PostToolUse with nothing new (the idle fast path; its PreToolUse runs
`true`, and at 100k also a command naming paths, which the guard checks). Also the plugin
route (`sh scripts/hook.sh`), and a hook started while 8 other hooks run beside it.

Baselines: the same interpreter's bare start, `python -c pass` (with site: the target's baseline) and `python -S -c
pass` (how the hook starts: the floor), alternated with the hooks they are the baseline of, round by round.
"""

from __future__ import annotations

import shutil
import tempfile
from functools import partial
from pathlib import Path

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
    hook_argv,
    hook_env,
    payload,
    run_alone,
    time_process,
)
from fixtures import CACHE, append_request, cached_ledger, cached_transcript

SECTION = "Hook overhead (`python -S run_hook.py`, as `tokens install` writes it)"
PARALLEL = "Hook beside 8 other hooks (PostToolUse, Stop, PreToolUse) started at the same moment"
TOOL_USE_ID = "toolu_bench_not_in_transcript"  # the transcript ends with an assistant line: no wait


def _payload(transcript: Path, event: str) -> bytes:
    return payload(transcript, event, tool_use_id=TOOL_USE_ID)


def _other_session(transcript: Path, env: dict[str, str], big: Path) -> None:
    """Another session's hook records a request (untimed), then this session's transcript gains one."""
    append_request(transcript, transcript.stem)
    time_process(hook_argv("PreToolUse"), stdin=_payload(transcript, "PreToolUse"), env=env, runs=1, warm=False)
    append_request(big, "big")


def _rows(t: dict[str, float], cpu: dict[str, float], label: str):  # type: ignore[no-untyped-def]
    def row(name: str, key: str, target: float | None) -> Figure:
        return Figure(SECTION, f"{label}, {name}", t[key], t[BARE], BARE, target,
                      note=f"{t[key] / t[BARE_S]:.2f}x {BARE_S}; CPU time {cpu[key] / cpu[BARE]:.2f}x")

    return row


def measure(quick: bool = False) -> list[Figure]:
    compile_package()
    rounds = 15 if quick else 21
    big = cached_transcript("big", 50 << 20)
    small = cached_transcript("small", 50 << 10)
    config = bench_config(CACHE)
    figures: list[Figure] = []
    scratch = CACHE.parent / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    empty = Path(tempfile.mkdtemp(dir=scratch))
    try:
        for requests in (0, 100_000, 1_000_000):
            data = cached_ledger(requests) if requests else empty / "data"
            env = hook_env(data, {"TOKEN_BUDGET_CONFIG": str(config)})
            for path in (big, small):  # catch up first: the hooks timed below only see what is appended
                time_process(hook_argv("PreToolUse"), stdin=_payload(path, "PreToolUse"), env=env, runs=1)
            # Order matters. Another session's ingest ("grew small", timed at 100k, else untimed before "grew")
            # moves the ledger, so this session's next ingest takes the full decision, which leaves the record
            # that the ingest after it ("grew alone": the headroom) and the idle cases answer from.
            grew_small = Case("grew small", hook_argv("PreToolUse"), stdin=_payload(small, "PreToolUse"), env=env,
                              before=lambda: append_request(small, "small"))
            other = grew_small if requests == 100_000 else None
            cases = [
                *baseline_cases(),
                *([grew_small] if other else []),
                Case("grew", hook_argv("PreToolUse"), stdin=_payload(big, "PreToolUse"), env=env,
                     before=partial(append_request, big, "big") if other else partial(_other_session, small, env, big)),
                Case("grew alone", hook_argv("PreToolUse"), stdin=_payload(big, "PreToolUse"), env=env,
                     before=lambda: append_request(big, "big")),
                Case("idle pre", hook_argv("PreToolUse"), stdin=_payload(big, "PreToolUse"), env=env),
                Case("idle post", hook_argv("PostToolUse"), stdin=_payload(big, "PostToolUse"), env=env),
            ]
            if requests == 100_000:
                cases.append(Case("idle pre path", hook_argv("PreToolUse"), env=env, stdin=payload(
                    big, "PreToolUse", tool_use_id=TOOL_USE_ID, tool_input={"command": "ls -la src/ /tmp"})))
                others = [(hook_argv(event), _payload(big, event)) for event in
                          ("PostToolUse",) * 4 + ("Stop",) * 2 + ("PreToolUse",) * 2]
                cases += [
                    Case("plugin", ["sh", "-c", f'sh "{ROOT}/scripts/hook.sh" PreToolUse'],  # as hooks.json says
                         stdin=_payload(big, "PreToolUse"),
                         env={**env, "TOKEN_BUDGET_PYTHON": PYTHON, "CLAUDE_PLUGIN_ROOT": str(ROOT)}),
                    Case("parallel", hook_argv("PreToolUse"), stdin=_payload(big, "PreToolUse"), env=env,
                         beside=others),
                    Case("parallel bare", [PYTHON, "-S", "-c", "pass"],
                         beside=[([PYTHON, "-S", "-c", "pass"], b"")] * 8),
                ]
            cpu: dict[str, float] = {}
            t = alternate(cases, rounds, cpu)
            base, base_s = t[BARE], t[BARE_S]
            if requests == 100_000:
                figures.append(Figure("Baselines", f"{BARE} of the hook's interpreter", base,
                                      note="measured beside each group of hooks; this one beside the 100k group"))
                figures.append(Figure("Baselines", f"{BARE_S} of the same interpreter", base_s, base, BARE))
            label = f"{requests // 1000:,}k-request ledger" if requests else "empty ledger"
            row = _rows(t, cpu, label)
            figures.append(row("50 MB transcript, PreToolUse that ingests one new request after another session "
                               "wrote (the full decision)", "grew", 2.0))
            figures.append(row("50 MB transcript, PreToolUse that ingests one new request, no other writer since "
                               "(the record's headroom)", "grew alone", 2.0))
            figures.append(row("50 MB transcript, PreToolUse with nothing new (idle)", "idle pre", 1.0))
            figures.append(row("50 MB transcript, PostToolUse with nothing new (idle)", "idle post", 1.0))
            if requests == 100_000:
                figures.append(row("50 MB transcript, idle PreToolUse of a Bash command naming paths (the guard "
                                   "resolves the protected paths)", "idle pre path", 1.0))
                figures.append(row("idle PreToolUse through the plugin's `sh -c 'sh scripts/hook.sh …'`", "plugin",
                                   None))
                figures.append(Figure("Ingest cost vs transcript size", "100k ledger, 50 KB transcript gained one "
                                      "request (baseline of the next row)", t["grew small"]))
                figures.append(Figure("Ingest cost vs transcript size", "100k ledger, 50 MB transcript gained one "
                                      "request", t["grew"], t["grew small"], "50 KB case", 1.2, "~1.0x (<= 1.2x)"))
                figures.append(Figure(PARALLEL, f"{BARE_S} beside 8 other bare starts (baseline of the next row)",
                                      t["parallel bare"], base, BARE))
                figures.append(Figure(PARALLEL, "100k ledger, idle PreToolUse beside 8 hooks", t["parallel"],
                                      t["parallel bare"], "bare -S beside 8", note=f"{t['parallel'] / base:.2f}x "
                                      f"{BARE} alone"))
    finally:
        shutil.rmtree(empty, ignore_errors=True)
    return figures


if __name__ == "__main__":
    run_alone(measure)
