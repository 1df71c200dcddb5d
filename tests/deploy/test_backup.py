"""`kvmaint-scheduler backup` / `restore`, against a real scheduler that keeps writing meanwhile."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc

from kvmaint.v1 import fleet_pb2
from tests.cli.conftest import FAST, Cli, until
from tests.support.agentproc import AgentProcess
from tests.support.rpc import api
from tests.support.scheduler import ROOT, SchedulerProcess


def command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "server", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def rows(db: Path, sql: str, *params: object) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchall()


class AppWriter(threading.Thread):
    """Creates apps load-0, load-1, ... through the API as fast as the scheduler takes them."""

    def __init__(self, address: str) -> None:
        super().__init__(daemon=True)
        self.address = address
        self.stop = threading.Event()
        self.created = 0
        self.errors: list[str] = []

    def run(self) -> None:
        with api(self.address) as a:
            while not self.stop.is_set():
                try:
                    a.CreateApp(fleet_pb2.CreateAppRequest(name=f"load-{self.created}", owner_email="o@example.com"))
                    self.created += 1
                except grpc.RpcError as err:
                    self.errors.append(f"{err.code()}: {err.details()}")  # type: ignore[attr-defined]


def test_backup_while_writing_then_restore_and_start(scheduler_factory, tmp_path: Path) -> None:
    s: SchedulerProcess = scheduler_factory(extra_args=FAST)
    hosts = {h: AgentProcess(h, s.address, tmp_path).start() for h in ("db-1", "db-2")}
    cli = Cli(s.address)
    writer = AppWriter(s.address)
    try:
        until(lambda: {a["host_id"] for a in cli.ok("agents", "--json").json() if a["connected"]} == set(hosts),
              what="agents connected")
        cli.ok("apps:create", "example-app", "--owner-email", "owner@example.com")
        addon = cli.ok("addons:create", "premium-0", "-a", "example-app", "--json").json()["name"]
        deadline = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
        cli.ok("maintenances:require", "--reason", "security_patch", "--addon", addon, "--required-by", deadline)

        # Backups while the scheduler writes: an app-creating client, and a maintenance running.
        writer.start()
        until(lambda: writer.created >= 20, what="the writer under way")
        run = cli.popen("data:maintenances:run", "REDIS_URL", "-a", "example-app", "--confirm", "example-app", "--wait")
        backups: list[Path] = []
        while run.poll() is None or len(backups) < 3:
            out = tmp_path / f"backup-{len(backups)}.db"
            result = command("backup", "--db", str(s.db), "--to", str(out))
            assert result.returncode == 0, result.stderr
            assert result.stdout.startswith(f"Backed up {s.db} to {out}: schema version "), result.stdout
            assert "quick_check ok" in result.stdout
            backups.append(out)
        assert run.wait(60) == 0, run.stderr.read() if run.stderr else ""
        final = tmp_path / "final.db"
        assert command("backup", "--db", str(s.db), "--to", str(final)).returncode == 0
        writer.stop.set()
        writer.join(10)
        assert writer.errors == [] and writer.created > 20
        assert "database is locked" not in s.log_text()

        # Each backup is one consistent snapshot: the apps written in order are a gapless prefix.
        counts = []
        for b in [*backups, final]:
            assert rows(b, "PRAGMA integrity_check") == [("ok",)]
            assert not b.with_name(b.name + "-wal").exists()
            loads = sorted(int(name[5:]) for (name,) in rows(b, "SELECT name FROM apps WHERE name LIKE 'load-%'"))
            assert loads == list(range(len(loads))), b
            counts.append(len(loads))
        assert counts == sorted(counts) and counts[-1] > counts[0]
        # The final backup holds the completed maintenance with its history and events.
        ((mid, status),) = rows(final, "SELECT id, status FROM maintenances WHERE addon = ?", addon)
        assert status == "completed"
        assert len(rows(final, "SELECT * FROM maintenance_history WHERE maintenance_id = ?", mid)) >= 5
        assert {t for (t,) in rows(final, "SELECT type FROM events WHERE maintenance_id = ?", mid)} >= {
            "maintenance_started", "maintenance_completed"}

        # A restore refuses while the scheduler runs on the file.
        refused = command("restore", "--db", str(s.db), "--from", str(final))
        assert refused.returncode == 2
        assert f"state file {s.db} is in use by another kvmaint-scheduler (pid {s.proc.pid}" in refused.stderr

        # Stopped, restored, started: the state of the backup, the later change gone (and kept aside).
        cli.ok("apps:create", "after-backup", "--owner-email", "owner@example.com")
        assert s.stop() == 0
        restored = command("restore", "--db", str(s.db), "--from", str(final))
        assert restored.returncode == 0, restored.stderr
        kept = s.db.with_name(s.db.name + ".before-restore")
        assert f"the previous database is kept as {kept}" in restored.stdout
        assert rows(kept, "SELECT name FROM apps WHERE name = 'after-backup'") == [("after-backup",)]
        s.start()
        names = {a["name"] for a in cli.ok("apps", "--json").json()}
        assert "after-backup" not in names and {"example-app", f"load-{counts[-1] - 1}"} <= names
        history = cli.ok("data:maintenances:history", "REDIS_URL", "-a", "example-app").out
        assert mid in history and "completed" in history
        until(lambda: {a["host_id"] for a in cli.ok("agents", "--json").json() if a["connected"]} == set(hosts),
              timeout=30, what="agents reconnected to the restored scheduler")
    finally:
        writer.stop.set()
        for agent in hosts.values():
            agent.stop()
        for agent in hosts.values():
            agent.stop_servers()


def test_restore_refuses_a_damaged_or_foreign_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database" * 100)
    result = command("restore", "--db", str(tmp_path / "state.db"), "--from", str(junk))
    assert result.returncode == 2 and "is not a kvmaint state database" in result.stderr
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    result = command("restore", "--db", str(tmp_path / "state.db"), "--from", str(other))
    assert result.returncode == 2 and "is not a kvmaint state database" in result.stderr
    assert not (tmp_path / "state.db").exists()
    missing = command("backup", "--db", str(tmp_path / "nope.db"), "--to", str(tmp_path / "b.db"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    assert not (tmp_path / "nope.db").exists()


def test_restore_refuses_a_backup_from_a_newer_kvmaint(tmp_path: Path) -> None:
    newer = tmp_path / "newer.db"
    with sqlite3.connect(newer) as conn:
        for table in ("apps", "addons", "maintenances", "events"):
            conn.execute(f"CREATE TABLE {table} (x)")
        conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY)")
        conn.execute("INSERT INTO schema_migrations VALUES (999)")
    result = command("restore", "--db", str(tmp_path / "state.db"), "--from", str(newer))
    assert result.returncode == 2
    assert "has schema version 999, made by a newer kvmaint" in result.stderr


def test_an_older_scheduler_refuses_a_newer_database(scheduler_factory, tmp_path: Path) -> None:
    """A downgrade after an upgrade migrated the database: refused with the way back, nothing written."""
    s: SchedulerProcess = scheduler_factory()
    assert s.stop() == 0
    with sqlite3.connect(s.db) as conn:
        (known,) = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        conn.execute("INSERT INTO schema_migrations VALUES (?)", (known + 1,))
    refused = command("--listen", "127.0.0.1:0", "--db", str(s.db))
    assert refused.returncode == 2, refused.stderr
    assert f"has schema version {known + 1}, written by a newer kvmaint (this one knows up to {known})" in refused.stderr
    assert rows(s.db, "SELECT MAX(version) FROM schema_migrations") == [(known + 1,)]


def test_backup_finds_the_database_through_the_scheduler_config(scheduler_factory, tmp_path: Path) -> None:
    s: SchedulerProcess = scheduler_factory()
    config = tmp_path / "scheduler.toml"
    config.write_text(f'db = "{s.db}"\n')
    out = tmp_path / "b.db"
    result = command("backup", "--config", str(config), "--to", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Backed up {s.db} to {out}: schema version ")
    assert out.stat().st_mode & 0o777 == 0o600
