"""The idle fast path: answer a hook from a small per-session state file, without SQLite or the core.

Most hooks find nothing new: the transcripts have not grown since the last read and the budget state cannot have
changed. A hook that took the full path, answered `{}` and wrote nothing records here everything its answer
depended on; the next hook of the session answers `{}` from that record only if every input is unchanged:

- the session, its project dir and the environment that picks config files and the time zone;
- the clock: the record expires at the next day or period boundary (and after MAX_AGE seconds in any case);
- every config layer (path, mtime, size: the same stamps as the compiled config cache), so budget, mode and
  override changes (`tokens budget`, `tokens mode`) invalidate it;
- the ledger's version token, which every write transaction renews under the writer lock before it commits
  (ledger.bump_version): another session's usage, an ack, a new workflow run or a claimed alert all change it;
- the session's transcripts (device, inode, size, mtime as last ingested), and for PreToolUse the line of the
  tool call being decided (as the full path, which waits for it); Stop and SubagentStop accept a transcript that
  grew by lines without usage (a tool result), and PostToolUse leaves whatever is new to the next hook;
- what the event itself would write or decide: the record says which tools a PostToolUse would have to record
  (enforce.record_only), and a PreToolUse whose input may be about the budget itself takes the full path.

Anything missing, unreadable or different means the full path.

A record written after a decision also says how far each budget was from its next level (budgets.headroom): a
PreToolUse whose record holds but for the ledger's version and the transcripts' growth (`headroom`) ingests what is
new, and hook.handle answers it from that headroom when only its own write moved the ledger and what it recorded
fits.

The hook process starts here (`start`, run by run_hook.py). What an idle hook costs is what it imports, so this
module loads only builtins, `_json` (through jsonlite) and the package's two `__init__` files: no `os` (its
import is about 10% of a bare start, `_collections_abc` mostly), no `stat`; it calls `posix`
directly and spells the few path operations it needs for the absolute, normalized paths it handles. Whatever it
cannot answer goes to hook.py with the payload already read; only then are os, SQLite and the core loaded.
"""

from __future__ import annotations

import posix
import sys
import time

from .. import jsonlite
from ..errors import TokenBudgetError
from ..lean_path import S_IFDIR, S_IFMT, S_IFREG, getenv, normpath

TYPE_CHECKING = False  # typing costs milliseconds of import on every hook; annotations are strings
if TYPE_CHECKING:
    from typing import Any

FORMAT = 2  # 2: the ledger's paths are in the record
EVENTS = ("PreToolUse", "PostToolUse", "Stop", "SubagentStop")  # the events a record can answer
MAX_AGE = 300.0  # seconds: a bound on staleness from any input this module does not know about
STATE_DIR = "hot"  # under the data dir's cache/
ENV_KEYS = ("TOKEN_BUDGET_CONFIG", "XDG_CONFIG_HOME", "HOME", "TZ", "TOKEN_BUDGET_WORKFLOW")
# A PreToolUse whose input mentions any of these may be about the budget itself (its config, overrides, ledger or
# the `tokens` command): it always gets the full path, whose guards decide. Lower case; the check lowers the input.
BUDGET_MARKERS = ("token", "budget", "ledger", "overrides", ".claude", "claude_plugin", "xdg_", "run_hook")
TAIL_WINDOW = 64 << 10  # read back this far before the last ingested offset: the line may be in already
TAIL_CAP = 8 << 20  # never more than this is read while waiting for a tool line
USAGE_MARKER = b'"usage"'  # every line that can carry usage holds it (transcript.py reads only such lines)
GROWTH_LIMIT = 1 << 20  # new bytes a recording event may scan for usage before it takes the full path instead


def answer(event: str, payload: dict[str, Any], data_dir: str, now: float | None = None) -> dict[str, Any] | None:
    """`{}` when the session's record proves the full path would answer `{}` and write nothing; else None.
    Never raises."""
    global _outdated
    _outdated = None
    try:
        return {} if _holds(event, payload, data_dir, time.time() if now is None else now) else None
    except Exception:  # anything unexpected: the full path decides
        return None


def _record(event: str, payload: dict[str, Any], data_dir: str, now: float,
            writing: bool = False) -> dict[str, Any] | None:
    """The session's record, if everything it holds but the ledger's version and the transcripts is as it says:
    the session, its environment, the clock, the config files, and what the event itself could be about (unless
    `writing`: a PostToolUse that will write its own bookkeeping anyway)."""
    if event not in EVENTS:
        return None
    path = state_path(data_dir, payload.get("session_id"))
    if path is None:
        return None
    try:
        with open(path, "rb") as handle:
            state = jsonlite.loads(handle.read())
    except (OSError, ValueError):
        return None
    if not (isinstance(state, dict) and state.get("format") == FORMAT and state.get("session") == payload["session_id"]
            and state.get("key") == environment_key(payload) and state["written"] - 1 <= now < state["valid_until"]):
        return None
    if event == "PreToolUse" and (may_touch_budget(payload) or guarded(payload, data_dir, state["config"])):
        return None
    if event == "PostToolUse" and not writing and payload.get("tool_name") in state["post_writes"]:
        return None
    if [stamp(p) for p, _, _ in state["config"]] != state["config"]:
        return None
    return state


# The record this process's answer() found written before the ledger's last write (another writer came since): no
# headroom can come of it either, so headroom() does not read it again. (Stale, it can only skip a headroom.)
_outdated: str | None = None


def _holds(event: str, payload: dict[str, Any], data_dir: str, now: float) -> bool:
    global _outdated
    state = _record(event, payload, data_dir, now)
    if state is None:
        return False
    if ledger_version(state["ledger_path"], state["version_path"]) != state["ledger"]:
        _outdated = state_path(data_dir, payload.get("session_id"))
        return False
    if event == "PostToolUse":
        # It decides nothing and records only its tool call: whatever the transcript gained since is read by the
        # next hook, which Claude Code always runs (the next PreToolUse, Stop or SessionEnd): no need to read it here.
        return True
    files = session_transcripts(payload)
    if files is None or sorted(files) != sorted(state["files"]):
        return False
    for name in files:
        known, current = state["files"][name], file_stat(name)
        if current == (known[:4] if known else None):
            continue
        # A PreToolUse decides on the transcript as it is: any new byte means the full path. The recording events
        # (async) only need the new bytes to hold no usage (a tool result, a prompt): the next hook reads them.
        if event == "PreToolUse" or not _grew_without_usage(name, known, current):
            return False
    if event == "PreToolUse":
        return _tool_line_in(files, payload, state["files"])
    return True


def headroom(event: str, payload: dict[str, Any], data_dir: str, now: float) -> dict[str, Any] | None:
    """The session's record when it holds but for the transcripts, and says how far each budget is from its next
    level (budgets.headroom): then hook.handle may answer a PreToolUse from it once it has ingested what is new (and a
    PostToolUse may carry it past its own bookkeeping), if only this process's writes moved the ledger since (each
    write transaction compares the version again, under the writer lock) and what it recorded fits. None
    otherwise. Never raises."""
    try:
        if _outdated is not None and _outdated == state_path(data_dir, payload.get("session_id")):
            return None
        state = _record(event, payload, data_dir, now, writing=True)
        if state is None or not isinstance(state.get("headroom"), dict) or not isinstance(state["ledger"][0], str):
            return None
        if ledger_version(state["ledger_path"], state["version_path"]) != state["ledger"]:
            return None  # another writer came already (or another ledger file): the decision has to run
        return state
    except Exception:
        return None


def _grew_without_usage(path: str, known: list[Any] | None, current: list[Any] | None) -> bool:
    """The same file, grown by at most GROWTH_LIMIT bytes after its last ingested offset, none of them usage."""
    if known is None or current is None or current[:2] != known[:2] or current[2] < known[2]:
        return False
    offset = known[4]
    if current[2] - offset > GROWTH_LIMIT:
        return False
    try:
        with open_transcript(path) as handle:
            handle.seek(offset)
            # read(n) allocates its n bytes first: what the file held at the stat, and what came since
            return USAGE_MARKER not in handle.read(min(GROWTH_LIMIT + 1, current[2] - offset + (1 << 16)))
    except OSError:
        return False


def _tool_line_in(files: list[str], payload: dict[str, Any], known: dict[str, Any]) -> bool:
    tool_use_id = payload.get("tool_use_id")
    if not isinstance(tool_use_id, str) or not tool_use_id:
        return True  # the full path has nothing to wait for either
    target = tool_line_target(files, payload.get("agent_id"))
    if target not in known or known[target] is None:
        return False
    return tool_line_ready(target, tool_use_id.encode(), max(known[target][4] - TAIL_WINDOW, 0))


# -- the hook process --------------------------------------------------------------------------------------

# Events that only record (their decisions would be ignored or must not be given): registered `async: true`, so
# Claude Code does not wait for them (claude-code.md §1.8). A 110% stop they would see is given by the next
# blocking hook, which ingests the same transcript first.
ASYNC_EVENTS = ("PostToolUse", "Stop", "SubagentStop", "SessionEnd", "PreCompact")
# hooks.json gives each hook 30 s; a hook Claude Code kills is a budget switched off without a word, so the hook
# answers by itself (as on_error says) before that: at 20 s, which leaves a slow but healthy hook (64 at once on
# two busy cores queue for the ledger's writer lock) time to answer itself. TOKEN_BUDGET_HOOK_DEADLINE changes it.
DEADLINE_SECONDS = 20.0
FIRST_IMPORT = "first-import.json"  # written by scripts/bootstrap.py once the plugin's environment is ready
# When `claude -p` (or the Agent SDK, which runs it) ends its turn, it ends the process too: Stop has only just
# started, so the CLI signals it, then polls it every 100 ms until it is gone (up to about 1.5 s), while SessionEnd,
# which it waits for next, ingests the same transcript anyway. There Stop answers at once and does its work in a
# process of its own that nothing waits for (detach). Nothing can be lost by it: a request's offsets advance only
# in the transaction that records it, so whatever the detached Stop does not record, SessionEnd (or the next
# hook) reads again. In the TUI nothing waits for an async Stop: it keeps its output, and any message in it.
DETACHED_EVENTS = ("Stop",)


def deadline() -> float:
    try:
        return max(float(getenv("TOKEN_BUDGET_HOOK_DEADLINE") or DEADLINE_SECONDS), 0.05)
    except ValueError:
        return DEADLINE_SECONDS


def start() -> tuple[list[str], str, float, bool]:
    """The hook process (`python -S run_hook.py EVENT`) up to the full path: answer from the session's record when
    it holds, and end the process; else return what run_hook.py hands to hook.run_watched: (argv, the payload's
    text, the seconds left of the deadline, whether the record was asked already).

    Until the full path's watchdog thread takes over, SIGALRM is the watchdog: it answers for a hook stuck reading
    its stdin or a file. Either way the process ends with posix._exit once its output is flushed (`finish`): the
    interpreter's teardown would cost a hook about a tenth of a bare start, and nothing here needs it (no atexit
    handler, no thread to wait for; the full path closes its ledger and files before it answers). No garbage
    collector either."""
    import _signal
    import gc

    # A hook lives for milliseconds and makes no garbage cycles worth collecting: the collector's passes over the
    # objects its imports create cost an ingesting hook about 0.7 ms. Reference counting still frees everything.
    gc.disable()
    began = time.monotonic()
    argv = sys.argv[1:]
    event = argv[0] if argv else ""
    if event in ASYNC_EVENTS:
        # Claude Code signals an async hook still running when it ends (-p), then waits for it up to about 1.5 s:
        # finishing the few milliseconds of work left records the session's last requests instead of losing them.
        _signal.signal(_signal.SIGTERM, _signal.SIG_IGN)
    if detaches(event):
        detach()  # answered: from here on, a worker whose output nobody reads
    seconds = deadline()
    _signal.signal(_signal.SIGALRM, lambda *_: out_of_time(event, None, seconds))
    _signal.setitimer(_signal.ITIMER_REAL, seconds)
    raw = sys.stdin.read()
    try:
        payload = jsonlite.loads(raw)
    except ValueError:
        payload = None
    tried = False
    if isinstance(payload, dict):
        event = payload.get("hook_event_name") or event
        data_dir = idle_data_dir()
        if event in EVENTS and data_dir is not None:
            if event in ("Stop", "SubagentStop"):
                await_turn_written(payload)
            tried = True
            if answer(event, payload, data_dir) == {} and (event != "PreToolUse" or not _exists(
                    f"{data_dir}/{FIRST_IMPORT}")):  # the first-import notice: hook.py shows it
                _signal.setitimer(_signal.ITIMER_REAL, 0)
                finish(0, "{}\n")
    _signal.setitimer(_signal.ITIMER_REAL, 0)
    return argv, raw, max(seconds - (time.monotonic() - began), 0.05), tried


def detaches(event: str) -> bool:
    """Does this event's process end Claude Code's wait at once (DETACHED_EVENTS, under -p or the Agent SDK)?"""
    return event in DETACHED_EVENTS and (getenv("CLAUDE_CODE_ENTRYPOINT") or "").startswith("sdk")


def detach() -> None:
    """Answer `{}` from the process Claude Code started, and go on with the work in a worker that nothing waits for.
    Nothing here waits for the worker to run: the answer is written and stdout and stderr point at /dev/null before
    the fork, so the worker holds none of Claude Code's pipes but stdin (where the payload waits); both set the
    worker's process group (as a shell does for a job; it also leaves the session when it gets there first), so it
    is outside the one Claude Code signals and polls; and the process Claude Code started ends at once, so the
    worker is not its child either when Claude Code lists the processes to wait for. Where no worker can be made,
    the work is done here, after the answer."""
    try:
        posix.write(1, b"{}\n")
    except OSError:
        return  # no reader (Claude Code has ended): nothing to answer
    try:
        null = posix.open("/dev/null", posix.O_RDWR)
        posix.dup2(null, 1)
        posix.dup2(null, 2)
        posix.close(null)
        worker = posix.fork()
    except OSError:
        return
    if worker:
        try:
            posix.setpgid(worker, worker)
        except OSError:
            pass  # the worker has left the session already
        posix._exit(0)
    try:
        posix.setsid()
    except OSError:
        pass  # the parent has made it a group leader already: its own group is what matters


def finish(code: int, text: str = "") -> None:
    """Write `text`, flush what the hook wrote, and end the process without the interpreter's teardown."""
    try:
        if text:
            sys.stdout.write(text)
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # the reader is gone (an async hook after Claude Code ended): the work is done
        pass
    posix._exit(code)


def out_of_time(event: str, data_dir: str | None, seconds: float, fails_closed: bool = False) -> None:
    """The watchdog's answer (SIGALRM here, hook.Watchdog's thread later): fail open, or closed for a blocking
    event when the config says so and was read, and end the process at once."""
    why = f"the hook ran out of time ({seconds:g} s) reading its inputs"
    log(data_dir, event, why)
    if fails_closed and event in ("UserPromptSubmit", "PreToolUse"):
        posix.write(2, f"token-budget: blocked because {why} and on_error is 'closed'\n".encode())
        posix._exit(2)
    posix.write(1, jsonlite.dumps({"systemMessage": f"token-budget: {why} (enforcement skipped for this event)."})
                .encode() + b"\n")
    posix._exit(0)


LOG_NAME = "hook.log"


def log(data_dir: Any, event: str, message: str, exc: BaseException | None = None) -> str | None:
    """Append to the data dir's hook.log (logfile: capped, one rotation). Never raises."""
    try:
        from ..logfile import append
        from ..paths import data_dir as resolve_data_dir
        from . import plugin_data

        if exc is not None and not isinstance(exc, TokenBudgetError):
            import traceback

            message += "\n" + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()
        folder = posix.fspath(data_dir or resolve_data_dir(host=plugin_data()))
        return append(f"{folder}/{LOG_NAME}", event or "-", message)
    except Exception:
        return None


def idle_data_dir() -> str | None:
    """The data dir exactly as paths.data_dir(host=claude.plugin_data()) names it, for the plain spellings
    (absolute, no `~`), and only when it is a real folder of this user that others cannot write
    (paths.ensure_private_dir's checks); else None, and the full path resolves, creates or refuses it."""
    chosen = getenv("TOKEN_BUDGET_HOME") or getenv("CLAUDE_PLUGIN_DATA")
    if chosen:
        path = normpath(chosen) if chosen.startswith("/") else None
    else:
        xdg = getenv("XDG_DATA_HOME")
        if not xdg:
            home = getenv("HOME")
            xdg = home.rstrip("/") + "/.local/share" if home and home.startswith("/") else None
        path = (xdg if xdg.endswith("/") else xdg + "/") + "token-budget" if xdg and xdg.startswith("/") else None
    if path is None:
        return None
    try:
        st = posix.lstat(path)
    except OSError:
        return None
    if st.st_mode & S_IFMT != S_IFDIR or st.st_uid != posix.getuid() or st.st_mode & 0o022:
        return None
    return path


def _exists(path: str) -> bool:
    try:
        posix.stat(path)
    except OSError:
        return False
    return True


# -- the inputs ----------------------------------------------------------------------------------------------


def state_path(data_dir: str, session: Any) -> str | None:
    """The record's file; None for a session id that is not a plain name (it is untrusted input)."""
    if not isinstance(session, str) or not 0 < len(session) <= 128:
        return None
    if not all(c.isascii() and (c.isalnum() or c in "-_") for c in session):
        return None
    return f"{data_dir}/cache/{STATE_DIR}/{session}.json"


def environment_key(payload: dict[str, Any]) -> list[Any]:
    return [payload.get("cwd"), *(getenv(k) for k in ENV_KEYS)]


def stamp(path: str) -> list[Any]:
    """[path, mtime_ns, size], or [path, None, None] for a missing file: config.load_cached's stamps."""
    try:
        st = posix.stat(path)
    except OSError:
        return [path, None, None]
    return [path, st.st_mtime_ns, st.st_size]


def ledger_version(path: str, version_path: str) -> list[Any]:
    """[version token, device, inode] of the ledger: a new token per write, a new inode for a replaced file. The
    record holds both paths (ledger.py names them), so this module needs no knowledge of the data dir's layout."""
    try:
        st = posix.stat(path)
        with open(version_path, "rb") as handle:
            token = handle.read(64).decode("ascii", "replace")
    except OSError:
        return [None, None, None]
    return [token, st.st_dev, st.st_ino]


def file_stat(path: str) -> list[Any] | None:
    try:
        st = posix.stat(path)
    except OSError:
        return None
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]


def may_touch_budget(payload: dict[str, Any]) -> bool:
    """Could this tool call be about the budget itself? Then its decision is not only the budget state's."""
    text = jsonlite.dumps([payload.get("tool_name"), payload.get("tool_input")], default=str).lower()
    return any(marker in text for marker in BUDGET_MARKERS)


def guarded(payload: dict[str, Any], data_dir: str, config: list[Any]) -> bool:
    """Would the guard deny this call (guard.py: the agent changing budgets, the data dir or config)? Then only the
    full path may answer, whatever the budget state."""
    tool = payload.get("tool_name")
    if tool not in ("Bash", "Write", "Edit", "MultiEdit", "NotebookEdit"):
        return False
    tool_input = payload.get("tool_input")
    if tool == "Bash" and isinstance(tool_input, dict) and isinstance(tool_input.get("command"), str) \
            and "/" not in tool_input["command"]:
        # guard.bash_problem denies a command that spells a protected path (each spelling holds a "/") or names one
        # of its markers (each holds a "/" or one of BUDGET_MARKERS, which may_touch_budget checked first): with
        # neither, the guard has nothing to find, and neither os nor the guard need loading.
        return False
    from .guard import blocked_call

    cwd = payload.get("cwd")
    cwd = cwd if isinstance(cwd, str) else None
    layers = [entry[0] for entry in config]  # every config file the record watches: a superset of the layers
    return blocked_call(tool, payload.get("tool_input"), data_dir, cwd, "", layers) is not None


class HookInputError(TokenBudgetError):
    """The hook's stdin is not the JSON Claude Code sends."""


def transcript_files(payload: dict[str, Any]) -> list[str]:
    """The main transcript, the session's subagent transcripts, and the one SubagentStop names."""
    files: list[str] = []
    main = safe_transcript_path(payload.get("transcript_path"))
    if main is not None:
        files.extend(session_files(main))
    agent = safe_transcript_path(payload.get("agent_transcript_path"))
    if agent is not None and agent not in files:
        files.append(agent)
    return files


def safe_transcript_path(value: Any) -> str | None:
    """Accept only a .jsonl file inside some `projects/` folder, named without `..`: anything else is not ours."""
    if not isinstance(value, str) or not value.endswith(".jsonl") or "\x00" in value:
        return None
    parts = value.split("/")
    if not value.startswith("/") or ".." in parts or "projects" not in parts[:-1]:
        raise HookInputError(f"transcript_path {value!r} is not a Claude Code transcript path",
                             "Transcripts live under <claude config dir>/projects/; nothing was read.")
    return normpath(value)  # the ledger keys files by path: one spelling per file


def session_transcripts(payload: dict[str, Any]) -> list[str] | None:
    """transcript_files(payload), or None where that would raise (the full path says why)."""
    try:
        return transcript_files(payload)
    except Exception:
        return None


def session_files(transcript: str) -> list[str]:
    """A session's main transcript and every subagent transcript under `<session>/subagents/`."""
    files = [transcript]
    session = _stem(transcript)
    folder = session + "/subagents"
    # Real folders only (lstat): a symlinked session or subagents folder would lead out of Claude Code's projects
    # folder; the walk follows no link below them either.
    if _real_dir(session) and _real_dir(folder):
        _walk_transcripts(folder, files)
    return files


def _walk_transcripts(folder: str, found: list[str]) -> None:
    """What `os.walk(folder)` (top-down, following no link to a folder) lists of *.jsonl but journal.jsonl, each
    folder's names sorted; an unreadable folder is skipped, as os.walk skips it."""
    try:
        with posix.scandir(folder) as scan:
            entries = list(scan)
    except OSError:
        return
    names, folders = [], []
    for entry in entries:
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        if not is_dir:
            names.append(entry.name)
        elif not entry.is_symlink():
            folders.append(entry.path)
    found.extend(f"{folder}/{n}" for n in sorted(names) if n.endswith(".jsonl") and n != "journal.jsonl")
    for sub in folders:
        _walk_transcripts(sub, found)


def _stem(path: str) -> str:
    """os.path.splitext(path)[0]."""
    slash = path.rfind("/")
    dot = path.rfind(".")
    if dot <= slash + 1 or path[slash + 1 : dot].strip(".") == "":
        return path  # no extension, or a name made of leading dots only
    return path[:dot]


def _real_dir(path: str) -> bool:
    try:
        return posix.lstat(path).st_mode & S_IFMT == S_IFDIR
    except OSError:
        return False


def open_transcript(path: str) -> Any:
    """A transcript for reading: a regular file only, never through a symlink, opened without blocking. A FIFO or
    a link to /dev/zero planted among a session's files (one Bash call by the model) is an OSError, not a stall."""
    fd = posix.open(path, posix.O_RDONLY | posix.O_NONBLOCK | posix.O_CLOEXEC | posix.O_NOFOLLOW)
    try:  # paths.open_regular's checks, without importing os (that module does)
        if posix.fstat(fd).st_mode & S_IFMT != S_IFREG:
            raise OSError(22, "not a regular file", path)  # EINVAL
    except BaseException:
        posix.close(fd)
        raise
    return open(fd, "rb")


def tool_line_target(paths: list[str], agent_id: Any) -> str:
    """The file that will hold a tool call's line: the subagent's own transcript inside a subagent."""
    target = paths[0]
    if isinstance(agent_id, str) and agent_id:
        name = f"agent-{agent_id}.jsonl"
        target = next((f for f in paths if f.rsplit("/", 1)[-1] == name), f"{_stem(paths[0])}/subagents/{name}")
    return target


def tool_line_ready(path: str, needle: bytes, start: int) -> bool:
    """Does the file hold the complete line of this tool call, or end with an assistant line that calls no tool
    (the same response's text or thinking block, whose usage is the same request's)? A last line calling another
    tool is a sibling block of the same response or the previous response, whose result Claude Code has not
    written yet: either way the line of this call is still to come. Reads only the tail after `start`."""
    try:
        with open_transcript(path) as handle:
            size = handle.seek(0, 2)  # SEEK_END
            # A file rewritten shorter: its tail; one grown by more than TAIL_CAP: its last TAIL_CAP bytes.
            at = handle.seek(max(min(start, max(size - TAIL_WINDOW, 0)), size - TAIL_CAP))
            # What is there now: read(TAIL_CAP) would first allocate all 8 MiB (about 0.05 ms each look). A line
            # appended since is seen at the next look.
            tail = handle.read(size - at)
    except OSError:
        return False  # a subagent's file before its first line
    hit = tail.rfind(needle)
    if hit >= 0:
        return b"\n" in tail[hit:]  # complete: ingest reads whole lines only
    end = tail.rfind(b"\n")
    last = tail[tail.rfind(b"\n", 0, end) + 1 : end] if end >= 0 else b""
    # Unescaped quotes are JSON structure, never text: "tool_use" here is a block of that line.
    return b'"type":"assistant"' in last and b'"type":"tool_use"' not in last


TURN_END_WAIT = 0.5  # seconds at most; Stop runs async, so this wait costs the user nothing


def turn_written(path: str) -> bool:
    """Has Claude Code written the turn's last answer? Stop can start before the final assistant line is in the
    transcript (seen on 2.1.332 in the TUI): while the last complete line is still a user line (the last tool
    result), it is not."""
    try:
        with open_transcript(path) as handle:
            size = handle.seek(0, 2)  # SEEK_END
            handle.seek(max(size - TAIL_WINDOW, 0))
            tail = handle.read()
    except OSError:
        return True  # nothing to wait for
    end = tail.rfind(b"\n")
    last = tail[tail.rfind(b"\n", 0, end) + 1 : end] if end >= 0 else b""
    return b'"type":"user"' not in last


def await_turn_written(payload: dict[str, Any]) -> None:
    """Stop and SubagentStop: wait (briefly) until the transcript holds the answer that ended the turn."""
    files = session_transcripts(payload)
    if not files:
        return
    target = payload.get("agent_transcript_path") if payload.get("hook_event_name") == "SubagentStop" else None
    path = target if isinstance(target, str) and target in files else files[0]
    deadline = time.monotonic() + TURN_END_WAIT
    while not turn_written(path) and time.monotonic() < deadline:
        time.sleep(0.01)


# -- writing the record (the full path, after answering) -------------------------------------------------------


def remember(data_dir: str, payload: dict[str, Any], *, config_stamps: list[list[Any]], ledger: list[Any],
             ledger_paths: tuple[str, str], files: dict[str, Any], valid_until: float, post_writes: list[str],
             now: float, headroom: dict[str, Any] | None = None) -> None:
    """Write the session's record. Never raises. In place, not via a temporary file and a rename: a reader that
    catches it half written, or two writers interleaved, read something that does not parse (trailing bytes
    included), and that only ever means the full path. Written over the last record and then cut to its length, not
    truncated first: truncating frees the file's block, which on a disk mounted with `discard` cost every ingesting
    hook about 0.2 ms (the old record's tail, seen before the cut, is such trailing bytes)."""
    import os

    path = state_path(data_dir, payload.get("session_id"))
    if path is None:
        return
    state = {"format": FORMAT, "session": payload["session_id"], "key": environment_key(payload), "written": now,
             "valid_until": min(valid_until, now + MAX_AGE), "config": config_stamps, "ledger": ledger,
             "ledger_path": ledger_paths[0], "version_path": ledger_paths[1], "files": files,
             "post_writes": sorted(post_writes), "headroom": headroom}
    text = jsonlite.dumps(state).encode()
    folder = os.path.dirname(path)
    try:
        if not os.path.exists(path):  # the session's first record: make the folder, drop week-old records
            os.makedirs(folder, mode=0o700, exist_ok=True)
            _prune(folder, now)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError:
        return
    try:
        if os.write(fd, text) == len(text):
            os.ftruncate(fd, len(text))
    except OSError:
        pass
    finally:
        os.close(fd)


def forget(data_dir: str, session: Any) -> None:
    path = state_path(data_dir, session)
    if path is not None:
        try:
            posix.unlink(path)
        except OSError:
            pass


def _prune(folder: str, now: float, keep: float = 7 * 86400) -> None:
    """Records of sessions idle for a week go (one scan, only when a new session writes its first record)."""
    try:
        with posix.scandir(folder) as entries:
            old = [e.path for e in entries if e.name.endswith(".json") and now - e.stat().st_mtime > keep]
    except OSError:
        return
    for name in old:
        try:
            posix.unlink(name)
        except OSError:
            pass
