"""The daily report file: yesterday's report written once, at the first hook of a new local day, and queued for
the channels that take reports. Runs on the hook's path: not due costs one stat."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from .config import Config
from .paths import daily_report_due, daily_report_path, ensure_private_dir, write_atomically
from .report_render import render_yaml
from .reports import build_report, day_period

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .storage import Storage


def write_daily_if_due(ledger: Storage, config: Config, data_dir: Path, now: datetime | None = None,
                       project_dir: str | None = None) -> Path | None:
    """At the first call of a new local day, write yesterday's report to reports/YYYY-MM-DD.yaml; else None.

    Not due costs one stat. Concurrent hooks agree on one writer through a file lock (filelock: the kernel drops
    it when its holder dies, so a crashed writer never leaves a claim to time out and no two processes can take
    over the same stale one); the holder checks again that the report is still due. Channels with `reports: true`
    get a delivery each in the alert outbox, committed before the file is written: a crash in between writes (and
    re-enqueues, never doubling) at the next hook, so a report is never written without being queued. The caller
    kicks the sender.
    """
    yesterday = daily_report_due(data_dir, config.timezone, now)
    if yesterday is None:
        return None
    path = Path(daily_report_path(data_dir, yesterday))
    ensure_private_dir(path.parent)
    from . import site_packages

    site_packages.enable()  # hooks run with -S; filelock lives in site-packages
    from filelock import FileLock, Timeout

    claim = FileLock(str(path.with_name(f".{path.name}.claim")), timeout=0, mode=0o600)
    try:
        claim.acquire()
    except Timeout:
        return None  # another hook is writing it
    try:
        if daily_report_due(data_dir, config.timezone, now) != yesterday:
            return None  # written while this hook waited for its turn
        report = build_report(ledger, config, day_period(yesterday, config))
        text = render_yaml(report)
        if any(isinstance(c, dict) and c.get("reports") is True
               for c in ((config.data.get("alerts") or {}).get("channels") or [])):
            from . import clock
            from .channels import channels
            from .outbox import enqueue_report

            with ledger.transaction():
                enqueue_report(ledger, report, text, channels(config), project_dir=project_dir, now=clock.timestamp())
        write_atomically(path, text)
    finally:
        claim.release()
    return path
