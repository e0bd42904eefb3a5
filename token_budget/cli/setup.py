"""Commands that wire token-budget into Claude Code and check it: install, doctor."""

from __future__ import annotations

import sys

import click

from . import Env, json_option, pass_env, print_json


@click.command()
@click.option("--scope", type=click.Choice(["user", "project"]), default="user", show_default=True,
              help="user: ~/.claude/settings.json; project: .claude/settings.json.")
@click.option("--statusline", is_flag=True, help="Also set Claude Code's status line to `tokens statusline`.")
@click.option("--uninstall", is_flag=True, help="Remove the entries this command wrote.")
@pass_env
def install(env: Env, scope: str, statusline: bool, uninstall: bool) -> None:
    """Register the hooks in Claude Code's settings (for pip installs; the plugin needs none)."""
    from ..claude.install import install as write_settings

    path, changes = write_settings(scope, project_dir=env.project_dir, statusline=statusline,
                                   uninstall=uninstall, data_dir=env.data_dir_option)
    if not changes:
        click.echo(f"Nothing to change in {path}.")
    for change in changes:
        click.echo(change[0].upper() + change[1:] + ".")
    if not uninstall:
        click.echo("Check with `tokens doctor`. New Claude Code sessions pick the hooks up.")
        _show_budgets(env)


def _show_budgets(env: Env) -> None:
    """What is enforced from now on, and what the user's own history suggests, before they choose."""
    from ..budget_suggest import suggest
    from ..budgets import budget_states
    from .budgets import suggestion_lines

    states = budget_states(env.ledger, env.config)
    enforced = " · ".join(f"{s.scope.removeprefix('model:')} {s.limit:,}" + ("/day" if s.scope.startswith("model:")
                                                                              else "") for s in states if s.limit)
    click.echo(f"Budgets enforced now (100% blocks new requests, 110% stops): {enforced or 'none'}.")
    for line in suggestion_lines(suggest(env.ledger, env.config)):
        click.echo(line)


@click.command()
@json_option
@click.option("--claude-dir", "dirs", multiple=True, type=click.Path(file_okay=False),
              help="A Claude Code config folder holding projects/ (repeatable).")
@pass_env
def doctor(env: Env, as_json: bool, dirs: tuple[str, ...]) -> None:
    """Check config, data dir, ledger, hooks and transcripts; exit 0 only when healthy."""
    from ..claude.doctor import run_checks
    from ..claude.sources import config_dirs

    checks = run_checks(env, config_dirs(dirs))
    healthy = all(c.status != "fail" for c in checks)
    if as_json:
        print_json({"healthy": healthy, "checks": [c.as_dict() for c in checks]})
    else:
        marks = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}
        for check in checks:
            click.echo(f"[{marks[check.status]}] {check.name}: {check.detail}")
            if check.fix and check.status != "ok":
                click.echo(f"       fix: {check.fix}")
        click.echo("Healthy." if healthy else "Not healthy: fix the FAIL lines above.")
    sys.exit(0 if healthy else 2)
