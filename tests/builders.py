"""Builders for Claude Code transcript lines and hook payloads, shaped like the real ones (CLI 2.1.332).

One API response becomes one assistant line per content block, all sharing message.id and requestId; early
lines may carry a partial output count. Builders return dicts; `write_lines` appends them as JSONL.
"""

from __future__ import annotations

import itertools
import json
import uuid
from pathlib import Path
from typing import Any

_ids = itertools.count(1)


def usage(input_tokens: int = 100, output_tokens: int = 50, cache_5m: int = 0, cache_1h: int = 0,
          cache_read: int = 0, speed: str | None = "standard") -> dict[str, Any]:
    data: dict[str, Any] = {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": cache_5m + cache_1h,
        "cache_read_input_tokens": cache_read,
        "output_tokens": output_tokens,
        "output_tokens_details": {"thinking_tokens": 0},
        "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
        "service_tier": "standard",
        "cache_creation": {"ephemeral_1h_input_tokens": cache_1h, "ephemeral_5m_input_tokens": cache_5m},
        "inference_geo": "",
        "iterations": [],
    }
    if speed is not None:
        data["speed"] = speed
    return data


def response(*, blocks: int = 1, session_id: str = "sess-1", timestamp: str = "2026-11-28T10:30:00.000Z",
             model: str = "claude-sonnet-4-5-20250929", message_id: str | None = None,
             request_id: str | None = "auto", partial_output: int | None = None, is_sidechain: bool = False,
             agent_id: str | None = None, cwd: str = "/tmp/proj", **usage_args: Any) -> list[dict[str, Any]]:
    """The assistant lines of one API response: `blocks` lines, the earlier ones with `partial_output`."""
    n = next(_ids)
    message_id = message_id or f"msg_{n:024d}"
    if request_id == "auto":
        request_id = f"req_{n:024d}"
    final = usage(**usage_args)
    lines = []
    for index in range(blocks):
        line_usage = dict(final)
        if partial_output is not None and index < blocks - 1:
            line_usage["output_tokens"] = partial_output
        line: dict[str, Any] = {
            "parentUuid": None, "isSidechain": is_sidechain, "userType": "external", "cwd": cwd,
            "sessionId": session_id, "version": "2.1.332", "gitBranch": "main", "type": "assistant",
            "uuid": str(uuid.uuid4()), "timestamp": timestamp, "entrypoint": "sdk-cli",
            "message": {"id": message_id, "type": "message", "role": "assistant", "model": model,
                        "content": [{"type": "text", "text": f"block {index}"}],
                        "stop_reason": "end_turn" if index == blocks - 1 else None, "usage": line_usage},
        }
        if request_id is not None:
            line["requestId"] = request_id
        if agent_id is not None:
            line["agentId"] = agent_id
        lines.append(line)
    return lines


def user_line(text: str = "hello", session_id: str = "sess-1",
              timestamp: str = "2026-11-28T10:29:59.000Z") -> dict[str, Any]:
    return {"parentUuid": None, "isSidechain": False, "type": "user", "sessionId": session_id,
            "uuid": str(uuid.uuid4()), "timestamp": timestamp, "cwd": "/tmp/proj",
            "message": {"role": "user", "content": text}}


def synthetic(session_id: str = "sess-1", timestamp: str = "2026-11-28T10:31:00.000Z") -> dict[str, Any]:
    """A local error placeholder: never billed, but it carries usage-shaped zeros (or not)."""
    line = response(session_id=session_id, timestamp=timestamp, model="<synthetic>", input_tokens=0,
                    output_tokens=0)[0]
    line["isApiErrorMessage"] = True
    return line


def write_lines(path: Path, lines: list[dict[str, Any]] | dict[str, Any], *, newline: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(lines, dict):
        lines = [lines]
    with open(path, "a", encoding="utf-8") as handle:
        for i, line in enumerate(lines):
            handle.write(json.dumps(line, separators=(",", ":")))  # compact, as Claude Code writes
            if newline or i < len(lines) - 1:
                handle.write("\n")
    return path


def transcript_path(claude_dir: Path, session_id: str = "sess-1", project: str = "-tmp-proj") -> Path:
    return claude_dir / "projects" / project / f"{session_id}.jsonl"


def subagent_path(main: Path, agent_id: str) -> Path:
    return main.with_suffix("") / "subagents" / f"agent-{agent_id}.jsonl"


def hook_payload(event: str, transcript: Path | None, **extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"session_id": "sess-1", "cwd": "/tmp/proj", "hook_event_name": event,
                               "permission_mode": "bypassPermissions"}
    if transcript is not None:
        payload["transcript_path"] = str(transcript)
    if event in ("PreToolUse", "PostToolUse"):
        payload.setdefault("tool_name", "Bash")
        payload.setdefault("tool_input", {"command": "echo hi"})
        payload.setdefault("tool_use_id", "toolu_01")
    payload.update(extra)
    return payload


def cost_state(session_id: str = "sess-1", models: dict[str, dict[str, int]] | None = None,
               total_cost_usd: float | None = None, **extra: Any) -> dict[str, Any]:
    """Claude Code 2.1.332's cost-state line: the session's cumulative figures per model, subagents and
    auxiliary requests included, with no timestamp. `models` maps a model to counts: input, output, cache_5m,
    cache_1h, cache_read, cost_usd."""
    usage = {}
    for model, c in (models or {}).items():
        five, hour = c.get("cache_5m", 0), c.get("cache_1h", 0)
        usage[model] = {"inputTokens": c.get("input", 0), "outputTokens": c.get("output", 0), "thinkingTokens": 0,
                        "cacheReadInputTokens": c.get("cache_read", 0), "cacheCreationInputTokens": five + hour,
                        "cacheCreationEphemeral5mInputTokens": five, "cacheCreationEphemeral1hInputTokens": hour,
                        "webSearchRequests": 0, "costUSD": c.get("cost_usd", 0.0)}
    total = sum(u["costUSD"] for u in usage.values()) if total_cost_usd is None else total_cost_usd
    line = {"type": "cost-state", "sessionId": session_id, "totalCostUSD": total, "totalAPIDuration": 62,
            "totalAPIDurationWithoutRetries": 51, "totalToolDuration": 0, "totalLinesAdded": 0,
            "totalLinesRemoved": 0, "totalDuration": 917, "startTime": 1796007390679, "modelUsage": usage,
            "hasUnknownModelCost": False}
    line.update(extra)
    return line
