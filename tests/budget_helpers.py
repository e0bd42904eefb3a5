"""A session driven through the real hook adapter: spend tokens into its transcript, run hooks, read their JSON."""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from builders import hook_payload, response, transcript_path, write_lines

from token_budget.claude.hook import run
from token_budget.periods import iso

NOW = datetime(2026, 11, 28, 15, 0, tzinfo=timezone.utc)  # resets at midnight UTC are "in 9h 00m"


class Session:
    def __init__(self, claude_dir: Path, session_id: str = "sess-1", now: datetime = NOW) -> None:
        self.session_id = session_id
        self.path = transcript_path(claude_dir, session_id)
        self.now = now

    def spend(self, tokens: int, *, model: str = "claude-sonnet-4-5-20250929", timestamp: str | None = None,
              **extra: Any) -> None:
        stamp = timestamp or iso(self.now)
        write_lines(self.path, response(session_id=self.session_id, model=model, timestamp=stamp,
                                        input_tokens=tokens, output_tokens=0, **extra))

    def hook(self, event: str, **extra: Any) -> tuple[int, dict[str, Any]]:
        extra.setdefault("session_id", self.session_id)
        payload = hook_payload(event, self.path, **extra)
        out, err = io.StringIO(), io.StringIO()
        code = run([event], io.StringIO(json.dumps(payload)), out, err, now=self.now)
        return code, json.loads(out.getvalue())


def write_config(tmp_path: Path, monkeypatch: Any, text: str) -> Path:
    path = tmp_path / "budgets.yaml"
    path.write_text(text)
    monkeypatch.setenv("TOKEN_BUDGET_CONFIG", str(path))
    return path


def events_through(monkeypatch: Any, owner: Any, name: str) -> list[str]:
    """The events (first argument) `owner.name` is called with from now on, in order: which hooks took a path."""
    taken: list[str] = []
    real = getattr(owner, name)

    def spy(event: str, *args: Any, **kwargs: Any) -> Any:
        taken.append(event)
        return real(event, *args, **kwargs)

    monkeypatch.setattr(owner, name, spy)
    return taken


HALF_DAY_CONFIG = "timezone: UTC\nbudgets:\n  global: {daily_limit: 10000}\n"


def half_spent_session(claude_dir: Path, tmp_path: Path, monkeypatch: Any) -> Session:
    """A session that has used 50% of a 10,000-token daily budget (HALF_DAY_CONFIG): far from every level."""
    write_config(tmp_path, monkeypatch, HALF_DAY_CONFIG)
    s = Session(claude_dir)
    s.spend(5000)
    return s
