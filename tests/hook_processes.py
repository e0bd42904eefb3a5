"""Hook processes found by their environment: the worker a Stop under `claude -p` leaves behind (fastpath.detach) is
nobody's child that a test could wait for, so tests find it by a variable of the run's own (its data dir)."""

from __future__ import annotations

import os
import time


def processes_with(marker: str) -> list[int]:
    """Live processes of this user whose environment holds `marker` (`NAME=value`; zombies excluded)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as handle:
                if marker.encode() not in handle.read().split(b"\0"):
                    continue
            with open(f"/proc/{name}/stat") as handle:
                state = handle.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            found.append(int(name))
    return found


def stat_fields(pid: int) -> tuple[int, int, int]:
    """(parent, process group, session) of a process."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return int(fields[1]), int(fields[2]), int(fields[3])


def wait_until_gone(marker: str, seconds: float = 60.0) -> None:
    """Wait for every process with `marker` to end (a hook's own deadline is 20 s); fail if one outlives `seconds`."""
    deadline = time.monotonic() + seconds
    while processes_with(marker):
        assert time.monotonic() < deadline, f"a hook process with {marker} did not end"
        time.sleep(0.05)
