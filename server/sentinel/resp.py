"""RESP reply values and their encoding for RESP2 and RESP3 (what `HELLO 3` switches a connection to).

Python values map to RESP types: `str`/`bytes` are bulk strings, `int` integers, `list` arrays, `dict`
maps (flat arrays in RESP2), `None` a null bulk string. Simple strings, errors, push messages and the
null *array* (`*-1`, which Sentinel answers for an unknown master name) need their own wrappers.
"""

from __future__ import annotations

from dataclasses import dataclass

Reply = object


@dataclass(frozen=True)
class Simple:
    text: str


@dataclass(frozen=True)
class Error:
    """An error reply; `text` starts with its code: "ERR ...", "NOAUTH ...", "WRONGPASS ..."."""

    text: str


@dataclass(frozen=True)
class Push:
    """An out-of-band message (pub/sub): `>` in RESP3, a plain array in RESP2."""

    items: list[Reply]


class _NullArray:
    def __repr__(self) -> str:
        return "NULL_ARRAY"


NULL_ARRAY = _NullArray()
OK = Simple("OK")


def _line(text: str) -> bytes:
    # A simple string or error cannot carry a line break; Redis replaces them the same way.
    return text.replace("\r", " ").replace("\n", " ").encode("utf-8", "surrogateescape")


def encode(value: Reply, proto: int) -> bytes:
    out: list[bytes] = []
    _encode(value, proto, out)
    return b"".join(out)


def _encode(value: Reply, proto: int, out: list[bytes]) -> None:
    if isinstance(value, Simple):
        out.append(b"+" + _line(value.text) + b"\r\n")
    elif isinstance(value, Error):
        out.append(b"-" + _line(value.text) + b"\r\n")
    elif isinstance(value, int):
        out.append(b":%d\r\n" % value)
    elif isinstance(value, str | bytes):
        data = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
        out.append(b"$%d\r\n" % len(data))
        out.append(data)
        out.append(b"\r\n")
    elif value is None:
        out.append(b"_\r\n" if proto == 3 else b"$-1\r\n")
    elif value is NULL_ARRAY:
        out.append(b"_\r\n" if proto == 3 else b"*-1\r\n")
    elif isinstance(value, Push):
        out.append(b"%s%d\r\n" % (b">" if proto == 3 else b"*", len(value.items)))
        for item in value.items:
            _encode(item, proto, out)
    elif isinstance(value, list | tuple):
        out.append(b"*%d\r\n" % len(value))
        for item in value:
            _encode(item, proto, out)
    elif isinstance(value, dict):
        if proto == 3:
            out.append(b"%%%d\r\n" % len(value))
        else:
            out.append(b"*%d\r\n" % (2 * len(value)))
        for k, v in value.items():
            _encode(k, proto, out)
            _encode(v, proto, out)
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as RESP")
