"""Command answers, byte for byte where a real redis-sentinel 7.0.15 was recorded giving them (RESP2 and
RESP3), and the auth and visibility rules of the endpoint. Pure: no sockets."""

from __future__ import annotations

import pytest

from server.auth import Principal, TokenTable
from server.sentinel.commands import Env, Session, execute, messages_for, new_session
from server.sentinel.resp import encode
from tests.sentinel.support import fleet, master

VIEW = fleet(master("redis-brightly-79693", "example-app", 47001, 47002), master("redis-other-1", "other-app", 47003))
TOKENS = TokenTable(
    {"op-secret-token": Principal("operator"), "app-token-example": Principal("app", "example-app")}
)


def env(tokens: TokenTable | None = None) -> Env:
    return Env(VIEW, tokens or TokenTable({}), "74f81292a797d21bb6836d78073131ed594ca349")


def run(session: Session, *args: str, e: Env | None = None) -> bytes:
    replies = execute(session, [a.encode() for a in args], e or env())
    return b"".join(encode(r, session.proto) for r in replies)


def anon() -> Session:
    return new_session(9, "127.0.0.1:1", TokenTable({}))


# Recorded from redis-sentinel 7.0.15 (Debian bookworm), RESP2 unless marked.
RECORDED = [
    (("PING",), b"+PONG\r\n"),
    (("PING", "hi"), b"$2\r\nhi\r\n"),
    (
        ("SENTINEL", "get-master-addr-by-name", "redis-brightly-79693"),
        b"*2\r\n$9\r\n127.0.0.1\r\n$5\r\n47001\r\n",
    ),
    (("SENTINEL", "get-master-addr-by-name", "nope"), b"*-1\r\n"),
    (("SENTINEL", "master", "nope"), b"-ERR No such master with that name\r\n"),
    (("SENTINEL", "replicas", "nope"), b"-ERR No such master with that name\r\n"),
    (("SENTINEL", "sentinels", "redis-brightly-79693"), b"*0\r\n"),
    (("CLIENT", "SETNAME", "x"), b"+OK\r\n"),
    (("CLIENT", "BOGUS"), b"-ERR unknown subcommand 'BOGUS'. Try CLIENT HELP.\r\n"),
    (("FOO", "bar"), b"-ERR unknown command 'FOO', with args beginning with: 'bar' \r\n"),
    (("SENTINEL", "bogus"), b"-ERR unknown subcommand 'bogus'. Try SENTINEL HELP.\r\n"),
    (("SENTINEL",), b"-ERR wrong number of arguments for 'sentinel' command\r\n"),
    (("GET", "x"), b"-ERR unknown command 'GET', with args beginning with: 'x' \r\n"),
    (
        ("AUTH", "x"),
        b"-ERR AUTH <password> called without any password configured for the default user. "
        b"Are you sure your configuration is correct?\r\n",
    ),
    (("AUTH", "a", "b"), b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"),
    (
        ("SENTINEL", "ckquorum", "redis-brightly-79693"),
        b"+OK 1 usable Sentinels. Quorum and failover authorization can be reached\r\n",
    ),
    (("HELLO", "4"), b"-NOPROTO unsupported protocol version\r\n"),
    (("HELLO", "x"), b"-ERR Protocol version is not an integer or out of range\r\n"),
    (("SUBSCRIBE", "+switch-master"), b"*3\r\n$9\r\nsubscribe\r\n$14\r\n+switch-master\r\n:1\r\n"),
]


@pytest.mark.parametrize(("args", "expected"), RECORDED, ids=[" ".join(a) for a, _ in RECORDED])
def test_answers_as_redis_sentinel_does(args, expected) -> None:
    assert run(anon(), *args) == expected


def test_role_lists_every_visible_master_as_a_sentinel() -> None:
    assert run(anon(), "ROLE") == (
        b"*2\r\n$8\r\nsentinel\r\n*2\r\n$20\r\nredis-brightly-79693\r\n$13\r\nredis-other-1\r\n"
    )


def test_hello_3_switches_to_resp3() -> None:
    s = anon()
    assert run(s, "HELLO", "3") == (
        b"%6\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n"
        b"$2\r\nid\r\n:9\r\n$4\r\nmode\r\n$8\r\nsentinel\r\n$7\r\nmodules\r\n*0\r\n"
    )
    assert s.proto == 3
    assert run(s, "SENTINEL", "get-master-addr-by-name", "nope") == b"_\r\n"
    # Recorded: in RESP3 a subscription is a push, and PING keeps its normal reply.
    assert run(s, "SUBSCRIBE", "+switch-master", "x") == (
        b">3\r\n$9\r\nsubscribe\r\n$14\r\n+switch-master\r\n:1\r\n>3\r\n$9\r\nsubscribe\r\n$1\r\nx\r\n:2\r\n"
    )
    assert run(s, "PING") == b"+PONG\r\n"
    assert run(s, "UNSUBSCRIBE", "x") == b">3\r\n$11\r\nunsubscribe\r\n$1\r\nx\r\n:1\r\n"
    assert run(s, "HELLO", "2").startswith(b"*12\r\n$6\r\nserver\r\n")


def test_master_fields_are_redis_sentinels_in_its_order() -> None:
    s = anon()
    s.proto = 3
    out = run(s, "SENTINEL", "master", "redis-brightly-79693")
    names = out.split(b"\r\n")[2::4]  # "%20", then per field "$len", key, "$len", value
    assert out.startswith(b"%20\r\n")
    assert [n.decode() for n in names] == [
        "name", "ip", "port", "runid", "flags", "link-pending-commands", "link-refcount", "last-ping-sent",
        "last-ok-ping-reply", "last-ping-reply", "down-after-milliseconds", "info-refresh", "role-reported",
        "role-reported-time", "config-epoch", "num-slaves", "num-other-sentinels", "quorum",
        "failover-timeout", "parallel-syncs",
    ]  # fmt: skip
    assert b"$5\r\nflags\r\n$6\r\nmaster\r\n" in out and b"$19\r\nnum-other-sentinels\r\n$1\r\n0\r\n" in out


def test_subscribed_resp2_connection_takes_only_pubsub_commands() -> None:
    s = anon()
    run(s, "SUBSCRIBE", "+switch-master")
    assert run(s, "PING") == b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"
    assert run(s, "SENTINEL", "masters") == (
        b"-ERR Can't execute 'sentinel|masters': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT "
        b"/ RESET are allowed in this context\r\n"
    )
    assert run(s, "PSUBSCRIBE", "*") == b"*3\r\n$10\r\npsubscribe\r\n$1\r\n*\r\n:2\r\n"
    assert run(s, "UNSUBSCRIBE") == b"*3\r\n$11\r\nunsubscribe\r\n$14\r\n+switch-master\r\n:1\r\n"
    assert run(s, "PUNSUBSCRIBE") == b"*3\r\n$12\r\npunsubscribe\r\n$1\r\n*\r\n:0\r\n"
    assert run(s, "PING") == b"+PONG\r\n"


def test_quit_answers_ok_and_closes() -> None:
    s = anon()
    assert run(s, "QUIT") == b"+OK\r\n" and s.closing


def test_failover_and_monitor_are_refused_with_a_sentence() -> None:
    out = run(anon(), "SENTINEL", "failover", "redis-brightly-79693")
    assert out.startswith(b"-ERR SENTINEL FAILOVER is not available: kvmaint decides")


def test_with_tokens_nothing_but_auth_before_authenticating() -> None:
    e = env(TOKENS)
    s = new_session(1, "", TOKENS)
    assert run(s, "PING", e=e) == b"-NOAUTH Authentication required.\r\n"
    assert run(s, "SENTINEL", "masters", e=e) == b"-NOAUTH Authentication required.\r\n"
    assert run(s, "HELLO", "3", e=e).startswith(b"-NOAUTH HELLO must be called")
    assert run(s, "AUTH", "wrong-token", e=e).startswith(b"-WRONGPASS")
    assert run(s, "AUTH", "default", "op-secret-token", e=e) == b"+OK\r\n"
    assert b"redis-other-1" in run(s, "SENTINEL", "masters", e=e)


def test_hello_auth_authenticates_and_switches_at_once() -> None:
    e = env(TOKENS)
    s = new_session(1, "", TOKENS)
    assert run(s, "HELLO", "3", "AUTH", "default", "app-token-example", "SETNAME", "web", e=e).startswith(b"%6")
    assert (s.proto, s.name, s.principal) == (3, "web", Principal("app", "example-app"))


def test_an_app_token_sees_only_its_own_apps_masters() -> None:
    e = env(TOKENS)
    s = new_session(1, "", TOKENS)
    run(s, "AUTH", "app-token-example", e=e)
    assert run(s, "SENTINEL", "get-master-addr-by-name", "redis-other-1", e=e) == b"*-1\r\n"
    assert run(s, "SENTINEL", "master", "redis-other-1", e=e) == b"-ERR No such master with that name\r\n"
    assert b"redis-other-1" not in run(s, "SENTINEL", "masters", e=e)
    assert b"redis-other-1" not in run(s, "ROLE", e=e) + run(s, "INFO", e=e)
    assert run(s, "SENTINEL", "get-master-addr-by-name", "redis-brightly-79693", e=e).startswith(b"*2")
    run(s, "PSUBSCRIBE", "*", e=e)
    assert messages_for(s, "+switch-master", "redis-other-1 a 1 b 2", "other-app") == []
    assert len(messages_for(s, "+switch-master", "redis-brightly-79693 a 1 b 2", "example-app")) == 1


def test_a_switch_reaches_channel_and_pattern_subscribers() -> None:
    s = anon()
    run(s, "SUBSCRIBE", "+switch-master")
    run(s, "PSUBSCRIBE", "+switch*", "nomatch*")
    msgs = messages_for(s, "+switch-master", "n 1.1.1.1 1 2.2.2.2 2", "example-app")
    assert [encode(m, 2) for m in msgs] == [
        b"*3\r\n$7\r\nmessage\r\n$14\r\n+switch-master\r\n$21\r\nn 1.1.1.1 1 2.2.2.2 2\r\n",
        b"*4\r\n$8\r\npmessage\r\n$8\r\n+switch*\r\n$14\r\n+switch-master\r\n$21\r\nn 1.1.1.1 1 2.2.2.2 2\r\n",
    ]


def test_client_setinfo_and_names() -> None:
    s = anon()
    assert run(s, "CLIENT", "SETINFO", "LIB-NAME", "redis-py") == b"+OK\r\n"
    assert run(s, "CLIENT", "SETINFO", "lib-ver", "8.1.0") == b"+OK\r\n"
    assert run(s, "CLIENT", "SETINFO", "colour", "x") == b"-ERR Unrecognized option 'colour'\r\n"
    assert run(s, "CLIENT", "SETNAME", "a b").startswith(b"-ERR Client names cannot contain spaces")
    assert run(s, "CLIENT", "GETNAME") == b"$-1\r\n"
    assert (s.lib_name, s.lib_ver) == ("redis-py", "8.1.0")


def test_info_has_a_sentinel_section_like_redis_sentinels() -> None:
    out = run(anon(), "INFO", "sentinel").decode()
    assert out.split("\r\n", 1)[1].startswith("# Sentinel\r\nsentinel_masters:2\r\n")
    assert "master0:name=redis-brightly-79693,status=ok,address=127.0.0.1:47001,slaves=1,sentinels=1" in out
