"""The same writer as tests/stock/sentinel_writer.py, on `kvmaint.client` (which follows WatchConfigVars
and READONLY) instead of Sentinel: `progress N` lines, then `result {json}` when stdin closes."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from kvmaint.client import attach
from tests.stock.writeloop import write_until_eof


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--scheduler", required=True)
    p.add_argument("--app", required=True)
    p.add_argument("--var", default="REDIS_URL")
    args = p.parse_args()
    r = await attach(args.scheduler, args.app, args.var)
    await write_until_eof(r, {"client": "kvmaint.client", "retry": True})


if __name__ == "__main__":
    asyncio.run(main())
