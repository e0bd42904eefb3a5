"""Pricing: the shipped table, id matching, and per-request costs in integer micro-USD.

1 USD per million tokens is exactly 1 micro-USD per token, so each expected cost below is tokens x rate.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from token_budget.errors import ConfigError
from token_budget.models import Cost, UsageEvent
from token_budget.price_parse import merge_overrides, parse_table
from token_budget.pricing import PriceTable, family_of

PRICING_YAML = Path(__file__).resolve().parents[1] / "config" / "pricing.yaml"


@pytest.fixture(scope="module")
def data() -> dict:
    return yaml.safe_load(PRICING_YAML.read_text())


@pytest.fixture(scope="module")
def table(data: dict) -> PriceTable:
    return parse_table(data)


def make_event(model: str, timestamp: str = "2026-07-01T12:00:00.000Z", **overrides: object) -> UsageEvent:
    return UsageEvent(message_id="msg_1", timestamp=timestamp, model=model, **overrides)


# --- The shipped table: anchors-usage.md §4 -------------------------------------------------------

# model id, input, 5m cache write, 1h cache write, cache read, output
SECTION_4_TABLE = [
    ("claude-opus-4-8", 5.00, 6.25, 10.00, 0.50, 25.00),
    ("claude-opus-4-7", 5.00, 6.25, 10.00, 0.50, 25.00),
    ("claude-opus-4-6", 5.00, 6.25, 10.00, 0.50, 25.00),
    ("claude-opus-4-5-20251101", 5.00, 6.25, 10.00, 0.50, 25.00),
    ("claude-opus-4-1-20250805", 15.00, 18.75, 30.00, 1.50, 75.00),
    ("claude-opus-4-20250514", 15.00, 18.75, 30.00, 1.50, 75.00),
    ("claude-sonnet-4-6", 3.00, 3.75, 6.00, 0.30, 15.00),
    ("claude-sonnet-4-5-20250929", 3.00, 3.75, 6.00, 0.30, 15.00),
    ("claude-sonnet-4-20250514", 3.00, 3.75, 6.00, 0.30, 15.00),
    ("claude-haiku-4-5-20251001", 1.00, 1.25, 2.00, 0.10, 5.00),
    ("claude-3-5-haiku-20241022", 0.80, 1.00, 1.60, 0.08, 4.00),
    # newer families
    ("claude-opus-5", 5.00, 6.25, 10.00, 0.50, 25.00),
    ("claude-sonnet-5", 2.00, 2.50, 4.00, 0.20, 10.00),
    ("claude-fable-5", 10.00, 12.50, 20.00, 1.00, 50.00),
    ("claude-mythos-5", 10.00, 12.50, 20.00, 1.00, 50.00),
    # Claude 3 (the 1h rate is 2x input, not LiteLLM's mistaken $6)
    ("claude-3-opus-20240229", 15.00, 18.75, 30.00, 1.50, 75.00),
    ("claude-3-7-sonnet-20250219", 3.00, 3.75, 6.00, 0.30, 15.00),
    ("claude-3-5-sonnet-20241022", 3.00, 3.75, 6.00, 0.30, 15.00),
    ("claude-3-haiku-20240307", 0.25, 0.30, 0.50, 0.03, 1.25),
]


@pytest.mark.parametrize(("model", "input", "write_5m", "write_1h", "read", "output"), SECTION_4_TABLE)
def test_shipped_table_matches_published_prices(table, model, input, write_5m, write_1h, read, output):
    price, status, _ = table.lookup(model)
    assert status == "priced"
    assert (price.input, price.cache_write_5m, price.cache_write_1h, price.cache_read, price.output) == (
        input, write_5m, write_1h, read, output,
    )


def test_opus_4_6_is_not_the_stale_15_75_price(table):
    price, _, _ = table.lookup("claude-opus-4-6")
    assert (price.input, price.output) == (5.00, 25.00)


def test_haiku_4_5_is_not_the_stale_haiku_3_5_price(table):
    price, _, _ = table.lookup("claude-haiku-4-5-20251001")
    assert (price.input, price.output) == (1.00, 5.00)


def test_haiku_5_5_is_priced_like_haiku_4_5_and_flagged_as_an_estimate(table):
    price, status, key = table.lookup("claude-haiku-5-5")
    assert (price.input, price.output, status, key) == (1.00, 5.00, "estimated", "claude-haiku-5-5")


def test_every_shipped_match_pattern_resolves_to_its_own_entry(table, data):
    for key, entry in data["models"].items():
        for alias in entry["match"]:
            assert table.lookup(alias)[2] == key, alias


def test_only_sonnet_4_and_4_5_have_a_long_context_premium(table, data):
    with_premium = {key for key in data["models"] if table.lookup(key)[0].long_context is not None}
    assert with_premium == {"claude-sonnet-4", "claude-sonnet-4-5"}


def test_only_opus_4_6_has_a_fast_multiplier(table, data):
    multipliers = {key: table.lookup(key)[0].fast_multiplier for key in data["models"]}
    assert {key for key, m in multipliers.items() if m != 1.0} == {"claude-opus-4-6"}
    assert multipliers["claude-opus-4-6"] == 6.0


# --- Matching model ids ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "key"),
    [
        ("claude-opus-4-5-20251101", "claude-opus-4-5"),
        ("claude-opus-4-5", "claude-opus-4-5"),
        ("claude-opus-4-5-20991231", "claude-opus-4-5"),  # any 8-digit date suffix
        ("claude-4-opus-20250514", "claude-opus-4"),
        ("claude-opus-4-0", "claude-opus-4"),
        ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
        ("claude-haiku-3-5", "claude-3-5-haiku"),
        ("claude-3.5-sonnet", "claude-3-5-sonnet"),
        ("claude-sonnet-4-5-20250929[1m]", "claude-sonnet-4-5"),
        ("CLAUDE-SONNET-4-6", "claude-sonnet-4-6"),
    ],
)
def test_both_naming_styles_and_date_suffixes_match(table, model, key):
    assert table.lookup(model)[1:] == ("priced", key)


@pytest.mark.parametrize(
    ("model", "key"),
    [
        ("anthropic.claude-opus-4-1-20250805-v1:0", "claude-opus-4-1"),
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"),
        ("global.anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5"),
        ("anthropic.claude-3-5-haiku-20241022-v1:0", "claude-3-5-haiku"),
        ("bedrock/us.anthropic.claude-opus-4-20250514-v1:0", "claude-opus-4"),
        ("claude-sonnet-4-5@20250929", "claude-sonnet-4-5"),
        ("claude-3-5-sonnet-v2@20241022", "claude-3-5-sonnet"),
        ("vertex_ai/claude-opus-4-1@20250805", "claude-opus-4-1"),
        ("anthropic/claude-opus-4.5", "claude-opus-4-5"),
    ],
)
def test_bedrock_and_vertex_ids_match(table, model, key):
    assert table.lookup(model)[1:] == ("priced", key)


def test_a_known_version_matches_itself_not_an_older_one(table):
    assert table.lookup("claude-opus-4-8")[1:] == ("priced", "claude-opus-4-8")


def test_an_unknown_version_never_falls_back_to_a_known_one(table):
    # claude-opus-4-9 starts with claude-opus-4 but is another version: the family's newest entry prices it.
    assert table.lookup("claude-opus-4-9")[1:] == ("estimated", "claude-opus-5")
    assert table.lookup("claude-sonnet-4-7")[1:] == ("estimated", "claude-sonnet-5")


def test_a_non_numeric_suffix_keeps_the_known_version(table):
    assert table.lookup("claude-opus-4-5-thinking")[1:] == ("priced", "claude-opus-4-5")


def test_unknown_version_of_a_known_family_is_estimated_by_its_newest_entry(table):
    price, status, key = table.lookup("claude-opus-9-1")
    assert (status, key, price.input, price.output) == ("estimated", "claude-opus-5", 5.00, 25.00)


def test_unknown_family_is_unpriced(table):
    assert table.lookup("gpt-4o") == (None, "unpriced", None)


def test_synthetic_placeholder_is_unpriced(table):
    assert table.lookup("<synthetic>") == (None, "unpriced", None)


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("claude-3-5-haiku-20241022", "haiku"),
        ("claude-haiku-4-5", "haiku"),
        ("anthropic.claude-opus-4-1-20250805-v1:0", "opus"),
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "sonnet"),
        ("claude-sonnet-4-5@20250929", "sonnet"),
        ("claude-fable-5", "fable"),
        ("claude-mythos-5", "mythos"),
        ("claude-3-opus", "opus"),
        ("gpt-4o", None),
        ("<synthetic>", None),
        ("", None),
    ],
)
def test_family_of_reads_every_naming_style(model, family):
    assert family_of(model) == family


# --- Effective dates ------------------------------------------------------------------------------


def test_haiku_3_5_costs_1_5_before_2024_12_03(table):
    price, _, _ = table.lookup("claude-3-5-haiku-20241022", on="2024-12-02")
    assert (price.input, price.output, price.cache_read) == (1.00, 5.00, 0.10)


def test_haiku_3_5_costs_0_80_4_from_2024_12_03(table):
    price, _, _ = table.lookup("claude-3-5-haiku-20241022", on="2024-12-03T00:00:00.000Z")
    assert (price.input, price.output, price.cache_read) == (0.80, 4.00, 0.08)


def test_lookup_without_a_date_uses_the_latest_prices(table):
    price, _, _ = table.lookup("claude-3-5-haiku")
    assert (price.input, price.output) == (0.80, 4.00)


def test_a_date_before_the_first_period_uses_the_first_period(table):
    price, _, _ = table.lookup("claude-3-5-haiku", on="2024-01-01")
    assert (price.input, price.output) == (1.00, 5.00)


def test_lookup_rejects_a_date_that_is_not_iso(table):
    with pytest.raises(ValueError, match="ISO date"):
        table.lookup("claude-3-5-haiku", on="12/03/2024")


def test_haiku_3_5_request_is_costed_at_the_price_of_its_day(table):
    tokens = {"input_tokens": 1_000_000, "output_tokens": 1_000_000}
    before = table.cost(make_event("claude-3-5-haiku-20241022", "2024-12-02T23:59:59.999Z", **tokens))
    after = table.cost(make_event("claude-3-5-haiku-20241022", "2024-12-03T00:00:00.000Z", **tokens))
    assert before.micros == 1_000_000 * 1 + 1_000_000 * 5  # $6.00
    assert after.micros == 800_000 + 4_000_000  # $4.80


def test_a_malformed_timestamp_is_costed_at_the_latest_prices(table):
    cost = table.cost(make_event("claude-3-5-haiku", "yesterday", input_tokens=1_000_000))
    assert cost.micros == 800_000


# --- Costs ----------------------------------------------------------------------------------------


def test_plain_sonnet_4_5_request(table):
    event = make_event(
        "claude-sonnet-4-5-20250929",
        input_tokens=1_000, output_tokens=500, cache_creation_5m_tokens=2_000, cache_read_tokens=10_000,
    )
    # 1,000 x 3 + 500 x 15 + 2,000 x 3.75 + 10,000 x 0.30
    assert table.cost(event) == Cost(3_000 + 7_500 + 7_500 + 3_000, "priced", "claude-sonnet-4-5")


def test_5m_cache_writes_cost_1_25x_input(table):
    event = make_event("claude-sonnet-4-5", cache_creation_5m_tokens=10_000)
    assert table.cost(event).micros == 37_500  # 10,000 x 3.75


def test_1h_cache_writes_cost_2x_input(table):
    event = make_event("claude-sonnet-4-5", cache_creation_1h_tokens=10_000)
    assert table.cost(event).micros == 60_000  # 10,000 x 6.00


def test_sonnet_4_5_over_200k_bills_every_token_at_the_premium(table):
    # input + cache reads + cache writes = 1,000 + 199,000 + 1 = 200,001 > 200,000
    event = make_event(
        "claude-sonnet-4-5-20250929",
        input_tokens=1_000, cache_read_tokens=199_000, cache_creation_5m_tokens=1, output_tokens=1_000,
    )
    # 1,000 x 6 + 199,000 x 0.60 + 1 x 7.50 + 1,000 x 22.50 = 147,907.5, rounded half up once
    assert table.cost(event).micros == 147_908


def test_sonnet_4_5_at_exactly_200k_is_not_premium(table):
    event = make_event(
        "claude-sonnet-4-5-20250929", input_tokens=1_000, cache_read_tokens=199_000, output_tokens=1_000,
    )
    assert table.cost(event).micros == 1_000 * 3 + 59_700 + 15_000  # 199,000 x 0.30 = 59,700


def test_1h_cache_writes_count_toward_the_200k_threshold(table):
    event = make_event("claude-sonnet-4", input_tokens=100_000, cache_creation_1h_tokens=100_001)
    assert table.cost(event).micros == 100_000 * 6 + 100_001 * 12


def test_sonnet_4_6_bills_its_1m_context_at_standard_prices(table):
    event = make_event("claude-sonnet-4-6", input_tokens=500_000)
    assert table.cost(event).micros == 1_500_000


def test_opus_4_6_fast_mode_costs_6x(table):
    tokens = {"input_tokens": 1_000, "output_tokens": 1_000}
    standard = table.cost(make_event("claude-opus-4-6", **tokens))
    fast = table.cost(make_event("claude-opus-4-6", speed="fast", **tokens))
    assert standard.micros == 5_000 + 25_000
    assert fast.micros == 6 * 30_000


def test_fast_mode_on_a_model_without_a_multiplier_costs_the_same(table):
    event = make_event("claude-opus-4-5", input_tokens=1_000, speed="fast")
    assert table.cost(event).micros == 5_000


def test_cost_rounds_half_up(table):
    event = make_event("claude-3-haiku", input_tokens=2)  # 2 x 0.25 = 0.5
    assert table.cost(event).micros == 1


def test_cost_rounds_once_per_request_not_per_token_class(table):
    # 10 reads x 0.03 = 0.3 and 1 write x 0.30 = 0.3: each rounds to 0, their sum 0.6 rounds to 1
    event = make_event("claude-3-haiku", cache_read_tokens=10, cache_creation_5m_tokens=1)
    assert table.cost(event).micros == 1


def test_cost_is_exact_for_large_token_counts(table):
    event = make_event("claude-3-5-haiku", cache_read_tokens=123_456_789_012)  # x 0.08
    assert table.cost(event).micros == 9_876_543_121  # 9,876,543,120.96


def test_unknown_claude_model_is_estimated_at_its_family_newest_price(table):
    event = make_event("claude-opus-9-1", input_tokens=1_000, output_tokens=1_000)
    assert table.cost(event) == Cost(30_000, "estimated", "claude-opus-5")


def test_unknown_model_costs_nothing_and_says_unpriced(table):
    event = make_event("gpt-4o", input_tokens=1_000_000, output_tokens=1_000_000)
    assert table.cost(event) == Cost(0, "unpriced", None)


# --- Data defaults and overrides ------------------------------------------------------------------


def test_missing_cache_rates_are_derived_from_input():
    table = parse_table({"models": {"m": {"match": ["my-model"], "input": 2, "output": 8}}})
    price, status, key = table.lookup("my-model")
    assert (price.cache_write_5m, price.cache_write_1h, price.cache_read) == (2.50, 4.00, 0.20)
    assert (status, key) == ("priced", "m")


def test_an_entry_without_input_or_output_is_a_config_error():
    with pytest.raises(ConfigError, match="missing the 'output' rate"):
        parse_table({"models": {"m": {"input": 2}}})


def test_an_unknown_rate_field_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown field"):
        parse_table({"models": {"m": {"input": 2, "output": 8, "cache_write": 3}}})


def test_override_by_entry_key_replaces_its_rates(data):
    table = parse_table(merge_overrides(data, {"claude-opus-4-6": {"input": 4, "output": 20}}))
    price, status, key = table.lookup("claude-opus-4-6")
    assert (price.input, price.output, status, key) == (4.0, 20.0, "priced", "claude-opus-4-6")


def test_overriding_input_rederives_the_cache_rates_not_given(data):
    table = parse_table(merge_overrides(data, {"claude-opus-4-6": {"input": 4, "output": 20}}))
    price, _, _ = table.lookup("claude-opus-4-6")
    assert (price.cache_write_5m, price.cache_write_1h, price.cache_read) == (5.0, 8.0, 0.4)
    assert price.fast_multiplier == 6.0  # fields not overridden are kept


def test_override_by_model_id_applies_to_that_model_only(data):
    overrides = {"claude-sonnet-4-5-20250929": {"output": 16}}
    table = parse_table(merge_overrides(data, overrides))
    price, status, key = table.lookup("claude-sonnet-4-5-20250929")
    assert (price.input, price.output, price.long_context is not None) == (3.0, 16.0, True)
    assert (status, key) == ("priced", "claude-sonnet-4-5-20250929")
    assert table.lookup("claude-sonnet-4")[0].output == 15.0


def test_override_can_price_a_model_the_table_does_not_know(data):
    table = parse_table(merge_overrides(data, {"gpt-4o": {"input": 2.5, "output": 10}}))
    event = make_event("gpt-4o", input_tokens=1_000, output_tokens=1_000)
    assert table.cost(event) == Cost(12_500, "priced", "gpt-4o")


def test_override_of_an_estimated_price_is_no_longer_an_estimate(data):
    table = parse_table(merge_overrides(data, {"claude-haiku-5-5": {"input": 1.5, "output": 7.5}}))
    assert table.lookup("claude-haiku-5-5")[1] == "priced"


def test_override_can_remove_the_long_context_premium(data):
    table = parse_table(merge_overrides(data, {"claude-sonnet-4-5": {"long_context": None}}))
    assert table.lookup("claude-sonnet-4-5")[0].long_context is None


def test_merge_overrides_leaves_its_arguments_unchanged(data):
    overrides = {"claude-opus-4-6": {"input": 4, "output": 20}, "gpt-4o": {"input": 2.5, "output": 10}}
    data_before, overrides_before = copy.deepcopy(data), copy.deepcopy(overrides)
    merge_overrides(data, overrides)
    assert (data, overrides) == (data_before, overrides_before)


def test_an_override_that_is_not_a_mapping_is_a_config_error(data):
    with pytest.raises(ConfigError, match="expected a mapping"):
        merge_overrides(data, {"claude-opus-4-6": 4})


# --- Hot path -------------------------------------------------------------------------------------


def test_importing_pricing_does_not_import_yaml():
    code = "import sys, token_budget.pricing; assert 'yaml' not in sys.modules, 'yaml imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])



# -- the compiled table (kept in the config cache, so a hook never parses a rate or loads decimal) ---------------


def test_a_compiled_table_prices_every_request_as_the_parsed_one(data: dict) -> None:
    import json

    overrides = {"claude-sonnet-4-5": {"prices": [{"effective": "2026-01-01", "input": 2.5, "output": 12}]},
                 "house-model": {"match": ["house"], "input": 1.1, "output": 2.2, "fast_multiplier": 3,
                                 "long_context": {"input": 2, "output": 4, "threshold": 1000}}}
    for source in (data, merge_overrides(data, overrides)):
        parsed = parse_table(source)
        compiled = PriceTable.from_compiled(json.loads(json.dumps(parsed.compiled())))  # as the cache stores it
        models = [*source["models"], "claude-opus-4-9", "claude-sonnet-4-5-20250929-thinking", "house", "gpt-5",
                  "anthropic.claude-3-5-haiku-20241022-v1:0", "<synthetic>"]
        assert (compiled._aliases, compiled._families, compiled._newest) == \
            (parsed._aliases, parsed._families, parsed._newest)  # the index came along, not rebuilt
        for key in source["models"]:
            assert compiled.periods(key) == parsed.periods(key)
        for model in models:
            for day in ("2024-01-01", "2024-12-03", "2025-06-01", "2026-02-01", None):
                assert compiled.lookup(model, day) == parsed.lookup(model, day), (model, day)
                for tokens, speed in ((1000, None), (300_000, "fast")):
                    event = UsageEvent("m", f"{day or '2026-11-28'}T10:00:00.000Z", model, tokens, 500, 2000, 100,
                                       9000, speed=speed)
                    assert compiled.cost(event) == parsed.cost(event), (model, day, tokens)
                    assert compiled.cost(event, per_request=False) == parsed.cost(event, per_request=False)


def test_a_compiled_table_rebuilds_only_the_entries_it_prices(data: dict) -> None:
    """A hook records one or two models: the cache's other entries stay rows until something asks for them."""
    import json

    stored = json.loads(json.dumps(parse_table(data).compiled()))
    table = PriceTable.from_compiled(stored)
    event = UsageEvent("m", "2026-11-28T10:00:00.000Z", "claude-opus-4-6", 1000, 500, 0, 0, 0)
    assert table.cost(event) == parse_table(data).cost(event)
    assert list(table._entries._built) == ["claude-opus-4-6"]
    assert json.loads(json.dumps(table.compiled())) == stored  # every entry is still there


def test_the_config_cache_holds_the_compiled_table(tmp_path: Path) -> None:
    from token_budget.config import load_cached

    fresh = load_cached(tmp_path)  # parses the files and writes the cache
    cached = load_cached(tmp_path)
    assert cached.compiled_prices is not None and cached.compiled_prices == fresh.compiled_prices
    event = UsageEvent("m", "2026-11-28T10:00:00.000Z", "claude-opus-4-6", 1000, 500, 0, 0, 0)
    assert cached.prices.cost(event) == fresh.price_table().cost(event)


def test_a_config_from_the_cache_prices_without_parsing_a_rate(tmp_path: Path) -> None:
    """The day's report (written by the first hook of a day) asks config.price_table(): from the cache it is the
    compiled table, so the hook loads neither the price parser nor decimal, and prices exactly as the parsed one."""
    import subprocess
    import sys

    from token_budget.config import load_cached

    parsed = load_cached(tmp_path).price_table()  # writes the cache
    code = ("import sys; from token_budget.config import load_cached; from token_budget.models import UsageEvent\n"
            "table = load_cached(sys.argv[1]).price_table()\n"
            "event = UsageEvent('m', '2026-11-28T10:00:00.000Z', 'claude-opus-4-6', 1000, 500, 0, 0, 0)\n"
            "print(table.cost(event).micros, 'token_budget.price_parse' in sys.modules, 'decimal' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    event = UsageEvent("m", "2026-11-28T10:00:00.000Z", "claude-opus-4-6", 1000, 500, 0, 0, 0)
    assert out.stdout.split() == [str(parsed.cost(event).micros), "False", "False"]

