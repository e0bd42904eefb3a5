#!/usr/bin/env python3
"""A scripted mock of the Anthropic Messages API (``POST /v1/messages``), stdlib only.

It answers the way Claude Code CLI 2.1.332 expects (see shared/claude-code.md §11): an SSE stream of
``message_start`` (message ``id``, ``model`` = the model asked for, ``usage`` with input / cache tokens and
``output_tokens: 1``), ``ping``, per content block ``content_block_start`` / ``content_block_delta``
(``text_delta`` or ``input_json_delta``) / ``content_block_stop``, ``message_delta`` (``stop_reason``,
``usage.output_tokens``) and ``message_stop``, with a ``request-id`` response header.

The script is a list of turns consumed in order, one per ``POST /v1/messages``. A turn is::

    {"content": [{"type": "text", "text": "hello"},
                 {"type": "tool_use", "name": "Bash", "input": {"command": "echo hi"}}],
     "usage": {"input_tokens": 100, "cache_creation_input_tokens": 50, "cache_read_input_tokens": 2000,
               "output_tokens": 42, "ephemeral_1h_input_tokens": 0},   # every key optional
     "stop_reason": "tool_use",        # optional: "tool_use" if a tool_use block is present, else "end_turn"
     "headers": {"x-name": "value"},   # optional: extra response headers
     "status": 200}                    # optional: answer with this HTTP error status instead of a message

A turn may also be just the list of blocks. When the script is exhausted the mock answers a short final text
(``MockScript.default_text``) with ``DEFAULT_USAGE``. Message and request ids carry a random per-process
part, so they are unique across restarts (a resumed session must not see an earlier run's ids).

Every request is recorded (method, path, query, headers, parsed JSON body, the model asked for, and the ids
answered) in memory and, with ``record_path``, appended as one JSON line each, flushed at once.

In process::

    with MockAnthropicAPI(script=[...]) as api:       # 127.0.0.1, port 0 -> api.port
        ...  api.base_url, api.requests

As a program (needed inside ``unshare -n``, where only the namespace's own loopback is reachable)::

    python3 mock_api.py --port 18777 --script script.json --record requests.jsonl [--ready-file F]
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import os
import signal
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Iterable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

DEFAULT_USAGE: dict[str, int] = {
    "input_tokens": 10,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
    "output_tokens": 5,
}
DEFAULT_TEXT = "Done."
COUNT_TOKENS_ANSWER = 100


def _normalise_usage(usage: Mapping[str, Any] | None) -> dict[str, int]:
    u = dict(DEFAULT_USAGE)
    if usage:
        u.update({k: int(v) for k, v in usage.items()})
    cc = u["cache_creation_input_tokens"]
    one_h = u.pop("ephemeral_1h_input_tokens", 0)
    five_m = u.pop("ephemeral_5m_input_tokens", cc - one_h)
    if five_m + one_h != cc:
        raise ValueError(
            f"ephemeral_5m ({five_m}) + ephemeral_1h ({one_h}) != cache_creation_input_tokens ({cc})"
        )
    u["ephemeral_5m_input_tokens"] = five_m
    u["ephemeral_1h_input_tokens"] = one_h
    return u


def normalise_turn(turn: Any) -> dict[str, Any]:
    """Turn a script entry (a dict, or a bare list of blocks) into the full form used by the server."""
    if isinstance(turn, (list, tuple)):
        turn = {"content": list(turn)}
    if not isinstance(turn, Mapping):
        raise TypeError(f"a turn is a dict or a list of content blocks, not {turn!r}")
    blocks = []
    for b in turn.get("content", []):
        if isinstance(b, str):
            b = {"type": "text", "text": b}
        b = dict(b)
        if b["type"] == "tool_use":
            b.setdefault("id", "toolu_mock_" + uuid.uuid4().hex[:20])
            b.setdefault("input", {})
        elif b["type"] != "text":
            raise ValueError(f"unsupported content block type {b['type']!r} (text and tool_use only)")
        blocks.append(b)
    if not blocks:
        blocks = [{"type": "text", "text": DEFAULT_TEXT}]
    stop = turn.get("stop_reason") or (
        "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
    )
    out = {"content": blocks, "usage": _normalise_usage(turn.get("usage")), "stop_reason": stop}
    if turn.get("status"):
        out["status"] = int(turn["status"])
    if turn.get("headers"):  # extra response headers, e.g. anthropic-ratelimit-unified-5h-utilization
        out["headers"] = {str(k): str(v) for k, v in dict(turn["headers"]).items()}
    return out


def usage_totals(turns: Iterable[Any]) -> dict[str, int]:
    """Sum of the scripted usage over turns, in the names of the `-p` JSON ``usage`` object."""
    keys = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")
    tot = dict.fromkeys(keys, 0)
    for t in turns:
        u = normalise_turn(t)["usage"]
        for k in keys:
            tot[k] += u[k]
    return tot


def text_turn(text: str, **usage: int) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "usage": usage}


def tool_turn(
    name: str, tool_input: Mapping[str, Any], text: str | None = None, **usage: int
) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    blocks.append({"type": "tool_use", "name": name, "input": dict(tool_input)})
    return {"content": blocks, "usage": usage}


def bash_turn(command: str, **usage: int) -> dict[str, Any]:
    return tool_turn("Bash", {"command": command, "description": "Run a command"}, **usage)


class MockScript:
    """Turns consumed in order; thread-safe. After the last one, answers ``default_text``."""

    def __init__(
        self,
        turns: Sequence[Any] = (),
        default_text: str = DEFAULT_TEXT,
        default_usage: Mapping[str, int] | None = None,
    ):
        self._turns = [normalise_turn(t) for t in turns]
        self._next = 0
        self._lock = threading.Lock()
        self.default = normalise_turn(
            {"content": [{"type": "text", "text": default_text}], "usage": default_usage or DEFAULT_USAGE}
        )

    @classmethod
    def load(cls, data: Any) -> MockScript:
        if isinstance(data, Mapping):
            return cls(
                data.get("turns", []), data.get("default_text", DEFAULT_TEXT), data.get("default_usage")
            )
        return cls(data or [])

    def take(self) -> tuple[int | None, dict[str, Any]]:
        with self._lock:
            if self._next < len(self._turns):
                i = self._next
                self._next += 1
                return i, copy.deepcopy(self._turns[i])
            return None, copy.deepcopy(self.default)

    @property
    def consumed(self) -> int:
        return self._next


def _sse(event: str, data: Mapping[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def api_usage(u: Mapping[str, Any], *, output_tokens: int | None = None) -> dict[str, Any]:
    """A scripted turn's usage in the Messages API's shape."""
    return {
        "input_tokens": u["input_tokens"],
        "cache_creation_input_tokens": u["cache_creation_input_tokens"],
        "cache_read_input_tokens": u["cache_read_input_tokens"],
        "cache_creation": {
            "ephemeral_5m_input_tokens": u["ephemeral_5m_input_tokens"],
            "ephemeral_1h_input_tokens": u["ephemeral_1h_input_tokens"],
        },
        "output_tokens": u["output_tokens"] if output_tokens is None else output_tokens,
        "service_tier": "standard",
    }


def sse_body(message_id: str, model: str, turn: Mapping[str, Any]) -> bytes:
    start_usage = api_usage(turn["usage"], output_tokens=1)  # message_start carries a placeholder output count
    parts = [
        _sse(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": start_usage,
                },
            },
        ),
        _sse("ping", {"type": "ping"}),
    ]
    for i, b in enumerate(turn["content"]):
        if b["type"] == "text":
            parts.append(
                _sse(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": i,
                        "content_block": {"type": "text", "text": ""},
                    },
                )
            )
            parts.append(
                _sse(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": i,
                        "delta": {"type": "text_delta", "text": b["text"]},
                    },
                )
            )
        else:
            parts.append(
                _sse(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": i,
                        "content_block": {"type": "tool_use", "id": b["id"], "name": b["name"], "input": {}},
                    },
                )
            )
            parts.append(
                _sse(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": i,
                        "delta": {"type": "input_json_delta", "partial_json": json.dumps(b["input"])},
                    },
                )
            )
        parts.append(_sse("content_block_stop", {"type": "content_block_stop", "index": i}))
    parts.append(
        _sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": turn["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": turn["usage"]["output_tokens"]},
            },
        )
    )
    parts.append(_sse("message_stop", {"type": "message_stop"}))
    return b"".join(parts)


def json_message(message_id: str, model: str, turn: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": turn["content"],
        "stop_reason": turn["stop_reason"],
        "stop_sequence": None,
        "usage": api_usage(turn["usage"]),
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, fmt: str, *args: Any) -> None:  # quiet; everything is in the record
        if self.server.api.verbose:
            sys.stderr.write("mock_api: " + (fmt % args) + "\n")

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            raw = b"".join(chunks)
        else:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        enc = self.headers.get("Content-Encoding", "").lower()
        if enc == "gzip":
            raw = gzip.decompress(raw)
        elif enc == "deflate":
            raw = zlib.decompress(raw)
        return raw

    def _send(self, status: int, body: bytes, content_type: str, extra: Mapping[str, str] = ()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in dict(extra).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _handle(self) -> None:
        api = self.server.api
        raw = self._read_body() if self.command in ("POST", "PUT", "PATCH") else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = {"_unparsed": raw.decode("utf-8", "replace")}
        parts = urlsplit(self.path)
        rec: dict[str, Any] = {
            "time": time.time(),
            "method": self.command,
            "path": parts.path,
            "query": parse_qs(parts.query),
            "raw_path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body,
            "model": body.get("model") if isinstance(body, dict) else None,
        }
        if self.command == "POST" and parts.path == "/v1/messages":
            index, turn = api.script.take()
            n = api._next_seq()
            request_id = f"req_mock_{api.run_tag}_{n:04d}"
            rec.update(
                kind="messages",
                turn_index=index,
                scripted=index is not None,
                request_id=request_id,
                status=turn.get("status", 200),
                stream=bool(isinstance(body, dict) and body.get("stream")),
            )
            if "status" in turn and turn["status"] != 200:
                api._record(rec)
                err = {"type": "error", "error": {"type": "api_error", "message": "mock error"}}
                self._send(
                    turn["status"], json.dumps(err).encode(), "application/json", {"request-id": request_id}
                )
                return
            message_id = f"msg_mock_{api.run_tag}_{n:04d}"
            model = rec["model"] or "claude-sonnet-4-5-20250929"
            rec.update(
                message_id=message_id,
                response_usage=turn["usage"],
                stop_reason=turn["stop_reason"],
                response_content=turn["content"],
            )
            api._record(rec)
            if rec["stream"]:
                self._send(
                    200,
                    sse_body(message_id, model, turn),
                    "text/event-stream; charset=utf-8",
                    {"request-id": request_id, "Cache-Control": "no-cache", **turn.get("headers", {})},
                )
            else:
                self._send(
                    200,
                    json.dumps(json_message(message_id, model, turn)).encode(),
                    "application/json",
                    {"request-id": request_id},
                )
            return
        if self.command == "POST" and parts.path == "/v1/messages/count_tokens":
            rec.update(kind="count_tokens", status=200)
            api._record(rec)
            self._send(200, json.dumps({"input_tokens": COUNT_TOKENS_ANSWER}).encode(), "application/json")
            return
        rec.update(kind="other", status=404)
        api._record(rec)
        err = {
            "type": "error",
            "error": {"type": "not_found_error", "message": f"mock: no route {parts.path}"},
        }
        self._send(404, json.dumps(err).encode(), "application/json")

    do_POST = do_GET = do_HEAD = do_PUT = do_PATCH = do_DELETE = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    api: MockAnthropicAPI


class MockAnthropicAPI:
    """The mock server. ``start()`` binds ``host:port`` (port 0 = any free one) and serves in a thread."""

    def __init__(
        self,
        script: MockScript | Sequence[Any] | Mapping[str, Any] = (),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        record_path: str | os.PathLike[str] | None = None,
        verbose: bool = False,
    ):
        self.script = script if isinstance(script, MockScript) else MockScript.load(script)
        self.host, self.port = host, port
        self.record_path = Path(record_path) if record_path else None
        self.verbose = verbose
        self.run_tag = uuid.uuid4().hex[:12]  # unique per mock process/instance
        self.requests: list[dict[str, Any]] = []
        self._seq = 0
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def _next_seq(self) -> int:
        with self._lock:
            self._seq += 1
            return self._seq

    def _record(self, rec: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(rec)
            if self.record_path:
                with open(self.record_path, "a", encoding="utf-8") as f:
                    f.write(json.dumps(rec) + "\n")
                    f.flush()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def message_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r.get("kind") == "messages"]

    def start(self) -> MockAnthropicAPI:
        self._server = _Server((self.host, self.port), _Handler)
        self._server.api = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="mock-anthropic-api",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> MockAnthropicAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def load_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    p = Path(path)
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--script", help="JSON file: a list of turns, or {turns, default_text, default_usage}")
    ap.add_argument("--record", help="append every request here as one JSON line")
    ap.add_argument("--ready-file", help="written (with the port) once the server listens")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args(argv)
    data = json.loads(Path(a.script).read_text(encoding="utf-8")) if a.script else []
    api = MockAnthropicAPI(
        MockScript.load(data), host=a.host, port=a.port, record_path=a.record, verbose=a.verbose
    ).start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if a.ready_file:
        tmp = a.ready_file + ".tmp"
        Path(tmp).write_text(str(api.port))
        os.replace(tmp, a.ready_file)
    print(f"mock_api listening on {api.base_url} (tag {api.run_tag})", file=sys.stderr, flush=True)
    stop.wait()
    api.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
