"""pricing.yaml's data, with a user's overrides merged over it, parsed and checked into a pricing.PriceTable.

Not for the hot path: a hook prices from the table compiled into the config cache (PriceTable.from_compiled), and
this module runs only when the cache is built again, and for `tokens pricing`. Rates are parsed as Decimal text,
exactly, onto pricing's integer grid.
"""

from __future__ import annotations

from .errors import ConfigError
from .families import FAMILIES, segments
from .models import Price
from .pricing import _MULT_SCALE, _RATE_SCALE, PRICE_FIELDS, RATE_FIELDS, PriceTable, _day, _Entry

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from decimal import Decimal

    from .pricing import _Rates

_META_FIELDS = frozenset({"family", "version", "match", "estimate", "prices", "note", "source"})
_PERIOD_FIELDS = frozenset({*PRICE_FIELDS, "effective", "note", "source"})
_LONG_CONTEXT_FIELDS = frozenset({*RATE_FIELDS, "threshold"})
# A cache rate missing from the data is derived from the input rate (Anthropic's published multipliers).
_DERIVED = {"cache_write_5m": "1.25", "cache_write_1h": "2", "cache_read": "0.1"}  # exact, as Decimal text


def parse_table(data: Mapping) -> PriceTable:
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
        entries.append(_entry(str(key), raw))
    aliases: dict[str, str] = {}
    for entry in entries:  # later entries win, so merged overrides take precedence
        aliases["-".join(segments(entry.key))] = entry.key
    for entry in entries:
        for alias in entry.match:
            aliases["-".join(segments(alias))] = entry.key
    families = frozenset({*FAMILIES} | {e.family for e in entries if e.family})
    newest: dict[str, tuple[tuple[tuple[int, ...], str, int], str]] = {}
    for order, entry in enumerate(entries):
        if entry.family:
            rank = (entry.version, entry.periods[-1][0], order)
            if entry.family not in newest or rank > newest[entry.family][0]:
                newest[entry.family] = (rank, entry.key)
    return PriceTable({entry.key: entry for entry in entries}, aliases, families,
                      {family: key for family, (_, key) in newest.items()})


def _entry(key: str, raw: Mapping) -> _Entry:
    where = f"pricing entry {key!r}"
    family = raw.get("family")
    version = _version(raw.get("version"), where)
    estimate = bool(raw.get("estimate", False))
    match = raw.get("match") or []
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
    return _Entry(key, str(family).lower() if family else None, version, estimate,
                  [str(alias) for alias in ([match] if isinstance(match, str) else match)], periods)


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
