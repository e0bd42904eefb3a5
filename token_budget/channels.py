"""Alert channels: `alerts.channels` from the config (console, Slack, email), which of them take part, what stops
each from sending, and the secrets rule: a webhook stays as written (`$SLACK_WEBHOOK`) until the sender expands it,
and every text meant for the ledger, a log or an error is redacted. Standard library only (the hook enqueues).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .config_files import VARIABLE_PATTERN, is_reference
from .errors import TokenBudgetError
from .levels import parse_percent

CHANNEL_TYPES = ("console", "slack", "email")
_VARIABLE = re.compile(VARIABLE_PATTERN)


class AlertConfigError(TokenBudgetError):
    """A channel cannot be used as configured (a missing environment variable, no recipients, …)."""


@dataclass(frozen=True)
class Channel:
    """One entry of `alerts.channels`. `webhook` and `to` are kept as written: `$VAR` references are expanded only
    when sending, so the expanded secret never reaches the ledger."""

    name: str  # the type, or "slack.2" for a second channel of the same type
    type: str
    threshold: int  # percent; the channel receives alerts at or above it
    webhook: str | None = None
    to: tuple[str, ...] = ()
    reports: bool = False  # `reports: true`: the channel also receives the daily report
    allowed_env: tuple[str, ...] = ()  # `alerts.allowed_env`: variables a `$NAME` webhook may name, beyond the defaults
    when_configured: bool = False  # `active: when_configured`: takes part only once its settings resolve

    def spec(self) -> dict[str, Any]:
        """What the outbox stores: everything but a literal webhook URL (a secret; the sender re-reads the config)."""
        spec: dict[str, Any] = {"type": self.type, "threshold": self.threshold}
        if self.webhook is not None:
            spec["webhook"] = self.webhook if is_reference(self.webhook) else None
        if self.to:
            spec["to"] = list(self.to)
        if self.reports:
            spec["reports"] = True
        if self.allowed_env:
            spec["allowed_env"] = list(self.allowed_env)
        return spec

    @classmethod
    def from_spec(cls, name: str, spec: Mapping[str, Any]) -> Channel:
        return cls(
            name,
            spec["type"],
            int(spec.get("threshold", 0)),
            spec.get("webhook"),
            tuple(spec.get("to", ())),
            bool(spec.get("reports")),
            tuple(spec.get("allowed_env", ())),
        )

    def describe(self) -> str:
        """A safe description: the variable name, or the webhook's host, never the secret path."""
        if self.type == "slack":
            if self.webhook is None:
                return "slack (no webhook)"
            return f"slack {self.webhook}" if is_reference(self.webhook) else f"slack {redact(self.webhook)}"
        if self.type == "email":
            return "email to " + ", ".join(self.to)
        return self.type


def channels(config: Any) -> list[Channel]:
    """The configured channels (a Config or its dict), each named by its type, numbered when a type repeats."""
    data = config.data if hasattr(config, "data") else config
    raw = ((data or {}).get("alerts") or {}).get("channels") or []
    allowed = tuple(((data or {}).get("alerts") or {}).get("allowed_env") or ())
    seen: dict[str, int] = {}
    out = []
    for entry in raw:
        kind = entry["type"]
        seen[kind] = seen.get(kind, 0) + 1
        name = kind if seen[kind] == 1 else f"{kind}.{seen[kind]}"
        to = entry.get("to") or ()
        out.append(
            Channel(
                name,
                kind,
                int(parse_percent(entry.get("threshold"), 0)),
                entry.get("webhook"),
                (to,) if isinstance(to, str) else tuple(to),
                entry.get("reports") is True,
                allowed,
                entry.get("active") == "when_configured",
            )
        )
    return out


def active_channels(chans: Sequence[Channel], environ: Mapping[str, str] | None = None) -> list[Channel]:
    """The channels that take part in deliveries: all but `when_configured` ones that are not configured yet
    (the packaged Slack and email examples on a fresh install), which are skipped rather than failed."""
    return [c for c in chans if not c.when_configured or not channel_problems([c], environ)]


def find_channel(chans: Sequence[Channel], name: str) -> Channel | None:
    return next((c for c in chans if c.name == name), None)


def variables(value: str | None) -> list[str]:
    return [a or b for a, b in _VARIABLE.findall(value or "")]


# Names a `webhook: $NAME` may read without being listed in alerts.allowed_env. (SMTP_* settings are read by name
# by the email transport itself, never through a config value.)
DEFAULT_ENV_PREFIXES = ("SLACK_WEBHOOK",)


def env_name_allowed(name: str, allowed: Sequence[str] = ()) -> bool:
    return name.startswith(DEFAULT_ENV_PREFIXES) or name in allowed


def expand(value: str, what: str, environ: Mapping[str, str] | None = None, allowed: Sequence[str] = ()) -> str:
    """A literal value as it is; a value that is exactly one `$NAME` / `${NAME}` from the environment, if NAME is a
    default (SLACK_WEBHOOK*) or listed in alerts.allowed_env. Anything else is an AlertConfigError naming
    the variable, never its value: a `$` inside a longer value would let a config splice any secret into a URL."""
    env = os.environ if environ is None else environ
    found = variables(value)
    if not found:
        return value
    match = _VARIABLE.fullmatch(value.strip())
    if match is None:
        raise AlertConfigError(
            f"{what}: only a whole value that is one $NAME is expanded, not a $NAME inside other text",
            "Put the whole URL in one environment variable and write `webhook: $NAME`.",
        )
    name = match.group(1) or match.group(2)
    if not env_name_allowed(name, allowed):
        raise AlertConfigError(
            f"{what}: ${name} is not a variable alerts may read",
            f"Name it SLACK_WEBHOOK…, or list {name} under alerts.allowed_env in your own token_budgets.yaml.",
        )
    if not env.get(name):
        raise AlertConfigError(
            f"{what}: ${name} is not set in the environment",
            f"Export {name} where Claude Code runs (and where you run `tokens`), or edit "
            "alerts.channels in token_budgets.yaml.",
        )
    return env[name]


def literal_address(value: str, what: str) -> str:
    """An email recipient as written: `to` is never expanded, so no config can address mail from a variable."""
    if "$" in value:
        raise AlertConfigError(f"{what}: {value!r} is not an address ($VARIABLES are not expanded in `to`)",
                               "Write the recipients' addresses out in alerts.channels.")
    return value


_URL = re.compile(r"\b(https?://[^/\s'\"<>]+)(/[^\s'\"<>]*)?")


def redact(text: str, secrets: Sequence[str | None] = ()) -> str:
    """Remove secrets from text meant for the ledger, a log or an error: the given values, and every URL's path
    (a Slack webhook's path is its credential)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return _URL.sub(lambda m: m.group(1) + ("/[redacted]" if m.group(2) and m.group(2) != "/" else ""), text)


def channel_problems(
    chans: Sequence[Channel], environ: Mapping[str, str] | None = None
) -> list[AlertConfigError]:
    """What stops each channel from sending, checked without sending: missing variables, SMTP_HOST, recipients."""
    env = os.environ if environ is None else environ
    problems = []
    for channel in chans:
        try:
            if channel.type == "slack":
                if not channel.webhook:
                    raise AlertConfigError(
                        f"{channel.name}: no webhook", "Add `webhook: $SLACK_WEBHOOK` to it."
                    )
                expand(channel.webhook, f"{channel.name} webhook", env, channel.allowed_env)
            elif channel.type == "email":
                if not channel.to:
                    raise AlertConfigError(
                        f"{channel.name}: no recipients", "Add `to: you@example.com` to it."
                    )
                for address in channel.to:
                    literal_address(address, f"{channel.name} to")
                if not env.get("SMTP_HOST"):
                    raise AlertConfigError(
                        f"{channel.name}: SMTP_HOST is not set in the environment",
                        "Export SMTP_HOST (and SMTP_PORT, SMTP_USERNAME, SMTP_PASSWORD, SMTP_FROM) "
                        "where Claude Code runs; SMTP_STARTTLS=0 for a local relay without TLS.",
                    )
        except AlertConfigError as exc:
            problems.append(exc)
    return problems


def report_channels(chans: Sequence[Channel]) -> list[Channel]:
    """The channels that receive the daily report: `reports: true`, and somewhere to send it (not console)."""
    return [c for c in chans if c.reports and c.type != "console"]
