"""Registry connectors: one interface, a SQL implementation and an in-memory fake."""

from .base import Connector, RowBatches
from .memory import MemoryConnector
from .sql import SqlConnector

__all__ = ["Connector", "MemoryConnector", "RowBatches", "SqlConnector"]
