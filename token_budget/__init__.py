"""token_budget: an exact per-request ledger of Claude Code token usage, with budgets, alerts and reports.

Names are imported on first use, so `import token_budget` stays cheap for the hook.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["Config", "Ledger", "TokenBudgetError", "UsageEvent", "load_config"]

_LAZY = {
    "Config": ("config", "Config"),
    "load_config": ("config", "load"),
    "Ledger": ("ledger", "Ledger"),
    "TokenBudgetError": ("errors", "TokenBudgetError"),
    "UsageEvent": ("models", "UsageEvent"),
}


def __getattr__(name: str) -> object:  # no `typing` import: it costs the status line milliseconds
    if name not in _LAZY:
        raise AttributeError(f"module 'token_budget' has no attribute {name!r}")
    from importlib import import_module

    module, attr = _LAZY[name]
    return getattr(import_module(f".{module}", __name__), attr)
