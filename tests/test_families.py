"""Model identity is defined once (token_budget.families): pricing, budgets, the policy and the dashboard agree."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from token_budget import budgets, dashboard, families, policy, pricing
from token_budget.claude import economy
from token_budget.families import family, label, model_matches

ROOT = Path(__file__).resolve().parents[1]
ENTRIES = yaml.safe_load((ROOT / "config" / "pricing.yaml").read_text())["models"]


@pytest.mark.parametrize("key", sorted(ENTRIES))
def test_family_agrees_with_pricing_for_every_priced_model(key: str) -> None:
    entry = ENTRIES[key]
    for name in [key, *(entry.get("match") or [])]:
        assert family(name) == entry["family"], name
        assert pricing.family_of(name) == entry["family"], name


def test_every_family_pricing_knows_is_a_family() -> None:
    assert {entry["family"] for entry in ENTRIES.values()} == set(families.FAMILIES)


@pytest.mark.parametrize(("model", "expected"), [
    ("claude-fable-5", "fable"),
    ("claude-mythos-5", "mythos"),
    ("opus", "opus"),
    ("claude-3-5-haiku-20241022", "haiku"),
    ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "sonnet"),
    ("claude-opus-4-6[1m]", "opus"),
    ("gpt-4o", None),
    ("", None),
    (None, None),
])
def test_one_family_for_aliases_and_every_naming_style(model: str | None, expected: str | None) -> None:
    assert family(model) == expected


def test_the_policy_the_hook_and_the_dashboard_use_the_one_definition() -> None:
    assert not hasattr(policy, "family") or policy.family is families.family
    assert economy.family is families.family
    assert budgets.model_matches is families.model_matches
    assert dashboard.model_label is families.label
    assert not hasattr(pricing, "FAMILIES") or pricing.FAMILIES is families.FAMILIES


def test_a_fable_budget_key_covers_fable_models_only() -> None:
    assert model_matches("claude-fable", "claude-fable-5")
    assert model_matches("fable", "claude-fable-5-20260101")
    assert not model_matches("claude-fable", "claude-opus-5")


@pytest.mark.parametrize(("key", "expected"), [
    ("claude-sonnet", "Sonnet"),
    ("claude-opus-4", "Opus 4"),
    ("claude-haiku-4-5", "Haiku 4.5"),
    ("claude-fable-5", "Fable 5"),
    ("claude-3-5-haiku", "Haiku 3.5"),
    ("gpt-4o", "gpt-4o"),
])
def test_labels_name_the_family_and_version(key: str, expected: str) -> None:
    assert label(key) == expected
