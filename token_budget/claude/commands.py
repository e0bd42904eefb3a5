"""The `/tokens` slash command inside Claude Code, answered by the UserPromptSubmit hook on this machine.

The hook runs the command in-process and answers `{"decision": "block", "reason": <its output>}` with
`suppressOriginalPrompt`: Claude Code 2.1.332 prints the reason on screen and makes no API request, so `/tokens
status` costs no token and its output is the user's to read, not the model's to echo. The arguments are split with
shlex and handed to the CLI as a list: no shell ever sees them.

The command's spelling depends on the install route: a plugin's command is `/token-budget:tokens`; a pip install
gets `/tokens` from the user-level command file `tokens install` writes. Every hint uses `slash_prefix()`.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

PLUGIN_COMMAND = "/token-budget:tokens"
PIP_COMMAND = "/tokens"
TOKENS_COMMANDS = (PIP_COMMAND, PLUGIN_COMMAND)
OUTPUT_LIMIT = 9_000  # Claude Code spills hook strings over 10,000 characters to a file
COMMAND_FILE = "tokens.md"
COMMAND_MARKER = "<!-- token-budget: written by `tokens install` -->"
# The command file's body: the hook answers before the model sees it, so this is read only when the hook is off.
COMMAND_BODY = """\
If you can read this, token-budget's UserPromptSubmit hook did not answer the command (it normally does, with no
model request). Do not run any command. Tell the user in one sentence that the token-budget hook is not active
and that `tokens doctor` in a terminal says why.
"""


def slash_prefix(environ: Any = None) -> str:
    """`/token-budget:tokens` when the hook runs from the plugin, else `/tokens` (a pip install's command file)."""
    env = os.environ if environ is None else environ
    return PLUGIN_COMMAND if env.get("CLAUDE_PLUGIN_ROOT") else PIP_COMMAND


def command_of(prompt: str) -> tuple[str, str] | None:
    """`/sprint go` → ("sprint", "go"); `/plugin:sprint` → ("sprint", ""); not a slash command → None."""
    text = prompt.lstrip()
    if not text.startswith("/") or len(text) < 2:
        return None
    head, _, rest = text[1:].partition(" ")
    head = head.split("\n", 1)[0]
    name = head.rsplit(":", 1)[-1]
    return (name, rest.strip()) if name else None


def workflow_for_prompt(config: Any, prompt: str) -> str | None:
    """The configured workflow whose trigger command the prompt invokes (a slash command), if any."""
    from ..workflows import workflow_for_command

    command = command_of(prompt)
    return workflow_for_command(config, command[0]) if command else None


def is_tokens_prompt(prompt: Any) -> bool:
    text = prompt.lstrip() if isinstance(prompt, str) else ""
    return any(text == c or text.startswith((c + " ", c + "\n", c + "\t")) for c in TOKENS_COMMANDS)


def arguments(prompt: str) -> list[str]:
    """The words after the command on its line, split as a shell would split them but never run through one.

    Only the first line: after a blocked prompt Claude Code puts that prompt back in the input box, and a command
    typed in front of it is submitted as "/tokens status\nTry again"."""
    import shlex

    text = prompt.lstrip().split("\n", 1)[0]
    for command in sorted(TOKENS_COMMANDS, key=len, reverse=True):
        if text.startswith(command):
            text = text[len(command):]
            break
    return shlex.split(text)


def answer(prompt: str, data_dir: str, project_dir: str | None, session_id: str | None = None) -> str:
    """Run the slash command here and return what it printed (errors included: the user reads them)."""
    import contextlib
    import io

    from .. import site_packages
    from ..controls import ACTOR_ENV
    from ..hints import PREFIX_ENV

    site_packages.enable()  # the hook runs with `python -S`; click lives in site-packages

    prefix = slash_prefix()
    try:
        args = arguments(prompt)
    except ValueError as exc:
        return f"{prefix}: {exc} (close the quote, or leave it out).\nExample: {prefix} budget daily 500000"
    out = io.StringIO()
    saved = {k: os.environ.get(k) for k in (ACTOR_ENV, PREFIX_ENV, "COLUMNS", "CLAUDE_CODE_SESSION_ID")}
    os.environ.update({ACTOR_ENV: f"slash command {prefix}", PREFIX_ENV: prefix, "COLUMNS": "80"})
    if session_id:  # `workflow start|phase|end` and the dashboard's session budget: this session
        os.environ["CLAUDE_CODE_SESSION_ID"] = session_id
    try:
        from ..cli import Env
        from ..cli.status import run_slash

        env = Env(str(data_dir), None, project_dir or os.getcwd())
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                run_slash(env, args, prog_name=prefix)
        finally:
            env.close()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    text = out.getvalue().rstrip() or "(no output)"
    if len(text) > OUTPUT_LIMIT:
        text = text[:OUTPUT_LIMIT] + f"\n… cut at {OUTPUT_LIMIT:,} characters; run `tokens` in a terminal for all."
    return text


def respond(prompt: str, data_dir: str, project_dir: str | None, notices: list[str] | None = None,
            session_id: str | None = None) -> dict[str, Any]:
    """The hook answer for a slash command prompt: its output on screen, no request to the model."""
    text = answer(prompt, data_dir, project_dir, session_id)
    if notices:
        text = "\n".join(notices) + "\n\n" + text
    return {"decision": "block", "reason": text,
            "hookSpecificOutput": {"hookEventName": "UserPromptSubmit", "suppressOriginalPrompt": True}}


def command_file_text() -> str:
    return (f"---\ndescription: Token budgets - status, budget, mode, report, log, ack, workflow, help\n"
            f'argument-hint: "[status|budget [SCOPE AMOUNT]|mode [economy|normal|auto]|report|log|ack [ID]|help]"\n'
            f"disable-model-invocation: true\n---\n{COMMAND_MARKER}\n\n{COMMAND_BODY}")
