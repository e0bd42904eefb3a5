"""User surfaces end to end: the /tokens slash command's `!` line and the skill, in the real CLI."""

from __future__ import annotations

import sys

import pytest

from .harness import REPO_ROOT, ClaudeEnv, request_text
from .mock_api import text_turn

pytestmark = pytest.mark.e2e

FAST_PYTHON = {"TOKEN_BUDGET_PYTHON": sys.executable}


def test_slash_tokens_status_prints_the_dashboard_through_its_bang_line(claude_env: ClaudeEnv) -> None:
    res = claude_env.run(
        "/token-budget:tokens status", script=[text_turn("Shown.")], plugin_dir=REPO_ROOT, env=FAST_PYTHON
    )
    sent = request_text(res.requests[-1])
    assert "TOKEN USAGE DASHBOARD" in sent, res.describe()
    assert "Daily Budget" in sent and "/ 1,000,000" in sent


def test_unknown_slash_subcommand_prints_help_instead_of_aborting(claude_env: ClaudeEnv) -> None:
    res = claude_env.run(
        "/token-budget:tokens frobnicate", script=[text_turn("Shown.")], plugin_dir=REPO_ROOT, env=FAST_PYTHON
    )
    sent = request_text(res.requests[-1])
    assert "Unknown /tokens subcommand 'frobnicate'" in sent, res.describe()


def test_the_skill_is_listed_to_the_model_and_the_command_is_not(claude_env: ClaudeEnv) -> None:
    res = claude_env.run(
        "How are my budgets?", script=[text_turn("Fine.")], plugin_dir=REPO_ROOT, env=FAST_PYTHON
    )
    sent = request_text(res.requests[0])
    assert "token-budget:token-budget" in sent and "check tokens" in sent, res.describe()
    assert "token-budget:tokens:" not in sent  # disable-model-invocation keeps it out of the listing
