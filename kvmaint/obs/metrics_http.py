"""Serves one process's Prometheus registry at /metrics (text format) on its own aiohttp listener;
`Listener` is the HOST:PORT plumbing the status page shares."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from kvmaint.errors import InvalidArgument

log = logging.getLogger(__name__)

Refresh = Callable[[], Awaitable[None]]


def split_listen(listen: str) -> tuple[str, int]:
    """HOST:PORT (IPv6 in brackets) to (host, port); a clear ValueError names the bad value."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"{listen!r} is not HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


class Listener:
    """One aiohttp application on its own HOST:PORT (port 0 picks one, logged with `what`)."""

    what = "http"
    path = "/"

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self.port = 0

    def app(self) -> web.Application:
        raise NotImplementedError

    async def start(self, listen: str) -> int:
        host, port = split_listen(listen)
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        try:
            await site.start()
        except OSError as err:
            await self._runner.cleanup()
            raise InvalidArgument(f"cannot serve {self.what} on {listen}: {err.strerror or err}") from err
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        log.info("%s on http://%s:%d%s", self.what, host, self.port, self.path)
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class MetricsServer(Listener):
    """`refresh` runs before each scrape, for figures read on demand (a database count, an INFO)."""

    what = "metrics"
    path = "/metrics"

    def __init__(self, registry: CollectorRegistry, refresh: Refresh | None = None) -> None:
        super().__init__()
        self.registry = registry
        self.refresh = refresh

    async def _metrics(self, request: web.Request) -> web.Response:
        if self.refresh is not None:
            try:
                await self.refresh()
            except Exception:  # a failed refresh still serves the counters and histograms
                log.exception("could not refresh metrics before a scrape")
        return web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        return app
