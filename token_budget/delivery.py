"""Sending alerts and daily reports: the hook's `kick`, the detached sender, the Slack and SMTP transports.

The hook never sends. After its transaction commits, `kick` (two indexed queries) starts a sender only when
deliveries are pending and no sender holds the lock file; the sender runs in its own process session
(`python -S -c …delivery.main… DATA_DIR`), so a stalled webhook costs the hook nothing.

At most one sender runs: it holds an exclusive flock on `alert-sender.lock` for its whole life, and the kernel drops
the lock when the process dies, however it dies; the next hook then starts another. Delivery is at least once: an
attempt is recorded before sending and its outcome after, so a crash in between leaves the delivery pending and
it is sent again (a repeat, never a loss). Transient failures (timeouts, refused connections, HTTP 5xx/429, SMTP
4xx) are retried with exponential backoff and jitter for up to a day; permanent ones (a missing `$VARIABLE`, HTTP
4xx, SMTP 5xx) fail at once. Every attempt is a row in `delivery_attempts`.

Secrets (the expanded webhook URL, SMTP_PASSWORD) live only in this process's memory: errors are redacted before
they reach the ledger, the log or the terminal. Top-level imports are the standard library's lightest, because
the hook imports `kick`; urllib, smtplib, email and subprocess are imported where they are used.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime, timezone

from . import clock, jsonlite
from ._records import record
from .detached import _children  # noqa: F401  the sender processes this process started (tests reap them)

TYPE_CHECKING = False  # typing costs milliseconds of import on every hook
if TYPE_CHECKING:
    from typing import Any

    from .paths import PathLike
    from .storage import Storage

LOCK_NAME = "alert-sender.lock"
LOG_NAME = "alerts.log"
POLL_SECONDS = 1.0  # how soon a sleeping sender notices deliveries enqueued meanwhile


@record
class DeliverySettings:
    """Timeouts and retry policy; the environment variables exist for tests and unusual networks."""

    timeout: float = 10.0
    retry_base: float = 5.0
    retry_max: float = 300.0
    give_up_after: float = 86400.0

    @classmethod
    def from_env(cls) -> DeliverySettings:
        def number(name: str, default: float) -> float:
            try:
                return float(os.environ.get(name) or default)
            except ValueError:
                return default

        return cls(
            number("TOKEN_BUDGET_ALERT_TIMEOUT", cls.timeout),
            number("TOKEN_BUDGET_ALERT_RETRY_BASE", cls.retry_base),
            number("TOKEN_BUDGET_ALERT_RETRY_MAX", cls.retry_max),
            number("TOKEN_BUDGET_ALERT_GIVE_UP", cls.give_up_after),
        )

    def backoff(self, attempts: int) -> float:
        """Seconds before the next try after `attempts` failures: base·2^(n-1), capped, ±20% jitter."""
        import random

        delay = min(self.retry_base * 2.0 ** min(max(attempts - 1, 0), 60), self.retry_max)  # no overflow
        return delay * random.uniform(0.8, 1.2)


class DeliveryError(Exception):
    """A failed send. `permanent` failures are not retried. The message is already redacted."""

    def __init__(self, message: str, *, permanent: bool = False, hint: str | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.hint = hint


# -- the hook's side -------------------------------------------------------------------------------------------


def kick(store: Storage, data_dir: PathLike, config: Any = None, project_dir: str | None = None, *,
         hint_prefix: str | None = None) -> bool:
    """After the hook's transaction commits: enqueue any claim not yet enqueued (`hint_prefix`: how the calling
    client spells commands, kept with each delivery), and start a sender when deliveries are pending and none
    runs. Returns True when it started one. Adds two indexed queries to a hook, or a Popen."""
    to_enqueue, pending = store.outbox_backlog()
    if to_enqueue and config is not None:
        from .channels import channels
        from .outbox import enqueue_missing

        with store.transaction():
            pending = enqueue_missing(store, channels(config), project_dir=project_dir, now=clock.timestamp(),
                                      hint_prefix=hint_prefix) or pending
    if not pending or sender_running(data_dir):
        return False
    spawn(data_dir)
    return True


def sender_running(data_dir: PathLike) -> bool:
    """True while some process holds the sender's lock."""
    from .detached import running

    return running(data_dir, LOCK_NAME)


def spawn(data_dir: PathLike) -> None:
    """Start a sender in its own process session and return at once (no wait: the hook's latency is unchanged)."""
    from .detached import spawn as start

    start(data_dir, "token_budget.delivery", LOG_NAME)


# -- the sender ------------------------------------------------------------------------------------------------


def _at(seconds_from_now: float) -> str:
    return clock.timestamp(datetime.fromtimestamp(time.time() + seconds_from_now, timezone.utc))


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def log(data_dir: PathLike, message: str) -> None:
    """Append one entry to alerts.log (logfile: 0600, capped, one rotation). Never raises."""
    from .logfile import append

    append(os.path.join(data_dir, LOG_NAME), "sender", message)


class Sender:
    """Works through the outbox until nothing is pending. Use `run(data_dir)`."""

    def __init__(self, data_dir: PathLike, settings: DeliverySettings | None = None) -> None:
        from .ledger import Ledger

        self.data_dir = data_dir
        self.settings = settings or DeliverySettings.from_env()
        self.ledger = Ledger.open(data_dir)
        self._configs: dict[str | None, Any] = {}

    def run(self, lock_fd: int) -> int:
        """Deliver everything due, sleeping between retries; returns how many deliveries were sent."""
        import fcntl

        sent = 0
        while True:
            due = self.ledger.next_due_delivery(clock.timestamp())
            if due is not None:
                sent += self.deliver(due["id"], due["alert_key"], due["channel"], due["type"], due["spec"],
                                     due["project_dir"], due["attempts"], due["created_at"], due["kind"],
                                     due["hint_prefix"])
                continue
            next_at = self.ledger.next_attempt_at()
            if next_at is not None:
                time.sleep(min(max(_epoch(next_at) - time.time(), 0.01), POLL_SECONDS))
                continue
            # Release, then look once more: a hook that enqueued just before the release saw the lock held and
            # started no sender, so this one must notice its row (the hook commits before it probes the lock).
            fcntl.flock(lock_fd, fcntl.LOCK_UN)
            if self.ledger.next_attempt_at() is None:
                return sent
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return sent  # another sender took over

    def deliver(
        self,
        delivery_id: int,
        key: str,
        name: str,
        kind: str,
        spec: str,
        project_dir: str | None,
        attempts: int,
        created_at: str,
        item_kind: str = "alert",
        hint_prefix: str | None = None,
    ) -> int:
        """One attempt: recorded before sending and after, so a crash in between means a repeat, not a loss.
        `item_kind` is 'alert' (key names an alert) or 'report' (key names a daily report in report_messages);
        `hint_prefix` is how the client that queued it spells commands."""
        from .outbox import load_report

        attempt_id = self.ledger.start_attempt(delivery_id, clock.timestamp())
        attempts += 1
        alert = load_report(self.ledger, key) if item_kind == "report" else self.ledger.load_alert(key)
        try:
            if alert is None:
                raise DeliveryError(f"{item_kind} {key} is no longer in the ledger", permanent=True)
            channel = self.channel(name, spec, project_dir)
            send(channel, alert, self.settings, prefix=hint_prefix)
        except Exception as exc:
            error = exc if isinstance(exc, DeliveryError) else classify(exc)
            expired = time.time() - _epoch(created_at) >= self.settings.give_up_after
            state = "failed" if error.permanent or expired else "pending"
            message = str(error) + (
                " (gave up: retried for too long)" if expired and not error.permanent else ""
            )
            self.ledger.attempt_failed(attempt_id, delivery_id, clock.timestamp(), message, give_up=state == "failed",
                                       retry_at=_at(self.settings.backoff(attempts)))
            log(
                self.data_dir,
                f"{'warning' if state == 'failed' else 'retry'}: {item_kind} {key} via {name}, attempt "
                f"{attempts}: {message}",
            )
            return 0
        self.ledger.attempt_succeeded(attempt_id, delivery_id, clock.timestamp())
        log(self.data_dir, f"delivered: {item_kind} {key} via {name}, attempt {attempts}")
        return 1

    def channel(self, name: str, spec: str, project_dir: str | None) -> Any:
        """The channel as configured now (a literal webhook is only there), else as it was enqueued."""
        from .channels import Channel, channels, find_channel

        stored = Channel.from_spec(name, jsonlite.loads(spec))
        if project_dir not in self._configs:
            try:
                from .config import load_cached

                self._configs[project_dir] = channels(load_cached(self.data_dir, project_dir, secrets=True))
            except Exception as exc:
                log(
                    self.data_dir,
                    f"warning: config for {project_dir or 'the default layers'} not readable "
                    f"({type(exc).__name__}); using the channel as enqueued",
                )
                self._configs[project_dir] = []
        current = find_channel(self._configs[project_dir], name)
        if current is not None and current.type == stored.type:
            return current
        if stored.type == "slack" and stored.webhook is None:
            raise DeliveryError(
                f"{name}: its webhook is no longer in the config",
                permanent=True,
                hint="Configure the channel again under alerts.channels.",
            )
        return stored


def classify(exc: BaseException) -> DeliveryError:
    """An unexpected exception as a (transient) DeliveryError, with nothing but its type and redacted text."""
    from .channels import redact

    return DeliveryError(redact(f"{type(exc).__name__}: {exc}", _env_secrets()))


def _env_secrets() -> list[str]:
    return [os.environ.get("SMTP_PASSWORD", "")]


def main(argv: list[str] | None = None) -> int:
    """The detached sender's entry point (see `spawn`): become the sender unless one runs already."""
    from .detached import hold

    args = sys.argv[1:] if argv is None else argv
    data_dir = args[0]
    lock_fd = hold(data_dir, LOCK_NAME)
    if lock_fd is None:
        return 0
    try:
        try:
            sender = Sender(data_dir)
            sender.run(lock_fd)
            sender.ledger.close()
        except Exception as exc:
            log(data_dir, f"error: the sender stopped: {classify(exc)}")
            return 1
    finally:
        os.close(lock_fd)
    return 0


# -- transports ------------------------------------------------------------------------------------------------


def send(channel: Any, alert: Any, settings: DeliverySettings, *, test: bool = False,
         prefix: str | None = None) -> str:
    """Send one alert (or daily report) through one channel, synchronously; returns what was done. `prefix`: how
    the client that queued the alert spells commands (alert_render.commands)."""
    if channel.type == "console":
        return "console: shown by the hook as a systemMessage"
    if channel.type == "slack":
        return send_slack(channel, alert, settings, test=test, prefix=prefix)
    if channel.type == "email":
        return send_email(channel, alert, settings, test=test, prefix=prefix)
    raise DeliveryError(f"{channel.name}: unknown channel type {channel.type!r}", permanent=True)


def send_slack(channel: Any, alert: Any, settings: DeliverySettings, *, test: bool = False,
               prefix: str | None = None) -> str:
    import urllib.error
    import urllib.request

    from .alert_render import slack_body
    from .channels import AlertConfigError, expand, redact

    if not channel.webhook:
        raise DeliveryError(
            f"{channel.name}: no webhook configured",
            permanent=True,
            hint="Add `webhook: $SLACK_WEBHOOK` to the channel in alerts.channels.",
        )
    try:
        url = expand(channel.webhook, f"{channel.name} webhook", allowed=channel.allowed_env)
    except AlertConfigError as exc:
        raise DeliveryError(exc.message, permanent=True, hint=exc.hint) from None
    problem = webhook_problem(url)
    if problem:
        raise DeliveryError(
            f"{channel.name}: {problem}",
            permanent=True,
            hint="Slack incoming webhooks look like https://hooks.slack.com/services/…",
        )
    body = jsonlite.dumps(slack_body(alert, test=test, prefix=prefix)).encode()
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": "token-budget"},
    )
    where = redact(url)
    try:
        with _no_redirects().open(request, timeout=settings.timeout) as response:
            response.read(1024)
    except urllib.error.HTTPError as exc:
        if 300 <= exc.code < 400:
            raise DeliveryError(
                f"{channel.name}: {where} answered with a redirect (HTTP {exc.code}); redirects are not followed",
                permanent=True,
                hint="Use the webhook's final URL.",
            ) from None
        detail = redact(exc.read(200).decode("utf-8", "replace").strip(), [url])
        permanent = 400 <= exc.code < 500 and exc.code not in (408, 425, 429)
        raise DeliveryError(
            f"{channel.name}: HTTP {exc.code} from {where}" + (f" ({detail})" if detail else ""),
            permanent=permanent,
            hint="Check the webhook URL." if permanent else "It will be retried.",
        ) from None
    except (TimeoutError, OSError) as exc:  # URLError is an OSError; socket.timeout is TimeoutError
        reason = getattr(exc, "reason", exc)
        text = "timed out" if isinstance(reason, TimeoutError) or "timed out" in str(reason) else str(reason)
        raise DeliveryError(f"{channel.name}: {where} unreachable: {redact(text, [url])}") from None
    return f"{channel.name}: posted to {where}"


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")


def is_loopback(host: str | None) -> bool:
    host = (host or "").strip().lower().rstrip(".")
    return host in LOOPBACK_HOSTS or host.startswith("127.") and host.replace(".", "").isdigit()


def webhook_problem(url: str) -> str | None:
    """Why a webhook URL is refused, or None: https only (plain http to loopback, for local tests and relays)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "the webhook is not a URL"
    if not host or parts.scheme not in ("https", "http"):
        return "the webhook is not an https URL"
    if parts.scheme == "http" and not is_loopback(host):
        return "the webhook is plain http; only https is sent to (http only to this machine's loopback)"
    return None


def _no_redirects() -> Any:
    """An opener that treats every redirect as an error: a 30x must not carry the alert (or the URL) elsewhere."""
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    return urllib.request.build_opener(NoRedirect)


@record
class SMTPSettings:
    host: str
    port: int
    username: str | None
    password: str | None
    sender: str
    starttls: bool
    ssl: bool

    @classmethod
    def from_env(cls) -> SMTPSettings:
        env = os.environ
        host = env.get("SMTP_HOST")
        if not host:
            raise DeliveryError(
                "email: SMTP_HOST is not set in the environment",
                permanent=True,
                hint="Export SMTP_HOST (and SMTP_PORT, SMTP_USERNAME, SMTP_PASSWORD, SMTP_FROM) where "
                "Claude Code runs; SMTP_STARTTLS=0 for a local server without TLS.",
            )
        try:
            port = int(env.get("SMTP_PORT") or 587)
        except ValueError:
            raise DeliveryError("email: SMTP_PORT is not a number", permanent=True) from None
        flag = (env.get("SMTP_STARTTLS") or "1").strip().lower()
        ssl = (env.get("SMTP_SSL") or ("1" if port == 465 else "0")).strip().lower() not in (
            "0",
            "false",
            "no",
            "off",
        )
        username = env.get("SMTP_USERNAME") or None
        return cls(
            host,
            port,
            username,
            env.get("SMTP_PASSWORD") or None,
            env.get("SMTP_FROM") or username or "token-budget@localhost",
            flag not in ("0", "false", "no", "off") and not ssl,
            ssl,
        )


def email_message(alert: Any, sender: str, recipients: list[str], *, test: bool = False,
                  prefix: str | None = None) -> Any:
    import email.policy
    import hashlib
    from email.message import EmailMessage
    from email.utils import formatdate

    from .alert_render import alert_content, html_body, report_html_body, report_summary

    report = getattr(alert, "kind", None) == "report"
    rendered = report_summary(alert, test=test) if report else alert_content(alert, test=test, prefix=prefix)
    # Headers up to RFC 5322's 998 characters: folding a long Subject at 78 makes Python's generator emit a fold
    # right after "Subject:", which some readers show as a leading space.
    msg = EmailMessage(policy=email.policy.default.clone(max_line_length=998))
    msg["Subject"] = rendered["subject"]
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    # A stable Message-ID per alert: a repeat (at-least-once) threads with, or is dropped as, the first copy.
    digest = hashlib.sha256(alert.key.encode()).hexdigest()[:24]
    msg["Message-ID"] = f"<{digest}{'.test' + str(time.time_ns()) if test else ''}@token-budget>"
    if report:  # the YAML report itself as the plain-text body, the summary and the YAML as the HTML part
        msg["X-Token-Budget-Report"] = alert.period
        msg.set_content(alert.yaml)
        msg.add_alternative(report_html_body(alert, test=test), subtype="html")
        return msg
    msg["X-Token-Budget-Alert"] = alert.key
    msg.set_content(rendered["text"])
    msg.add_alternative(html_body(alert, test=test, prefix=prefix), subtype="html")
    return msg


def send_email(channel: Any, alert: Any, settings: DeliverySettings, *, test: bool = False,
               prefix: str | None = None) -> str:
    import smtplib
    import ssl

    from .channels import AlertConfigError, literal_address, redact

    smtp = SMTPSettings.from_env()
    try:
        recipients = [literal_address(r, f"{channel.name} to") for r in channel.to]
    except AlertConfigError as exc:
        raise DeliveryError(exc.message, permanent=True, hint=exc.hint) from None
    if not recipients:
        raise DeliveryError(
            f"{channel.name}: no recipients",
            permanent=True,
            hint="Add `to: you@example.com` to the channel in alerts.channels.",
        )
    secrets = [smtp.password]
    where = f"{smtp.host}:{smtp.port}"
    if smtp.username and smtp.password and not (smtp.ssl or smtp.starttls) and not is_loopback(smtp.host):
        raise DeliveryError(
            f"{channel.name}: refusing to send the SMTP password in cleartext to {where}",
            permanent=True,
            hint="Use TLS (SMTP_STARTTLS=1 or SMTP_SSL=1); SMTP_STARTTLS=0 with a login only to a relay on this "
            "machine (localhost).",
        )
    try:
        if smtp.ssl:
            client: Any = smtplib.SMTP_SSL(
                smtp.host, smtp.port, timeout=settings.timeout, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=settings.timeout)
        with client:
            client.ehlo()
            if smtp.starttls:
                if not client.has_extn("starttls"):
                    raise DeliveryError(
                        f"{channel.name}: {where} does not offer STARTTLS",
                        permanent=True,
                        hint="Use a server with TLS, or set SMTP_STARTTLS=0 for a local relay.",
                    )
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            if smtp.username and smtp.password:
                client.login(smtp.username, smtp.password)
            client.send_message(email_message(alert, smtp.sender, recipients, test=test, prefix=prefix))
    except DeliveryError:
        raise
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        raise DeliveryError(
            f"{channel.name}: {where} refused the recipients ({codes})",
            permanent=all(c >= 500 for c in codes),
        ) from None
    except smtplib.SMTPResponseException as exc:
        text = redact(
            exc.smtp_error.decode("utf-8", "replace")
            if isinstance(exc.smtp_error, bytes)
            else str(exc.smtp_error),
            secrets,
        )
        raise DeliveryError(
            f"{channel.name}: {where} answered {exc.smtp_code} {text}",
            permanent=exc.smtp_code >= 500,
            hint="Check SMTP_USERNAME and SMTP_PASSWORD." if exc.smtp_code in (530, 535) else None,
        ) from None
    except (TimeoutError, OSError, smtplib.SMTPException) as exc:
        text = (
            "timed out" if isinstance(exc, TimeoutError) else redact(f"{type(exc).__name__}: {exc}", secrets)
        )
        raise DeliveryError(f"{channel.name}: {where} unreachable: {text}") from None
    return f"{channel.name}: mailed {', '.join(recipients)} through {where}"
