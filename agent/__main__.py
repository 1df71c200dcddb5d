"""`kvmaint-agent` / `python -m agent`: parse settings, log, run until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from agent.config import AgentConfig, parse_config
from agent.stream import scheduler_targets
from agent.tls import plaintext_warning
from kvmaint.errors import KvmaintError
from kvmaint.obs import logs


async def _serve(config: AgentConfig) -> None:
    from agent.app import Agent

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        logging.getLogger("agent").info("%s received: stopping (redis-servers keep running)", sig.name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    agent = Agent(config)
    await agent.run(stop)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = parse_config(argv)
        for target in scheduler_targets(config.scheduler):  # refuse before starting anything
            plaintext_warning(target, config.tls, config.insecure)
    except KvmaintError as exc:
        print(f"kvmaint-agent: {exc}", file=sys.stderr)
        return 2
    logs.configure(
        config.log_level,
        config.log_format,
        "%(asctime)s %(levelname)s %(name)s [" + config.host_id + "] %(message)s",
        static={"host": config.host_id},
    )
    try:
        asyncio.run(_serve(config))
    except KvmaintError as exc:
        logging.getLogger("agent").error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
