"""The `tokens` command line: parse arguments, call the library, render text or --json. Nothing else lives here.

Each command group has its own module, imported only when one of its commands runs (or `tokens --help` lists
them all): `tokens status` then loads click, this file, status.py and what the dashboard needs, nothing else.
A new command goes in COMMANDS; tests/test_cli_lazy.py fails when COMMANDS and the modules disagree.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from ..errors import TokenBudgetError

if TYPE_CHECKING:
    from pathlib import Path


class UserError(click.ClickException):
    """Every error the user can act on: `Error: …` and the hint on stderr, exit status 2."""

    exit_code = 2


# Every top-level command: its name -> "module:attribute", the module relative to this package.
COMMANDS: dict[str, str] = {
    "ack": "budgets:ack",
    "alerts": "alerts:alerts",
    "budget": "budgets:budget",
    "doctor": "setup:doctor",
    "events": "budgets:events",
    "hook": "usage:hook",
    "import": "usage:import_",
    "install": "setup:install",
    "log": "usage:log",
    "mode": "budgets:mode",
    "pricing": "pricing:pricing",
    "report": "reports:report",
    "slash": "status:slash",
    "status": "status:status",
    "statusline": "status:statusline",
    "team": "team:team",
    "workflow": "budgets:workflow",
}


class Group(click.Group):
    """The root group: loads each command's module on first use (click's "Lazily Loading Subcommands"), and
    turns a TokenBudgetError from any command into a UserError."""

    def __init__(self, *args: Any, lazy_commands: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands:
            return self._load(cmd_name)
        return super().get_command(ctx, cmd_name)

    def _load(self, cmd_name: str) -> click.Command:
        module_name, attr = self.lazy_commands[cmd_name].split(":")
        # __import__, not importlib.import_module: only the former shows up in `python3 -X importtime`, which
        # tests/test_cli_lazy.py reads to check what `tokens status` loads.
        module = __import__(f"{__name__}.{module_name}", fromlist=[attr])
        command = getattr(module, attr)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module_name}:{attr} is not a click command (it is {type(command).__name__})")
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TokenBudgetError as exc:
            raise UserError(str(exc)) from exc


class Env:
    """What every command needs: the data dir, and the config and ledger, opened on first use."""

    def __init__(self, data_dir_option: str | None = None, config_option: str | None = None,
                 project_dir: str | None = None) -> None:
        self.data_dir_option = data_dir_option
        self.config_option = config_option
        self.project_dir = project_dir
        self._config: Any = None
        self._ledger: Any = None

    @property
    def data_dir(self) -> Path:
        from pathlib import Path

        from ..claude import plugin_data  # a plugin's $CLAUDE_PLUGIN_DATA (scripts/tokens passes it)
        from ..paths import data_dir

        return Path(data_dir(self.data_dir_option, host=plugin_data()))

    @property
    def config(self) -> Any:
        if self._config is None:
            from ..config import load_cached

            self._config = load_cached(self.data_dir, self.project_dir, self.config_option)
        return self._config

    @property
    def ledger(self) -> Any:
        if self._ledger is None:
            from ..ledger import Ledger

            self._ledger = Ledger.open(self.data_dir)
        return self._ledger

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()


pass_env = click.make_pass_decorator(Env)


def json_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Output JSON instead of text.")(fn)


def print_json(data: Any, *, lines: bool = False) -> None:
    """--json output: exactly the data the library returned."""
    import json  # here, not at the top: click never imports it, and text output does not need it

    if lines:
        for item in data:
            sys.stdout.write(json.dumps(item, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


@click.group(cls=Group, lazy_commands=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="token-budget")
@click.option("--data-dir", type=click.Path(file_okay=False), envvar=None,
              help="Ledger and state folder (default: $TOKEN_BUDGET_HOME, $CLAUDE_PLUGIN_DATA, "
                   "~/.local/share/token-budget).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="Use this config file over the packaged defaults (default: layered config).")
@click.option("--project-dir", type=click.Path(file_okay=False),
              help="Project whose .claude/token_budgets.yaml applies (default: the current directory).")
@click.pass_context
def cli(ctx: click.Context, data_dir: str | None, config_file: str | None, project_dir: str | None) -> None:
    """Token budgets for Claude Code: an exact ledger of every API request, budgets, alerts and reports.

    \b
    Example:
        tokens import            # backfill the ledger from Claude Code's transcripts
        tokens log --limit 5     # the five latest requests, with running totals
        tokens status            # the dashboard
        tokens doctor            # is everything wired up?
    """
    import os

    from ..safetext import SafeStream

    # Every line the CLI prints may carry names from transcripts and prompts: no terminal control sequences.
    if not isinstance(sys.stdout, SafeStream):
        sys.stdout = SafeStream(sys.stdout)  # type: ignore[assignment]
    if not isinstance(sys.stderr, SafeStream):
        sys.stderr = SafeStream(sys.stderr)  # type: ignore[assignment]
    env = Env(data_dir, config_file, project_dir or os.getcwd())
    ctx.obj = env
    ctx.call_on_close(env.close)
