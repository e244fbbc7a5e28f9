"""The scoring package's exceptions."""

from __future__ import annotations


class ScoringError(Exception):
    """Base of every error raised by ``scoring``."""


class ModelConfigError(ScoringError):
    """Raised when the model configuration file is missing a value or is inconsistent."""


class RunFailed(ScoringError):
    """Raised when a scoring run cannot complete; the previous leaderboard stays in place."""


class NoData(RunFailed):
    """Raised when a run finds no market snapshots to score."""


class StaleRun(RunFailed):
    """Raised when a run's fencing token is older than one that already committed: a worker that
    lost its lock cannot commit over the newer holder's runs."""
