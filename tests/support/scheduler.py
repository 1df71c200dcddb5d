"""Starts the real scheduler as a separate OS process on an ephemeral port, for tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class SchedulerProcess:
    db: Path | str  # a SQLite file or a postgresql:// URL
    workdir: Path
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0
    agent_port: int = 0
    sentinel_port: int = 0  # with --sentinel-listen

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> SchedulerProcess:
        port_file = self.workdir / f"scheduler-{os.getpid()}-{time.monotonic_ns()}.port"
        log = open(self.workdir / "scheduler.log", "ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        listen = f"127.0.0.1:{self.port}" if self.port else "127.0.0.1:0"
        args = list(self.extra_args)
        if self.agent_port and "--agent-listen" in args:  # a restart keeps the agents' port too
            args[args.index("--agent-listen") + 1] = f"127.0.0.1:{self.agent_port}"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "server",
                "--listen",
                listen,
                "--db",
                str(self.db),
                "--port-file",
                str(port_file),
                *self.extra_args,
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if port_file.exists() and port_file.read_text().strip():
                ports = port_file.read_text().split()
                self.port, self.agent_port = int(ports[0]), int(ports[1 if len(ports) > 1 else 0])
                self.sentinel_port = int(ports[2]) if len(ports) > 2 else 0
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"scheduler exited with {self.proc.returncode}: {self.log_text()[-2000:]}")
            time.sleep(0.02)
        raise TimeoutError(f"scheduler did not start: {self.log_text()[-2000:]}")

    def log_text(self) -> str:
        p = self.workdir / "scheduler.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def kill(self) -> None:
        """SIGKILL: the crash case."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> int | None:
        """SIGTERM: the graceful case."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode if self.proc else None

    def restart(self) -> SchedulerProcess:
        """Stops (kill) and starts again on the same database and port."""
        self.kill()
        return self.start()
