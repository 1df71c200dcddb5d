"""Throwaway PostgreSQL databases for tests: one per test, created with a random name and dropped after.

The server is `KVMAINT_TEST_POSTGRES` (default: the machine's own, trust auth on loopback; `.ci/run`
starts it). A test that asks for PostgreSQL and cannot reach it fails: there is no silent skip.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

ADMIN_URL = os.environ.get("KVMAINT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
PREFIX = "kvmaint_test_"

T = TypeVar("T")


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Runs `coro` on a loop of its own in a thread, so sync fixtures can call it under a running loop."""
    out: list[T] = []
    err: list[BaseException] = []

    def target() -> None:
        try:
            out.append(asyncio.run(coro))
        except BaseException as e:
            err.append(e)

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if err:
        raise err[0]
    return out[0]


def database_url(name: str) -> str:
    parts = urlsplit(ADMIN_URL)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def create_database() -> str:
    """A new empty database; its URL."""
    name = PREFIX + secrets.token_hex(6)
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return database_url(name)


async def drop_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    assert name.startswith(PREFIX), name
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@contextmanager
def temporary_database() -> Iterator[str]:
    """A sync context for fixtures: the URL of a database that is dropped on exit."""
    url = _run(create_database())
    try:
        yield url
    finally:
        _run(drop_database(url))


def query(url: str, sql: str, *params: object) -> list[asyncpg.Record]:
    """One query on `url` from sync test code."""

    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url)
        try:
            return list(await conn.fetch(sql, *params))
        finally:
            await conn.close()

    return _run(go())
