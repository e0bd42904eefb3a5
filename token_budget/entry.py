"""The `tokens` console script. `tokens hook` and `tokens statusline` run before click (or anything heavy) loads."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:2] == ["hook"]:
        from .claude.hook import run_watched

        sys.exit(run_watched(sys.argv[2:]))
    if sys.argv[1:2] == ["statusline"]:  # runs after every assistant message: as light as the hook
        from .claude.statusline import main as statusline

        sys.exit(statusline(sys.argv[2:]))
    from .cli import cli

    cli()
