"""Field by field against a real redis-sentinel: the same questions to a real Sentinel monitoring a
primary and its replica, and to kvmaint's endpoint describing the same two servers. Replies must have the
same types, the same field names in the same order, the same flags and addresses, and the same errors;
only values that are the instance's own (run ids, timers, epochs) may differ."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from server.sentinel.view import Master, Node
from tests.sentinel.support import Raw, endpoint, fleet
from tests.support.eventually import eventually
from tests.support.redisproc import RedisFactory, free_port

NAME = "redis-brightly-79693"
OWN_VALUES = {
    "runid", "last-ping-sent", "last-ok-ping-reply", "last-ping-reply", "down-after-milliseconds",
    "info-refresh", "role-reported-time", "config-epoch", "failover-timeout", "slave-repl-offset",
    "master-link-down-time",
}  # fmt: skip

pytestmark = pytest.mark.skipif(shutil.which("redis-sentinel") is None, reason="needs redis-sentinel")


@pytest.fixture
async def real_sentinel(tmp_path: Path):
    with RedisFactory(tmp_path / "redis") as servers:
        primary = await servers.astart()
        replica = await servers.astart(replicaof=primary)
        port = free_port()
        conf = tmp_path / "sentinel.conf"
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\nsentinel monitor {NAME} 127.0.0.1 {primary.port} 1\n"
            f"sentinel down-after-milliseconds {NAME} 30000\n"
        )
        proc = await asyncio.create_subprocess_exec(
            "redis-sentinel", str(conf), stdout=asyncio.subprocess.DEVNULL, cwd=tmp_path
        )
        try:
            raw = await eventually(lambda: Raw.open(port), timeout=10, message="redis-sentinel up")

            async def sees_replica_linked() -> bool:
                (replicas,) = await raw.call("SENTINEL", "replicas", NAME)
                return bool(replicas) and dict(pairs(replicas[0])).get(b"master-link-status") == b"ok"

            await eventually(sees_replica_linked, timeout=20, interval=0.2, message="sentinel sees the replica")
            await raw.close()
            yield port, primary.port, replica.port
        finally:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 10)


def pairs(flat: list) -> list[tuple[bytes, bytes]]:
    return list(zip(flat[::2], flat[1::2], strict=True))


def comparable(reply: object) -> object:
    """A reply with the instance's own values blanked."""
    if isinstance(reply, list) and reply and all(isinstance(x, bytes) for x in reply) and len(reply) % 2 == 0:
        if reply[0] == b"name":
            return [(k, b"*" if k.decode() in OWN_VALUES else v) for k, v in pairs(reply)]
    if isinstance(reply, list):
        return [comparable(x) for x in reply]
    return reply


QUESTIONS = [
    ("SENTINEL", "get-master-addr-by-name", NAME),
    ("SENTINEL", "get-master-addr-by-name", "nope"),
    ("SENTINEL", "masters"),
    ("SENTINEL", "master", NAME),
    ("SENTINEL", "master", "nope"),
    ("SENTINEL", "replicas", NAME),
    ("SENTINEL", "slaves", NAME),
    ("SENTINEL", "sentinels", NAME),
    ("SENTINEL", "replicas"),
    ("ROLE",),
    ("PING",),
    ("CLIENT", "SETNAME", "app"),
    ("CLIENT", "GETNAME"),
    ("NOSUCH", "x"),
]


async def test_answers_match_a_real_sentinel_field_by_field(real_sentinel) -> None:
    sentinel_port, primary, replica = real_sentinel
    view = fleet(Master(NAME, "example-app", Node("127.0.0.1", primary), (Node("127.0.0.1", replica),)))
    async with endpoint(view) as (server, _):
        real, ours = await Raw.open(sentinel_port), await Raw.open(server.port)
        for question in QUESTIONS:
            (want,), (got,) = await real.call(*question), await ours.call(*question)
            assert type(got) is type(want), (question, want, got)
            if isinstance(want, Exception):
                assert str(got) == str(want), question
            else:
                assert comparable(got) == comparable(want), question
        await real.close()
        await ours.close()
