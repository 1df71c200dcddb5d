"""Locked-down managed servers: the ACL users an add-on's servers carry, what the app's user may not do,
authenticated replication, the agent's credentials for adopted servers. Real redis-server processes."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import redis.exceptions

from agent.builds import probe_all
from agent.config import parse_config
from agent.inventory import Inventory
from agent.redisnode import RedisNode
from agent.redisnode.acl import APP_DENIED, Credentials, ServerAuth, conf_lines
from kvmaint.clock import SystemClock
from tests.support.eventually import eventually
from tests.support.redisproc import REDIS_SERVER, RedisFactory, kill_pidfiles

AUTH = ServerAuth(Credentials("redis-brightly-1", "app-secret-123"), Credentials("kvmaint-agent", "agent-456"))


def raw(port: int, command: bytes) -> bytes:
    """One plain RESP command and its first reply line, as any client without a password sees it."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(command)
        return sock.recv(256)


def test_conf_lines_turn_default_off_and_hash_the_apps_password() -> None:
    text = "\n".join(conf_lines(AUTH, 7001, None))
    assert "port 7001" in text and "user default off" in text
    assert "app-secret-123" not in text  # written as #sha256, never in the clear
    assert "user redis-brightly-1 on ~* &* +@all -config" in text
    assert all(f"-{c}" in text for c in APP_DENIED)
    assert "masteruser kvmaint-agent" in text and "masterauth agent-456" in text
    assert "app-secret-123" not in repr(AUTH) and "agent-456" not in repr(AUTH)


async def test_a_managed_server_refuses_strangers_and_confines_the_app(tmp_path: Path) -> None:
    inventory = Inventory(tmp_path / "agent", probe_all((), REDIS_SERVER, "db-1"), SystemClock())
    try:
        primary, _ = await inventory.create(0, None, auth=AUTH)
        assert (await primary.start()).ok
        standby, _ = await inventory.create(0, ("127.0.0.1", primary.port), auth=AUTH)
        assert (await standby.start()).ok
        assert (primary.layout.auth_file.stat().st_mode & 0o077) == 0  # type: ignore[union-attr]
        assert (primary.layout.conf.stat().st_mode & 0o077) == 0  # type: ignore[union-attr]

        # Replication authenticates as the agent's user (masteruser / masterauth): the link comes up.
        async def linked() -> bool:
            return (await standby.status()).link_up

        await eventually(linked, timeout=15, message="standby linked with masterauth")

        for port in (primary.port, standby.port):
            assert raw(port, b"PING\r\n").startswith(b"-NOAUTH Authentication required")
            assert raw(port, b"GET k\r\n").startswith(b"-NOAUTH")
            with pytest.raises(redis.exceptions.AuthenticationError):
                await aioredis.Redis(port=port, username="default", password="").ping()
            wrong = aioredis.Redis(port=port, username=AUTH.app.user, password="guess")
            with pytest.raises(redis.exceptions.AuthenticationError):
                await wrong.ping()
            await wrong.aclose()

        app = aioredis.Redis(
            port=primary.port, username=AUTH.app.user, password=AUTH.app.password, decode_responses=True
        )
        try:
            assert await app.set("k", "v") and await app.get("k") == "v"
            assert (await app.info("replication"))["role"] == "master"
            pubsub = app.pubsub()
            await pubsub.subscribe("__kvmaint__:maintenance")
            assert await app.publish("__kvmaint__:maintenance", "hello") == 1
            await pubsub.aclose()
            for command in (
                ("REPLICAOF", "127.0.0.1", str(standby.port)),
                ("CONFIG", "SET", "maxmemory", "1"),
                ("CLIENT", "KILL", "TYPE", "normal"),
                ("SHUTDOWN",),
                ("ACL", "LIST"),
                ("FAILOVER",),
                ("MODULE", "LIST"),
            ):  # (DEBUG is denied too; Redis 7 refuses it to everyone without enable-debug-command)
                with pytest.raises(redis.exceptions.NoPermissionError):
                    await app.execute_command(*command)
            assert (await primary.status()).is_primary  # nothing the app tried took effect
        finally:
            await app.aclose()

        # The agent's own user may: it runs the failovers.
        assert (await standby.replicate_from("", 0)).ok
        assert (await standby.status()).is_primary
    finally:
        await inventory.close()
        kill_pidfiles(tmp_path / "agent")


async def test_adopted_servers_are_reached_with_the_operators_credentials(tmp_path: Path) -> None:
    factory = RedisFactory(tmp_path / "redis")
    try:
        server = await factory.astart()
        setup = aioredis.Redis(port=server.port)
        await setup.execute_command("ACL", "SETUSER", "ops", "on", ">ops-pass", "~*", "&*", "+@all")
        await setup.execute_command("ACL", "SETUSER", "default", "off")
        await setup.aclose()
        secret = tmp_path / "adopt.pass"
        secret.write_text("ops-pass\n")

        bare = parse_config(["--host-id", "db-1", "--adopt", str(server.port)])
        node = RedisNode(server.port, SystemClock(), access=bare.adopted_access())
        status = await node.status()
        assert not status.reachable and "authenticated" in status.error, status
        await node.close()

        config = parse_config(
            ["--host-id", "db-1", "--adopt", str(server.port), "--adopt-user", "ops",
             "--adopt-password-file", str(secret), "--data-dir", str(tmp_path / "agent")]
        )  # fmt: skip
        inventory = Inventory(
            config.data_dir, probe_all((), REDIS_SERVER, "db-1"), SystemClock(),
            adopted_access=config.adopted_access(),
        )  # fmt: skip
        adopted = inventory.adopt(server.port)
        try:
            status = await adopted.status()
            assert status.reachable and status.is_primary, status
        finally:
            await inventory.close()
    finally:
        await factory.aclose()


def test_adopt_user_needs_a_password_file() -> None:
    from kvmaint.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="--adopt-password-file"):
        parse_config(["--host-id", "db-1", "--adopt", "7001", "--adopt-user", "ops"])


def test_the_agent_toml_takes_the_adopted_credentials_and_the_tls_files(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret\n")
    toml = tmp_path / "agent.toml"
    toml.write_text(
        f'host_id = "db-1"\nadopt = [7001]\nadopt_user = "ops"\nadopt_password_file = "{tmp_path / "pw"}"\n'
        f'redis_tls_ca = "ca.pem"\nredis_tls_cert = "db-1-redis.pem"\nredis_tls_key = "db-1-redis-key.pem"\n'
    )
    config = parse_config(["--config", str(toml)])
    access = config.adopted_access()
    assert access.credentials == Credentials("ops", "s3cret") and access.tls is not None
    assert config.redis_tls is not None and config.redis_tls.cert.name == "db-1-redis.pem"
    assert access.client_kwargs()["ssl"] is True and access.client_kwargs()["password"] == "s3cret"
