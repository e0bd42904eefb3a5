"""Nobody lifts a limit silently: the model's own tool calls may not change budgets, the mode, acks or workflow runs,
nor touch the data dir (ledger, overrides) or the files that configure enforcement.

PreToolUse asks `blocked_call` about every Bash, Write, Edit, MultiEdit and NotebookEdit call, at any budget level.
The user keeps every control: the slash command (answered by the UserPromptSubmit hook, never by the model) and a
terminal. Bash commands are text: this catches the direct spellings (a `tokens` or `python -m token_budget` call,
through `;`, `&&`, pipes, `$(…)`, `bash -c '…'` or `eval`, and any mention of a protected path); the reason tells
Claude to hand the command to the user instead.
"""

from __future__ import annotations

from ..lean_path import dirname, getenv, home, isdir, join, realpath

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

EDIT_TOOLS = ("Write", "Edit", "MultiEdit", "NotebookEdit")
# `tokens` subcommands that change what is enforced. budget and mode only with a value (bare, they show).
CHANGING = {"ack", "workflow", "install", "slash", "hook"}  # hook: a forged payload could run the slash command
SETTING = {"budget": 1, "mode": 1}  # more positional words than this make the command a change
OPTIONS_WITH_VALUE = {"--data-dir", "--config", "--project-dir", "--plugin-data", "--session", "--phase", "--limit",
                      "--scope", "--claude-dir"}
CONFIG_NAMES = ("token_budgets.yaml", "token_budgets.yml", "overrides.json")
SHELL_WORDS = {";", "&&", "||", "|", "&", "(", ")", "$(", "`", "{", "}", "!", "then", "do", "else", "exec", "env",
               "sudo", "nohup", "time", "command", "xargs"}


def protected_paths(data_dir: str, cwd: str | None, layers: list[str] | None = None) -> list[str]:
    """Folders and files whose change would change enforcement: the data dir, every config layer, the code that
    enforces (the package, and in a plugin checkout its hooks/, scripts/ and .claude-plugin/). `layers`: the config
    layers when the caller knows them already (the fast path, which must not import the config module)."""
    if layers is None:
        from ..config import layer_paths

        layers = layer_paths(cwd, None, None)
    # lean_path, not os.path: the idle hook of a Bash command naming a path loads this module, not os.
    package = realpath(join(dirname(__file__), ".."))
    root = dirname(package)
    paths = [realpath(data_dir), package]
    paths += [join(root, d) for d in ("hooks", "scripts", ".claude-plugin") if isdir(join(root, d))]
    paths += [realpath(layer) for layer in layers]
    xdg = getenv("XDG_CONFIG_HOME") or join(home(), ".config")
    paths.append(realpath(join(xdg, "token-budget")))
    if cwd:
        paths.append(realpath(join(cwd, ".claude", CONFIG_NAMES[0])))
    return list(dict.fromkeys(paths))


def claude_settings(path: str) -> bool:
    """Claude Code settings files: they hold the hooks (pip installs), enabledPlugins and disableAllHooks."""
    import os

    name = os.path.basename(path)
    if not (name.startswith("settings") and name.endswith(".json")):
        return False
    parent = os.path.dirname(path)
    config_dirs = [d.strip() for d in os.environ.get("CLAUDE_CONFIG_DIR", "").split(",") if d.strip()]
    return os.path.basename(parent) == ".claude" or any(
        os.path.realpath(parent) == os.path.realpath(os.path.expanduser(d)) for d in config_dirs)


def blocked_call(tool: Any, tool_input: Any, data_dir: str, cwd: str | None, slash: str,
                 layers: list[str] | None = None) -> str | None:
    """Why this tool call must not run (the deny reason), or None."""
    if not isinstance(tool_input, dict):
        return None
    if tool in EDIT_TOOLS:
        import os

        path = tool_input.get("file_path") or tool_input.get("notebook_path")
        if not isinstance(path, str) or not path:
            return None
        full = os.path.realpath(os.path.join(cwd or os.getcwd(), os.path.expanduser(path)))
        if _inside_any(full, protected_paths(data_dir, cwd, layers)) or os.path.basename(full) in CONFIG_NAMES:
            return _reason(f"{tool} of {path} would change token-budget's own data or configuration", slash)
        if claude_settings(full):
            return _reason(f"{tool} of {path} would change Claude Code settings, which hold token-budget's hooks",
                           slash)
        return None
    if tool == "Bash":
        command = tool_input.get("command")
        if not isinstance(command, str):
            return None
        # Every spelling of a protected path holds a "/" (they are absolute; bash_problem's `~` and $HOME forms
        # keep the separator): a command without one cannot name any, and needs no realpath of them.
        why = bash_problem(command, protected_paths(data_dir, cwd, layers) if "/" in command else [])
        return _reason(why, slash) if why else None
    return None


def _reason(why: str, slash: str) -> str:
    return (f"token-budget: denied: {why}. Budgets, the mode, acknowledgements and workflow runs are changed only by "
            f"the user. Do not retry or work around this: tell the user the command to run themselves "
            f"(`{slash} …` in Claude Code, or `tokens …` in a terminal).")


def _inside_any(path: str, roots: list[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def bash_problem(command: str, protected: list[str]) -> str | None:
    """What in this shell command changes enforcement, or None."""
    lowered = command.replace("\\\n", " ")
    user_home = home()
    for path in protected:
        spellings = {path}
        if path.startswith(user_home + "/"):
            tail = path[len(user_home):]
            spellings |= {"~" + tail, "$HOME" + tail, "${HOME}" + tail}
        if any(s in lowered for s in spellings):
            return f"the command touches {path}"
    for marker in (*CONFIG_NAMES, ".local/share/token-budget", "plugins/data/token-budget", ".config/token-budget",
                   "ledger.db", "run_hook.py", "token_budget.claude", "scripts/hook.sh"):
        if marker in lowered:
            return f"the command touches {marker}"
    if "tokens" not in lowered and "token_budget" not in lowered:
        return None  # most commands: no word of ours, no need to split them (shlex imports re)
    change = _tokens_change(lowered, depth=0)
    return f"`{change}` changes what token-budget enforces" if change else None


def _words(text: str) -> list[str]:
    import shlex

    lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    try:
        return list(lexer)
    except ValueError:  # an unbalanced quote: fall back to plain words
        return text.split()


def _tokens_change(command: str, depth: int) -> str | None:
    words = [w.strip("`\"'$") for w in _words(command.replace("$(", " ( ").replace("`", " ` "))]
    for i, word in enumerate(words):
        if depth < 3 and any(c.isspace() for c in word):  # bash -c '…', eval "…", a quoted pipeline
            inner = _tokens_change(word, depth + 1)
            if inner:
                return inner
        rest = _after_program(words, i)
        if rest is None:
            continue
        change = _changing_subcommand(rest)
        if change:
            return " ".join(["tokens", *change])
    return None


def _after_program(words: list[str], i: int) -> list[str] | None:
    """The arguments after a `tokens` program at words[i] (`tokens`, `…/scripts/tokens`, `-m token_budget`)."""
    word = words[i]
    if word.rpartition("/")[2] == "tokens" or word.endswith("/token_budget") or word.endswith("token_budget/cli"):
        return words[i + 1:]
    if word in ("token_budget", "token_budget.cli", "token_budget.__main__") and i and words[i - 1] == "-m":
        return words[i + 1:]
    if "token_budget" in word and "import" not in word and word.endswith(".py"):
        return words[i + 1:]
    return None


def _changing_subcommand(args: list[str]) -> list[str] | None:
    positional: list[str] = []
    skip = False
    for arg in args:
        if arg in SHELL_WORDS:
            break
        if skip:
            skip = False
            continue
        if arg.startswith("-"):
            skip = arg in OPTIONS_WITH_VALUE
            continue
        positional.append(arg)
    if not positional:
        return None
    name = positional[0]
    if name in CHANGING or len(positional) > SETTING.get(name, 99):
        return positional
    return None
