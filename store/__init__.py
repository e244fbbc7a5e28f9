"""The document store: MongoDB through PyMongo's async API, or an in-memory stand-in.

Both expose the same collection API (``find``, ``find_one``, ``insert_many``, ``update_one``,
``create_index``...), so every repository is written once against PyMongo's async API.
"""

from store.bulk import Update, update_each
from store.connection import StoreHandle, open_store
from store.errors import StoreError, StoreUnavailable

__all__ = ["StoreError", "StoreHandle", "StoreUnavailable", "Update", "open_store", "update_each"]
