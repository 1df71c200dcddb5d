"""What every command handler gets: the connection (opened on first use) and the output."""

from __future__ import annotations

from dataclasses import dataclass, field

from kvmaint.channel import ChannelOptions, Connection
from kvmaint.cli.output import Output


@dataclass
class Context:
    options: ChannelOptions
    out: Output
    _conn: Connection | None = field(default=None, repr=False)

    @property
    def conn(self) -> Connection:
        """Opened lazily, so commands that fail validation never dial the scheduler."""
        if self._conn is None:
            self._conn = Connection(self.options)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
