"""The README's Python snippets run as written, against a real scheduler, agents and redis-servers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.cli.conftest import Cli
from tests.support.scheduler import ROOT

SNIPPET = re.compile(r"^```python\n(.*?)^```$", re.M | re.S)


def snippets() -> list[str]:
    return SNIPPET.findall((ROOT / "README.md").read_text())


def test_the_readme_has_python_snippets_that_are_whole_programs() -> None:
    found = snippets()
    assert found, "no ```python block in README.md"
    for code in found:
        compile(code, "README.md", "exec")  # top-level await would be a SyntaxError here


def test_every_python_snippet_runs_against_a_local_fleet(fleet_cli, tmp_path: Path) -> None:
    cli: Cli = fleet_cli[0]
    cli.ok("apps:create", "example-app", "--owner-email", "owner@example.com")
    cli.ok("addons:create", "premium-0", "-a", "example-app", "--as", "REDIS_URL")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KVMAINT_")}
    for i, code in enumerate(snippets()):
        script = tmp_path / f"snippet-{i}.py"
        script.write_text(code)
        result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                                timeout=60, env={**env, "KVMAINT_SCHEDULER": cli.address})
        assert result.returncode == 0, f"snippet {i}:\n{code}\n{result.stderr}"
        if "greeting" in code:
            assert result.stdout == "b'hello'\n"
