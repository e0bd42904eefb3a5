"""The one place that spells a command a message suggests: `tokens ack …`, `tokens budget …`, `tokens mode …`.

Every hint goes through `Hints`, so a block reason, an alert on Slack or email, the dashboard and help all name the
same command, spelled for the route the user has (a terminal's `tokens`, or the slash command inside Claude Code,
which the adapter picks), and suggest the same raise. Arguments are quoted with shlex: the slash command parses
them with shlex too, so one spelling works in a shell and in the slash command. Standard library only (hot path).
"""

from __future__ import annotations

TERMINAL = "tokens"
SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./_-")


def quote(text: str) -> str:
    """shlex.quote without importing shlex (and re) on the hot path."""
    if text and all(c in SAFE for c in text):
        return text
    return "'" + text.replace("'", "'\"'\"'") + "'"


PREFIX_ENV = "TOKEN_BUDGET_HINT_PREFIX"  # set while the slash command runs a command, so its hints say the slash form


class Hints:
    """Commands for one route: `prefix` is `tokens` in a terminal, or the slash command in Claude Code."""

    def __init__(self, prefix: str = TERMINAL) -> None:
        self.prefix = prefix

    @classmethod
    def current(cls) -> Hints:
        import os

        return cls(os.environ.get(PREFIX_ENV) or TERMINAL)

    def command(self, *args: object) -> str:
        return " ".join([self.prefix, *(quote(str(a)) for a in args)])

    def ack(self, alert_id: str | None = None) -> str:
        return self.command("ack", alert_id) if alert_id else self.command("ack")

    def budget(self, scope: str | None = None, amount: object | None = None) -> str:
        if scope is None:
            return self.command("budget")
        return self.command("budget", budget_argument(scope), amount) if amount is not None else \
            self.command("budget", budget_argument(scope))

    def raise_budget(self, scope: str, used: int, limit: int) -> str:
        return self.command("budget", budget_argument(scope), suggested_amount(scope, used, limit))

    def mode(self, mode: str | None = None) -> str:
        return self.command("mode", mode) if mode else self.command("mode")

    def status(self) -> str:
        return self.command("status")

    def alerts(self, *args: str) -> str:
        return self.command("alerts", *args)


def budget_argument(scope: str) -> str:
    """The SCOPE that `tokens budget SCOPE AMOUNT` takes: `workflow:sprint` → `sprint`, `daily` → `daily`."""
    return scope.partition(":")[2] or scope


def suggested_amount(scope: str, used: int, limit: int) -> str:
    """What `tokens budget SCOPE` should be raised to. A subscription window is a share of the window: past 100%
    the provider itself stops the requests, so the raise is to all of it, then off."""
    from .windows import SCALE, is_window

    if is_window(scope):
        return "100%" if limit < 100 * SCALE else "off"
    return str(suggested_tokens(used, limit))


def suggested_tokens(used: int, limit: int) -> int:
    """The raise every channel suggests: a round figure 20% over the larger of usage and limit."""
    target = max(used, limit) * 1.2
    step = 10 ** max(len(str(int(target))) - 2, 0)
    return int(-(-target // step) * step)


def suggested_usd(used_usd: float, limit_usd: float) -> str:
    return f"${max(limit_usd, used_usd) * 1.2:.2f}"
