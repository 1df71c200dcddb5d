"""Locked-down Redis end to end: the scheduler and agents as OS processes, real redis-servers.

Every managed server requires authentication; REDIS_URL carries the add-on's user and password, the
same after a maintenance (HA standby or hidden standby); no password reaches the scheduler's or agents'
logs or the events. With a TLS fleet (the dev CA) the servers listen with TLS only, REDIS_URL is
rediss://, and kvmaint.client, a stock Sentinel client and `kvmaint apps:exec` work with it.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis

from bench.writer import Writer
from kvmaint.client import attach
from kvmaint.devcerts import write_dev_pki
from kvmaint.v1 import resources_pb2 as rpb
from tests.integration.conftest import FAST
from tests.integration.test_failover import APP, Api, connect
from tests.support.eventually import eventually
from tests.support.scheduler import ROOT
from tests.support.stock import redis_py_writer


def first_reply(endpoint: str, command: bytes = b"PING\r\n") -> bytes:
    """What a plain-text client without a password gets back (b"" when the server hangs up on it)."""
    host, port = endpoint.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(command)
        try:
            return sock.recv(256)
        except ConnectionResetError:
            return b""


async def lost(url: str, count: int, **options: object) -> list[int]:
    r = aioredis.Redis.from_url(url, decode_responses=True, socket_timeout=30, **options)  # type: ignore[arg-type]
    try:
        values = await r.mget([f"k:{i}" for i in range(count)]) if count else []
    finally:
        await r.aclose()
    return [i for i, v in enumerate(values) if v != str(i)]


async def maintain_under_writes(api: Api, scheduler: str, addon: rpb.Addon, **options: object) -> list[int]:
    """A maintenance under a kvmaint.client writer; the acknowledged writes missing on the new primary."""
    client = await attach(scheduler, APP, "REDIS_URL", decode_responses=True, **options)
    writer = Writer(client.set)
    writer.start()
    await eventually(lambda: len(writer.log) > 200, timeout=20, message="writing")
    await api.require_and_run(addon.name)
    await api.wait_status("completed")
    mark = len(writer.log)
    await eventually(lambda: len(writer.log) > mark + 100, timeout=20, message="writing on the new primary")
    log = await writer.stop()
    await client.aclose()
    assert not log.failure, log.failure
    return await lost((await api.config())["REDIS_URL"], len(log), **options)


def secrets_of(url: str, agents_dirs: list[Path]) -> list[str]:
    """The app's password, and the agent's password of every managed server."""
    found = [urlsplit(url).password or ""]
    for data_dir in agents_dirs:
        for auth in data_dir.glob("servers/*/agent-auth.json"):
            found.append(json.loads(auth.read_text())["password"])
    assert len(found) >= 3 and all(len(s) >= 40 for s in found), "secrets.token_urlsafe(32) passwords"
    return found


async def test_auth_is_required_kept_across_maintenances_and_never_logged(fleet) -> None:
    scheduler, hosts = fleet
    async with connect(scheduler.address) as api:
        await api.wait_agents("db-1", "db-2")
        addon = await api.create("premium-0")
        url = (await api.config())["REDIS_URL"]
        parts = urlsplit(url)
        assert (parts.scheme, parts.username, f"{parts.hostname}:{parts.port}") == (
            "redis", addon.name, next(s.endpoint for s in addon.servers if s.role == rpb.SERVER_ROLE_PRIMARY)
        )  # fmt: skip
        for s in addon.servers:  # both servers: no password, no entry
            assert first_reply(s.endpoint).startswith(b"-NOAUTH Authentication required")

        assert await maintain_under_writes(api, scheduler.address, addon) == []
        after = (await api.config())["REDIS_URL"]
        moved = urlsplit(after)
        assert (moved.username, moved.password) == (parts.username, parts.password)  # the app needs no new ones
        assert moved.port != parts.port

        # A mini is maintained through a hidden standby: a new server, the same users.
        mini = await api.create("mini", "CACHE_URL")
        cache = (await api.config())["CACHE_URL"]
        seed = aioredis.Redis.from_url(cache)
        await seed.set("precious", "data")
        await seed.aclose()
        await api.require(mini.name)  # minis have no window: the scheduler starts it by itself
        await api.wait_status("completed", "CACHE_URL")
        cache_after = (await api.config())["CACHE_URL"]
        assert urlsplit(cache_after).password == urlsplit(cache).password and cache_after != cache
        new_endpoint = cache_after.rsplit("@", 1)[1]
        assert first_reply(new_endpoint).startswith(b"-NOAUTH")
        r = aioredis.Redis.from_url(cache_after, decode_responses=True)
        assert await r.get("precious") == "data"
        await r.aclose()

        events = await api.all_events()
        assert any("***@" in e.message for e in events)  # the repoint step names the URL, redacted
        texts = [scheduler.log_text(), *(a.log_text() for a in hosts.values())]
        texts += [f"{e.message} {dict(e.attributes)}" for e in events]
        secrets = secrets_of(url, [a.data_dir for a in hosts.values()])
        for secret in [*secrets, urlsplit(cache).password or ""]:
            assert not any(secret in text for text in texts), "a password in a log or an event"


@pytest.fixture
def tls_fleet(tmp_path, scheduler_factory, agents):
    certs = tmp_path / "certs"
    write_dev_pki(certs, ["db-1", "db-2"])
    s = scheduler_factory(extra_args=[*FAST, "--sentinel-listen", "127.0.0.1:0"])
    for host in ("db-1", "db-2"):
        agents(host, s.address, [
            "--redis-tls-ca", str(certs / "ca.pem"),
            "--redis-tls-cert", str(certs / f"{host}-redis.pem"),
            "--redis-tls-key", str(certs / f"{host}-redis-key.pem"),
        ])  # fmt: skip
    return s, certs / "ca.pem"


async def test_a_tls_fleet_serves_rediss_only(tls_fleet) -> None:
    scheduler, ca = tls_fleet
    tls = {"ssl_ca_certs": str(ca), "ssl_check_hostname": False}
    async with connect(scheduler.address) as api:
        await api.wait_agents("db-1", "db-2")
        addon = await api.create("premium-0")
        url = (await api.config())["REDIS_URL"]
        assert url.startswith(f"rediss://{addon.name}:")
        for s in addon.servers:  # plain text is refused: the port speaks TLS only
            assert first_reply(s.endpoint) == b""

        # A stock redis-py Sentinel client (TLS and the app's user from REDIS_URL) writes through the
        # maintenance too; the Sentinel endpoint answers the TLS port.
        stock = redis_py_writer(
            sys.executable, f"127.0.0.1:{scheduler.sentinel_port}", addon.name, retry=True, url=url, ca=str(ca)
        )
        await stock.start()
        try:
            await eventually(lambda: stock.acked > 100, timeout=20, message="stock client writing over TLS")
            assert await maintain_under_writes(api, scheduler.address, addon, **tls) == []
            mark = stock.acked
            await eventually(lambda: stock.acked > mark + 100, timeout=30, message="stock client on")
            result = await stock.stop()
        finally:
            stock.kill()
        after = (await api.config())["REDIS_URL"]
        assert after.startswith("rediss://") and after != url
        assert await lost(after, result["acked"], **tls) == []

        # apps:exec hands the rediss:// URL to a plain program, and prints it redacted.
        program = (
            "import os, redis; r = redis.Redis.from_url(os.environ['REDIS_URL'], "
            f"ssl_ca_certs={str(ca)!r}, ssl_check_hostname=False); print('ping', r.ping())"
        )
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "kvmaint.cli", "--scheduler", scheduler.address, "apps:exec", "-a", APP,
             "--", sys.executable, "-c", program],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert (done.returncode, done.stdout.strip()) == (0, "ping True"), done.stderr
        assert f"REDIS_URL=rediss://{addon.name}:***@" in done.stderr
        assert (urlsplit(after).password or "?") not in done.stderr
