"""Where Claude Code keeps its transcripts: the config folders (`--claude-dir`, $CLAUDE_CONFIG_DIR, or the two
defaults) and the transcripts in them, for `tokens import` and `tokens doctor`."""

from __future__ import annotations

import os
from pathlib import Path


def config_dirs(explicit: tuple[str, ...] | list[str] = ()) -> list[Path]:
    """The given folders > $CLAUDE_CONFIG_DIR (comma-separated) > ~/.config/claude and ~/.claude."""
    if explicit:
        return [Path(d).expanduser() for d in explicit]
    env = os.environ.get("CLAUDE_CONFIG_DIR")
    if env:
        return [Path(d.strip()).expanduser() for d in env.split(",") if d.strip()]
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return [Path(xdg) / "claude", Path(os.path.expanduser("~")) / ".claude"]


def transcripts(roots: list[Path], changed_since: float | None = None) -> list[str]:
    """Every transcript under the folders' projects/, or only those modified at or after `changed_since`."""
    from .transcript import find_transcripts

    files = find_transcripts(roots)
    if changed_since is not None:
        files = [f for f in files if _modified_at(f) >= changed_since]
    return files


def _modified_at(path: str | os.PathLike[str]) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0
