"""The research package's errors: one base, subclasses of the model's own (a command that catches
:class:`scoring.errors.ScoringError` catches these too)."""

from __future__ import annotations

from scoring.errors import ScoringError

__all__ = ["BacktestError", "ResearchError"]


class ResearchError(ScoringError):
    """Raised when research input (a replay, a dataset folder, stored runs) cannot be used."""


class BacktestError(ResearchError):
    """Raised when a replay directory or a backtest window cannot be used."""
