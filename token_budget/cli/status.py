"""What users look at every day: `tokens status` (the dashboard), `tokens statusline`, and `tokens slash` (the
entry behind Claude Code's /tokens command)."""

from __future__ import annotations

import os
import sys

import click

from . import Env, cli, json_option, pass_env, print_json


def use_color(choice: str) -> bool:
    """auto: colour on a terminal unless NO_COLOR is set (https://no-color.org)."""
    if choice != "auto":
        return choice == "always"
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


@click.command()
@json_option
@click.option(
    "--session",
    help="The session whose workflow and session budget to show "
    "(default: $CLAUDE_CODE_SESSION_ID inside Claude Code, else every open run).",
)
@click.option(
    "--color",
    "color",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="Colour by budget level (auto: on a terminal, unless NO_COLOR is set).",
)
@click.option(
    "--width", type=click.IntRange(min=20), help="Columns (default: the terminal's, or $COLUMNS; 60 to 80)."
)
@pass_env
def status(env: Env, as_json: bool, session: str | None, color: str, width: int | None) -> None:
    """The dashboard: every budget with its bar, reset time, mode, burn rate, deferred workflows and alerts.

    \b
    Example:
        tokens status              # the box
        tokens status --json       # the same figures, for scripts and the skill
    """
    from ..dashboard import render_dashboard, terminal_width
    from ..dashboard import status as status_data

    data = status_data(env.ledger, env.config, session_id=session or os.environ.get("CLAUDE_CODE_SESSION_ID"))
    if as_json:
        print_json(data)
        return
    click.echo(render_dashboard(data, width=terminal_width(width), color=use_color(color)), color=use_color(color))


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--data-dir", "statusline_data_dir", type=click.Path(file_okay=False), hidden=True)
def statusline(statusline_data_dir: str | None) -> None:
    """Claude Code's status line: its statusLine JSON on stdin, one short line out.

    The installed status line (`tokens install --statusline`) skips this wrapper for speed.
    """
    from ..claude.statusline import main

    ctx = click.get_current_context()
    env = ctx.find_object(Env)
    chosen = statusline_data_dir or (env.data_dir_option if env else None)
    sys.exit(main(["--data-dir", chosen] if chosen else []))


SLASH_HELP = """\
{p}: token budgets for this Claude Code setup, answered on this machine (no model request).

  {p} status                     the dashboard (the default)
  {p} budget [SCOPE AMOUNT]      show budgets, or set one: daily, monthly, a workflow, a model key
  {p} budget suggest             budgets from your own last 30 days
  {p} mode [economy|normal|auto] show or set the mode
  {p} report [--date D | --month M] [--format yaml|json|csv|html]
  {p} log [--limit N]            the latest requests with running totals
  {p} ack [ALERT_ID]             acknowledge alerts
  {p} workflow start NAME | phase P | end
  {p} alerts [test CHANNEL]      alerts with their delivery state, or try one channel
  {p} events                     thresholds crossed, and every change of a limit, the mode or an ack
  {p} import                     record every transcript Claude Code still has (safe to repeat)
  {p} doctor                     check config, data dir, ledger, hooks, transcripts and channels
  {p} help                       this text

Examples: {p} budget sprint 300000 · {p} mode economy · {p} report --month 2026-11"""


def slash_help(prefix: str) -> str:
    return SLASH_HELP.format(p=prefix)


SLASH_COMMANDS = (
    "status",
    "budget",
    "mode",
    "report",
    "log",
    "ack",
    "workflow",
    "alerts",
    "events",
    "doctor",
    "import",
)


@click.command(
    hidden=True,
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@pass_env
def slash(env: Env, args: tuple[str, ...]) -> None:
    """The /tokens slash command: run a subcommand, print help for anything else, and always exit 0.

    Claude Code aborts the whole command when a `!` line exits non-zero, so errors are printed, not returned.
    """
    sys.exit(run_slash(env, list(args)))


def run_slash(env: Env, args: list[str], prog_name: str = "/tokens") -> int:
    if not args:
        args = ["status"]
    name = args[0]
    if name in ("help", "-h", "--help"):
        click.echo(slash_help(prog_name))
        return 0
    if name not in SLASH_COMMANDS:
        click.echo(f"Unknown {prog_name} subcommand {name!r}.\n")
        click.echo(slash_help(prog_name))
        return 0
    if name == "status" and "--color" not in args:
        args = [*args, "--color", "never"]  # the output goes to the model and the transcript, not a terminal
    prefix = []
    if env.data_dir_option:
        prefix += ["--data-dir", env.data_dir_option]
    if env.config_option:
        prefix += ["--config", env.config_option]
    if env.project_dir:
        prefix += ["--project-dir", str(env.project_dir)]
    try:
        cli.main([*prefix, *args], prog_name=prog_name, standalone_mode=False)
    except click.exceptions.Exit:
        pass
    except click.ClickException as exc:
        click.echo(f"Error: {exc.format_message()}")
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            click.echo(exc.ctx.get_help())
    except click.Abort:
        click.echo("Aborted.")
    except SystemExit:
        pass
    except Exception as exc:
        click.echo(f"Error: {exc}. Run `tokens doctor` for a health check.")
    sys.stdout.flush()
    return 0
