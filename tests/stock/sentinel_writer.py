"""A stock redis-py application that finds its primary through Sentinel and writes in a loop.

No kvmaint code: only `redis.asyncio.sentinel.Sentinel`, configured the way its documentation shows,
so the same file runs under any redis-py version (the tests run it with the project's redis-py and with
5.3.x from a separate venv). Writes `SET k:i i` one after another; a write that raises is counted as an
error surfaced to the application and repeated (same key and value) 1 ms later (tests/stock/writeloop.py).
"""

from __future__ import annotations

import argparse
import asyncio
from urllib.parse import unquote, urlsplit

import redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError, TimeoutError
from writeloop import write_until_eof  # this script's folder


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sentinel", required=True, help="HOST:PORT")
    p.add_argument("--name", required=True, help="master name")
    p.add_argument("--retry", action="store_true", help="Retry on connection errors (redis-py's Retry)")
    p.add_argument("--password", default=None, help="Sentinel AUTH token")
    p.add_argument(
        "--url", default="", help="the app's REDIS_URL: its user and password, and TLS for rediss://"
    )
    p.add_argument("--ca", default=None, help="CA file for a rediss:// URL")
    args = p.parse_args()
    url = urlsplit(args.url)
    server_kwargs: dict[str, object] = {}
    if url.password is not None:
        server_kwargs.update(username=unquote(url.username or "") or None, password=unquote(url.password))
    if url.scheme == "rediss":
        server_kwargs.update(ssl=True, ssl_ca_certs=args.ca, ssl_check_hostname=False)
    host, port = args.sentinel.rsplit(":", 1)
    # redis-py's documented way to retry on connection errors: a Retry, and (needed before 6.0, where
    # the client re-raises errors not listed here) the same errors in retry_on_error.
    if args.retry:
        retry = Retry(ExponentialBackoff(cap=0.5, base=0.01), 10, (ConnectionError, TimeoutError))
        retry_on_error = [ConnectionError, TimeoutError]
    else:
        retry, retry_on_error = Retry(NoBackoff(), 0), []
    sentinel = Sentinel(
        [(host, int(port))],
        sentinel_kwargs={"password": args.password, "socket_timeout": 5},
        socket_timeout=5,
        **server_kwargs,
    )
    r = sentinel.master_for(args.name, retry=retry, retry_on_error=retry_on_error)

    await write_until_eof(r, {"client": f"redis-py {redis.__version__}", "retry": args.retry})


if __name__ == "__main__":
    asyncio.run(main())
