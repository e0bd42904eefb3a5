"""Claude Code JSONL transcripts → UsageEvents, read incrementally by byte offset.

Claude Code writes one assistant line per content block, all repeating the response's usage (early lines may carry
a partial output count); forks copy lines into new files and sidechains may replay a parent's message. So lines are
only candidates: the ledger keeps one row per message.id with the largest usage. Standard library only (hot path).
"""

from __future__ import annotations

import os
import stat
import sys
import time

from .. import clock, jsonlite
from .._records import factory, record
from ..jsonlite import text
from ..lean_crc import crc32
from ..ledger import Ledger
from ..models import ClientTotals, IngestResult, UsageEvent
from ..paths import open_regular
from ..periods import normalize
from .fastpath import TAIL_WINDOW, USAGE_MARKER, tool_line_ready, tool_line_target
from .fastpath import session_files as session_files  # owned by the fast path, which must not import this module

TYPE_CHECKING = False  # typing costs milliseconds of import on every hook; annotations are strings
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from ..paths import PathLike

COST_STATE_MARKER = b'"type":"cost-state"'  # Claude Code writes compact JSON, the type first
TIMESTAMP_MARKER = b'"timestamp":"'
CHUNK = 4 << 20  # bytes read at a time; memory stays bounded whatever the file size
HEAD_BYTES = 1024  # enough of the file's start to tell a rewritten file from a grown one
MAX_LINE_BYTES = 16 << 20  # below BATCH_BYTES; a line longer than this is skipped as malformed (memory stays bounded)
MAX_TOKENS = 10**12  # larger counts are corrupt, not usage (and would overflow SQLite's integers)


def _count(value: Any) -> int | None:
    if value is None:
        return 0
    if type(value) is not int or not 0 <= value <= MAX_TOKENS:  # bool is not a count, and neither is 1.5
        return None
    return value


def project_of(path: PathLike) -> str | None:
    """The folder right under `projects/`, as ccusage names projects."""
    parts = os.fspath(path).split(os.sep)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "projects":
            return parts[i + 1]
    return None


def event_from_line(entry: Any, *, project: str | None = None, agent_type: str | None = None) -> UsageEvent | None:
    """A usage event from one parsed transcript line, or None when the line carries no countable usage.

    Raises ValueError for a line whose usage is present but not numbers a real API response could carry.
    """
    # Written for speed (an import runs it once per assistant line of a whole profile): type() checks and
    # one pass over the counts instead of a helper call per field.
    if type(entry) is not dict or entry.get("type") != "assistant":
        return None
    message = entry.get("message")
    if type(message) is not dict:
        return None
    usage = message.get("usage")
    model = message.get("model")
    if type(usage) is not dict or model == "<synthetic>":  # local error placeholders, never billed
        return None
    timestamp = entry.get("timestamp")
    message_id = text(message.get("id")) or text(entry.get("uuid"))
    if not timestamp or type(timestamp) is not str or message_id is None:
        raise ValueError("an assistant line with usage but no timestamp or id")
    timestamp = normalize(timestamp)  # ValueError for text that is no timestamp: the line is malformed
    get = usage.get
    split = get("cache_creation")
    five, hour = (split.get("ephemeral_5m_input_tokens"), split.get("ephemeral_1h_input_tokens")) \
        if type(split) is dict else (None, None)
    counts = [_count(get("input_tokens")), _count(get("output_tokens")), _count(get("cache_creation_input_tokens")),
              _count(get("cache_read_input_tokens")), _count(five), _count(hour)]
    if None in counts:
        raise ValueError("usage counts that are not non-negative integers")
    input_tokens, output_tokens, cache_creation, cache_read, five, hour = counts
    cache_5m = max(cache_creation - hour, five, 0) if cache_creation or five else 0  # type: ignore[operator]
    return UsageEvent(
        message_id, timestamp, text(model) or "unknown", input_tokens, output_tokens, cache_5m, hour, cache_read,
        text(entry.get("requestId")), text(entry.get("sessionId")), project, text(entry.get("cwd")),
        text(entry.get("gitBranch")), text(entry.get("agentId")), agent_type, entry.get("isSidechain") is True,
        text(get("speed")), text(get("service_tier")),
    )  # positional, in UsageEvent's field order: keyword arguments cost a microsecond a line


def _micros(usd: Any) -> int | None:
    if type(usd) not in (int, float) or not 0 <= usd < 1e9:
        return None
    return int(usd * 1_000_000 + 0.5)


def totals_from_line(entry: Any, taken_at: str, path: str | None = None) -> ClientTotals | None:
    """Claude Code's `cost-state` line (2.1.332; undocumented): the session's cumulative figures per model,
    subagents and auxiliary requests (titles, classifiers, prompt hooks) included. None for anything else.

    Raises ValueError for a cost-state line whose figures are not counts a client could have written.
    """
    if type(entry) is not dict or entry.get("type") != "cost-state":
        return None
    session = text(entry.get("sessionId"))
    usage = entry.get("modelUsage")
    total = _micros(entry.get("totalCostUSD"))
    if session is None or type(usage) is not dict or total is None:
        raise ValueError("a cost-state line without sessionId, modelUsage or totalCostUSD")
    models = []
    for model, figures in usage.items():
        if type(figures) is not dict or not text(model):
            raise ValueError("a cost-state line with a model that has no figures")
        get = figures.get
        five, hour = get("cacheCreationEphemeral5mInputTokens"), get("cacheCreationEphemeral1hInputTokens")
        written = _count(get("cacheCreationInputTokens"))
        if five is None and hour is None:  # no TTL split: every write at the 5-minute rate, as for usage lines
            five, hour = written, 0
        counts = [_count(get("inputTokens")), _count(get("outputTokens")), _count(five), _count(hour),
                  _count(get("cacheReadInputTokens")), _micros(get("costUSD") or 0)]
        if None in counts:
            raise ValueError("cost-state figures that are not non-negative integers")
        models.append((model, *counts))
    return ClientTotals(session, taken_at, total, tuple(sorted(models)),  # type: ignore[arg-type]
                        entry.get("hasUnknownModelCost") is True, path)


def _last_timestamp(data: bytes, end: int) -> str | None:
    """The value of the last `"timestamp":"…"` in data[:end], normalized, or None."""
    hit = data.rfind(TIMESTAMP_MARKER, 0, end)
    while hit >= 0:
        start = hit + len(TIMESTAMP_MARKER)
        close = data.find(b'"', start, start + 40)
        try:
            return normalize(data[start:close].decode()) if close > 0 else None
        except (ValueError, UnicodeDecodeError):
            hit = data.rfind(TIMESTAMP_MARKER, 0, hit)
    return None


def _timestamp_before(path: PathLike, offset: int) -> str | None:
    """The newest timestamp in the 64 KiB before `offset`: a cost-state line read alone by a later hook."""
    start = max(offset - TAIL_WINDOW, 0)
    try:
        with _open(path) as handle:  # regular files only, never blocking (see _open)
            handle.seek(start)
            data = handle.read(offset - start)
    except OSError:
        return None
    return _last_timestamp(data, len(data))


def iter_cost_states(data: bytes, limit: int) -> Iterator[tuple[int, bytes]]:
    """(start, line) of each complete cost-state line in data[:limit]."""
    pos = 0
    while True:
        hit = data.find(COST_STATE_MARKER, pos, limit)
        if hit < 0:
            return
        start = data.rfind(b"\n", 0, hit) + 1
        end = data.find(b"\n", hit, limit)
        if end < 0:
            return
        yield start, data[start:end]
        pos = end + 1


def iter_candidate_lines(data: bytes, limit: int | None = None) -> Iterator[bytes]:
    """Complete lines of `data[:limit]` that mention usage; jumps from marker to marker instead of splitting every
    line (most of a transcript's bytes are tool results and prompts that carry no usage)."""
    limit = len(data) if limit is None else limit
    find, pos = data.find, 0
    while True:
        hit = find(USAGE_MARKER, pos, limit)
        if hit < 0:
            return
        start = data.rfind(b"\n", 0, hit) + 1
        end = find(b"\n", hit, limit)
        if end < 0:
            return
        yield data[start:end]
        pos = end + 1


def _open(path: PathLike) -> Any:
    """A transcript for reading: a regular file only, never through a symlink, opened without blocking. A FIFO or
    a link to /dev/zero planted among a session's files (one Bash call by the model) is an OSError, not a stall."""
    return os.fdopen(open_regular(path), "rb")


def _json_loads() -> Any:
    """orjson's loads (about 6x faster: an import of a whole profile spends most of its time here) when it is
    installed, falling back to the standard library for anything orjson refuses that json accepts (NaN, integers
    past 64 bits), so the choice never changes what is counted. A hook runs with `-S` and gets jsonlite without
    looking for orjson, which is not on its path (a failed import searches every folder of sys.path twice)."""
    if sys.flags.no_site and "site" not in sys.modules:
        return jsonlite.loads
    try:
        from orjson import loads as fast
    except ImportError:
        return jsonlite.loads

    def loads(line: bytes) -> Any:
        try:
            return fast(line)
        except ValueError:
            return jsonlite.loads(line)

    return loads


_loads: Any = None


@record(frozen=False)
class Delta:
    events: list[UsageEvent]
    offset: int  # where the next read starts: just past the last complete line
    lines: int
    malformed: int
    more: bool = False  # stopped at max_bytes: the file may hold more complete lines
    totals: list[ClientTotals] = factory(list)


def read_delta(path: PathLike, offset: int, *, project: str | None = None, agent_type: str | None = None,
               max_bytes: int | None = None) -> Delta:
    """Read the complete lines from `offset` on. A torn last line is left for the next call."""
    with _open(path) as handle:
        return _read_delta(handle, path, offset, project=project, agent_type=agent_type, max_bytes=max_bytes)


def _read_delta(handle: Any, path: PathLike, offset: int, *, project: str | None, agent_type: str | None,
                max_bytes: int | None) -> Delta:
    global _loads
    loads = _loads = _loads or _json_loads()
    events: list[UsageEvent] = []
    totals: list[ClientTotals] = []
    lines = malformed = 0
    last_seen: str | None = None  # the newest timestamp read so far, for cost-state lines (they carry none)
    handle.seek(offset)
    carry = b""
    consumed = offset
    budget = max_bytes
    while True:
        want = CHUNK if budget is None else min(CHUNK, budget)
        # read(n) allocates its n bytes first: ask for what the file holds now (two 4 MiB reads cost an ingest of
        # one new request ~0.05 ms), and at least 64 KiB, so that a file growing meanwhile is read on.
        want = min(want, max(os.fstat(handle.fileno()).st_size - handle.tell(), 1 << 16))
        block = handle.read(want)
        if not block:
            break
        if budget is not None:
            budget -= len(block)
        data = carry + block if carry else block
        complete = data.rfind(b"\n") + 1  # bytes up to the last newline; the rest waits for its end
        carry = data[complete:]
        if complete:
            consumed += complete
            lines += data.count(b"\n", 0, complete)
            for line in iter_candidate_lines(data, complete):
                try:
                    event = event_from_line(loads(line), project=project, agent_type=agent_type)
                except (ValueError, RecursionError):
                    malformed += 1
                    continue
                if event is not None:
                    events.append(event)
            if COST_STATE_MARKER in data:
                base = consumed - complete
                for start, line in iter_cost_states(data, complete):
                    taken = _last_timestamp(data, start) or last_seen or _timestamp_before(path, base + start)
                    try:
                        found = totals_from_line(loads(line), taken or clock.timestamp(), os.fspath(path))
                    except (ValueError, RecursionError):
                        malformed += 1
                        continue
                    if found is not None:
                        totals.append(found)
            last_seen = _last_timestamp(data, complete) or last_seen
        if len(carry) > MAX_LINE_BYTES:  # no usage line is this long: skip it rather than hold it in memory
            consumed += len(carry)
            malformed += 1
            carry = b""
        if budget == 0:
            return Delta(events, consumed, lines, malformed, True, totals)
    return Delta(events, consumed, lines, malformed, totals=totals)


def _head_hash(handle: Any, length: int) -> str:
    # crc32, not hashlib: this tells a rewritten file from a grown one, it is no security check, and hashlib costs
    # milliseconds of import on every hook (lean_crc: zlib's values, without loading zlib).
    handle.seek(0)
    head = handle.read(length)
    return f"{len(head)}:{crc32(head):08x}"


def subagent_type(path: PathLike) -> str | None:
    """The agentType in the `agent-<id>.meta.json` written beside a subagent transcript."""
    path = os.fspath(path)
    if not os.path.basename(path).startswith("agent-"):
        return None
    try:
        with _open(path[: -len(".jsonl")] + ".meta.json") as handle:
            meta = jsonlite.loads(handle.read(64 << 10))
    except (OSError, ValueError):
        return None
    return text(meta.get("agentType")) if isinstance(meta, dict) else None


# Seconds at most. The lag observed on 2.1.332 is 5-50 ms, but on a loaded machine it passed 0.3 s and the Write
# that crossed 110% was decided on the numbers before it, and ran. The wait ends as soon as the line is there. A
# transcript that does not exist yet is waited for too: Claude Code creates the file at its first flush, which can
# come after the first PreToolUse of a session.
TOOL_LINE_WAIT = 2.0


def await_tool_use_line(files: list[PathLike], tool_use_id: Any, agent_id: Any = None,
                        ledger: Ledger | None = None) -> dict[str, Any]:
    """PreToolUse: wait (briefly) until the transcript holds the complete line of the tool_use being decided.

    Claude Code 2.1.332 starts PreToolUse as soon as the tool_use block has streamed, and appends the line carrying
    that block (and its request's usage) a few milliseconds later. Read at once, the request that crosses a limit is
    not in the ledger yet, so its own tool call is allowed: the e2e 100% scenario caught exactly that. No wait when
    the line is there, or when the file already ends with an assistant line that calls no tool (that request is
    readable: the same response's text or thinking block, or a caller that never writes tool_use lines). Adds the
    subagent's file to `files` if it appears only now. With the ledger, only the bytes after its offset for the
    file (plus a small window) are read, so the check stays proportional to what is new. Returns the positions it
    read ({path: row or None}), for ingest_files' `positions`. Never raises."""
    if not isinstance(tool_use_id, str) or not tool_use_id or not files:
        return {}
    paths = [os.fspath(f) for f in files]
    target = tool_line_target(paths, agent_id)
    needle = tool_use_id.encode()
    known = _offsets(ledger, [target]).get(target) if ledger is not None else None
    start = max((known[4] if known else 0) - TAIL_WINDOW, 0)
    deadline = time.monotonic() + TOOL_LINE_WAIT
    while not tool_line_ready(target, needle, start) and time.monotonic() < deadline:
        time.sleep(0.005)
    if target not in paths and os.path.exists(target):
        files.append(target)
    return {target: known} if ledger is not None else {}


BATCH_BYTES = 32 << 20  # one transaction reads at most about this much: a hook never waits long for the lock
BATCH_EVENTS = 20_000


def ingest_files(ledger: Ledger, paths: list[PathLike], *, source: str, prices: Any = None,
                 rescan: bool = False, positions: dict[str, Any] | None = None) -> IngestResult:
    """Bring the ledger up to date with each file's new complete lines (`rescan`: every line, from the start).

    Files are read in batches, each one transaction holding the offsets it moved and the rows it read, so a crash
    loses nothing and counts nothing twice; batching spares an import of thousands of files a commit per file.
    `positions` ({path: row or None}, as await_tool_use_line returns them) spares reading those paths' positions
    again. They only choose which files to open: a position older than the ledger's (another process read the file
    since) cannot match the file's new size, and the transaction reads the position again under the write lock.
    """
    result = IngestResult()
    known = dict(positions or {})
    missing = [p for p in map(os.fspath, paths) if p not in known]
    if missing:
        known.update(_offsets(ledger, missing))
    pending: list[tuple[str, os.stat_result]] = []
    for path in map(os.fspath, paths):
        try:
            st = os.lstat(path)
        except OSError:
            continue  # not written yet (a new session's SessionStart) or cleaned up: nothing to read
        if not stat.S_ISREG(st.st_mode):
            result.errors.append(f"{path}: not a regular file (a link, FIFO or device); skipped")
            continue
        row = known.get(path)
        if not rescan and row and (row[0], row[1], row[2], row[3]) == (st.st_dev, st.st_ino, st.st_size,
                                                                        st.st_mtime_ns):
            continue  # unchanged since the last read: the common case, no transaction at all
        pending.append((path, st))
    while pending:
        pending = _ingest_batch(ledger, pending, source, prices, result, rescan)
    return result


def _offsets(ledger: Ledger, paths: list[PathLike]) -> dict[str, tuple[Any, ...]]:
    """{path: (device, inode, size, mtime_ns, offset)} as last ingested, of the paths read before."""
    return ledger.read_positions([os.fspath(p) for p in paths])


def _ingest_batch(ledger: Ledger, pending: list[tuple[str, os.stat_result]], source: str, prices: Any,
                  result: IngestResult, rescan: bool = False) -> list[tuple[str, os.stat_result]]:
    """Read files from `pending` into one transaction until it holds enough; returns the files left."""
    events: list[UsageEvent] = []
    totals: list[ClientTotals] = []
    offsets: list[tuple[Any, ...]] = []
    stats = IngestResult()  # this batch's counts, added to `result` once it committed
    taken = 0
    again: list[tuple[str, os.stat_result]] = []  # read up to the batch's size, with more to read
    now = clock.timestamp()
    with ledger.transaction():
        for path, expected in pending:
            full = stats.bytes_read >= BATCH_BYTES or len(events) >= BATCH_EVENTS
            if taken and (full or expected.st_size >= BATCH_BYTES):
                break
            taken += 1
            try:
                delta, start, offset_row = _read_new_lines(ledger, path, now, rescan)
            except OSError as exc:
                result.errors.append(f"{path}: {exc.strerror or exc}")
                continue
            if delta.more and delta.offset > start:
                again.append((path, expected))
            events.extend(delta.events)
            totals.extend(delta.totals)
            offsets.append(offset_row)
            stats.files += 1
            stats.lines += delta.lines
            stats.malformed += delta.malformed
            stats.bytes_read += delta.offset - start
        inserted, updated = ledger.record(events, source=source, prices=prices)
        if totals or events:
            stats.reconciled = _reconcile(ledger, totals, events, prices, now)
        ledger.save_read_positions(offsets)  # in the same transaction as the rows: a crash loses neither
    result.files += stats.files
    result.lines += stats.lines
    result.events += len(events)
    result.inserted += inserted
    result.updated += updated
    result.malformed += stats.malformed
    result.bytes_read += stats.bytes_read
    result.reconciled += stats.reconciled
    return pending[taken:] + again


def _reconcile(ledger: Ledger, totals: list[ClientTotals], events: list[UsageEvent], prices: Any, now: str) -> int:
    """Sessions with new client figures, or with a row the figures already count (a line that arrived late),
    checked against the ledger in the batch's own transaction (see reconcile.py). Rows newer than a session's
    figures change nothing, so a hook in a session costs one indexed lookup until its next figures, and does not
    load the reconciliation code."""
    earliest: dict[str, str] = {}
    for event in events:
        if event.session_id and event.timestamp < earliest.get(event.session_id, "~"):
            earliest[event.session_id] = event.timestamp
    latest = ledger.latest_client_totals(sorted(earliest)) if earliest else {}
    late = {session for session, taken in latest.items() if taken >= earliest[session]}  # figures counting a new row
    if not totals and not late:
        return 0
    from ..reconcile import reconcile, store_totals

    fresh = store_totals(ledger, totals, now) if totals else set()
    return reconcile(ledger, fresh | late, prices, now)


def _read_new_lines(ledger: Ledger, path: str, now: str, rescan: bool = False) -> tuple[Delta, int, tuple[Any, ...]]:
    """One file's complete new lines, from the offset recorded under the writer lock (a parallel hook may have
    moved it since we looked), and the offsets row to write with them. One open file for its stat, its head and
    its lines: they are of the same file even if a new one is renamed over the path meanwhile."""
    with _open(path) as handle:
        st = os.fstat(handle.fileno())
        row = ledger.read_position(path)
        offset, lines, malformed = 0, 0, 0
        checked = None  # the head hash just compared, reused below when the head's length is the same
        if row and not rescan:
            device, inode, offset, head, lines, malformed = row
            replaced = (device, inode) != (st.st_dev, st.st_ino) or st.st_size < offset
            checked = _head_hash(handle, min(offset, HEAD_BYTES)) if offset and not replaced else None
            if replaced or (offset and head != checked):
                offset, lines, malformed, checked = 0, 0, 0, None  # rewritten from the start; rereading is harmless
        # At most a batch's worth per transaction: a huge file is read over several, each committing its progress.
        delta = _read_delta(handle, path, offset, project=project_of(path), agent_type=subagent_type(path),
                            max_bytes=BATCH_BYTES)
        if checked is not None and min(delta.offset, HEAD_BYTES) == min(offset, HEAD_BYTES):
            head_hash = checked
        else:
            head_hash = _head_hash(handle, min(delta.offset, HEAD_BYTES)) if delta.offset else None
    size = -1 if delta.more else st.st_size  # -1: not read to the end, so the next look is no "unchanged" skip
    offset_row = (path, st.st_dev, st.st_ino, size, st.st_mtime_ns, delta.offset, head_hash,
                  lines + delta.lines, malformed + delta.malformed, now)
    return delta, offset, offset_row


def find_transcripts(claude_dirs: list[PathLike]) -> list[str]:
    """Every *.jsonl under each dir's projects/ (or the dir itself if it is a projects/ folder), sorted."""
    found: set[str] = set()
    for base in claude_dirs:
        base = os.path.normpath(os.fspath(base))
        root = os.path.join(base, "projects") if os.path.isdir(os.path.join(base, "projects")) else base
        if not os.path.isdir(root):
            continue
        for folder, _dirs, names in os.walk(root):
            found.update(os.path.join(folder, n) for n in names if n.endswith(".jsonl") and n != "journal.jsonl")
    return sorted(found)
