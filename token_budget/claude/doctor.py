"""`tokens doctor`: each check says what it found and, when something is wrong, what to run or change."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import TokenBudgetError


@dataclass
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str
    fix: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


def run_checks(env: Any, claude_dirs: list[Path]) -> list[Check]:
    checks = [_data_dir(env)]
    checks.append(_config(env))
    checks.append(_ledger(env))
    checks.append(_hooks(env))
    checks.append(_transcripts(env, claude_dirs))
    checks.append(_reconciliation(env))
    checks.append(_pricing(env))
    checks.append(_hook_log(env))
    checks.append(_alert_channels(env))
    return checks


def _data_dir(env: Any) -> Check:
    try:
        path = env.data_dir
    except TokenBudgetError as exc:
        return Check("data dir", "fail", exc.message, exc.hint)
    mode = stat.S_IMODE(path.stat().st_mode)
    if not os.access(path, os.W_OK):
        return Check("data dir", "fail", f"{path} is not writable", f"chmod u+w {path}, or set TOKEN_BUDGET_HOME")
    if mode & 0o077:
        return Check("data dir", "warn", f"{path} is readable by others (mode {mode:o})", f"chmod 700 {path}")
    return Check("data dir", "ok", str(path))


def _config(env: Any) -> Check:
    try:
        config = env.config
    except TokenBudgetError as exc:
        return Check("config", "fail", exc.message, exc.hint)
    notices = getattr(config, "notices", None)
    if notices:  # what a repository's config file tried, and what of it was ignored
        return Check("config", "warn", "valid: " + ", ".join(config.sources) + ". " + " ".join(notices),
                     "A project's .claude/token_budgets.yaml may only tighten your budgets (README: Security model).")
    return Check("config", "ok", "valid: " + ", ".join(config.sources))


def _ledger(env: Any) -> Check:
    try:
        ledger = env.ledger
        result = ledger.quick_check()
        todo = ledger.pending_migrations()
        count = ledger.count()
    except TokenBudgetError as exc:
        return Check("ledger", "fail", exc.message, exc.hint)
    except Exception as exc:  # a corrupt file raises sqlite3 errors from any statement
        return Check("ledger", "fail", f"{env.data_dir / 'ledger.db'} is damaged: {exc}",
                     "Move ledger.db aside (keep it for recovery) and run `tokens import` to rebuild from transcripts.")
    if result != "ok":
        return Check("ledger", "fail", f"integrity check: {result}",
                     "Move ledger.db aside (keep it for recovery) and run `tokens import` to rebuild from transcripts.")
    if todo:
        return Check("ledger", "warn", f"migrations pending: {', '.join(todo)}", "Any `tokens` command applies them.")
    mode = stat.S_IMODE(os.stat(ledger.path).st_mode)
    if mode & 0o077:
        return Check("ledger", "warn", f"{ledger.path} has mode {mode:o}", f"chmod 600 {ledger.path}")
    return Check("ledger", "ok", f"{ledger.path}: {count:,} requests")


def _hooks(env: Any) -> Check:
    from .hook import HOOK_EVENTS
    from .install import installed_events, plugin_enabled, settings_path

    if os.environ.get("CLAUDE_PLUGIN_ROOT"):
        return Check("hooks", "ok", "running inside the token-budget plugin (hooks/hooks.json)")
    places = [settings_path("user"), settings_path("project", env.project_dir),
              settings_path("project", env.project_dir).with_name("settings.local.json")]
    try:
        for path in places:
            if plugin_enabled(path):
                return Check("hooks", "ok", f"plugin token-budget enabled in {path}")
            events = installed_events(path)
            if events:
                missing = sorted(set(HOOK_EVENTS) - set(events))
                if missing:
                    return Check("hooks", "warn", f"{path} lacks hooks for {', '.join(missing)}",
                                 "Run `tokens install` again.")
                if not (path.parent / "commands" / "tokens.md").exists():
                    return Check("hooks", "warn", f"registered in {path}, but Claude Code has no /tokens command",
                                 "Run `tokens install` again: it writes the /tokens command.")
                return Check("hooks", "ok", f"registered in {path}, with the /tokens command")
    except TokenBudgetError as exc:
        return Check("hooks", "fail", exc.message, exc.hint)
    return Check("hooks", "fail", "no token-budget hooks are registered, so nothing is recorded or enforced",
                 "Install the plugin (/plugin install token-budget@<marketplace>) or run `tokens install`.")


def _transcripts(env: Any, claude_dirs: list[Path]) -> Check:
    from .transcript import find_transcripts

    files = find_transcripts(claude_dirs)
    where = ", ".join(map(str, claude_dirs))
    if not files:
        return Check("transcripts", "warn", f"no Claude Code transcripts under {where}",
                     "Set CLAUDE_CONFIG_DIR if Claude Code keeps its files elsewhere.")
    try:
        malformed = env.ledger.malformed_lines()
    except Exception:
        malformed = 0
    detail = f"{len(files):,} files under {where}"
    if malformed:
        return Check("transcripts", "warn", f"{detail}; {malformed:,} malformed lines were skipped",
                     "Usually torn writes from a crash; nothing to do unless the count keeps growing.")
    return Check("transcripts", "ok", detail)


def _reconciliation(env: Any) -> Check:
    """The ledger against Claude Code's own per-session totals (its cost-state line): what was added for requests
    in no transcript, sessions whose cost drifts beyond rounding, and any session where the ledger counted more."""
    from ..reconcile import summary

    try:
        found = summary(env.ledger)
    except Exception as exc:
        return Check("reconciliation", "warn", f"not checked: {exc}")
    checked = found["sessions_checked"]
    if not checked:
        return Check("reconciliation", "ok", "no session carries Claude Code's own totals yet (cost-state lines, "
                     "2.1.332 and later); `tokens import --rescan` reads them from files read before")
    detail = (f"{checked:,} sessions checked against Claude Code's totals; added {found['reconciled_tokens']:,} "
              f"tokens (${found['reconciled_cost_usd']:,.4f}) for requests in no transcript")
    if found["ledger_above_client"]:
        worst = found["ledger_above_client"][-1]
        sessions = len(found["ledger_above_client"])
        return Check("reconciliation", "warn",
                     f"{detail}; the ledger is ABOVE Claude Code's figure in {sessions} session(s), latest "
                     f"{worst['session_id']}: {worst['above']}",
                     "A bug to report (with the session's transcript): the ledger counted tokens Claude Code did not.")
    if found["drift"]:
        worst = max(found["drift"], key=lambda d: abs(d["difference_usd"]))
        return Check("reconciliation", "warn",
                     f"{detail}; cost differs beyond rounding in {len(found['drift'])} session(s), most in "
                     f"{worst['session_id']}: ledger ${worst['ledger_cost_usd']:.6f} vs Claude Code "
                     f"${worst['client_cost_usd']:.6f}",
                     "Token counts match, so prices differ: compare `tokens pricing` with Claude Code's, or import "
                     "current prices with `tokens pricing import FILE`.")
    return Check("reconciliation", "ok", detail + "; every session's cost matches to rounding")


def _pricing(env: Any) -> Check:
    """The share of recorded cost that is estimated (a model priced by its family) or unpriced."""
    try:
        by_status = env.ledger.cost_statuses()
        models = env.ledger.unpriced_models()
    except Exception as exc:
        return Check("prices", "warn", f"not checked: {exc}")
    total = sum(micros for _n, micros in by_status.values())
    requests = sum(n for n, _micros in by_status.values())
    estimated = by_status.get("estimated", (0, 0))
    unpriced = by_status.get("unpriced", (0, 0))
    if not estimated[0] and not unpriced[0]:
        return Check("prices", "ok", f"every recorded request has a published price ({requests:,} requests)")
    share = 100.0 * estimated[1] / total if total else 0.0
    detail = (f"{share:.1f}% of recorded cost is estimated ({estimated[0]:,} requests), {unpriced[0]:,} requests "
              f"unpriced (counted as $0): {', '.join(models[:5])}{' …' if len(models) > 5 else ''}")
    return Check("prices", "warn", detail,
                 "Import current prices offline: `tokens pricing import model_prices_and_context_window.json` "
                 "(LiteLLM's file), then `tokens pricing reprice`.")


def _hook_log(env: Any) -> Check:
    path = env.data_dir / "hook.log"
    if not path.exists():
        return Check("hook errors", "ok", "none logged")
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith(" ")]
    if not lines:
        return Check("hook errors", "ok", "none logged")
    return Check("hook errors", "warn", f"{len(lines)} logged; last: {lines[-1][:200]}", f"See {path}.")


def _alert_channels(env: Any) -> Check:
    """A channel whose $VARIABLE is unset cannot send: an error when the user configured it; a warning when it is
    only the packaged example (slack and email placeholders), so a fresh install stays healthy."""
    from ..channels import channel_problems, channels

    try:
        config = env.config
        configured = channels(config)
    except TokenBudgetError:
        return Check("alert channels", "warn", "not checked: the config is invalid", "Fix the config first.")
    problems = channel_problems(configured)
    failed = _failed_deliveries(env)
    names = ", ".join(c.name for c in configured) or "none"
    if problems:
        detail = "; ".join(p.message for p in problems)
        hint = " ".join(dict.fromkeys(p.hint for p in problems if p.hint))
        if _packaged_channels(config):
            return Check("alert channels", "warn", f"packaged example channels inactive: {detail}",
                         f"{hint} Or set alerts.channels in your own token_budgets.yaml.")
        return Check("alert channels", "fail", detail, hint)
    if failed:
        return Check("alert channels", "warn", f"{names}; {failed}",
                     "See `tokens alerts` and alerts.log in the data dir.")
    return Check("alert channels", "ok", names)


def _packaged_channels(config: Any) -> bool:
    from ..config_files import read_layer
    from ..paths import CONFIG_NAME, packaged_config_dir

    try:
        packaged = read_layer(Path(packaged_config_dir(), CONFIG_NAME)) or {}
    except TokenBudgetError:
        return False
    return (packaged.get("alerts") or {}).get("channels") == config.get("alerts", "channels")


def _failed_deliveries(env: Any) -> str | None:
    try:
        failed = env.ledger.failed_deliveries()
    except Exception:
        return None
    return f"{failed} alert deliveries failed" if failed else None
