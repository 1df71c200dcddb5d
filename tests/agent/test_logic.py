"""Pure decision logic of the agent, as tables: no server, no network."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.backoff import full_jitter
from agent.config import parse_config
from agent.redisnode.catchup import judge
from agent.redisnode.failover import PlanKind, plan_failover
from agent.redisnode.process import ServerLayout, render_conf
from agent.redisnode.status import RedisServerStatus, parse_status, unreachable
from agent.results import ResultStore
from agent.tls import is_loopback, plaintext_warning, scheduler_host
from kvmaint.errors import InvalidArgument

PRIMARY_INFO = {
    "role": "master",
    "connected_slaves": 1,
    "slave0": {"ip": "127.0.0.1", "port": 7001, "state": "online", "offset": 900, "lag": 0},
    "master_replid": "abc",
    "master_repl_offset": 1000,
}
REPLICA_INFO = {
    "role": "slave",
    "master_host": "127.0.0.1",
    "master_port": 7000,
    "master_link_status": "up",
    "master_last_io_seconds_ago": 1,
    "slave_repl_offset": 900,
    "master_replid": "abc",
    "master_repl_offset": 900,
}


def primary(**kw) -> RedisServerStatus:
    return parse_status(7000, {**PRIMARY_INFO, **kw}, {"run_id": "p", "redis_version": "7.0.15"})


def replica(**kw) -> RedisServerStatus:
    return parse_status(7001, {**REPLICA_INFO, **kw}, {"run_id": "r"})


def test_parse_status():
    p, r = primary(), replica()
    assert p.is_primary and p.repl_offset == 1000 and p.replicas[0].port == 7001 and p.run_id == "p"
    assert r.is_replica and r.link_up and r.processed_offset == 900 and r.follows("127.0.0.1", 7000)
    down = replica(
        master_link_status="down", master_last_io_seconds_ago=-1, master_link_down_since_seconds=42
    )
    assert not down.link_up and down.last_io_seconds_ago == 42


@pytest.mark.parametrize(
    ("standby", "prim", "max_lag", "max_io", "ok", "lag", "why"),
    [
        (replica(), primary(), 100, 5, True, 100, "caught up"),
        (replica(), primary(), 99, 5, False, 100, "100 bytes behind"),
        (replica(master_last_io_seconds_ago=9), primary(), 1000, 5, False, 100, "9s ago"),
        (replica(master_link_status="down"), primary(), 1000, 5, False, 100, "link is down"),
        (replica(master_replid="zzz"), primary(), 1000, 5, False, 100, "different replication history"),
        (primary(), primary(), 1000, 5, False, 0, "not a standby"),
        (replica(), replica(), 1000, 5, False, 0, "not a primary"),
        (replica(), unreachable(7000, "refused"), 1000, 5, False, -1, "primary is unreachable"),
        (unreachable(7001, "refused"), primary(), 1000, 5, False, -1, "standby on port 7001 is unreachable"),
        (replica(slave_repl_offset=1200), primary(), 0, 5, True, 0, "caught up"),
    ],
)
def test_catch_up_verdicts(standby, prim, max_lag, max_io, ok, lag, why):
    verdict = judge(standby, prim, max_lag, max_io)
    assert (verdict.ok, verdict.lag_bytes) == (ok, lag)
    assert why in verdict.reason


DEMOTED = {"role": "slave", "master_host": "127.0.0.1", "master_port": 7001, "master_link_status": "up",
           "master_replid": "abc", "master_repl_offset": 1000}  # fmt: skip


@pytest.mark.parametrize(
    ("old", "target", "kind", "why"),
    [
        (primary(), replica(slave_repl_offset=1000), PlanKind.RUN, "Switching over"),
        (primary(), replica(master_link_status="down"), PlanKind.REFUSE, "link down"),
        (primary(), replica(master_replid="other"), PlanKind.REFUSE, "does not replicate"),
        (primary(), parse_status(7001, PRIMARY_INFO, {"run_id": "r"}), PlanKind.REFUSE, "Both"),
        (
            parse_status(7000, DEMOTED),
            parse_status(7001, PRIMARY_INFO),
            PlanKind.ALREADY_DONE,
            "Already done",
        ),
        (parse_status(7000, DEMOTED), replica(slave_repl_offset=1000), PlanKind.PROMOTE_ONLY, "promoting"),
        (parse_status(7000, DEMOTED), replica(slave_repl_offset=999), PlanKind.REFUSE, "may lack"),
        (parse_status(7000, {**DEMOTED, "master_port": 9999}), replica(), PlanKind.REFUSE, "not a primary"),
        (unreachable(7000, "down"), replica(), PlanKind.REFUSE, "unreachable"),
        (primary(), unreachable(7001, "down"), PlanKind.REFUSE, "unreachable"),
        (primary(), parse_status(7001, REPLICA_INFO, {"run_id": "p"}), PlanKind.REFUSE, "itself"),
    ],
)
def test_failover_plans(old, target, kind, why):
    plan = plan_failover(old, target, "127.0.0.1", 7001)
    assert plan.kind is kind
    assert why in plan.reason


def test_full_jitter_grows_and_caps():
    assert full_jitter(0, rand=lambda: 1.0) == pytest.approx(0.2)
    assert full_jitter(3, rand=lambda: 1.0) == pytest.approx(1.6)
    assert full_jitter(50, rand=lambda: 1.0) == 10.0
    assert full_jitter(50, rand=lambda: 0.0) == 0.0
    assert full_jitter(4, rand=lambda: 0.5) == pytest.approx(1.6)


@pytest.mark.parametrize(
    ("address", "host", "loopback"),
    [
        ("127.0.0.1:50051", "127.0.0.1", True),
        ("localhost:1", "localhost", True),
        ("[::1]:50051", "::1", True),
        ("dns:///sched.internal:443", "sched.internal", False),
        ("10.0.0.5:50051", "10.0.0.5", False),
    ],
)
def test_scheduler_host_and_loopback(address, host, loopback):
    assert scheduler_host(address) == host
    assert is_loopback(host) is loopback


def test_plaintext_policy(tmp_path):
    assert "plain text" in (plaintext_warning("127.0.0.1:1", None, False) or "")
    assert "PLAIN TEXT" in (plaintext_warning("10.0.0.5:1", None, True) or "")
    with pytest.raises(InvalidArgument, match="Refusing plain text"):
        plaintext_warning("10.0.0.5:1", None, False)


def test_config_from_toml_and_flags(tmp_path):
    toml = tmp_path / "agent.toml"
    toml.write_text(
        'host_id = "db-7"\nscheduler = "127.0.0.1:6000"\nadopt = [7000, 7001]\nheartbeat-seconds = 2\n'
        'tls_ca = "ca.pem"\ntls_cert = "c.pem"\ntls_key = "k.pem"\n'
    )
    config = parse_config(
        ["--config", str(toml), "--scheduler", "127.0.0.1:7777", "--data-dir", str(tmp_path)]
    )
    assert config.host_id == "db-7" and config.scheduler == "127.0.0.1:7777"
    assert config.adopt == (7000, 7001) and config.heartbeat_seconds == 2.0
    assert config.tls is not None and config.tls.cert == Path("c.pem")
    assert config.data_dir == tmp_path.resolve()
    default = parse_config(["--host-id", "h"])
    assert default.data_dir.name == "agent-h" and default.heartbeat_seconds == 5.0
    with pytest.raises(InvalidArgument, match="all of"):
        parse_config(["--host-id", "h", "--tls-ca", "x"])


def test_render_conf(tmp_path):
    text = render_conf(ServerLayout.under(tmp_path, 7100), ("10.0.0.1", 7000))
    for line in ("bind 127.0.0.1", "port 7100", "appendonly yes", "appendfsync everysec", "daemonize no",
                 "replicaof 10.0.0.1 7000", f'dir "{tmp_path / "7100"}"', "logfile"):  # fmt: skip
        assert line in text


async def test_result_store_survives_reopening(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite3")
    assert await store.put("a", b"first", "t1") == b"first"
    assert await store.put("a", b"second", "t2") == b"first"  # the first result is the one kept
    await store.put("b", b"bee", "t3")
    await store.set_delivered(["a"], True)
    assert await store.mark_started("c", "t4") and not await store.mark_started("c", "t5")
    store.close()
    again = ResultStore(tmp_path / "r.sqlite3")
    assert await again.get("a") == b"first"
    assert await again.undelivered() == [("b", b"bee")]
    assert not await again.mark_started("c", "t6")
    again.close()


async def test_result_store_prunes_only_old_delivered_results(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite3")
    await store.put("old-delivered", b"1", "2026-01-01T00:00:00.000+00:00")
    await store.put("old-undelivered", b"2", "2026-01-01T00:00:00.000+00:00")
    await store.put("new", b"3", "2026-03-01T00:00:00.000+00:00")
    await store.set_delivered(["old-delivered", "new"], True)
    assert await store.prune("2026-02-01T00:00:00.000+00:00") == 1
    assert await store.get("old-delivered") is None
    assert await store.get("old-undelivered") == b"2" and await store.get("new") == b"3"
    store.close()


def test_a_standby_rewriting_its_aof_after_a_full_sync_is_not_caught_up() -> None:
    from agent.redisnode.catchup import aof_settled

    assert aof_settled({"aof_enabled": 0, "aof_rewrite_in_progress": 1})
    assert aof_settled({"aof_enabled": 1, "aof_rewrite_in_progress": 0, "aof_rewrite_scheduled": 0})
    assert not aof_settled({"aof_enabled": 1, "aof_rewrite_in_progress": 1})
    assert not aof_settled({"aof_enabled": 1, "aof_rewrite_scheduled": 1})
    standby = RedisServerStatus(port=2, reachable=True, role="slave", link_up=True, last_io_seconds_ago=0)
    primary = RedisServerStatus(port=1, reachable=True, role="master")
    verdict = judge(standby, primary, 100, 10, aof_settled=False)
    assert not verdict.ok and "rewriting its AOF" in verdict.reason
