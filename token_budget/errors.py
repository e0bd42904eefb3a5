"""The one error type of token_budget. Imports nothing, so every module (the hook included) can use it."""

from __future__ import annotations


class TokenBudgetError(Exception):
    """An error the user can act on: `message` says what is wrong, `hint` what to do about it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n{self.hint}" if self.hint else self.message


class ConfigError(TokenBudgetError):
    """The configuration (budgets, pricing) cannot be read or is invalid."""


class LedgerError(TokenBudgetError):
    """The ledger database cannot be opened or written."""
