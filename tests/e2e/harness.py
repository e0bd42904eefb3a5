"""Run the real Claude Code CLI (2.1.332) offline against ``mock_api.py``, in a private network namespace.

Every run goes through ``unshare -n bash run.sh``: the script brings up ``lo``, starts the mock as a child
process on 127.0.0.1 (the namespace's own loopback), then runs each command under
``strace -f -e trace=connect,sendto,sendmsg,sendmmsg`` (with ``--seccomp-bpf``, so only those calls stop, and each
fork, exec and exit: the benchmarks turn it off, ``ClaudeEnv(trace_network=False)``).
Since only ``lo`` exists, traffic elsewhere cannot leave the machine; the strace log makes an attempt
*visible*, and the harness raises :class:`NetworkGuardError` for any inet connect/send to a non-loopback
address or to port 53 (DNS), for any DNS/unreachable-network error in the CLI's ``--debug-file``, and if
the namespace had any interface but lo.

A :class:`ClaudeEnv` is one user's machine: ``home`` (= ``HOME`` = ``CLAUDE_CONFIG_DIR``, so transcripts
live in ``home/projects/<escaped-cwd>/<session>.jsonl``), ``tmp`` (``TMPDIR``) and ``project`` (the cwd).
Runs in one env share them, which is what ``--resume``/``--fork-session`` and installed plugins need; each
run has its own ``runs/NNN-<label>/`` folder holding run.sh, the mock script, requests.jsonl,
stdout/stderr, the debug log and the strace log, for post-mortems.

The harness passes a *minimal* environment (``env -i`` style): nothing of the developer's or CI's
Claude/Anthropic variables leaks in. ``PATH`` starts with the directory of the test's own Python, so hooks
that run ``python3`` get the same interpreter (and its installed packages) as the tests.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import mock_api

E2E_DIR = Path(__file__).resolve().parent
REPO_ROOT = E2E_DIR.parents[1]
MOCK_API = E2E_DIR / "mock_api.py"
INSTALL_SH = E2E_DIR / "install.sh"

CLAUDE_VERSION = "2.1.332"
CCUSAGE_VERSION = "20.0.24"
DEFAULT_MODEL = "claude-sonnet-4-5-20250929"
MOCK_PORT = 18777  # each namespace has its own port space, so every run can use the same port
API_KEY = "sk-ant-test"

# §11: these keep the CLI from sending anything but /v1/messages.
# A value of None in a run's `env` removes one.
QUIET_ENV = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_AUTOUPDATER": "1",
    "IS_SANDBOX": "1",  # --dangerously-skip-permissions refuses to run as root without it
}


# --------------------------------------------------------------------------------------------------- binaries


def cache_dir() -> Path:
    return Path(os.environ.get("TOKEN_BUDGET_E2E_CACHE") or Path.home() / ".cache" / "token-budget-e2e")


def _platform() -> str:
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(
        os.uname().machine, "?"
    )
    return f"{sys.platform}-{arch}"


@dataclass(frozen=True)
class Binaries:
    claude: Path
    ccusage: Path


def default_binaries() -> Binaries:
    """Where install.sh puts them; TOKEN_BUDGET_E2E_CLAUDE / TOKEN_BUDGET_E2E_CCUSAGE override."""
    nm = cache_dir() / "node_modules"
    plat = _platform()
    return Binaries(
        claude=Path(
            os.environ.get("TOKEN_BUDGET_E2E_CLAUDE") or nm / f"@anthropic-ai/claude-code-{plat}/claude"
        ),
        ccusage=Path(
            os.environ.get("TOKEN_BUDGET_E2E_CCUSAGE") or nm / f"@ccusage/ccusage-{plat}/bin/ccusage"
        ),
    )


def requirements_problem(binaries: Binaries | None = None) -> str | None:
    """Why the e2e tests cannot run here, or None. Probes `unshare -n` for real."""
    b = binaries or default_binaries()
    for tool in ("unshare", "ip", "strace", "bash"):
        if not shutil.which(tool):
            return f"`{tool}` is not installed (apt-get install util-linux iproute2 strace)"
    for name, path in (("claude", b.claude), ("ccusage", b.ccusage)):
        if not (path.is_file() and os.access(path, os.X_OK)):
            return f"{name} binary not found at {path}: run `bash tests/e2e/install.sh`"
    try:
        p = subprocess.run(
            ["unshare", "-n", "ip", "link", "set", "lo", "up"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"`unshare -n` failed: {e}"
    if p.returncode != 0:
        return f"`unshare -n` is not permitted here (needs root): {p.stderr.strip()}"
    return None


# --------------------------------------------------------------------------------------------- network guard


class NetworkGuardError(AssertionError):
    """A run tried to reach something other than the namespace's loopback."""


_CONN_RE = re.compile(r"^(?P<pid>\d+)\s+(?P<call>connect|sendto|sendmsg|sendmmsg)\((?P<args>.*)$")
_INET_RE = re.compile(
    r'sa_family=AF_INET,\s*sin_port=htons\((?P<port>\d+)\),\s*sin_addr=inet_addr\("(?P<addr>[^"]+)"\)'
)
_INET6_RE = re.compile(
    r'sa_family=AF_INET6,\s*sin6_port=htons\((?P<port>\d+)\).*?inet_pton\(AF_INET6,\s*"(?P<addr>[^"]+)"'
)
_DEBUG_NET_RE = re.compile(r"getaddrinfo\s+E[A-Z_]+|EAI_AGAIN|ENOTFOUND|ENETUNREACH|EHOSTUNREACH")


@dataclass(frozen=True)
class Connection:
    pid: int
    syscall: str
    family: str
    address: str
    port: int
    line: str

    @property
    def outside(self) -> bool:
        """True for anything but loopback, and for DNS (port 53) even on loopback (a resolver stub)."""
        if self.port == 53:
            return True
        try:
            ip = ipaddress.ip_address(self.address)
        except ValueError:
            return True
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        return not ip.is_loopback


def parse_strace(text: str) -> list[Connection]:
    """Inet destinations in an `strace -f -e trace=connect,sendto,…` log (unix/netlink ignored)."""
    out = []
    for line in text.splitlines():
        m = _CONN_RE.match(line.strip())
        if not m:
            continue
        args = m["args"]
        for fam, rx in (("AF_INET", _INET_RE), ("AF_INET6", _INET6_RE)):
            for a in rx.finditer(args):
                out.append(Connection(int(m["pid"]), m["call"], fam, a["addr"], int(a["port"]), line.strip()))
    return out


def debug_network_errors(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if _DEBUG_NET_RE.search(ln)]


# ------------------------------------------------------------------------------------------------ results


def _read(p: Path) -> str:
    return p.read_text(encoding="utf-8", errors="replace") if p.exists() else ""


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line:
            out.append(json.loads(line))
    return out


def request_text(rec: Mapping[str, Any]) -> str:
    """All system and message text of a recorded /v1/messages request (tool results included)."""
    body = rec.get("body") or {}
    parts: list[str] = []

    def walk(x: Any) -> None:
        if isinstance(x, str):
            parts.append(x)
        elif isinstance(x, list):
            for y in x:
                walk(y)
        elif isinstance(x, dict):
            if isinstance(x.get("text"), str):
                parts.append(x["text"])
            if "content" in x:
                walk(x["content"])
            if x.get("type") == "tool_use":
                parts.append(json.dumps(x.get("input")))

    walk(body.get("system"))
    walk(body.get("messages"))
    return "\n".join(parts)


@dataclass
class CommandResult:
    """One command run inside the namespace."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    connections: list[Connection]
    duration: float

    @property
    def outside_connections(self) -> list[Connection]:
        return [c for c in self.connections if c.outside]

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class Result:
    """One `claude -p` run.

    ``output`` is the parsed stdout: a dict for ``json``, the list of events for ``stream-json``, the text for
    ``text``. ``requests`` holds every request the mock recorded (see mock_api), ``message_requests`` only the
    ``POST /v1/messages`` ones. ``transcripts`` is every ``*.jsonl`` under ``home/projects`` after the run
    (subagent files included), ``transcript`` the main one of this run's session.
    """

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    output: Any
    requests: list[dict[str, Any]]
    home: Path
    config_dir: Path
    project_dir: Path
    run_dir: Path
    debug_log: Path
    transcripts: list[Path]
    connections: list[Connection]
    network_errors: list[str]
    duration: float
    script: list[dict[str, Any]] = field(default_factory=list)

    @property
    def events(self) -> list[dict[str, Any]]:
        return self.output if isinstance(self.output, list) else []

    @property
    def result_event(self) -> dict[str, Any] | None:
        if isinstance(self.output, dict):
            return self.output
        for ev in reversed(self.events):
            if ev.get("type") == "result":
                return ev
        return None

    @property
    def session_id(self) -> str | None:
        ev = self.result_event
        return ev.get("session_id") if ev else None

    @property
    def message_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r.get("kind") == "messages"]

    @property
    def models_requested(self) -> list[str | None]:
        return [r.get("model") for r in self.message_requests]

    @property
    def outside_connections(self) -> list[Connection]:
        return [c for c in self.connections if c.outside]

    @property
    def transcript(self) -> Path | None:
        sid = self.session_id
        if not sid:
            return None
        for p in self.transcripts:
            if p.name == f"{sid}.jsonl" and "subagents" not in p.parts:
                return p
        return None

    def transcript_entries(self, path: Path | None = None) -> list[dict[str, Any]]:
        p = path or self.transcript
        if p is None:
            raise AssertionError(f"no transcript for session {self.session_id} among {self.transcripts}")
        return read_jsonl(p)

    def assistant_entries(self, path: Path | None = None) -> list[dict[str, Any]]:
        return [e for e in self.transcript_entries(path) if e.get("type") == "assistant"]

    def debug_text(self) -> str:
        return _read(self.debug_log)

    def describe(self, tail: int = 3000) -> str:
        return (
            f"argv: {shlex.join(self.argv)}\nrc={self.returncode}  run_dir={self.run_dir}\n"
            f"--- stdout (tail) ---\n{self.stdout[-tail:]}\n--- stderr (tail) ---\n{self.stderr[-tail:]}\n"
            f"--- debug log (tail) ---\n{self.debug_text()[-tail:]}"
        )


# ------------------------------------------------------------------------------------------ plugin helpers


RECORDER_EVENTS = (
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PostToolUse",
    "PostToolBatch",
    "Stop",
    "SubagentStart",
    "SubagentStop",
    "SessionEnd",
)

_RECORDER_SCRIPT = r'''#!/usr/bin/env python3
"""Throwaway e2e hook: append {event, payload, env} to $E2E_HOOK_LOG (else <plugin root>/hook-log.jsonl)."""
import json, os, sys
raw = sys.stdin.read()
try:
    payload = json.loads(raw)
except ValueError:
    payload = {"_raw": raw}
env = {k: v for k, v in os.environ.items() if k.startswith("CLAUDE")}
here = os.path.dirname(os.path.abspath(__file__))
log = os.environ.get("E2E_HOOK_LOG") or os.path.join(here, "hook-log.jsonl")
line = json.dumps({"event": sys.argv[1] if len(sys.argv) > 1 else payload.get("hook_event_name"),
                   "payload": payload, "env": env}) + "\n"
fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
try:
    os.write(fd, line.encode())
finally:
    os.close(fd)
'''


def make_recorder_plugin(
    root: Path,
    name: str = "e2e-recorder",
    *,
    marketplace: str = "e2e-local",
    events: Iterable[str] = RECORDER_EVENTS,
    version: str = "0.1.0",
) -> Path:
    """A throwaway plugin (also its own marketplace, source "./") whose hooks log each event's stdin JSON.

    Returns the plugin dir. The log goes to $E2E_HOOK_LOG (pass it in the run's ``env``); read it with
    :func:`read_jsonl`.
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / ".claude-plugin").mkdir(exist_ok=True)
    (root / "hooks").mkdir(exist_ok=True)
    (root / ".claude-plugin" / "plugin.json").write_text(
        json.dumps(
            {
                "name": name,
                "version": version,
                "description": "e2e throwaway: records hook payloads",
                "author": {"name": "e2e"},
            },
            indent=2,
        )
    )
    (root / ".claude-plugin" / "marketplace.json").write_text(
        json.dumps(
            {
                "name": marketplace,
                "owner": {"name": "e2e"},
                "plugins": [
                    {"name": name, "source": "./", "description": "e2e throwaway", "version": version}
                ],
            },
            indent=2,
        )
    )
    (root / "hooks" / "record.py").write_text(_RECORDER_SCRIPT)
    hooks = {
        ev: [
            {
                "hooks": [
                    {
                        "type": "command",
                        "timeout": 30,
                        "command": f'python3 "${{CLAUDE_PLUGIN_ROOT}}/hooks/record.py" {ev}',
                    }
                ]
            }
        ]
        for ev in events
    }
    (root / "hooks" / "hooks.json").write_text(
        json.dumps({"description": "e2e recorder", "hooks": hooks}, indent=2)
    )
    return root


def marketplace_info(marketplace_dir: Path) -> tuple[str, list[str]]:
    """(marketplace name, plugin names) from <dir>/.claude-plugin/marketplace.json."""
    data = json.loads((Path(marketplace_dir) / ".claude-plugin" / "marketplace.json").read_text())
    return data["name"], [p["name"] for p in data.get("plugins", [])]


# -------------------------------------------------------------------------------------------- the harness


@dataclass
class _Step:
    argv: list[str]
    name: str


class ClaudeEnv:
    """One isolated user (HOME/CLAUDE_CONFIG_DIR/TMPDIR/project) for running the real CLI. See module doc."""

    def __init__(
        self,
        root: Path,
        binaries: Binaries | None = None,
        *,
        python: str = sys.executable,
        default_timeout: float = 120.0,
        trace_network: bool = True,
    ):
        """``trace_network=False`` runs the commands without strace (the benchmarks): ``strace -f`` stops every
        process of the CLI's tree at each fork, exec and exit, a cost per hook process that no user pays. The
        namespace still holds only lo, and the guard still reads the debug log; only the strace evidence is gone."""
        self.root = Path(root)
        self.trace_network = trace_network
        self.binaries = binaries or default_binaries()
        self.python = python
        self.home = self.root / "home"
        self.config_dir = self.home
        self.tmp = self.root / "tmp"
        self.project = self.root / "project"
        self.runs = self.root / "runs"
        for d in (self.home, self.tmp, self.project, self.runs):
            d.mkdir(parents=True, exist_ok=True)
        self.default_timeout = default_timeout
        self._n = 0
        self._installed: set[tuple[str, str]] = set()

    # -- environment -------------------------------------------------------------------------------------
    def base_env(self, extra: Mapping[str, str | None] | None = None) -> dict[str, str]:
        pydir = str(Path(self.python).parent)
        env = {
            "PATH": f"{pydir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "HOME": str(self.home),
            "CLAUDE_CONFIG_DIR": str(self.config_dir),
            "TMPDIR": str(self.tmp),
            "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{MOCK_PORT}",
            "ANTHROPIC_API_KEY": API_KEY,
            **QUIET_ENV,
        }
        for k, v in (extra or {}).items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = str(v)
        return env

    def _new_run_dir(self, label: str) -> Path:
        self._n += 1
        d = self.runs / f"{self._n:03d}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', label)[:40]}"
        d.mkdir(parents=True)
        return d

    # -- the namespace runner ----------------------------------------------------------------------------
    def _run_steps(
        self,
        run_dir: Path,
        steps: Sequence[_Step],
        *,
        script: Any | None,
        env: Mapping[str, str],
        cwd: Path,
        timeout: float,
        stop_on_error: bool = True,
    ) -> list[CommandResult]:
        q = shlex.quote
        lines = [
            "set -u",
            "ip link set lo up || exit 97",
            f"ip -o link show > {q(str(run_dir / 'links.txt'))}",
        ]
        if script is not None:
            (run_dir / "script.json").write_text(json.dumps(script, indent=1))
            ready = run_dir / "mock.ready"
            lines += [
                f"{q(self.python)} {q(str(MOCK_API))} --port {MOCK_PORT}"
                f" --script {q(str(run_dir / 'script.json'))}"
                f" --record {q(str(run_dir / 'requests.jsonl'))} --ready-file {q(str(ready))}"
                f" 2> {q(str(run_dir / 'mock.log'))} &",
                "MOCK_PID=$!",
                f"for _ in $(seq 1 400); do [ -e {q(str(ready))} ] && break; sleep 0.025; done",
                f"[ -e {q(str(ready))} ] || {{ echo 'mock_api did not start' >&2; kill $MOCK_PID;"
                " exit 98; }",
            ]
        lines.append(f"cd {q(str(cwd))} || exit 96")
        for i, st in enumerate(steps):
            p = run_dir / st.name
            tracer = (f"strace -f -qq -e signal=none --seccomp-bpf -e trace=connect,sendto,sendmsg,sendmmsg"
                      f" -o {q(str(p))}.strace -- ") if self.trace_network else ""
            lines += [
                f"{tracer}{shlex.join(st.argv)} < /dev/null > {q(str(p))}.stdout 2> {q(str(p))}.stderr",
                f"rc=$?; echo $rc > {q(str(p))}.rc; date +%s.%N > {q(str(p))}.end",
            ]
            if stop_on_error and i < len(steps) - 1:
                lines.append('[ "$rc" = 0 ] || { [ -n "${MOCK_PID:-}" ] && kill $MOCK_PID; exit 0; }')
        if script is not None:
            lines += ["kill $MOCK_PID 2>/dev/null; wait $MOCK_PID 2>/dev/null"]
        lines.append("exit 0")
        sh = run_dir / "run.sh"
        sh.write_text("\n".join(lines) + "\n")
        (run_dir / "env.json").write_text(json.dumps(dict(env), indent=1))

        t0 = time.time()
        proc = subprocess.Popen(
            ["unshare", "-n", "bash", str(sh)],
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            raise AssertionError(
                f"e2e run timed out after {timeout}s; see {run_dir}\n{err[-2000:]}"
            ) from None
        if proc.returncode != 0:
            raise AssertionError(f"namespace script failed (rc={proc.returncode}); see {sh}\n{out}\n{err}")
        links = _read(run_dir / "links.txt").strip().splitlines()
        names = [ln.split(":")[1].strip().split("@")[0] for ln in links if ":" in ln]
        if names != ["lo"]:
            raise NetworkGuardError(f"the namespace has interfaces other than lo: {names}")

        results = []
        t_prev = t0
        for st in steps:
            p = run_dir / st.name
            if not Path(f"{p}.rc").exists():
                break
            rc = int(_read(Path(f"{p}.rc")).strip() or -1)
            end = float(_read(Path(f"{p}.end")).strip() or time.time())
            results.append(
                CommandResult(
                    st.argv,
                    rc,
                    _read(Path(f"{p}.stdout")),
                    _read(Path(f"{p}.stderr")),
                    parse_strace(_read(Path(f"{p}.strace"))),
                    end - t_prev,
                )
            )
            t_prev = end
        return results

    @staticmethod
    def _guard(results: Iterable[CommandResult], run_dir: Path, network_errors: Sequence[str] = ()) -> None:
        bad = [c for r in results for c in r.outside_connections]
        if bad or network_errors:
            msg = [f"network guard: the run tried to reach beyond loopback (see {run_dir})"]
            msg += [f"  strace: {c.line}" for c in bad[:20]]
            msg += [f"  debug log: {ln}" for ln in list(network_errors)[:20]]
            raise NetworkGuardError("\n".join(msg))

    # -- public API --------------------------------------------------------------------------------------
    def claude_argv(self, *args: str) -> list[str]:
        return [str(self.binaries.claude), *args]

    def command(
        self,
        *argv: str,
        env: Mapping[str, str | None] | None = None,
        script: Any | None = None,
        check: bool = True,
        check_network: bool = True,
        timeout: float | None = None,
        label: str | None = None,
    ) -> CommandResult:
        """Run any command in a namespace, e.g. ``env.command(*env.claude_argv("plugin", "list"))``."""
        run_dir = self._new_run_dir(label or Path(argv[0]).name)
        [res] = self._run_steps(
            run_dir,
            [_Step(list(argv), "cmd")],
            script=script,
            env=self.base_env(env),
            cwd=self.project,
            timeout=timeout or self.default_timeout,
        )
        if check_network:
            self._guard([res], run_dir)
        if check and res.returncode != 0:
            raise AssertionError(
                f"{shlex.join(argv)} exited {res.returncode} (see {run_dir})\n"
                f"stdout: {res.stdout[-2000:]}\nstderr: {res.stderr[-2000:]}"
            )
        return res

    def install_plugin(
        self,
        marketplace_dir: str | os.PathLike[str],
        plugin: str | None = None,
        *,
        scope: str = "user",
        env: Mapping[str, str | None] | None = None,
        check_network: bool = True,
    ) -> list[CommandResult]:
        """`claude plugin marketplace add <dir>`, then `claude plugin install <plugin>@<mkt>`, offline."""
        mdir = Path(marketplace_dir).resolve()
        mkt, plugins = marketplace_info(mdir)
        plugin = plugin or plugins[0]
        run_dir = self._new_run_dir(f"install-{plugin}")
        steps = [
            _Step(self.claude_argv("plugin", "marketplace", "add", str(mdir), "--scope", scope), "mkt-add"),
            _Step(self.claude_argv("plugin", "install", f"{plugin}@{mkt}", "--scope", scope), "install"),
        ]
        results = self._run_steps(
            run_dir,
            steps,
            script=None,
            env=self.base_env(env),
            cwd=self.project,
            timeout=self.default_timeout,
        )
        if check_network:
            self._guard(results, run_dir)
        for r in results:
            if r.returncode != 0:
                raise AssertionError(
                    f"{shlex.join(r.argv)} exited {r.returncode} (see {run_dir})\n"
                    f"stdout: {r.stdout[-2000:]}\nstderr: {r.stderr[-2000:]}"
                )
        if len(results) != len(steps):
            raise AssertionError(f"plugin install stopped early; see {run_dir}")
        self._installed.add((str(mdir), plugin))
        return results

    def run(
        self,
        prompt: str,
        *,
        script: Any = (),
        plugin_dir: str | os.PathLike[str] | Sequence[Any] | None = None,
        marketplace: str | os.PathLike[str] | tuple[Any, str] | None = None,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str | None] | None = None,
        resume: str | None = None,
        fork: bool = False,
        output_format: str = "json",
        model: str | None = DEFAULT_MODEL,
        cwd: str | os.PathLike[str] | None = None,
        check: bool = True,
        check_network: bool = True,
        timeout: float | None = None,
    ) -> Result:
        """Run ``claude -p PROMPT`` against a mock scripted with ``script`` (see mock_api), in a namespace.

        ``plugin_dir``: one dir or a list (``--plugin-dir`` each). ``marketplace``: a marketplace dir, or
        ``(dir, plugin)``, installed the way users do before the run (once per env). ``env``: extra variables
        (None removes one of the defaults). ``resume``: a session id for ``--resume``; ``fork`` adds
        ``--fork-session``. ``check``: fail unless rc 0 and parsable output. ``check_network``: raise
        :class:`NetworkGuardError` on any attempt to leave loopback.
        """
        if marketplace is not None:
            mdir, plugin = marketplace if isinstance(marketplace, tuple) else (marketplace, None)
            key_plugin = plugin or marketplace_info(Path(mdir))[1][0]
            if (str(Path(mdir).resolve()), key_plugin) not in self._installed:
                self.install_plugin(mdir, key_plugin, env=env)

        args = ["-p", prompt, "--output-format", output_format, "--dangerously-skip-permissions"]
        if output_format == "stream-json":
            args.append("--verbose")  # -p with stream-json requires it
        if model:
            args += ["--model", model]
        dirs = (
            []
            if plugin_dir is None
            else ([plugin_dir] if isinstance(plugin_dir, (str, os.PathLike)) else list(plugin_dir))
        )
        for d in dirs:
            args += ["--plugin-dir", str(d)]
        if resume:
            args += ["--resume", resume]
        if fork:
            args.append("--fork-session")

        run_dir = self._new_run_dir(prompt.split("\n")[0][:30] or "run")
        debug_log = run_dir / "debug.txt"
        args += ["--debug-file", str(debug_log)]
        args += list(extra_args)
        argv = self.claude_argv(*args)
        script_list = script if isinstance(script, Mapping) else list(script)
        workdir = Path(cwd) if cwd else self.project
        workdir.mkdir(parents=True, exist_ok=True)
        [cmd] = self._run_steps(
            run_dir,
            [_Step(argv, "claude")],
            script=script_list,
            env=self.base_env(env),
            cwd=workdir,
            timeout=timeout or self.default_timeout,
        )

        output: Any
        stdout = cmd.stdout
        try:
            if output_format == "json":
                output = json.loads(stdout)
            elif output_format == "stream-json":
                output = [json.loads(ln) for ln in stdout.splitlines() if ln.strip()]
            else:
                output = stdout
        except ValueError:
            output = None
        turns = script_list.get("turns", []) if isinstance(script_list, Mapping) else script_list
        res = Result(
            argv=argv,
            returncode=cmd.returncode,
            stdout=stdout,
            stderr=cmd.stderr,
            output=output,
            requests=mock_api.load_records(run_dir / "requests.jsonl"),
            home=self.home,
            config_dir=self.config_dir,
            project_dir=workdir,
            run_dir=run_dir,
            debug_log=debug_log,
            transcripts=sorted((self.config_dir / "projects").rglob("*.jsonl")),
            connections=cmd.connections,
            network_errors=debug_network_errors(_read(debug_log)),
            duration=cmd.duration,
            script=[mock_api.normalise_turn(t) for t in turns],
        )
        if check_network:
            self._guard([cmd], run_dir, res.network_errors)
        if check and (res.returncode != 0 or output is None):
            raise AssertionError("claude run failed\n" + res.describe())
        return res

    def ccusage(self, *args: str, check: bool = True) -> CommandResult:
        """Run the pinned ccusage (e.g. ``"daily", "--json", "--offline"``) over this env's transcripts."""
        return self.command(str(self.binaries.ccusage), *args, check=check, label="ccusage")


# ------------------------------------------------------------------------------- the token-budget plugin

PLUGIN_NAME = "token-budget"  # plugin.json name; also the marketplace name (the repo is its own marketplace)
LEDGER_CLASS_COLUMNS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_5m_tokens",
    "cache_creation_1h_tokens",
    "cache_read_tokens",
)


def plugin_data_dir(env: ClaudeEnv, plugin_id: str) -> Path:
    """Where Claude Code 2.1.332 points CLAUDE_PLUGIN_DATA: ``<config dir>/plugins/data/<id>``, the id being
    ``name@marketplace`` with ``@`` turned into ``-`` (``token-budget-token-budget`` for a marketplace
    install, ``token-budget-inline`` for ``--plugin-dir``)."""
    return env.config_dir / "plugins" / "data" / re.sub(r"[^A-Za-z0-9_.-]", "-", plugin_id)


def ledger_rows(data_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The rows of ``<data_dir>/ledger.db``'s ``requests`` table, oldest first ([] if there is no ledger)."""
    import sqlite3

    path = Path(data_dir) / "ledger.db"
    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM requests ORDER BY timestamp, message_id")]
    finally:
        db.close()


def mock_usage_rows(requests: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The mock's answered /v1/messages requests as ledger-shaped rows, keyed by message id."""
    out = {}
    for r in requests:
        if r.get("kind") != "messages" or "message_id" not in r:
            continue
        u = r["response_usage"]
        out[r["message_id"]] = {
            "message_id": r["message_id"],
            "request_id": r["request_id"],
            "model": r["model"],
            "input_tokens": u["input_tokens"],
            "output_tokens": u["output_tokens"],
            "cache_creation_5m_tokens": u["ephemeral_5m_input_tokens"],
            "cache_creation_1h_tokens": u["ephemeral_1h_input_tokens"],
            "cache_read_tokens": u["cache_read_input_tokens"],
        }
    return out


def wheelhouse_dependencies() -> list[str]:
    """The ``dependencies`` of pyproject.toml: what scripts/bootstrap.py installs into the plugin's venv."""
    text = (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    block = re.search(r"^dependencies\s*=\s*\[(.*?)\]", text, re.S | re.M)
    return re.findall(r'"([^"]+)"', block.group(1)) if block else []


def build_wheelhouse(python: str = sys.executable, extra: tuple[str, ...] = ()) -> Path:
    """A folder of wheels for the plugin's dependencies (and theirs) and `extra`, for TOKEN_BUDGET_WHEELHOUSE.

    Built with ``pip wheel`` OUTSIDE any namespace (it needs the package index), once per interpreter ABI,
    platform and dependency list, under ``<e2e cache>/wheelhouse/<key>`` so CI can keep it between runs.
    Raises RuntimeError when pip cannot build it (offline without a cached copy).
    """
    import hashlib
    import sysconfig
    import tempfile

    deps = [*wheelhouse_dependencies(), *extra]
    probe = subprocess.run(
        [python, "-c", "import sys, sysconfig as s; print(sys.implementation.cache_tag, s.get_platform())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    pins = (REPO_ROOT / "scripts" / "constraints.txt").read_text(encoding="utf-8")  # new pins: a new wheelhouse
    key = hashlib.sha256(json.dumps([probe, deps, pins]).encode()).hexdigest()[:12]
    tag = re.sub(r"[^A-Za-z0-9_.-]", "_", "-".join(probe or [sysconfig.get_platform()]))
    dest = cache_dir() / "wheelhouse" / f"{tag}-{key}"
    if (dest / ".complete").exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=dest.parent))
    try:
        p = subprocess.run(
            [python, "-m", "pip", "wheel", "--disable-pip-version-check", "-q", "-w", str(tmp),
             "-c", str(REPO_ROOT / "scripts" / "constraints.txt"), *deps],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if p.returncode != 0:
            raise RuntimeError(f"pip wheel {' '.join(deps)} failed:\n{p.stderr[-3000:]}")
        (tmp / ".complete").write_text(json.dumps({"python": probe, "dependencies": deps}) + "\n")
        try:
            os.rename(tmp, dest)
        except OSError:  # a parallel session got there first
            if not (dest / ".complete").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest
