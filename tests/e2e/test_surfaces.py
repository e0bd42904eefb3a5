"""User surfaces end to end: the /tokens slash command (answered by the hook) and the skill, in the real CLI."""

from __future__ import annotations

import sys

import pytest

from .harness import REPO_ROOT, ClaudeEnv, request_text
from .mock_api import text_turn

pytestmark = pytest.mark.e2e

FAST_PYTHON = {"TOKEN_BUDGET_PYTHON": sys.executable}


def test_slash_tokens_status_is_answered_by_the_hook_with_no_request(claude_env: ClaudeEnv) -> None:
    res = claude_env.run(
        "/token-budget:tokens status", script=[text_turn("never sent")], plugin_dir=REPO_ROOT, env=FAST_PYTHON
    )
    assert res.message_requests == [], res.describe()
    shown = res.output["result"]
    assert "TOKEN USAGE DASHBOARD" in shown and "Daily Budget" in shown and "/ 1,000,000" in shown


def test_unknown_slash_subcommand_prints_help_instead_of_aborting(claude_env: ClaudeEnv) -> None:
    res = claude_env.run(
        "/token-budget:tokens frobnicate", script=[text_turn("never sent")], plugin_dir=REPO_ROOT, env=FAST_PYTHON
    )
    assert res.message_requests == []
    assert "Unknown /token-budget:tokens subcommand 'frobnicate'" in res.output["result"], res.describe()


def test_the_skill_is_listed_to_the_model_and_the_command_is_not(claude_env: ClaudeEnv) -> None:
    res = claude_env.run(
        "How are my budgets?", script=[text_turn("Fine.")], plugin_dir=REPO_ROOT, env=FAST_PYTHON
    )
    sent = request_text(res.requests[0])
    assert "token-budget:token-budget" in sent and "check tokens" in sent, res.describe()
    assert "token-budget:tokens:" not in sent  # disable-model-invocation keeps it out of the listing
