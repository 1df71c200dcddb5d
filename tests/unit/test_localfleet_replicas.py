"""kvmaint-local --replicas: the replicas' addresses, and the refusal of replicas on SQLite (which serves
one scheduler), before anything is started."""

from __future__ import annotations

import pytest

from kvmaint.localfleet import main, replica_addresses


def test_replicas_listen_on_consecutive_ports() -> None:
    assert replica_addresses("127.0.0.1:50051", 3) == ["127.0.0.1:50051", "127.0.0.1:50052", "127.0.0.1:50053"]
    assert replica_addresses("127.0.0.1:26379", 1) == ["127.0.0.1:26379"]
    for bad, count in (("127.0.0.1:65535", 2), ("nohost", 1), ("127.0.0.1:50051", 0)):
        with pytest.raises(ValueError):
            replica_addresses(bad, count)


def test_replicas_need_postgresql(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--replicas", "3", "--dir", "/nonexistent/never-created"])
    assert exit_.value.code == 2
    assert "--replicas 3 needs --db postgresql://" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--replicas", "0", "--db", "postgresql://x/y"])
    assert "--replicas must be 1 or more" in capsys.readouterr().err
