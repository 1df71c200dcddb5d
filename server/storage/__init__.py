"""Durable state behind a small interface, so a PostgreSQL backend can follow SQLite."""

from server.storage.base import Store, Tx

__all__ = ["Store", "Tx"]
