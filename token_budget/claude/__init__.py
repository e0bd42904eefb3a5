"""Everything that knows Claude Code: transcripts, hook JSON, the status line, settings. The core never imports it."""

from __future__ import annotations

PLUGIN_DATA_ENV = "CLAUDE_PLUGIN_DATA"  # the data folder Claude Code gives a plugin's hooks and commands



def plugin_data() -> str | None:
    """The data folder Claude Code gives the plugin ($CLAUDE_PLUGIN_DATA), None outside a plugin: what the adapter
    hands paths.data_dir as its `host` folder (paths.data_dir owns the rule)."""
    import os

    return os.environ.get(PLUGIN_DATA_ENV) or None
