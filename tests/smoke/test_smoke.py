"""The lowest-versions smoke test, run in the suite's own venv too, so it cannot rot between CI runs."""

from __future__ import annotations

from tests.smoke import run


def test_smoke_runs_every_check(capsys) -> None:
    assert run.main() == 0
    out = capsys.readouterr().out
    assert "Health SERVING" in out and "wrote and read back 'ok'" in out and "all checks passed" in out
