"""SIGKILL a process at a random instant of its work, whatever the machine's speed, and say where the kill landed.

A fixed delay range kills most runs mid-write on one machine and none on a slower or faster one, so a crash test
built on it proves less than it says. `Killer` watches each process's write syscalls (`wchar` in /proc/PID/io)
and draws each delay between the moment processes were seen to start writing and the moment they were seen to
finish, learning both from the runs so far. A crash test loops until enough kills landed mid-write, bounded by a
trial cap rather than by a clock.
"""

from __future__ import annotations

import random
import signal
import statistics
import subprocess
import time
from dataclasses import dataclass, field

POLL = 0.002


def written_bytes(pid: int) -> int | None:
    """Bytes the process has passed to write(2) and friends so far; None once it has exited."""
    try:
        with open(f"/proc/{pid}/io") as handle:
            for line in handle:
                if line.startswith("wchar:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


@dataclass
class Outcome:
    killed: bool
    writing: bool  # the kill landed after the process had started writing
    ran_for: float


@dataclass
class Killer:
    rng: random.Random
    first_writes: list[float] = field(default_factory=list)
    finishes: list[float] = field(default_factory=list)

    def calibrate(self, proc: subprocess.Popen) -> Outcome:
        """Watch one run to its end (no kill), to learn when writing starts and when the run ends."""
        return self._watch(proc, delay=None)

    def kill(self, proc: subprocess.Popen) -> Outcome:
        start = statistics.median(self.first_writes) if self.first_writes else 0.0
        end = statistics.median(self.finishes) if self.finishes else max(0.3, 2 * start)
        return self._watch(proc, delay=self.rng.uniform(0.8 * start, 1.1 * max(end, start)))

    def _watch(self, proc: subprocess.Popen, delay: float | None) -> Outcome:
        began = time.monotonic()
        baseline = written_bytes(proc.pid) or 0
        first_write = None
        while proc.poll() is None and (delay is None or time.monotonic() - began < delay):
            written = written_bytes(proc.pid)
            if first_write is None and written is not None and written > baseline:
                first_write = time.monotonic() - began
            time.sleep(POLL)
        killed = proc.poll() is None
        if killed:
            proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        ran_for = time.monotonic() - began
        if first_write is not None:
            self.first_writes.append(first_write)
        if not killed:
            self.finishes.append(ran_for)
        return Outcome(killed, killed and first_write is not None, ran_for)


def enough_trials(landed: int, trials: int, *, needed: int, minimum: int, cap: int) -> bool:
    """True once a crash test has run `minimum` trials and seen `needed` kills land mid-write, or hit `cap`."""
    return trials >= cap or (trials >= minimum and landed >= needed)
