"""Everything that knows Claude Code: transcripts, hook JSON, the status line, settings. The core never imports it."""
