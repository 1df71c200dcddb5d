"""Answers one Sentinel command for one connection, the way redis-sentinel 7 does.

Pure: `execute(session, argv, env)` returns the replies and changes only `session` (protocol, name,
authentication, subscriptions). Replies, error texts and field layouts were compared with a real
`redis-sentinel` (7.0.15, Debian) in RESP2 and RESP3; anything kvmaint does not offer gets an `-ERR`
sentence saying so.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kvmaint.errors import Unauthenticated
from server.auth import ANONYMOUS_OPERATOR, Principal, TokenTable
from server.sentinel.resp import NULL_ARRAY, OK, Error, Push, Reply, Simple
from server.sentinel.view import FleetView, Master, can_see

SWITCH_CHANNEL = "+switch-master"
# Redis answers HELLO with its own version; clients compare it, so report a Sentinel version whose
# behaviour this endpoint follows.
REDIS_VERSION = "7.0.15"
SUBSCRIBED_ALLOWED = frozenset(
    {"subscribe", "psubscribe", "unsubscribe", "punsubscribe", "ping", "quit", "reset"}
)
BEFORE_AUTH_ALLOWED = frozenset({"auth", "hello", "quit"})
SENTINEL_HELP = [
    "SENTINEL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CKQUORUM <master-name>",
    "    Check if the current Sentinel configuration is able to reach the quorum needed to failover a",
    "    master and the majority needed to authorize the failover.",
    "GET-MASTER-ADDR-BY-NAME <master-name>",
    "    Return the ip and port number of the master with that name.",
    "MASTER <master-name>",
    "    Show the state and info of the specified master.",
    "MASTERS",
    "    Show a list of monitored masters and their state.",
    "MYID",
    "    Return the ID of the Sentinel instance.",
    "REPLICAS <master-name>",
    "    Show a list of replicas for this master and their state.",
    "SENTINELS <master-name>",
    "    Show a list of Sentinel instances for this master and their state.",
    "SLAVES <master-name>",
    "    Same as REPLICAS.",
    "HELP",
    "    Print this help.",
]
# Sentinel subcommands that change what is monitored or force a failover: kvmaint decides those.
MANAGED_SUBCOMMANDS = frozenset(
    {
        "monitor",
        "remove",
        "set",
        "reset",
        "failover",
        "flushconfig",
        "config",
        "simulate-failure",
        "is-master-down-by-addr",
        "debug",
        "info-cache",
        "pending-scripts",
    }
)


@dataclass
class Session:
    """One client connection's state."""

    id: int
    addr: str = ""
    proto: int = 2
    principal: Principal | None = None  # None until AUTH, when the scheduler has tokens
    name: str = ""
    lib_name: str = ""
    lib_ver: str = ""
    channels: set[str] = field(default_factory=set)
    patterns: set[str] = field(default_factory=set)
    closing: bool = False
    created: float = field(default_factory=time.monotonic)  # real time: CLIENT LIST's age, display only
    received_bytes: int = 0  # bytes received so far

    @property
    def subscriptions(self) -> int:
        return len(self.channels) + len(self.patterns)


@dataclass
class Env:
    """What answering needs besides the session: the fleet, the tokens, this endpoint's identity."""

    view: FleetView
    tokens: TokenTable
    myid: str
    info: Callable[[], dict[str, dict[str, str]]] = dict


def new_session(id: int, addr: str, tokens: TokenTable) -> Session:
    return Session(id=id, addr=addr, principal=None if tokens.enabled else ANONYMOUS_OPERATOR)


def _text(arg: bytes) -> str:
    return arg.decode("utf-8", "surrogateescape")


def _short(text: str, limit: int = 128) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def wrong_args(name: str) -> Error:
    return Error(f"ERR wrong number of arguments for '{_short(name)}' command")


def unknown_command(name: str, args: list[str]) -> Error:
    shown = "".join(f"'{_short(a)}' " for a in args[:4])
    return Error(f"ERR unknown command '{_short(name)}', with args beginning with: {shown}")


def execute(session: Session, argv: list[bytes], env: Env) -> list[Reply]:
    """The replies to one request (usually one; one per channel for (P)(UN)SUBSCRIBE)."""
    if not argv:
        return []
    args = [_text(a) for a in argv]
    name, rest = args[0].lower(), args[1:]
    if session.principal is None and name not in BEFORE_AUTH_ALLOWED:
        return [Error("NOAUTH Authentication required.")]
    if session.subscriptions and session.proto == 2 and name not in SUBSCRIBED_ALLOWED:
        what = name if name not in ("sentinel", "client") or not rest else f"{name}|{rest[0].lower()}"
        return [
            Error(
                f"ERR Can't execute '{_short(what)}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT "
                "/ RESET are allowed in this context"
            )
        ]
    handler = HANDLERS.get(name)
    if handler is None:
        return [unknown_command(args[0], rest)]
    return handler(session, rest, env)


# --- connection commands -------------------------------------------------------------------------
def _ping(session: Session, rest: list[str], env: Env) -> list[Reply]:
    if len(rest) > 1:
        return [wrong_args("ping")]
    if session.subscriptions and session.proto == 2:
        return [["pong", rest[0] if rest else ""]]
    return [rest[0] if rest else Simple("PONG")]


def _authenticate(session: Session, env: Env, user: str | None, token: str) -> Error | None:
    if not env.tokens.enabled:
        if user is None:
            return Error(
                "ERR AUTH <password> called without any password configured for the default user. "
                "Are you sure your configuration is correct?"
            )
        return Error("WRONGPASS invalid username-password pair or user is disabled.")
    try:
        principal = env.tokens.authenticate(f"Bearer {token}")
    except Unauthenticated:
        return Error("WRONGPASS invalid username-password pair or user is disabled.")
    session.principal = principal
    return None


def _auth(session: Session, rest: list[str], env: Env) -> list[Reply]:
    if len(rest) not in (1, 2):
        return [Error("ERR syntax error")] if len(rest) > 2 else [wrong_args("auth")]
    user, token = (None, rest[0]) if len(rest) == 1 else (rest[0], rest[1])
    err = _authenticate(session, env, user, token)
    return [err or OK]


def _hello(session: Session, rest: list[str], env: Env) -> list[Reply]:
    proto = session.proto
    if rest:
        try:
            proto = int(rest[0])
        except ValueError:
            return [Error("ERR Protocol version is not an integer or out of range")]
        if proto not in (2, 3):
            return [Error("NOPROTO unsupported protocol version")]
    i, name = 1, None
    while i < len(rest):
        opt = rest[i].lower()
        if opt == "auth" and len(rest) >= i + 3:
            err = _authenticate(session, env, rest[i + 1], rest[i + 2])
            if err is not None:
                return [err]
            i += 3
        elif opt == "setname" and len(rest) >= i + 2:
            name = rest[i + 1]
            if not _valid_name(name):
                return [Error("ERR Client names cannot contain spaces, newlines or special characters.")]
            i += 2
        else:
            return [Error(f"ERR Syntax error in HELLO option '{_short(rest[i])}'")]
    if session.principal is None:
        return [
            Error(
                "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO "
                "<proto> AUTH <user> <pass> option can be used to authenticate the client and select the "
                "RESP protocol version at the same time"
            )
        ]
    session.proto = proto
    if name is not None:
        session.name = name
    return [
        {
            "server": "redis",
            "version": REDIS_VERSION,
            "proto": proto,
            "id": session.id,
            "mode": "sentinel",
            "modules": [],
        }
    ]


def _valid_name(name: str) -> bool:
    return all("!" <= c <= "~" for c in name)


def _client(session: Session, rest: list[str], env: Env) -> list[Reply]:
    if not rest:
        return [wrong_args("client")]
    sub, args = rest[0].lower(), rest[1:]
    if sub == "setname" and len(args) == 1:
        if not _valid_name(args[0]):
            return [Error("ERR Client names cannot contain spaces, newlines or special characters.")]
        session.name = args[0]
        return [OK]
    if sub == "getname" and not args:
        return [session.name or None]
    if sub == "id" and not args:
        return [session.id]
    if sub == "setinfo" and len(args) == 2:
        attr, value = args[0].lower(), args[1]
        if not _valid_name(value) and value:
            return [Error(f"ERR {attr} cannot contain spaces, newlines or special characters.")]
        if attr == "lib-name":
            session.lib_name = value
        elif attr == "lib-ver":
            session.lib_ver = value
        else:
            return [Error(f"ERR Unrecognized option '{_short(args[0])}'")]
        return [OK]
    if sub in ("setname", "getname", "id", "setinfo"):
        return [wrong_args(f"client|{sub}")]
    return [Error(f"ERR unknown subcommand '{_short(rest[0])}'. Try CLIENT HELP.")]


def _quit(session: Session, rest: list[str], env: Env) -> list[Reply]:
    session.closing = True
    return [OK]


def _reset(session: Session, rest: list[str], env: Env) -> list[Reply]:
    session.channels.clear()
    session.patterns.clear()
    session.proto = 2
    session.name = ""
    session.principal = None if env.tokens.enabled else ANONYMOUS_OPERATOR
    return [Simple("RESET")]


# --- pub/sub -------------------------------------------------------------------------------------
def _subscribe(kind: str) -> Callable[[Session, list[str], Env], list[Reply]]:
    def handler(session: Session, rest: list[str], env: Env) -> list[Reply]:
        if not rest:
            return [wrong_args(kind)]
        target = session.channels if kind == "subscribe" else session.patterns
        replies: list[Reply] = []
        for name in rest:
            target.add(name)
            replies.append(Push([kind, name, session.subscriptions]))
        return replies

    return handler


def _unsubscribe(kind: str) -> Callable[[Session, list[str], Env], list[Reply]]:
    def handler(session: Session, rest: list[str], env: Env) -> list[Reply]:
        target = session.channels if kind == "unsubscribe" else session.patterns
        names = rest or sorted(target)
        if not names:
            return [Push([kind, None, session.subscriptions])]
        replies: list[Reply] = []
        for name in names:
            target.discard(name)
            replies.append(Push([kind, name, session.subscriptions]))
        return replies

    return handler


def messages_for(session: Session, channel: str, payload: str, app: str) -> list[Reply]:
    """What one published message delivers to this connection: a `message` if it subscribed to the
    channel, a `pmessage` per matching pattern, nothing if its token may not see the add-on's app."""
    if session.principal is None or not can_see(session.principal, app):
        return []
    out: list[Reply] = []
    if channel in session.channels:
        out.append(Push(["message", channel, payload]))
    for pattern in sorted(session.patterns):
        if fnmatch.fnmatchcase(channel, pattern):
            out.append(Push(["pmessage", pattern, channel, payload]))
    return out


# --- sentinel ------------------------------------------------------------------------------------
def _sentinel(session: Session, rest: list[str], env: Env) -> list[Reply]:
    if not rest:
        return [wrong_args("sentinel")]
    sub, args = rest[0].lower(), rest[1:]
    principal = session.principal or ANONYMOUS_OPERATOR
    named = SENTINEL_NAMED.get(sub)
    if named is not None:
        if len(args) != 1:
            return [wrong_args(f"sentinel|{sub}")]
        if sub == "get-master-addr-by-name":
            m = env.view.get(principal, args[0])
            return [[m.primary.ip, str(m.primary.port)] if m else NULL_ARRAY]
        m = env.view.get(principal, args[0])
        if m is None:
            return [Error("ERR No such master with that name")]
        return [named(m, env)]
    if sub == "masters" and not args:
        return [[m.fields(env.view.epochs.get(m.name, 0)) for m in env.view.visible(principal)]]
    if sub == "myid" and not args:
        return [env.myid]
    if sub == "help" and not args:
        return [[Simple(line) for line in SENTINEL_HELP]]
    if sub in ("masters", "myid", "help"):
        return [wrong_args(f"sentinel|{sub}")]
    if sub in MANAGED_SUBCOMMANDS:
        return [
            Error(
                f"ERR SENTINEL {_short(rest[0]).upper()} is not available: kvmaint decides which servers "
                "are masters and runs failovers as planned maintenances (kvmaint data:maintenances:run)"
            )
        ]
    return [Error(f"ERR unknown subcommand '{_short(rest[0])}'. Try SENTINEL HELP.")]


def _master(m: Master, env: Env) -> Reply:
    return m.fields(env.view.epochs.get(m.name, 0))


def _replicas(m: Master, env: Env) -> Reply:
    return m.replica_fields()


def _sentinels(m: Master, env: Env) -> Reply:
    return []  # the other Sentinels: every scheduler answers alone, like a single Sentinel


def _ckquorum(m: Master, env: Env) -> Reply:
    return Simple("OK 1 usable Sentinels. Quorum and failover authorization can be reached")


SENTINEL_NAMED: dict[str, Callable[[Master, Env], Reply]] = {
    "get-master-addr-by-name": _master,  # answered inline above
    "master": _master,
    "replicas": _replicas,
    "slaves": _replicas,
    "sentinels": _sentinels,
    "ckquorum": _ckquorum,
}


def _role(session: Session, rest: list[str], env: Env) -> list[Reply]:
    if rest:
        return [wrong_args("role")]
    principal = session.principal or ANONYMOUS_OPERATOR
    return [["sentinel", [m.name for m in env.view.visible(principal)]]]


def _info(session: Session, rest: list[str], env: Env) -> list[Reply]:
    principal = session.principal or ANONYMOUS_OPERATOR
    sections = env.info()
    masters = env.view.visible(principal)
    sentinel = {
        "sentinel_masters": str(len(masters)),
        "sentinel_tilt": "0",
        "sentinel_tilt_since_seconds": "-1",
        "sentinel_running_scripts": "0",
        "sentinel_scripts_queue_length": "0",
        "sentinel_simulate_failure_flags": "0",
    }
    for i, m in enumerate(masters):
        sentinel[f"master{i}"] = (
            f"name={m.name},status=ok,address={m.primary.ip}:{m.primary.port},"
            f"slaves={len(m.replicas)},sentinels=1"
        )
    sections = {**sections, "Sentinel": sentinel}
    wanted = {a.lower() for a in rest}
    everything = not wanted or wanted & {"all", "everything", "default"}
    parts = [
        f"# {title}\r\n" + "".join(f"{k}:{v}\r\n" for k, v in body.items())
        for title, body in sections.items()
        if everything or title.lower() in wanted
    ]
    return ["\r\n".join(parts)]


HANDLERS: dict[str, Callable[[Session, list[str], Env], list[Reply]]] = {
    "ping": _ping,
    "auth": _auth,
    "hello": _hello,
    "client": _client,
    "quit": _quit,
    "reset": _reset,
    "subscribe": _subscribe("subscribe"),
    "psubscribe": _subscribe("psubscribe"),
    "unsubscribe": _unsubscribe("unsubscribe"),
    "punsubscribe": _unsubscribe("punsubscribe"),
    "sentinel": _sentinel,
    "role": _role,
    "info": _info,
}
