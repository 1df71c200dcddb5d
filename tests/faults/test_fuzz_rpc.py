"""Fault 4 and the fuzz run: every RPC of every service, over real gRPC, with undecodable bytes and with
well-formed random messages. Never UNKNOWN or INTERNAL; undecodable payloads are INVALID_ARGUMENT; a
refused request writes nothing (the whole SQLite file's content is compared before and after)."""

from __future__ import annotations

import hashlib
import random
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor as d
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from kvmaint.v1 import agent_pb2, campaigns_pb2, events_pb2, fleet_pb2, maintenance_pb2
from tests.support.rpc import api, registered_addon

MODULES = (fleet_pb2, maintenance_pb2, events_pb2, agent_pb2, campaigns_pb2)
BAD = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
UNDECODABLE = [b"\xff\xff\xff\xff", b"\x0a\xff", b"\x08", b"\x12\x05ab", bytes(range(256))]
RANDOM_MESSAGES = 25


def methods() -> Iterator[d.MethodDescriptor]:
    for module in MODULES:
        for service in module.DESCRIPTOR.services_by_name.values():
            yield from service.methods


def path(m: d.MethodDescriptor) -> str:
    return f"/{m.containing_service.full_name}/{m.name}"


STRINGS = ["", "example-app", "REDIS_URL", "redis-a", "db-1", "premium-0", "mini", "x" * 3000, "\x00", "é"]


def random_message(desc: d.Descriptor, rng: random.Random, depth: int = 0) -> Message:
    msg: Any = GetMessageClass(desc)()
    for f in desc.fields:
        if rng.random() < 0.4:
            continue
        values = [_value(f, msg, rng, depth) for _ in range(rng.randint(1, 3) if _repeated(f) else 1)]
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            for v in values:
                getattr(msg, f.name)[v[0]] = v[1]
        elif _repeated(f):
            if f.message_type is not None:
                for v in values:
                    getattr(msg, f.name).add().CopyFrom(v)
            else:
                getattr(msg, f.name).extend(values)
        elif f.message_type is not None:
            getattr(msg, f.name).CopyFrom(values[0])
        else:
            setattr(msg, f.name, values[0])
    return msg


def _repeated(f: d.FieldDescriptor) -> bool:
    return bool(f.is_repeated) if hasattr(f, "is_repeated") else f.label == f.LABEL_REPEATED


def _value(f: d.FieldDescriptor, msg: Any, rng: random.Random, depth: int) -> Any:
    if f.message_type is not None:
        if f.message_type.GetOptions().map_entry:
            k, v = f.message_type.fields_by_name["key"], f.message_type.fields_by_name["value"]
            return (_value(k, msg, rng, depth), _value(v, msg, rng, depth))
        if f.message_type.full_name == "google.protobuf.Timestamp":
            return GetMessageClass(f.message_type)(seconds=rng.choice([0, 1, 10**9, 1_800_000_000, 2**33]))
        return (
            random_message(f.message_type, rng, depth + 1) if depth < 3 else GetMessageClass(f.message_type)()
        )
    if f.type == f.TYPE_STRING:
        return rng.choice(STRINGS)
    if f.type == f.TYPE_BOOL:
        return rng.random() < 0.5
    if f.type == f.TYPE_ENUM:
        return rng.choice([v.number for v in f.enum_type.values] + [99])
    if f.type in (f.TYPE_INT32, f.TYPE_SINT32, f.TYPE_SFIXED32):
        return rng.choice([0, 1, -1, 7001, 65536, 2**31 - 1, -(2**31)])
    if f.type in (f.TYPE_INT64, f.TYPE_SINT64, f.TYPE_SFIXED64):
        return rng.choice([0, 1, -1, 2**40, 2**63 - 1])
    if f.type == f.TYPE_BYTES:
        return rng.randbytes(rng.randint(0, 8))
    return 0


# Columns that change on their own, after the call that caused them has ended: an earlier accepted
# agent stream stamps `agents.last_seen` when the scheduler notices it has closed.
LIVENESS = {
    "agents": "host_id, advertise_host, agent_version",
    "schedulers": "id, address, agent_address, started_at, version",  # seen_at: the replica's heartbeat
}


def digest(db: Path) -> str:
    """Every row of every table (liveness stamps aside), hashed: equal digests mean nothing was written."""
    h = hashlib.sha256()
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY 1")]
        for t in tables:
            for row in conn.execute(f'SELECT {LIVENESS.get(t, "*")} FROM "{t}" ORDER BY 1'):
                h.update(repr(row).encode())
    return h.hexdigest()


def recorded(db: Path, msg: Message, timeout: float = 10.0) -> None:
    """Until what an accepted call writes after it answered is written: an agent's hello is answered
    with the welcome (and its roles, read from the store first), while the scheduler records the new
    host in its own transaction a moment later, which must not land inside the next call's digests."""
    if not isinstance(msg, agent_pb2.ConnectRequest) or msg.WhichOneof("body") != "hello":
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            if conn.execute("SELECT 1 FROM agents WHERE host_id = ?", (msg.hello.host_id,)).fetchone():
                return
        time.sleep(0.02)
    raise AssertionError(f"the accepted hello of {msg.hello.host_id!r} was never recorded")


def call(channel: grpc.Channel, m: d.MethodDescriptor, payload: bytes) -> grpc.StatusCode:
    ident = lambda b: b  # noqa: E731 - raw bytes in and out
    timeout = 1.0
    try:
        if m.client_streaming:
            stream = channel.stream_stream(path(m), request_serializer=ident, response_deserializer=ident)
            for _ in stream(iter([payload]), timeout=timeout):
                break
        elif m.server_streaming:
            stream = channel.unary_stream(path(m), request_serializer=ident, response_deserializer=ident)
            for _ in stream(payload, timeout=timeout):
                pass
        else:
            channel.unary_unary(path(m), request_serializer=ident, response_deserializer=ident)(
                payload, timeout=timeout
            )
    except grpc.RpcError as err:
        return err.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def test_there_are_35_methods() -> None:
    assert len(list(methods())) == 35


@pytest.mark.parametrize("payload", UNDECODABLE, ids=lambda b: b[:4].hex())
def test_undecodable_payloads_are_invalid_argument_on_every_method(scheduler, payload: bytes) -> None:
    with api(scheduler.address) as a:
        registered_addon(a)
        before = digest(scheduler.db)
        wrong = {}
        for m in methods():
            code = call(a.channel, m, payload)
            if code != grpc.StatusCode.INVALID_ARGUMENT:
                wrong[path(m)] = code.name
        assert wrong == {}
        assert digest(scheduler.db) == before


def test_random_well_formed_messages_never_unknown_and_refusals_write_nothing(scheduler) -> None:
    rng = random.Random(1212)
    with api(scheduler.address) as a:
        registered_addon(a)
        bad: list[str] = []
        writes_on_refusal: list[str] = []
        for m in methods():
            for _ in range(RANDOM_MESSAGES):
                msg = random_message(m.input_type, rng)
                before = digest(scheduler.db)
                code = call(a.channel, m, msg.SerializeToString())
                if code is grpc.StatusCode.OK:
                    recorded(scheduler.db, msg)
                if code in BAD:
                    bad.append(f"{path(m)} {code.name}: {msg}")
                if code not in (
                    grpc.StatusCode.OK,
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    grpc.StatusCode.CANCELLED,
                ):
                    if digest(scheduler.db) != before:
                        writes_on_refusal.append(f"{path(m)} {code.name}: {msg}")
        assert bad == []
        assert writes_on_refusal == []
