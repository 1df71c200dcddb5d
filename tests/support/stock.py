"""Stock Redis clients that no one here wrote, run as separate processes: redis-py's own Sentinel client
(the project's version, and 5.3.x from a venv of its own) and ioredis from npm (tests/js, pinned by its
package-lock.json). Each runs a writer script that knows nothing of kvmaint."""

from __future__ import annotations

import asyncio
import fcntl
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PY_WRITER = ROOT / "tests" / "stock" / "sentinel_writer.py"
KVMAINT_WRITER = ROOT / "bench" / "clients" / "kvmaint_writer.py"
JS_DIR = ROOT / "tests" / "js"
JS_WRITER = JS_DIR / "sentinel_writer.js"
OLD_REDIS_PY = "5.3.1"


def _locked(name: str) -> Any:
    lock = open(ROOT / ".venv" / f".{name}.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    return lock


def old_redis_py_python(version: str = OLD_REDIS_PY) -> Path:
    """The python of a venv with redis-py `version` and nothing else, made once under .venv/."""
    venv = ROOT / ".venv" / f"stock-redis-py-{version}"
    python = venv / "bin" / "python"
    with _locked(f"stock-redis-py-{version}"):
        if not (venv / ".installed").exists():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", f"redis=={version}"],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            (venv / ".installed").touch()
    return python


def node_ready() -> str:
    """The node binary, with tests/js's locked packages installed (`npm ci`); .ci/run installs Node."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise RuntimeError("node and npm are needed: apt-get install -y nodejs npm")
    with _locked("npm-ci"):
        lock = JS_DIR / "package-lock.json"
        installed = JS_DIR / "node_modules" / ".package-lock.json"  # written by npm ci (.ci/run runs it)
        if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
            subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, check=True,
                           stdout=subprocess.DEVNULL)  # fmt: skip
    return node


@dataclass
class StockWriter:
    """One writer process: `start`, `wait_progress`, then `stop` for its result."""

    label: str
    argv: list[str]
    proc: asyncio.subprocess.Process | None = None
    acked: int = 0
    result: dict[str, Any] = field(default_factory=dict)
    output: list[str] = field(default_factory=list)
    _reader: asyncio.Task[None] | None = None

    async def start(self) -> StockWriter:
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=ROOT,
        )
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            if line.startswith("progress "):
                self.acked = int(line.split()[1])
            elif line.startswith("result "):
                self.result = json.loads(line[len("result ") :])
            else:
                self.output.append(line)

    async def mark(self) -> None:
        """Tells the writer the switchover starts now: its longest pause is counted from here."""
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(b"mark\n")
        await self.proc.stdin.drain()

    async def stop(self, timeout: float = 20.0) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None and self._reader is not None
        self.proc.stdin.close()
        try:
            await asyncio.wait_for(self._reader, timeout)
            await asyncio.wait_for(self.proc.wait(), timeout)
        finally:
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()
        if not self.result:
            raise AssertionError(f"{self.label} gave no result: {self.output[-20:]}")
        return self.result

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()


def redis_py_writer(
    python: Path | str,
    sentinel: str,
    name: str,
    retry: bool,
    password: str | None = None,
    url: str = "",
    ca: str = "",
) -> StockWriter:
    """`url`: the app's REDIS_URL, whose user and password (and TLS) the writer uses on the primary."""
    argv = [str(python), str(PY_WRITER), "--sentinel", sentinel, "--name", name]
    argv += ["--retry"] if retry else []
    argv += ["--password", password] if password else []
    argv += ["--url", url] if url else []
    argv += ["--ca", ca] if ca else []
    return StockWriter(f"redis-py ({python}){' +Retry' if retry else ''}", argv)


def ioredis_writer(
    node: str, sentinel: str, name: str, password: str | None = None, url: str = ""
) -> StockWriter:
    argv = [node, str(JS_WRITER), "--sentinel", sentinel, "--name", name]
    argv += ["--password", password] if password else []
    argv += ["--url", url] if url else []
    return StockWriter("ioredis", argv)


def kvmaint_client_writer(scheduler: str, app: str) -> StockWriter:
    """The same writer on kvmaint.client (not a stock client: the product's own, for comparison)."""
    return StockWriter("kvmaint.client", [sys.executable, str(KVMAINT_WRITER), "--scheduler", scheduler, "--app", app])
