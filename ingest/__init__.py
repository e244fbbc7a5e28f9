"""Market and on-chain data: venue connectors, the demo simulator, and the shared snapshot model."""

from ingest.errors import IngestError

__all__ = ["IngestError"]
