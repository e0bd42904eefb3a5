"""Synthetic but realistic data for benchmarks: big ledgers and big transcripts, built fast."""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path

from builders import response, user_line

from token_budget.ledger import Ledger
from token_budget.models import UsageEvent

MODELS = ["claude-sonnet-4-5-20250929", "claude-opus-4-6", "claude-haiku-4-5-20251001"]


def fill_ledger(data_dir: Path, requests: int, *, days: int = 60, seed: int = 1) -> None:
    """`requests` rows spread over the last `days` days, inserted in large transactions."""
    rng = random.Random(seed)
    with Ledger.open(data_dir) as ledger:
        if ledger.count() >= requests:
            return
        batch: list[UsageEvent] = []
        for n in range(requests):
            day = 28 - (n * days // requests) % 28
            batch.append(UsageEvent(
                message_id=f"msg_bench_{n:09d}", request_id=f"req_bench_{n:09d}",
                timestamp=f"2026-{10 + n % 2:02d}-{day:02d}T{n % 24:02d}:{n % 60:02d}:{n % 59:02d}.000Z",
                model=MODELS[n % 3], input_tokens=rng.randint(1, 5000), output_tokens=rng.randint(1, 2000),
                cache_read_tokens=rng.randint(0, 100_000), session_id=f"bench-{n % 500}", project="-bench"))
            if len(batch) == 20_000:
                with ledger.transaction():
                    ledger.record(batch, source="import")
                batch = []
        if batch:
            with ledger.transaction():
                ledger.record(batch, source="import")


def write_transcript(path: Path, size_bytes: int, *, session: str) -> None:
    """A transcript of about `size_bytes`: turns with large tool results, as real sessions have."""
    path.parent.mkdir(parents=True, exist_ok=True)
    filler = "x" * 6000
    with open(path, "w") as handle:
        n = 0
        while handle.tell() < size_bytes:
            n += 1
            handle.write(json.dumps(user_line(text=filler, session_id=session), separators=(",", ":")) + "\n")
            for line in response(session_id=session, blocks=2, partial_output=1, message_id=f"msg_{session}_{n:07d}",
                                 timestamp="2026-11-28T09:00:00.000Z"):
                handle.write(json.dumps(line, separators=(",", ":")) + "\n")


def append_request(path: Path, session: str) -> None:
    """One new request at the end of a transcript. Its message id is new in every run: builders numbers ids from 1
    in each process, so a later run on the cached ledgers would append requests they hold already (no new row)."""
    message_id = f"msg_bench_{uuid.uuid4().hex}"
    with open(path, "a") as handle:
        for line in response(session_id=session, blocks=2, partial_output=1, timestamp="2026-11-28T09:30:00.000Z",
                             message_id=message_id):
            handle.write(json.dumps(line, separators=(",", ":")) + "\n")


# -- cached fixtures (benchmarks/.work/cache, gitignored): built once, reused by every later run -----------------

CACHE = Path(__file__).resolve().parent / ".work" / "cache"


def _done(folder: Path) -> bool:
    return (folder / ".complete").exists()


def _mark(folder: Path) -> None:
    (folder / ".complete").write_text("ok\n")


def cached_ledger(requests: int) -> Path:
    """A data dir whose ledger holds `requests` rows (built once; hooks measured on it add a few rows each run)."""
    folder = CACHE / f"ledger-{requests}"
    if not _done(folder):
        fill_ledger(folder, requests)
        _mark(folder)
    return folder


def cached_transcript(name: str, size_bytes: int) -> Path:
    """A transcript under a projects/ folder (so hooks accept it); grows by the requests the benchmarks append."""
    folder = CACHE / "transcripts"
    path = folder / "claude" / "projects" / "-bench" / f"{name}.jsonl"
    marker = folder / f".{name}-{size_bytes}"
    if not marker.exists() or not path.exists():
        path.unlink(missing_ok=True)
        write_transcript(path, size_bytes, session=name)
        marker.write_text("ok\n")
    return path


def cached_tree(size_mb: int) -> Path:
    """A Claude config dir holding about `size_mb` MB of transcripts shaped like a real profile."""
    from bench_import import build_tree  # the one tree builder

    folder = CACHE / f"tree-{size_mb}mb"
    if not _done(folder):
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        build_tree(folder / "claude", size_mb << 20)
        _mark(folder)
    return folder / "claude"
