"""Fixtures for the end-to-end tests (the real Claude Code CLI against tests/e2e/mock_api.py, offline).

Prerequisites: root (for `unshare -n`), util-linux, iproute2, strace, and `bash tests/e2e/install.sh`.
Without them the e2e tests are skipped, except under CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from .harness import Binaries, ClaudeEnv, Result, build_wheelhouse, default_binaries, requirements_problem

_E2E_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _E2E_DIR in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


def skip_or_fail(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"e2e prerequisites missing under CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def e2e_binaries() -> Binaries:
    binaries = default_binaries()
    problem = requirements_problem(binaries)
    if problem:
        skip_or_fail(problem)
    return binaries


@pytest.fixture
def make_claude_env(e2e_binaries: Binaries, tmp_path: Path) -> Callable[..., ClaudeEnv]:
    """Factory for extra isolated users: ``make_claude_env("alice")``."""

    def make(name: str = "claude") -> ClaudeEnv:
        return ClaudeEnv(tmp_path / name, e2e_binaries)

    return make


@pytest.fixture
def claude_env(make_claude_env: Callable[..., ClaudeEnv]) -> ClaudeEnv:
    """One isolated HOME/CLAUDE_CONFIG_DIR/TMPDIR/project for this test; runs in it share them."""
    return make_claude_env("claude")


@pytest.fixture
def run_claude(claude_env: ClaudeEnv) -> Callable[..., Result]:
    """``run_claude(prompt, *, script, plugin_dir=None, marketplace=None, extra_args=(), env=None,
    resume=None,
    fork=False, output_format="json", ...) -> Result`` (see ClaudeEnv.run)."""
    return claude_env.run


@pytest.fixture(scope="session")
def wheelhouse(e2e_binaries: Binaries) -> Path:
    """Wheels of the plugin's dependencies for TOKEN_BUDGET_WHEELHOUSE (the bootstrap's offline path).

    Built once, outside the namespace, with ``pip wheel`` (needs the package index the first time), and cached
    under ``${TOKEN_BUDGET_E2E_CACHE:-~/.cache/token-budget-e2e}/wheelhouse/``.
    """
    try:
        return build_wheelhouse()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        skip_or_fail(f"cannot build the wheelhouse for the plugin's bootstrap: {exc}")
        raise
