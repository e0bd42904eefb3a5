"""Price table with effective dates -> the cost of one request in integer micro-USD.

This module owns price lookup and the cost formula; model-id normalising is `families`. Its input is the parsed
`config/pricing.yaml` mapping, optionally with user overrides merged over it (`merge_overrides`). It imports
only the stdlib and the core at module top: it runs inside the hook process, so it must not import yaml. It
also compiles no regexes, because building a table has to stay cheap.

Rates are USD per million tokens, and 1 USD/MTok is exactly 1 micro-USD per token. A cost is the sum of
tokens x rate, which is computed in integers on a 1e-9 grid and rounded half up once per request.
"""

from __future__ import annotations

from .errors import ConfigError
from .families import FAMILIES, family, family_in, segments
from .models import Cost, Price, UsageEvent

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from decimal import Decimal
    from typing import Any

__all__ = ["FAMILIES", "PriceTable", "family_of", "merge_overrides"]

PRICED, ESTIMATED, UNPRICED = "priced", "estimated", "unpriced"

RATE_FIELDS = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")
PRICE_FIELDS = (*RATE_FIELDS, "long_context", "fast_multiplier")
_META_FIELDS = frozenset({"family", "version", "match", "estimate", "prices", "note", "source"})
_PERIOD_FIELDS = frozenset({*PRICE_FIELDS, "effective", "note", "source"})
_LONG_CONTEXT_FIELDS = frozenset({*RATE_FIELDS, "threshold"})
# A cache rate missing from the data is derived from the input rate (Anthropic's published multipliers).
_DERIVED = {"cache_write_5m": "1.25", "cache_write_1h": "2", "cache_read": "0.1"}  # exact, as Decimal text

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


def _decimal(value: object, where: str) -> Decimal:
    # decimal (a C extension of 1.7 MB) is loaded only to build a table from its text: a hook prices from the
    # compiled table in the config cache (compiled / from_compiled), which is integers and floats.
    from decimal import Decimal, InvalidOperation

    number = None
    if not isinstance(value, bool) and isinstance(value, (int, float, str, Decimal)):
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            number = None
    if number is None or not number.is_finite() or number < 0:
        raise ConfigError(f"{where}: expected a non-negative number, got {value!r}.",
                          hint="Write rates as plain numbers of USD per million tokens.")
    return number


def _scaled(d: Decimal, scale: int) -> int:
    from decimal import ROUND_HALF_UP

    return int((d * scale).to_integral_value(rounding=ROUND_HALF_UP))


def _rates(fields: Mapping, where: str) -> tuple[Price, tuple[int, ...]]:
    """A Price (no long context) and its integer rates, deriving missing cache rates from input."""
    for name in ("input", "output"):
        if fields.get(name) is None:
            raise ConfigError(f"{where}: missing the {name!r} rate.",
                              hint="Give input and output in USD per million tokens.")
    values = {"input": _decimal(fields["input"], f"{where}.input")}
    values["output"] = _decimal(fields["output"], f"{where}.output")
    for name, factor in _DERIVED.items():
        raw = fields.get(name)
        values[name] = values["input"] * _decimal(factor, name) if raw is None else _decimal(raw, f"{where}.{name}")
    price = Price(*(float(values[name]) for name in RATE_FIELDS))
    return price, tuple(_scaled(values[name], _RATE_SCALE) for name in RATE_FIELDS)


def _is_mapping(value: object) -> bool:
    """isinstance(value, Mapping), importing collections.abc only when a table is parsed from text: the hook builds
    its table from the config cache's compiled rows and must not load collections for it."""
    from collections.abc import Mapping

    return isinstance(value, Mapping)


def _period(fields: Mapping, where: str) -> tuple[Price, _Rates]:
    unknown = set(fields) - _PERIOD_FIELDS
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}.",
                          hint=f"Known fields: {', '.join(sorted(_PERIOD_FIELDS))}.")
    base, base_rates = _rates(fields, where)
    mult = _decimal(fields.get("fast_multiplier", 1), f"{where}.fast_multiplier")
    raw_long = fields.get("long_context")
    long_price, long_rates, threshold = None, None, 200_000
    if raw_long is not None:
        if not _is_mapping(raw_long):
            raise ConfigError(f"{where}.long_context: expected a mapping of rates.")
        unknown = set(raw_long) - _LONG_CONTEXT_FIELDS
        if unknown:
            raise ConfigError(f"{where}.long_context: unknown field(s) {', '.join(sorted(unknown))}.")
        long_price, long_rates = _rates(raw_long, f"{where}.long_context")
        threshold = int(_decimal(raw_long.get("threshold", threshold), f"{where}.long_context.threshold"))
    price = Price(
        base.input, base.output, base.cache_write_5m, base.cache_write_1h, base.cache_read,
        long_context=long_price, long_context_threshold=threshold, fast_multiplier=float(mult),
    )
    return price, (base_rates, long_rates, threshold, _scaled(mult, _MULT_SCALE))


def _version(value: object, where: str) -> tuple[int, ...]:
    if value is None:
        return ()
    try:
        return tuple(int(part) for part in str(value).split("."))
    except ValueError:
        raise ConfigError(f"{where}.version: expected a dotted number like \"4.5\", got {value!r}.") from None


class _Entry:
    __slots__ = ("estimate", "family", "key", "match", "periods", "version")

    def __init__(self, key: str, raw: Mapping) -> None:
        where = f"pricing entry {key!r}"
        self.key = key
        family = raw.get("family")
        self.family = str(family).lower() if family else None
        self.version = _version(raw.get("version"), where)
        self.estimate = bool(raw.get("estimate", False))
        match = raw.get("match") or []
        self.match = [str(alias) for alias in ([match] if isinstance(match, str) else match)]
        common = {name: value for name, value in raw.items() if name not in _META_FIELDS}
        raw_periods = raw.get("prices") or [{}]
        if not isinstance(raw_periods, list):
            raise ConfigError(f"{where}.prices: expected a list of periods.")
        periods: list[tuple[str, Price, _Rates]] = []
        for n, raw_period in enumerate(raw_periods):
            if not _is_mapping(raw_period):
                raise ConfigError(f"{where}.prices[{n}]: expected a mapping of rates.")
            fields = {**common, **raw_period}
            effective = fields.pop("effective", None)
            day = "" if effective is None else _day(effective)
            if day is None:
                raise ConfigError(f"{where}.prices[{n}].effective: expected a date like \"2024-12-03\", "
                                  f"got {effective!r}.")
            periods.append((day, *_period(fields, f"{where}.prices[{n}]")))
        periods.sort(key=lambda period: period[0])
        self.periods = periods

    def compiled(self) -> list[object]:
        return [self.key, self.family, list(self.version), self.estimate, self.match,
                [[day, _price_row(price), [list(rates[0]), None if rates[1] is None else list(rates[1]), *rates[2:]]]
                 for day, price, rates in self.periods]]

    @classmethod
    def from_compiled(cls, row: list[Any]) -> _Entry:
        entry = cls.__new__(cls)
        entry.key, entry.family, version, entry.estimate, entry.match, periods = row
        entry.version = tuple(version)
        entry.periods = [(day, _price_of(price), (tuple(base), None if long is None else tuple(long), threshold, mult))
                         for day, price, (base, long, threshold, mult) in periods]
        return entry

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
    """Model id -> Price, effective by date; build one with `PriceTable.from_dict(parsed_yaml)`."""

    def __init__(self, entries: list[_Entry]) -> None:
        self._entries = {entry.key: entry for entry in entries}
        self._aliases: dict[str, str] = {}
        for entry in entries:  # later entries win, so merged overrides take precedence
            self._aliases["-".join(segments(entry.key))] = entry.key
        for entry in entries:
            for alias in entry.match:
                self._aliases["-".join(segments(alias))] = entry.key
        self._families = frozenset({*FAMILIES} | {e.family for e in entries if e.family})
        newest: dict[str, tuple[tuple[tuple[int, ...], str, int], str]] = {}
        for order, entry in enumerate(entries):
            if entry.family:
                rank = (entry.version, entry.periods[-1][0], order)
                if entry.family not in newest or rank > newest[entry.family][0]:
                    newest[entry.family] = (rank, entry.key)
        self._newest = {family: key for family, (_, key) in newest.items()}
        self._match_memo: dict[str, tuple[str | None, str]] = {}
        self._period_memo: dict[tuple[str, str | None], tuple[Price, _Rates]] = {}

    @classmethod
    def from_dict(cls, data: Mapping) -> PriceTable:
        """Build from the parsed pricing.yaml mapping (with overrides already merged, if any)."""
        if not _is_mapping(data) or not _is_mapping(data.get("models")):
            raise ConfigError("pricing: expected a mapping with a 'models' mapping.",
                              hint="See config/pricing.yaml for the format.")
        currency = data.get("currency", "USD")
        if currency != "USD":
            raise ConfigError(f"pricing: currency {currency!r} is not supported.", hint="Give prices in USD.")
        entries = []
        for key, raw in data["models"].items():
            if not _is_mapping(raw):
                raise ConfigError(f"pricing entry {key!r}: expected a mapping.")
            entries.append(_Entry(str(key), raw))
        return cls(entries)

    def compiled(self) -> dict[str, Any]:
        """The table as JSON-able data (the config cache keeps it): `from_compiled` rebuilds it exactly, without
        parsing a rate again, loading decimal or normalising a model id (its alias index comes along)."""
        return {"entries": [entry.compiled() for entry in self._entries.values()], "aliases": self._aliases,
                "families": sorted(self._families), "newest": self._newest}

    @classmethod
    def from_compiled(cls, data: dict[str, Any]) -> PriceTable:
        table = cls.__new__(cls)
        table._entries = _CompiledEntries(data["entries"])  # type: ignore[assignment]
        table._aliases = dict(data["aliases"])
        table._families = frozenset(data["families"])
        table._newest = dict(data["newest"])
        table._match_memo, table._period_memo = {}, {}
        return table

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


def _alias_map(models: Mapping) -> dict[str, str]:
    aliases: dict[str, str] = {}
    for key, raw in models.items():
        aliases["-".join(segments(str(key)))] = key
        if _is_mapping(raw):
            match = raw.get("match") or []
            for alias in [match] if isinstance(match, str) else match:
                aliases["-".join(segments(str(alias)))] = key
    return aliases


def _apply_override(entry: dict, override: Mapping) -> None:
    override = dict(override)
    if "prices" in override:
        import copy

        entry["prices"] = copy.deepcopy(override.pop("prices"))
    given = [name for name in PRICE_FIELDS if name in override]
    if given:
        dropped = set(given)
        if "input" in override:  # cache rates not given follow the new input rate
            dropped |= {name for name in _DERIVED if name not in override}
        for period in entry.get("prices") or []:
            if isinstance(period, dict):
                for name in dropped:
                    period.pop(name, None)
        for name in dropped:
            entry.pop(name, None)
        entry.update({name: override[name] for name in given})
        entry["estimate"] = False  # a user's price is not our guess
    if "match" in override:
        extra = override.pop("match")
        entry["match"] = [*(entry.get("match") or []), *([extra] if isinstance(extra, str) else extra)]
    for name, value in override.items():
        if name not in given:
            entry[name] = value


def merge_overrides(base: Mapping, overrides: Mapping | None) -> dict:
    """`base` (parsed pricing.yaml) with user `overrides` merged over it; neither argument is modified.

    `overrides` maps an entry key or a model id to fields: {"claude-opus-4-6": {"input": 4, "output": 20}}.
    - An entry key changes that entry in every period. A model id known to the table gets its own copy of its
      entry, which then wins for that id. Any other id becomes a new entry that matches it exactly.
    - Rates replace those of every period. When `input` is given, the cache rates not given are derived from
      it (5m 1.25x, 1h 2x, read 0.1x). `long_context: null` removes the premium; `prices: [...]` replaces
      the periods.
    - `match` adds ids; `family`, `version` and `estimate` are set as given.
    """
    if not overrides:
        return dict(base)  # nothing to merge: from_dict only reads, so no deep copy (the hook prices with this)
    import copy  # only a merge pays for it

    merged = dict(copy.deepcopy(base))
    models = dict(merged.get("models") or {})
    merged["models"] = models
    aliases: dict[str, str] | None = None
    for name, override in (overrides or {}).items():
        if not _is_mapping(override):
            raise ConfigError(f"pricing override {name!r}: expected a mapping of rates, got {override!r}.",
                              hint="For example: {input: 3.0, output: 15.0}.")
        name = str(name)
        if name not in models:
            if aliases is None:
                aliases = _alias_map(models)
            known = aliases.get("-".join(segments(name)))
            entry = {} if known is None else copy.deepcopy(dict(models[known]))
            entry["match"] = [name]
            models[name] = entry
        else:
            models[name] = dict(models[name])
        _apply_override(models[name], override)
    return merged
