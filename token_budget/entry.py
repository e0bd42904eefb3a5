"""The `tokens` console script. `tokens hook …` is dispatched before click (or anything heavy) is imported."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:2] == ["hook"]:
        from .claude.hook import run

        sys.exit(run(sys.argv[2:]))
    from .cli import cli

    cli()
