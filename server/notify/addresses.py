"""Webhook targets must be public addresses unless the operator allows private ones.

An app token can register any URL; without this check the scheduler would POST, from inside the
network, to whatever internal address an app owner names. The check runs when connecting (a resolver
that drops non-public answers), so a name that later resolves to a private address is caught too.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return ip.is_global and not ip.is_multicast


class PrivateAddress(OSError):
    pass


def check_literal(host: str) -> None:
    """An IP literal in the URL never reaches the resolver: check it here."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return
    if not is_public(host.strip("[]")):
        raise PrivateAddress(f"{host} is not a public address (the scheduler runs with private webhooks off)")


class PublicOnlyResolver(AbstractResolver):
    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        public = [r for r in found if is_public(r["host"])]
        if not public:
            raise PrivateAddress(f"{host} resolves only to non-public addresses")
        return public

    async def close(self) -> None:
        await self._inner.close()

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return "PublicOnlyResolver()"


def connector_options(allow_private: bool) -> dict[str, Any]:
    return {} if allow_private else {"resolver": PublicOnlyResolver()}
