"""Claude Code JSONL transcripts → UsageEvents, read incrementally by byte offset.

Claude Code writes one assistant line per content block, all repeating the response's usage (early lines may carry
a partial output count); forks copy lines into new files and sidechains may replay a parent's message. So lines are
only candidates: the ledger keeps one row per message.id with the largest usage. Standard library only (hot path).
"""

from __future__ import annotations

import json
import os
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

from .._records import record
from ..ledger import Ledger, utc_now
from ..models import IngestResult, UsageEvent
from ..periods import normalize

TYPE_CHECKING = False  # typing costs milliseconds of import on every hook; annotations are strings
if TYPE_CHECKING:
    from typing import Any

USAGE_MARKER = b'"usage"'
CHUNK = 4 << 20  # bytes read at a time; memory stays bounded whatever the file size
HEAD_BYTES = 1024  # enough of the file's start to tell a rewritten file from a grown one
MAX_TOKENS = 10**12  # larger counts are corrupt, not usage (and would overflow SQLite's integers)


def _count(value: Any) -> int | None:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKENS:
        return None
    return value


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def project_of(path: Path) -> str | None:
    """The folder right under `projects/`, as ccusage names projects."""
    parts = path.parts
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "projects":
            return parts[i + 1]
    return None


def event_from_line(entry: Any, *, project: str | None = None, agent_type: str | None = None) -> UsageEvent | None:
    """A usage event from one parsed transcript line, or None when the line carries no countable usage.

    Raises ValueError for a line whose usage is present but not numbers a real API response could carry.
    """
    if not isinstance(entry, dict) or entry.get("type") != "assistant":
        return None
    message = entry.get("message")
    if not isinstance(message, dict):
        return None
    usage = message.get("usage")
    model = message.get("model")
    if not isinstance(usage, dict) or model == "<synthetic>":  # local error placeholders, never billed
        return None
    timestamp = _text(entry.get("timestamp"))
    if timestamp is not None:
        timestamp = normalize(timestamp)  # ValueError for text that is no timestamp: the line is malformed
    message_id = _text(message.get("id")) or _text(entry.get("uuid"))
    if timestamp is None or message_id is None:
        raise ValueError("an assistant line with usage but no timestamp or id")
    counts = [_count(usage.get(k)) for k in
              ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")]
    split = usage.get("cache_creation") if isinstance(usage.get("cache_creation"), dict) else {}
    five, hour = _count(split.get("ephemeral_5m_input_tokens")), _count(split.get("ephemeral_1h_input_tokens"))
    if None in counts or five is None or hour is None:
        raise ValueError("usage counts that are not non-negative integers")
    input_tokens, output_tokens, cache_creation, cache_read = counts
    cache_5m = max(cache_creation - hour, five, 0) if cache_creation or five else 0  # type: ignore[operator]
    return UsageEvent(
        message_id=message_id,
        timestamp=timestamp,
        model=_text(model) or "unknown",
        input_tokens=input_tokens,  # type: ignore[arg-type]
        output_tokens=output_tokens,  # type: ignore[arg-type]
        cache_creation_5m_tokens=cache_5m,
        cache_creation_1h_tokens=hour,
        cache_read_tokens=cache_read,  # type: ignore[arg-type]
        request_id=_text(entry.get("requestId")),
        session_id=_text(entry.get("sessionId")),
        project=project,
        cwd=_text(entry.get("cwd")),
        git_branch=_text(entry.get("gitBranch")),
        agent_id=_text(entry.get("agentId")),
        agent_type=agent_type,
        is_sidechain=entry.get("isSidechain") is True,
        speed=_text(usage.get("speed")),
        service_tier=_text(usage.get("service_tier")),
    )


def iter_candidate_lines(data: bytes) -> Iterator[bytes]:
    """Complete lines of `data` that mention usage; jumps from marker to marker instead of splitting every line."""
    pos = 0
    while True:
        hit = data.find(USAGE_MARKER, pos)
        if hit < 0:
            return
        start = data.rfind(b"\n", 0, hit) + 1
        end = data.find(b"\n", hit)
        if end < 0:
            return
        yield data[start:end]
        pos = end + 1


@record(frozen=False)
class Delta:
    events: list[UsageEvent]
    offset: int  # where the next read starts: just past the last complete line
    lines: int
    malformed: int


def read_delta(path: Path, offset: int, *, project: str | None = None, agent_type: str | None = None,
               max_bytes: int | None = None) -> Delta:
    """Read the complete lines from `offset` on. A torn last line is left for the next call."""
    events: list[UsageEvent] = []
    lines = malformed = 0
    with open(path, "rb") as handle:
        handle.seek(offset)
        carry = b""
        consumed = offset
        budget = max_bytes
        while True:
            block = handle.read(CHUNK if budget is None else min(CHUNK, budget))
            if not block:
                break
            if budget is not None:
                budget -= len(block)
            data = carry + block
            last_newline = data.rfind(b"\n")
            if last_newline < 0:
                carry = data
                if budget == 0:
                    break
                continue
            complete, carry = data[: last_newline + 1], data[last_newline + 1 :]
            consumed += len(complete)
            lines += complete.count(b"\n")
            for line in iter_candidate_lines(complete):
                try:
                    event = event_from_line(json.loads(line), project=project, agent_type=agent_type)
                except (ValueError, RecursionError):
                    malformed += 1
                    continue
                if event is not None:
                    events.append(event)
            if budget == 0:
                break
    return Delta(events, consumed, lines, malformed)


def _head_hash(path: Path, length: int) -> str:
    # crc32, not hashlib: this tells a rewritten file from a grown one, it is no security check, and zlib is
    # already loaded where hashlib costs milliseconds of import on every hook.
    with open(path, "rb") as handle:
        head = handle.read(length)
    return f"{len(head)}:{zlib.crc32(head):08x}"


def subagent_type(path: Path) -> str | None:
    """The agentType in the `agent-<id>.meta.json` written beside a subagent transcript."""
    if not path.name.startswith("agent-"):
        return None
    try:
        meta = json.loads(path.with_name(path.name[: -len(".jsonl")] + ".meta.json").read_bytes())
    except (OSError, ValueError):
        return None
    return _text(meta.get("agentType")) if isinstance(meta, dict) else None


def session_files(transcript: Path) -> list[Path]:
    """A session's main transcript and every subagent transcript under `<session>/subagents/`."""
    files = [transcript]
    folder = transcript.with_suffix("") / "subagents"
    if folder.is_dir():
        for root, _dirs, names in os.walk(folder):
            files.extend(Path(root) / n for n in sorted(names) if n.endswith(".jsonl") and n != "journal.jsonl")
    return files


TOOL_LINE_WAIT = 0.3  # seconds at most; the lag observed on 2.1.332 is 5-50 ms
TAIL_WINDOW = 64 << 10  # read back this far before the last ingested offset: the line may be in already


def await_tool_use_line(files: list[Path], tool_use_id: Any, agent_id: Any = None,
                        ledger: Ledger | None = None) -> None:
    """PreToolUse: wait (briefly) until the transcript holds the complete line of the tool_use being decided.

    Claude Code 2.1.332 starts PreToolUse as soon as the tool_use block has streamed, and appends the line carrying
    that block (and its request's usage) a few milliseconds later. Read at once, the request that crosses a limit is
    not in the ledger yet, so its own tool call is allowed: the e2e 100% scenario caught exactly that. No wait when
    the line is there, or when the file already ends with an assistant line (that request is readable: the same
    response's other blocks, or a caller that never writes tool_use lines). Adds the subagent's file to `files` if
    it appears only now. With the ledger, only the bytes after its offset for the file (plus a small window) are
    read, so the check stays proportional to what is new. Never raises."""
    if not isinstance(tool_use_id, str) or not tool_use_id or not files:
        return
    target = files[0]
    if isinstance(agent_id, str) and agent_id:
        name = f"agent-{agent_id}.jsonl"
        target = next((f for f in files if f.name == name), files[0].with_suffix("") / "subagents" / name)
    needle = tool_use_id.encode()
    known = _offsets(ledger, [target]).get(str(target)) if ledger is not None else None
    start = max((known[4] if known else 0) - TAIL_WINDOW, 0)
    deadline = time.monotonic() + TOOL_LINE_WAIT
    while not _tool_line_ready(target, needle, start) and time.monotonic() < deadline:
        time.sleep(0.005)
    if target not in files and target.exists():
        files.append(target)


def _tool_line_ready(path: Path, needle: bytes, start: int) -> bool:
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(min(start, max(size - TAIL_WINDOW, 0)))  # a file rewritten shorter: its tail
            tail = handle.read()
    except OSError:
        return False  # a subagent's file before its first line
    hit = tail.rfind(needle)
    if hit >= 0:
        return b"\n" in tail[hit:]  # complete: ingest reads whole lines only
    end = tail.rfind(b"\n")
    last = tail[tail.rfind(b"\n", 0, end) + 1 : end] if end >= 0 else b""
    return b'"type":"assistant"' in last


def ingest_files(ledger: Ledger, paths: list[Path], *, source: str, prices: Any = None) -> IngestResult:
    """Bring the ledger up to date with each file's new complete lines. Each file is one transaction."""
    result = IngestResult()
    known = _offsets(ledger, paths)
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue  # not written yet (a new session's SessionStart) or cleaned up: nothing to read
        row = known.get(str(path))
        if row and (row[0], row[1], row[2], row[3]) == (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns):
            continue  # unchanged since the last read: the common case, no transaction at all
        result.files += 1
        try:
            _ingest_one(ledger, path, source, prices, result)
        except OSError as exc:
            result.errors.append(f"{path}: {exc.strerror or exc}")
    return result


def _offsets(ledger: Ledger, paths: list[Path]) -> dict[str, tuple[Any, ...]]:
    names = [str(p) for p in paths]
    marks = ",".join("?" * len(names))
    rows = ledger.db.execute(
        f"SELECT path, device, inode, size, mtime_ns, offset FROM transcript_offsets WHERE path IN ({marks})", names
    )
    return {r[0]: r[1:] for r in rows}


def _ingest_one(ledger: Ledger, path: Path, source: str, prices: Any, result: IngestResult) -> None:
    project = project_of(path)
    agent_type = subagent_type(path)
    with ledger.transaction() as db:
        # Re-read the offset under the writer lock: a parallel hook may have moved it since we looked.
        st = os.stat(path)
        row = db.execute(
            "SELECT device, inode, offset, head_hash, lines, malformed_lines FROM transcript_offsets WHERE path = ?",
            (str(path),),
        ).fetchone()
        offset, lines, malformed = 0, 0, 0
        if row:
            device, inode, offset, head, lines, malformed = row
            replaced = (device, inode) != (st.st_dev, st.st_ino) or st.st_size < offset
            if replaced or (offset and head != _head_hash(path, min(offset, HEAD_BYTES))):
                offset, lines, malformed = 0, 0, 0  # rewritten from the start; dedupe makes rereading harmless
        delta = read_delta(path, offset, project=project, agent_type=agent_type)
        inserted, updated = ledger.record(delta.events, source=source, prices=prices)
        head_hash = _head_hash(path, min(delta.offset, HEAD_BYTES)) if delta.offset else None
        db.execute(
            "INSERT INTO transcript_offsets (path, device, inode, size, mtime_ns, offset, head_hash, lines, "
            "malformed_lines, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET "
            "device = excluded.device, inode = excluded.inode, size = excluded.size, mtime_ns = excluded.mtime_ns, "
            "offset = excluded.offset, head_hash = excluded.head_hash, lines = excluded.lines, "
            "malformed_lines = excluded.malformed_lines, updated_at = excluded.updated_at",
            (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, delta.offset, head_hash, lines + delta.lines, malformed + delta.malformed, utc_now()),
        )
    result.lines += delta.lines
    result.events += len(delta.events)
    result.inserted += inserted
    result.updated += updated
    result.malformed += delta.malformed
    result.bytes_read += delta.offset - offset


def find_transcripts(claude_dirs: list[Path]) -> list[Path]:
    """Every *.jsonl under each dir's projects/ (or the dir itself if it is a projects/ folder), sorted."""
    found: set[Path] = set()
    for base in claude_dirs:
        root = base / "projects" if (base / "projects").is_dir() else base
        if not root.is_dir():
            continue
        for folder, _dirs, names in os.walk(root):
            found.update(Path(folder) / n for n in names if n.endswith(".jsonl") and n != "journal.jsonl")
    return sorted(found)
