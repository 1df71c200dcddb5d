"""Starts real kvmaint-agent processes for tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class AgentProcess:
    host_id: str
    scheduler: str
    workdir: Path
    extra_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        return self.workdir / f"agent-{self.host_id}"

    @property
    def log(self) -> Path:
        return self.workdir / f"agent-{self.host_id}.log"

    def start(self) -> AgentProcess:
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agent",
                "--host-id",
                self.host_id,
                "--scheduler",
                self.scheduler,
                "--data-dir",
                str(self.data_dir),
                "--heartbeat-seconds",
                "1",
                *self.extra_args,
            ],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def server_pid(self, port: int) -> int | None:
        pidfile = self.data_dir / "servers" / str(port) / "redis.pid"
        try:
            return int(pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def stop_servers(self) -> None:
        """Agents leave their servers running on purpose; tests clean them up."""
        for pidfile in self.data_dir.glob("servers/*/redis.pid"):
            try:
                pid = int(pidfile.read_text().strip())
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
            except (OSError, ValueError):
                pass

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""
