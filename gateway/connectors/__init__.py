"""Registry connectors: one interface, a SQL implementation and an in-memory fake."""

from gateway.connectors.base import Connector, RowBatches
from gateway.connectors.memory import MemoryConnector
from gateway.connectors.sql import SqlConnector

__all__ = ["Connector", "MemoryConnector", "RowBatches", "SqlConnector"]
