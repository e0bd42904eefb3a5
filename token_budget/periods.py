"""Calendar periods in the configured time zone, as UTC bounds the ledger can compare as text.

Ledger timestamps are ISO-8601 UTC text ending in Z; bounds use the same form, so `timestamp >= start AND
timestamp < end` is an index range scan. Days are local calendar days: 23 or 25 hours long on DST change days.
"""

from __future__ import annotations

import os

from . import clock
from .lean_datetime import date, datetime, timedelta, timezone, tzinfo

# Zones that are UTC under another name: answered without importing zoneinfo, which costs a hook milliseconds.
UTC_NAMES = frozenset({"UTC", "Etc/UTC", "UCT", "Etc/UCT", "Universal", "Etc/Universal", "Zulu", "Etc/Zulu"})


_zones: dict[str | None, tzinfo] = {}  # a dict, not functools.lru_cache: the hook does not import functools


def zone(name: str | None) -> tzinfo:
    """An IANA zone by name; "local" (or None) is this machine's zone, from $TZ or /etc/localtime."""
    found = _zones.get(name)
    if found is None:
        found = _zones[name] = _find_zone(name)
    return found


def _find_zone(name: str | None) -> tzinfo:
    if name and name != "local":
        return timezone.utc if name in UTC_NAMES else _zoneinfo(name)
    local = local_zone_name()
    if local:
        if local in UTC_NAMES:
            return timezone.utc
        try:
            return _zoneinfo(local)
        except (ValueError, OSError, KeyError):
            pass  # a $TZ zoneinfo does not know: this machine's /etc/localtime
    try:
        from zoneinfo import ZoneInfo

        with open("/etc/localtime", "rb") as handle:
            return ZoneInfo.from_file(handle, key="localtime")
    except (OSError, ValueError):
        return timezone.utc


def local_zone_name() -> str | None:
    """This machine's zone by IANA name: $TZ, else the zone /etc/localtime links to; None when neither names one."""
    tz_env = os.environ.get("TZ", "").lstrip(":")
    if tz_env:
        return tz_env
    target = os.path.realpath("/etc/localtime")
    return target.split("/zoneinfo/", 1)[1] if "/zoneinfo/" in target else None


def zone_name(name: str | None) -> str:
    """A configured zone's IANA name, as reports show it; for "local", this machine's."""
    if name and name != "local":
        return name
    return local_zone_name() or str(zone(name)) or "local"


def _zoneinfo(name: str) -> tzinfo:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def iso(moment: datetime) -> str:
    return clock.timestamp(moment)


def parse(timestamp: str) -> datetime:
    moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def normalize(timestamp: str) -> str:
    """Canonical `YYYY-MM-DDTHH:MM:SS.mmmZ`; raises ValueError for text that is not a timestamp."""
    if len(timestamp) == 24 and timestamp[10] == "T" and timestamp[19] == "." and timestamp[23] == "Z":
        return timestamp
    return iso(parse(timestamp))


def _start_of(day: date, tz: tzinfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz)


def day_bounds(day: date, tz: tzinfo) -> tuple[str, str]:
    return iso(_start_of(day, tz)), iso(_start_of(day + timedelta(days=1), tz))


def month_bounds(year: int, month: int, tz: tzinfo) -> tuple[str, str]:
    nxt = date(year + month // 12, month % 12 + 1, 1)
    return iso(_start_of(date(year, month, 1), tz)), iso(_start_of(nxt, tz))


def local_day(timestamp: str, tz: tzinfo) -> date:
    return parse(timestamp).astimezone(tz).date()


def today(tz: tzinfo, now: datetime | None = None) -> date:
    return (now or clock.now()).astimezone(tz).date()
