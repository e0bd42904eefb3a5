"""Claude Code settings for a pip install (`tokens install`), and the health checks of `tokens doctor`."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from ..errors import TokenBudgetError
from ..paths import write_atomically
from .commands import COMMAND_FILE
from .hook import ASYNC_EVENTS, HOOK_EVENTS

LAUNCHER = Path(__file__).resolve().parent / "run_hook.py"
MARKER = "token_budget/claude/run_hook.py"  # how we recognise our own entries, old or new
TIMEOUT_SECONDS = 30


def settings_path(scope: str, project_dir: str | os.PathLike[str] | None = None) -> Path:
    if scope == "project":
        return Path(project_dir or os.getcwd()) / ".claude" / "settings.json"
    config_dir = os.environ.get("CLAUDE_CONFIG_DIR", "").split(",")[0].strip()
    base = Path(config_dir).expanduser() if config_dir else Path.home() / ".claude"
    return base / "settings.json"


def hook_command(event: str, python: str | None = None) -> str:
    return f"{shlex.quote(python or sys.executable)} -S {shlex.quote(str(LAUNCHER))} {event}"


def read_settings(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
    except ValueError as exc:
        raise TokenBudgetError(f"{path} is not valid JSON ({exc}).",
                               "Fix or remove it, then run the command again.") from exc
    if not isinstance(data, dict):
        raise TokenBudgetError(f"{path} does not hold a JSON object.", "Fix or remove it, then run the command again.")
    return data


# Events an earlier `tokens install` registered and this one no longer does: reinstalling or uninstalling removes
# our entry. PostModelSwitch exists only in some Claude Code builds and the plugin never registered it; the next
# request's model (enforce.session_model) already tells a switch.
RETIRED_EVENTS = ("PostModelSwitch",)


def _is_ours(handler: Any) -> bool:
    return isinstance(handler, dict) and MARKER in str(handler.get("command", ""))


def _without_ours(groups: list[Any]) -> list[Any]:
    kept = []
    for group in groups:
        if not isinstance(group, dict):
            kept.append(group)
            continue
        handlers = [h for h in group.get("hooks", []) if not _is_ours(h)]
        if handlers:
            kept.append({**group, "hooks": handlers})
    return kept


def install(scope: str = "user", *, project_dir: str | None = None, statusline: bool = False,
            uninstall: bool = False, python: str | None = None,
            data_dir: str | None = None) -> tuple[Path, list[str]]:
    """Add (or remove) our hook entries; running it twice changes nothing. Returns the file and what changed."""
    path = settings_path(scope, project_dir)
    settings = read_settings(path)
    hooks = settings.get("hooks") if isinstance(settings.get("hooks"), dict) else {}
    before = json.dumps(settings, sort_keys=True)
    changes: list[str] = []
    for event in HOOK_EVENTS + RETIRED_EVENTS:
        groups = _without_ours(list(hooks.get(event, [])))
        if not uninstall and event in HOOK_EVENTS:
            handler = {"type": "command", "command": hook_command(event, python), "timeout": TIMEOUT_SECONDS}
            if event in ASYNC_EVENTS:  # exec: the signal Claude Code sends when it ends must reach Python (hook.main)
                handler.update(command="exec " + handler["command"], **{"async": True})
            groups.append({"hooks": [handler]})
        if groups:
            hooks[event] = groups
        else:
            hooks.pop(event, None)
    settings["hooks"] = hooks
    if not hooks:
        settings.pop("hooks")
    status = settings.get("statusLine")
    command = str(status.get("command", "")) if isinstance(status, dict) else ""
    ours = "statusline" in command and "token_budget" in command
    if statusline and not uninstall:
        settings["statusLine"] = {"type": "command", "command": statusline_command(python, data_dir), "padding": 0}
    elif uninstall and ours:
        settings.pop("statusLine")
    if json.dumps(settings, sort_keys=True) != before:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, json.dumps(settings, indent=2) + "\n")
        changes.append(f"{'removed' if uninstall else 'wrote'} token-budget hooks in {path}")
    changes += _command_file(path.parent / "commands" / COMMAND_FILE, uninstall)
    return path, changes


def _command_file(path: Path, uninstall: bool) -> list[str]:
    """The `/tokens` command of a pip install (the plugin brings its own `/token-budget:tokens`): a command file
    Claude Code lists, whose prompt the UserPromptSubmit hook answers before any model request."""
    from .commands import COMMAND_MARKER, command_file_text

    current = path.read_text(encoding="utf-8") if path.exists() else None
    if current is not None and COMMAND_MARKER not in current:
        return [] if uninstall else [f"left {path} alone (not written by token-budget): /tokens is yours"]
    if uninstall:
        if current is None:
            return []
        path.unlink()
        return [f"removed the /tokens command {path}"]
    if current == command_file_text():
        return []
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, command_file_text())
    return [f"wrote the /tokens command {path} (answered by the hook, no model request)"]


def statusline_command(python: str | None = None, data_dir: str | None = None) -> str:
    """The status line command, with --data-dir when the data dir is known now (--data-dir,
    $TOKEN_BUDGET_HOME or $CLAUDE_PLUGIN_DATA): Claude Code runs status lines without the plugin's
    environment, so a plugin install's status line would otherwise have to guess where the ledger is."""
    launcher = LAUNCHER.with_name("run_statusline.py")
    command = f"{shlex.quote(python or sys.executable)} -S {shlex.quote(str(launcher))}"
    from ..paths import named_data_dir
    from . import plugin_data

    chosen = named_data_dir(data_dir, plugin_data())
    if chosen:
        command += f" --data-dir {shlex.quote(os.path.abspath(os.path.expanduser(chosen)))}"
    return command


def installed_events(path: Path) -> list[str]:
    settings = read_settings(path)
    hooks = settings.get("hooks") if isinstance(settings.get("hooks"), dict) else {}
    return [e for e, groups in hooks.items()
            if any(_is_ours(h) for g in groups if isinstance(g, dict) for h in g.get("hooks", []))]


def plugin_enabled(path: Path) -> bool:
    enabled = read_settings(path).get("enabledPlugins") or {}
    return any(key.split("@")[0] == "token-budget" and value for key, value in enabled.items())
