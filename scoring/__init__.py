"""The scoring model: snapshots -> features -> sub-scores -> gated 0-10 score; runs and history."""

from scoring.errors import ScoringError

__all__ = ["ScoringError"]
