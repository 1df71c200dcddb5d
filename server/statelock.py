"""One scheduler per state file: an exclusive `flock` on `STATE.lock` beside the database, holding the
owner's pid. The kernel drops the lock when its process dies (even by SIGKILL), so a stale file never
blocks a restart; the pid inside only names the holder in the refusal."""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from kvmaint.errors import FailedPrecondition


def lock_path(db: Path) -> Path:
    return db.with_name(db.name + ".lock")


@dataclass
class StateLock:
    path: Path
    fd: int

    @classmethod
    def acquire(cls, db: Path) -> StateLock:
        """Takes the lock or raises `FailedPrecondition` naming the pid that holds it."""
        path = lock_path(db)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise FailedPrecondition(
                f"state file {db} is in use by another kvmaint-scheduler (pid {holder}, lock {path}); "
                "stop that one first or pass another --db."
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        os.fsync(fd)
        return cls(path, fd)

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = -1
