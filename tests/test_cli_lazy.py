"""The lazily loaded commands of token_budget/cli: COMMANDS names exactly the commands the modules define, and
`tokens status` loads status.py and none of the other command modules."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from importlib import import_module
from pathlib import Path

import click
from click.testing import CliRunner

import token_budget.cli as cli_package
from token_budget.cli import COMMANDS, cli


def command_modules() -> list:  # type: ignore[type-arg]
    """Every module in token_budget/cli, imported eagerly."""
    return [import_module(f"{cli_package.__name__}.{info.name}") for info in pkgutil.iter_modules(cli_package.__path__)]


def _subcommands(group: click.Group) -> list[click.Command]:
    found = []
    for sub in group.commands.values():
        found.append(sub)
        if isinstance(sub, click.Group):
            found += _subcommands(sub)
    return found


def defined_commands() -> dict[str, click.Command]:
    """Top-level commands as the modules define them: every module-level click command that is neither the root
    group nor a subcommand of a group."""
    objects = {id(value): value for module in command_modules() for value in vars(module).values()
               if isinstance(value, click.Command) and value is not cli}
    nested = {id(sub) for value in objects.values() if isinstance(value, click.Group) for sub in _subcommands(value)}
    found: dict[str, click.Command] = {}
    for key, command in objects.items():
        if key in nested:
            continue
        assert command.name not in found, f"two commands are named {command.name!r}"
        found[command.name] = command  # type: ignore[index]
    return found


def test_the_map_names_every_command_the_modules_define() -> None:
    assert set(defined_commands()) == set(COMMANDS)


def test_each_lazily_loaded_command_is_the_one_its_module_defines() -> None:
    defined = defined_commands()
    ctx = click.Context(cli)
    for name, target in COMMANDS.items():
        module_name, attr = target.split(":")
        command = cli.get_command(ctx, name)
        assert command is getattr(import_module(f"{cli_package.__name__}.{module_name}"), attr), name
        assert command is defined[name]
        assert command.name == name


def test_no_module_adds_commands_to_the_root_group_itself() -> None:
    """A command registered with @cli.command() would exist only once something happened to import its module."""
    command_modules()
    assert cli.commands == {}


def test_help_lists_every_command_and_every_command_has_help() -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["--help"], catch_exceptions=False)
    assert result.exit_code == 0
    listed = result.output.split("Commands:", 1)[1]
    ctx = click.Context(cli)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None
        if not command.hidden:
            assert f"\n  {name} " in listed, name
        paths = [[name]]
        if isinstance(command, click.Group):
            paths += [[name, sub] for sub in command.commands]
        for path in paths:
            if path == ["slash"]:
                continue  # no help option: everything after `slash` goes to the slash command
            sub = runner.invoke(cli, [*path, "--help"], catch_exceptions=False)
            assert sub.exit_code == 0, (path, sub.output)
            assert f"Usage: cli {' '.join(path)} " in sub.output


def test_an_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["nosuch"])
    assert result.exit_code == 2 and "No such command 'nosuch'" in result.output


def test_a_token_budget_error_from_a_lazily_loaded_command_still_exits_2() -> None:
    result = CliRunner().invoke(cli, ["budget", "daily", "lots"])
    assert result.exit_code == 2
    assert "Error: 'lots' is not an amount." in result.output


def test_status_imports_no_other_command_module(data_dir: Path, subprocess_env: dict) -> None:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "token_budget", "status", "--json"],
                          capture_output=True, text=True, env=subprocess_env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "budgets" in json.loads(proc.stdout)
    imported = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines()
                if line.startswith("import time:") and "|" in line}
    assert "token_budget.cli.status" in imported  # the listing does show lazily loaded modules
    others = {f"{cli_package.__name__}.{info.name}" for info in pkgutil.iter_modules(cli_package.__path__)
              if info.name != "status"}
    assert others, "no other command modules found"
    assert not others & imported

