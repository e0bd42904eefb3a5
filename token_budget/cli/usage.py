"""Commands that read usage into the ledger and out of it: hook, import, log."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from . import Env, UserError, json_option, pass_env, print_json


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("event")
def hook(event: str) -> None:
    """Run a Claude Code hook: hook JSON on stdin, hook JSON on stdout, exit 0 or 2.

    EVENT is Claude Code's event name (SessionStart, UserPromptSubmit, PreToolUse, PostToolUse, Stop,
    SubagentStop, SessionEnd, PreCompact). The installed `tokens hook` skips this wrapper for speed.
    """
    from ..claude.hook import run

    sys.exit(run([event]))


def claude_dirs(explicit: tuple[str, ...]) -> list[Path]:
    """--claude-dir > $CLAUDE_CONFIG_DIR (comma-separated) > ~/.config/claude and ~/.claude."""
    if explicit:
        return [Path(d).expanduser() for d in explicit]
    env = os.environ.get("CLAUDE_CONFIG_DIR")
    if env:
        return [Path(d.strip()).expanduser() for d in env.split(",") if d.strip()]
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return [Path(xdg) / "claude", Path(os.path.expanduser("~")) / ".claude"]


@click.command(name="import")
@click.option("--claude-dir", "dirs", multiple=True, type=click.Path(file_okay=False),
              help="A Claude Code config folder holding projects/ (repeatable).")
@click.option("--changed-since", type=float, metavar="EPOCH_SECONDS",
              help="Only transcripts modified at or after this Unix time (the plugin's first-run catch-up).")
@json_option
@pass_env
def import_(env: Env, dirs: tuple[str, ...], changed_since: float | None, as_json: bool) -> None:
    """Backfill the ledger from every transcript; running it again adds nothing new."""
    from ..claude.transcript import find_transcripts, ingest_files

    roots = claude_dirs(dirs)
    files = find_transcripts(roots)
    if changed_since is not None:
        files = [f for f in files if _modified_at(f) >= changed_since]
    if not files and dirs:
        raise UserError(f"No transcripts (*.jsonl under projects/) in {', '.join(map(str, roots))}.\n"
                        "Pass the folder that holds projects/, such as ~/.claude.")
    result = ingest_files(env.ledger, files, source="import", prices=env.config.prices)
    summary = {"files": len(files), "files_read": result.files, "lines": result.lines,
               "requests_added": result.inserted, "requests_updated": result.updated,
               "malformed_lines": result.malformed, "bytes_read": result.bytes_read, "errors": result.errors}
    if as_json:
        print_json(summary)
        return
    click.echo(f"Read {result.files:,} of {len(files):,} transcript files ({result.bytes_read:,} new bytes): "
               f"added {result.inserted:,} requests, updated {result.updated:,}.")
    if result.malformed:
        click.echo(f"Skipped {result.malformed:,} malformed lines (see `tokens doctor`).")
    for error in result.errors:
        click.echo(f"Could not read {error}", err=True)


def _modified_at(path: str | os.PathLike[str]) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def _day_option(name: str, help_text: str):  # type: ignore[no-untyped-def]
    return click.option(name, type=click.DateTime(["%Y-%m-%d"]), help=help_text)


@click.command()
@json_option
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True,
              help="How many of the newest requests (0 for all).")
@click.option("--session", help="Only this session id.")
@_day_option("--since", "First day, YYYY-MM-DD, in the configured time zone.")
@_day_option("--until", "Last day (inclusive), YYYY-MM-DD.")
@pass_env
def log(env: Env, as_json: bool, limit: int, session: str | None, since, until) -> None:  # type: ignore[no-untyped-def]
    """Every API request, oldest first: tokens per class, cost, and running workflow and daily totals."""
    from datetime import timedelta

    from ..periods import day_bounds, zone
    from ..usage_log import log_entries

    tz = zone(env.config.timezone)
    start = day_bounds(since.date(), tz)[0] if since else None
    end = day_bounds(until.date() + timedelta(days=0), tz)[1] if until else None
    entries = log_entries(env.ledger, env.config, since=start, until=end, session=session, limit=limit or None)
    if as_json:
        print_json(entries, lines=True)
        return
    if not entries:
        click.echo("No requests recorded yet. Run `tokens import`, or use Claude Code with the plugin enabled.")
        return
    for entry in entries:
        click.echo(render_entry(entry))


def render_entry(entry: dict) -> str:  # type: ignore[type-arg]
    """The seed's token_log block for one request."""
    tokens, cumulative = entry["tokens"], entry["cumulative"]
    lines = [
        "token_log:",
        f"  request_id: {entry['request_id']}",
        f"  timestamp: {entry['timestamp']}",
        f"  workflow: {entry['workflow'] or '-'}",
        f"  phase: {entry['phase'] or '-'}",
        f"  model: {entry['model']}",
        "  tokens:",
        f"    input: {tokens['input']:,}",
        f"    output: {tokens['output']:,}",
        f"    cache_creation: {tokens['cache_creation']:,}",
        f"    cache_read: {tokens['cache_read']:,}",
        f"    total: {tokens['total']:,}",
        f"  cost: ${entry['cost_usd']:,.4f}"
        + ("" if entry["cost_status"] == "priced" else f" ({entry['cost_status']})"),
        "  cumulative:",
        f"    workflow: {'-' if cumulative['workflow'] is None else format(cumulative['workflow'], ',')}",
        f"    daily: {cumulative['daily']:,}",
    ]
    return "\n".join(lines)
