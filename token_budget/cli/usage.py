"""Commands that read usage into the ledger and out of it: hook, import, log."""

from __future__ import annotations

import sys

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


@click.command(name="import")
@click.option("--claude-dir", "dirs", multiple=True, type=click.Path(file_okay=False),
              help="A Claude Code config folder holding projects/ (repeatable).")
@click.option("--changed-since", type=float, metavar="EPOCH_SECONDS",
              help="Only transcripts modified at or after this Unix time (the plugin's first-run catch-up).")
@click.option("--rescan", is_flag=True,
              help="Read every file from its start again (finds Claude Code's own totals in files read before).")
@json_option
@pass_env
def import_(env: Env, dirs: tuple[str, ...], changed_since: float | None, rescan: bool, as_json: bool) -> None:
    """Backfill the ledger from every transcript; running it again adds nothing new.

    Requests that are in no transcript (session titles, classifiers, prompt hooks) are added from Claude Code's
    own per-session totals as `reconciled` rows; see `tokens doctor`.
    """
    from ..claude.sources import config_dirs, transcripts
    from ..claude.transcript import ingest_files

    roots = config_dirs(dirs)
    files = transcripts(roots, changed_since)
    if not files and dirs:
        raise UserError(f"No transcripts (*.jsonl under projects/) in {', '.join(map(str, roots))}.\n"
                        "Pass the folder that holds projects/, such as ~/.claude.")
    result = ingest_files(env.ledger, files, source="import", prices=env.config.prices, rescan=rescan)
    summary = {"files": len(files), "files_read": result.files, "lines": result.lines,
               "requests_added": result.inserted, "requests_updated": result.updated,
               "sessions_reconciled": result.reconciled,
               "malformed_lines": result.malformed, "bytes_read": result.bytes_read, "errors": result.errors}
    if as_json:
        print_json(summary)
        return
    click.echo(f"Read {result.files:,} of {len(files):,} transcript files ({result.bytes_read:,} new bytes): "
               f"added {result.inserted:,} requests, updated {result.updated:,}.")
    if result.reconciled:
        click.echo(f"Checked {result.reconciled:,} sessions against Claude Code's own totals (see `tokens doctor`).")
    if result.malformed:
        click.echo(f"Skipped {result.malformed:,} malformed lines (see `tokens doctor`).")
    for error in result.errors:
        click.echo(f"Could not read {error}", err=True)


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
    from ..usage_log import day_range, log_entries

    start, end = day_range(env.config, since.date() if since else None, until.date() if until else None)
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
    from ..safetext import printable

    tokens, cumulative = entry["tokens"], entry["cumulative"]
    lines = [
        "token_log:",
        f"  request_id: {entry['request_id']}",
        f"  timestamp: {entry['timestamp']}",
        f"  workflow: {printable(entry['workflow'] or '-')}",
        f"  phase: {printable(entry['phase'] or '-')}",
        f"  model: {printable(entry['model'])}",
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
