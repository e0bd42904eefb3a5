"""Price table with effective dates -> the cost of one request in integer micro-USD.

This module owns price lookup and the cost formula; model-id normalising is `families`. A hook builds its table
from the config cache (`PriceTable.from_compiled`); `price_parse.parse_table` builds one from the parsed
`config/pricing.yaml` mapping, optionally with user overrides merged over it (`price_parse.merge_overrides`). It
imports only the stdlib and the core at module top: it runs inside the hook process, so it must not import yaml.
It also compiles no regexes, because building a table has to stay cheap.

Rates are USD per million tokens, and 1 USD/MTok is exactly 1 micro-USD per token. A cost is the sum of
tokens x rate, which is computed in integers on a 1e-9 grid and rounded half up once per request.
"""

from __future__ import annotations

from .families import FAMILIES, family, family_in, segments
from .models import Cost, Price, UsageEvent

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["FAMILIES", "PriceTable", "family_of"]

PRICED, ESTIMATED, UNPRICED = "priced", "estimated", "unpriced"

RATE_FIELDS = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")
PRICE_FIELDS = (*RATE_FIELDS, "long_context", "fast_multiplier")
_RATE_SCALE = 10**9  # a rate is stored as an int in units of 1e-9 micro-USD per token
_MULT_SCALE = 10**6  # a fast multiplier is stored as an int in millionths
_MEMO_LIMIT = 4096

# (base rates, long-context rates or None, long-context threshold, fast multiplier): all ints
_Rates = tuple[tuple[int, ...], tuple[int, ...] | None, int, int]


def family_of(model: str) -> str | None:
    """The model family ("opus", "sonnet", "haiku", "fable", "mythos") in any naming style, or None."""
    return family(model)


def _day(on: object) -> str | None:
    """The YYYY-MM-DD day of an ISO date or timestamp, or None when `on` is not one."""
    text = on.isoformat() if hasattr(on, "isoformat") else on
    if not isinstance(text, str) or len(text) < 10:
        return None
    day = text[:10]
    if day[4] != "-" or day[7] != "-" or not (day[:4] + day[5:7] + day[8:]).isdigit():
        return None
    return day


class _Entry:
    __slots__ = ("estimate", "family", "key", "match", "periods", "version")

    def __init__(self, key: str, family: str | None, version: tuple[int, ...], estimate: bool, match: list[str],
                 periods: list[tuple[str, Price, _Rates]]) -> None:
        self.key, self.family, self.version, self.estimate, self.match = key, family, version, estimate, match
        self.periods = periods

    def compiled(self) -> list[object]:
        return [self.key, self.family, list(self.version), self.estimate, self.match,
                [[day, _price_row(price), [list(rates[0]), None if rates[1] is None else list(rates[1]), *rates[2:]]]
                 for day, price, rates in self.periods]]

    @classmethod
    def from_compiled(cls, row: list[Any]) -> _Entry:
        key, family, version, estimate, match, periods = row
        return cls(key, family, tuple(version), estimate, match,
                   [(day, _price_of(price), (tuple(base), None if long is None else tuple(long), threshold, mult))
                    for day, price, (base, long, threshold, mult) in periods])

    def period_on(self, day: str | None) -> tuple[Price, _Rates]:
        """The period in effect on `day` (None: the latest); before the first period starts, the first one."""
        chosen = self.periods[0]
        if day is None:
            chosen = self.periods[-1]
        else:
            for period in self.periods:
                if period[0] > day:
                    break
                chosen = period
        return chosen[1], chosen[2]


class _CompiledEntries:
    """A compiled table's entries by key, each rebuilt from its row at its first use: a hook prices the one or two
    models it records, and rebuilding every entry of the table cost it more than the rest of its pricing."""

    def __init__(self, rows: list[list[Any]]) -> None:
        self._rows = {row[0]: row for row in rows}
        self._built: dict[str, _Entry] = {}

    def __getitem__(self, key: str) -> _Entry:
        entry = self._built.get(key)
        if entry is None:
            entry = self._built[key] = _Entry.from_compiled(self._rows[key])
        return entry

    def values(self) -> list[_Entry]:
        return [self[key] for key in self._rows]


class PriceTable:
    """Model id -> Price, effective by date; build one with `price_parse.parse_table(parsed_yaml)`."""

    def __init__(self, entries: Any, aliases: dict[str, str], families: frozenset[str], newest: dict[str, str]) -> None:
        """Use price_parse.parse_table (pricing.yaml's data) or from_compiled (the config cache's)."""
        self._entries = entries  # key -> _Entry: a dict, or _CompiledEntries
        self._aliases, self._families, self._newest = aliases, families, newest
        self._match_memo: dict[str, tuple[str | None, str]] = {}
        self._period_memo: dict[tuple[str, str | None], tuple[Price, _Rates]] = {}

    def compiled(self) -> dict[str, Any]:
        """The table as JSON-able data (the config cache keeps it): `from_compiled` rebuilds it exactly, without
        parsing a rate again, loading decimal or normalising a model id (its alias index comes along)."""
        return {"entries": [entry.compiled() for entry in self._entries.values()], "aliases": self._aliases,
                "families": sorted(self._families), "newest": self._newest}

    @classmethod
    def from_compiled(cls, data: dict[str, Any]) -> PriceTable:
        return cls(_CompiledEntries(data["entries"]), dict(data["aliases"]), frozenset(data["families"]),
                   dict(data["newest"]))

    def _match(self, model: str) -> tuple[str | None, str]:
        if not isinstance(model, str):
            return None, UNPRICED
        found = self._match_memo.get(model)
        if found is not None:
            return found
        segs = segments(model)
        key = self._aliases.get("-".join(segs))
        if key is None:
            # A known id followed by a non-numeric suffix ("claude-opus-4-5-thinking") is that model; a
            # numeric one ("claude-opus-4-9") is another version, which must never fall back to claude-opus-4.
            for end in range(len(segs) - 1, 1, -1):
                if not segs[end].isdigit():
                    key = self._aliases.get("-".join(segs[:end]))
                    if key is not None:
                        break
        if key is not None:
            found = (key, ESTIMATED if self._entries[key].estimate else PRICED)
        else:
            family = family_in(segs, self._families)
            key = self._newest.get(family) if family else None
            found = (key, ESTIMATED) if key else (None, UNPRICED)
        if len(self._match_memo) >= _MEMO_LIMIT:
            self._match_memo.clear()
        self._match_memo[model] = found
        return found

    def _resolve(self, model: str, day: str | None) -> tuple[str | None, str, Price | None, _Rates | None]:
        key, status = self._match(model)
        if key is None:
            return None, status, None, None
        period = self._period_memo.get((key, day))
        if period is None:
            period = self._entries[key].period_on(day)
            if len(self._period_memo) >= _MEMO_LIMIT:
                self._period_memo.clear()
            self._period_memo[(key, day)] = period
        return key, status, period[0], period[1]

    def periods(self, key: str) -> list[tuple[str, Price]]:
        """(effective day or "" for "from the beginning", price) of one entry, oldest first."""
        return [(day, price) for day, price, _rates in self._entries[key].periods]

    def lookup(self, model: str, on: str | None = None) -> tuple[Price | None, str, str | None]:
        """(price, status, entry key) for `model` on the day `on` (an ISO date or timestamp; None: latest).

        status is "priced" (a known id), "estimated" (an unknown version of a known family, priced by the
        family's newest entry, or an entry marked as an estimate) or "unpriced" (price and key are None).
        """
        day = None
        if on is not None:
            day = _day(on)
            if day is None:
                raise ValueError(f"on must be an ISO date or timestamp like '2026-01-02', got {on!r}")
        key, status, price, _ = self._resolve(model, day)
        return price, status, key

    def cost(self, event: UsageEvent, *, per_request: bool = True) -> Cost:
        """The cost of one request at the prices in effect on its timestamp (the latest if it has none).

        `per_request=False` prices a sum of several requests: the long-context premium, which depends on each
        request's size, is not applied."""
        key, status, _, rates = self._resolve(event.model, _day(event.timestamp))
        if rates is None:
            return Cost(0, UNPRICED, None)
        base, long, threshold, mult = rates
        i, o = event.input_tokens, event.output_tokens
        w5, w1, r = event.cache_creation_5m_tokens, event.cache_creation_1h_tokens, event.cache_read_tokens
        if long is not None and per_request and i + r + w5 + w1 > threshold:
            base = long  # every token of the request is premium, not just those past the threshold
        total = i * base[0] + o * base[1] + w5 * base[2] + w1 * base[3] + r * base[4]
        scale = _RATE_SCALE
        if event.speed == "fast" and mult != _MULT_SCALE:
            total *= mult
            scale *= _MULT_SCALE
        return Cost((total + scale // 2) // scale, status, key)


def _price_row(price: Price) -> list[Any]:
    long = price.long_context
    return [price.input, price.output, price.cache_write_5m, price.cache_write_1h, price.cache_read,
            None if long is None else _price_row(long), price.long_context_threshold, price.fast_multiplier]


def _price_of(row: list[Any]) -> Price:
    *rates, long, threshold, mult = row
    return Price(*rates, long_context=None if long is None else _price_of(long), long_context_threshold=threshold,
                 fast_multiplier=mult)


