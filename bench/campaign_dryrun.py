"""How long a campaign's dry run takes over 100,000 add-ons stored in a real SQLite state (goal: < 5 s).

The state is written once (apps, add-ons with their windows, a few freezes) straight through the store,
then `CreateCampaign(dry_run=True, all=True)` is called over real gRPC on loopback against an in-process
CampaignService on that file: the time covers reading every add-on, planning, converting the plan to
protobuf and sending and decoding it. The hosts' builds come from a stub (no agents are needed to plan).

    .venv/bin/python -m bench.campaign_dryrun                 # 100,000 add-ons, 3 runs
    .venv/bin/python -m bench.campaign_dryrun --addons 20000 --runs 5 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from kvmaint.channel import CHANNEL_OPTIONS
from kvmaint.clock import SystemClock
from kvmaint.v1 import campaigns_pb2 as cpb
from kvmaint.v1 import campaigns_pb2_grpc
from kvmaint.v1 import resources_pb2 as rpb
from server.domain.builds import HostBuild
from server.domain.freezes import Freeze
from server.domain.models import Addon, App, Role, ServerRef
from server.domain.windows import random_default_window
from server.rpc.campaign_servicer import CampaignServicer
from server.service.bus import EventBus
from server.service.campaigns import CampaignService
from server.service.core import Context
from server.service.fleet import NoPlacement
from server.storage.sqlite import SqliteStore

GOAL_SECONDS = 5.0
HOSTS = [f"db-{i}" for i in range(1, 41)]


class StubBuilds(NoPlacement):
    def host_builds(self) -> list[HostBuild]:
        return [HostBuild(h, "valkey-8.1", "8.1.8") for h in HOSTS]


async def fill(store: SqliteStore, addons: int, per_app: int, seed: int) -> None:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    async with store.transaction() as tx:
        for a in range(0, addons, per_app):
            app = f"app-{a // per_app:05d}"
            await tx.insert_app(App(app, f"{app}@example.com", False, now))
            for i in range(a, min(addons, a + per_app)):
                h = rng.randrange(len(HOSTS))
                servers = (
                    ServerRef(HOSTS[h], 10000 + i % 50000, Role.PRIMARY),
                    ServerRef(HOSTS[(h + 1) % len(HOSTS)], 10000 + i % 50000, Role.STANDBY),
                )
                await tx.insert_addon(
                    Addon(
                        f"redis-{i:06d}",
                        app,
                        "premium-0",
                        "heroku-redis",
                        "premium HA",
                        ("REDIS_URL",),
                        now,
                        servers,
                        random_default_window(rng),
                    )
                )
        # A fleet freeze over a day next week and a few apps' own freezes.
        start = now + timedelta(days=8)
        await tx.insert_freeze(Freeze("fleet", "", start, start + timedelta(days=1), "release week", now))
        for k in range(20):
            app = f"app-{k * 7:05d}"
            await tx.insert_freeze(Freeze(f"f{k}", app, now, now + timedelta(days=3), "app freeze", now))


async def measure(db: Path, runs: int) -> tuple[list[float], int, int]:
    store = SqliteStore(db)
    await store.open()
    ctx = Context(store, SystemClock(), EventBus(await store.last_sequence()))
    server = grpc.aio.server()
    campaigns_pb2_grpc.add_CampaignServiceServicer_to_server(
        CampaignServicer(CampaignService(ctx, StubBuilds())), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    deadline = Timestamp()
    deadline.FromDatetime(datetime.now(UTC) + timedelta(days=60))
    req = cpb.CreateCampaignRequest(
        all=True,
        build="valkey-8.1",
        reason=rpb.MAINTENANCE_REASON_REDIS_UPGRADE,
        required_by=deadline,
        canary=10,
        waves="1%,10%,50%,100%",
        dry_run=True,
    )
    took: list[float] = []
    size = entries = 0
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=CHANNEL_OPTIONS) as channel:
            stub = campaigns_pb2_grpc.CampaignServiceStub(channel)
            for _ in range(runs):
                t0 = time.perf_counter()
                resp = await stub.CreateCampaign(req, timeout=120)
                took.append(time.perf_counter() - t0)
                size, entries = resp.ByteSize(), len(resp.plan.addons)
    finally:
        await server.stop(1)
        await store.close()
    return took, size, entries


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--addons", type=int, default=100_000)
    p.add_argument("--per-app", type=int, default=100)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="kvmaint-campaign-bench-") as tmp:
        db = Path(tmp) / "state.db"

        async def go() -> tuple[list[float], int, int, float]:
            store = SqliteStore(db)
            await store.open()
            t0 = time.perf_counter()
            await fill(store, args.addons, args.per_app, args.seed)
            filled = time.perf_counter() - t0
            await store.close()
            print(
                f"stored {args.addons:,} add-ons in {filled:.1f} s ({db.stat().st_size / 1e6:.0f} MB)",
                file=sys.stderr,
            )
            took, size, entries = await measure(db, args.runs)
            return took, size, entries, filled

        took, size, entries, _ = asyncio.run(go())
    load_after = os.getloadavg()
    result = {
        "addons": args.addons,
        "planned": entries,
        "runs_seconds": [round(t, 3) for t in took],
        "min_seconds": round(min(took), 3),
        "median_seconds": round(statistics.median(took), 3),
        "max_seconds": round(max(took), 3),
        "goal_seconds": GOAL_SECONDS,
        "met": max(took) < GOAL_SECONDS,
        "response_bytes": size,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
        "cpus": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"campaign dry run over {args.addons:,} add-ons (real SQLite, gRPC on loopback), "
            f"{args.runs} runs: "
            f"{result['min_seconds']} / {result['median_seconds']} / {result['max_seconds']} s "
            f"(min / median / max); goal < {GOAL_SECONDS:g} s: {'met' if result['met'] else 'NOT met'}; "
            f"response {size / 1e6:.1f} MB; load average {' '.join(f'{x:.2f}' for x in load_before)} before, "
            f"{' '.join(f'{x:.2f}' for x in load_after)} after, {os.cpu_count()} cores"
        )
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
