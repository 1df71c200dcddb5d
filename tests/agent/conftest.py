"""Fixtures for agent tests: real redis-servers, a real gRPC fake scheduler, agents in-process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.app import Agent
from agent.config import AgentConfig
from agent.tls import TlsFiles
from kvmaint.clock import Clock
from tests.agent.fakesched import FakeScheduler
from tests.support.redisproc import REDIS_SERVER, RedisFactory, kill_pidfiles


@pytest.fixture
async def redis_factory(tmp_path: Path) -> AsyncIterator[RedisFactory]:
    factory = RedisFactory(tmp_path / "redis")
    try:
        yield factory
    finally:
        await factory.aclose()


@pytest.fixture
async def fake_scheduler() -> AsyncIterator[FakeScheduler]:
    scheduler = await FakeScheduler().start()
    try:
        yield scheduler
    finally:
        await scheduler.stop()


@dataclass
class RunningAgent:
    agent: Agent
    stop_event: asyncio.Event
    task: asyncio.Task[None]

    @property
    def config(self) -> AgentConfig:
        return self.agent.config

    async def stop(self) -> None:
        self.stop_event.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.task, 10)


AgentFactory = Callable[..., Awaitable[RunningAgent]]


@pytest.fixture
async def agent_factory(tmp_path: Path, fake_scheduler: FakeScheduler) -> AsyncIterator[AgentFactory]:
    """Starts agents in this process against the fake scheduler; stops them and kills the servers they
    started (which would otherwise outlive the agent, by design) at teardown."""
    running: list[RunningAgent] = []
    data_dirs: set[Path] = set()

    async def make(
        host_id: str = "db-1",
        adopt: tuple[int, ...] = (),
        data_dir: Path | None = None,
        heartbeat_seconds: float = 0.2,
        scheduler: str | None = None,
        tls: TlsFiles | None = None,
        clock: Clock | None = None,
        builds: tuple[tuple[str, str], ...] = (),
    ) -> RunningAgent:
        config = AgentConfig(
            host_id=host_id,
            data_dir=data_dir or tmp_path / f"agent-{host_id}",
            scheduler=scheduler or fake_scheduler.address,
            adopt=tuple(adopt),
            redis_server=REDIS_SERVER,
            builds=builds,
            tls=tls,
            heartbeat_seconds=heartbeat_seconds,
        )
        data_dirs.add(config.data_dir)
        agent = Agent(config, clock=clock, rand=lambda: 0.1)
        stop = asyncio.Event()
        handle = RunningAgent(agent, stop, asyncio.create_task(agent.run(stop)))
        running.append(handle)
        return handle

    try:
        yield make
    finally:
        for handle in running:
            await handle.stop()
        for data_dir in data_dirs:
            kill_pidfiles(data_dir)
