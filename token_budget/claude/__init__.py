"""Everything that knows Claude Code: transcripts, hook JSON, the status line, settings. The core never imports it."""

from __future__ import annotations

PLUGIN_DATA_ENV = "CLAUDE_PLUGIN_DATA"  # the data folder Claude Code gives a plugin's hooks and commands

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..paths import PathLike


def data_dir(explicit: PathLike | None = None, *, create: bool = True) -> str:
    """paths.data_dir with the plugin's data folder: --data-dir > $TOKEN_BUDGET_HOME > $CLAUDE_PLUGIN_DATA >
    $XDG_DATA_HOME/token-budget."""
    import os

    from ..paths import data_dir as resolve

    return resolve(explicit, create=create, host=os.environ.get(PLUGIN_DATA_ENV))
