"""Prices that keep up: LiteLLM's model_prices_and_context_window.json (the source ccusage uses) read offline into
the user's price overrides, each change as a new period with an effective date, so past requests keep the price
of their day.

LiteLLM gives USD per token; the price table holds USD per million tokens (pricing.py). Only the entries of one
provider are read (Anthropic's own API by default), and an entry's rates become an override only where they
differ from the price the table already gives that model on the effective date.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .price_parse import merge_overrides, parse_table
from .pricing import RATE_FIELDS

# price table field -> LiteLLM field (USD per token)
LITELLM_FIELDS = {
    "input": "input_cost_per_token",
    "output": "output_cost_per_token",
    "cache_write_5m": "cache_creation_input_token_cost",
    "cache_write_1h": "cache_creation_input_token_cost_above_1hr",
    "cache_read": "cache_read_input_token_cost",
}
LONG_CONTEXT_FIELDS = {
    "input": "input_cost_per_token_above_200k_tokens",
    "output": "output_cost_per_token_above_200k_tokens",
    "cache_write_5m": "cache_creation_input_token_cost_above_200k_tokens",
    "cache_write_1h": "cache_creation_input_token_cost_above_1hr_above_200k_tokens",
    "cache_read": "cache_read_input_token_cost_above_200k_tokens",
}
MILLION = Decimal(1_000_000)


@dataclass
class PriceImport:
    """What an import found: the overrides to write, and what it left alone and why."""

    overrides: dict[str, Any] = field(default_factory=dict)  # the user's whole `pricing` mapping after the import
    added: list[str] = field(default_factory=list)  # models the table did not know
    changed: list[str] = field(default_factory=list)  # models whose price changes from the effective date
    unchanged: int = 0
    skipped: list[str] = field(default_factory=list)  # entries not read, with the reason


def _per_million(value: Any, where: str) -> float | None:
    if value is None:
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        number = Decimal(-1)
    if isinstance(value, bool) or not number.is_finite() or number < 0:
        raise ValueError(f"{where} is not a price: {value!r}")
    return float((number * MILLION).normalize())


def _rates(entry: Mapping[str, Any], names: Mapping[str, str], key: str) -> dict[str, float]:
    rates = {}
    for ours, theirs in names.items():
        value = _per_million(entry.get(theirs), f"{key}.{theirs}")
        if value is not None:
            rates[ours] = value
    # LiteLLM copied a 1-hour write rate by mistake into some legacy entries (claude-3-opus/haiku at $6): a
    # 1-hour write is 2x input, so a rate that is not is dropped and derived from input instead.
    if "input" in rates and "cache_write_1h" in rates and abs(rates["cache_write_1h"] - 2 * rates["input"]) > 1e-9:
        del rates["cache_write_1h"]
    return rates


def litellm_prices(data: Mapping[str, Any], provider: str = "anthropic") -> tuple[dict[str, dict[str, Any]],
                                                                                   list[str]]:
    """{model id: price fields} for the chat models of `provider`, and the entries skipped with the reason."""
    prices: dict[str, dict[str, Any]] = {}
    skipped: list[str] = []
    for key, entry in data.items():
        if key == "sample_spec" or not isinstance(entry, Mapping):
            continue
        if entry.get("litellm_provider") != provider or entry.get("mode", "chat") != "chat":
            continue
        try:
            base = _rates(entry, LITELLM_FIELDS, key)
            if "input" not in base or "output" not in base:
                skipped.append(f"{key}: no input or output price")
                continue
            fields: dict[str, Any] = dict(base)
            long = _rates(entry, LONG_CONTEXT_FIELDS, key)
            if "input" in long and "output" in long:
                fields["long_context"] = {**long, "threshold": 200_000}
            fast = (entry.get("provider_specific_entry") or {}).get("fast")
            if isinstance(fast, (int, float)) and not isinstance(fast, bool) and fast > 0 and fast != 1:
                fields["fast_multiplier"] = float(fast)
        except ValueError as exc:
            skipped.append(f"{key}: {exc}")
            continue
        prices[str(key).split("/", 1)[-1]] = fields
    return prices, skipped


def read_litellm(path: str | Path) -> Mapping[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"Cannot read {path}: {exc.strerror or exc}.",
                          "Download model_prices_and_context_window.json from the LiteLLM repository first.") from exc
    except ValueError as exc:
        raise ConfigError(f"{path} is not JSON ({exc}).",
                          "Give LiteLLM's model_prices_and_context_window.json as it is published.") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is not LiteLLM's price file (expected a JSON object of models).")
    return data


def _same(fields: Mapping[str, Any], price: Any) -> bool:
    """Do LiteLLM's fields give the price the table already has? Cache rates LiteLLM lacks are derived as the
    table derives them; a long-context or fast-mode rule LiteLLM does not give is not a difference (it lacks, for
    one, Sonnet 4.5's long-context premium on Anthropic's own API)."""
    if price is None:
        return False
    derived = {"cache_write_5m": 1.25, "cache_write_1h": 2.0, "cache_read": 0.1}
    for name in RATE_FIELDS:
        want = fields.get(name, fields["input"] * derived[name] if name in derived else None)
        if want is None or abs(getattr(price, name) - want) > 1e-9:
            return False
    if "fast_multiplier" in fields and abs(price.fast_multiplier - fields["fast_multiplier"]) > 1e-9:
        return False
    long = fields.get("long_context")
    if long is None:
        return True
    return price.long_context is not None and all(
        abs(getattr(price.long_context, n) - long[n]) <= 1e-9 for n in RATE_FIELDS if n in long)


def plan_import(prices: Mapping[str, dict[str, Any]], base: Mapping[str, Any], current: Mapping[str, Any],
                effective: str) -> PriceImport:
    """The user's `pricing` overrides (`current`) with LiteLLM's `prices` added from `effective` on.

    A model whose price on `effective` already equals LiteLLM's is left alone, so importing the same file again
    changes nothing. Otherwise its entry gets a new period starting on `effective`, after the periods it had, and
    keeping the long-context and fast-mode rules LiteLLM does not give."""
    result = PriceImport(overrides={k: dict(v) for k, v in current.items()})
    table = parse_table(merge_overrides(base, current))
    for model, fields in sorted(prices.items()):
        price, status, key = table.lookup(model, effective)
        if status == "priced" and _same(fields, price):
            result.unchanged += 1
            continue
        kept = _period_fields("", price) if status == "priced" and price is not None else {}
        period = {"effective": effective, "long_context": kept.get("long_context"),
                  "fast_multiplier": kept.get("fast_multiplier", 1.0), **fields}
        if status == "priced" and key is not None:
            history = [_period_fields(day, p) for day, p in table.periods(key) if day < effective]
            result.overrides[model] = {"prices": [*history, period], "source": "litellm"}
            result.changed.append(model)
        else:
            result.overrides[model] = {"prices": [period], "source": "litellm"}
            result.added.append(model)
    return result


def _period_fields(day: str, price: Any) -> dict[str, Any]:
    out: dict[str, Any] = {name: getattr(price, name) for name in RATE_FIELDS}
    if day:
        out["effective"] = day
    if price.fast_multiplier != 1.0:
        out["fast_multiplier"] = price.fast_multiplier
    if price.long_context is not None:
        out["long_context"] = {**{n: getattr(price.long_context, n) for n in RATE_FIELDS},
                               "threshold": price.long_context_threshold}
    return out
