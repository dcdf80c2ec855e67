"""The local history for people: closed OEE windows, stops and alarm transitions (see store.py)."""

from __future__ import annotations

__all__ = ["HistoryStore", "file_bytes", "queries"]

from edge_agent.history import queries
from edge_agent.history.store import HistoryStore, file_bytes
