"""A real browser (Debian's chromium and chromium-driver, driven by selenium) against a real scheduler
with agents and redis-servers; scripts/setup.sh installs chromium when it is missing."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

from tests.conftest import AGENT_TOKEN, write_tokens
from tests.integration.conftest import agents  # noqa: F401  (the agent processes fixture)
from tests.support.agentproc import AgentProcess
from tests.support.scheduler import SchedulerProcess

CHROMIUM = "/usr/bin/chromium"
DRIVER = "/usr/bin/chromedriver"
FAST = ["--catch-up-timeout", "30", "--command-timeout", "20", "--tick-seconds", "0.5"]


def page_url(scheduler: SchedulerProcess) -> str:
    found = re.search(r"status page on (http://127\.0\.0\.1:\d+/)", scheduler.log_text())
    assert found, scheduler.log_text()[-2000:]
    return found.group(1)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    for path in (CHROMIUM, DRIVER):
        assert shutil.which(path), f"{path} is missing: run scripts/setup.sh (apt-get install chromium chromium-driver)"
    options = Options()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1500,900",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    driver.set_page_load_timeout(30)
    driver.implicitly_wait(5)  # a clicked link navigates asynchronously: find waits for the next page
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def web_fleet(
    scheduler_factory: Callable[..., SchedulerProcess],
    agents: Callable[..., AgentProcess],  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
) -> tuple[SchedulerProcess, str, dict[str, AgentProcess]]:
    """A scheduler with tokens and the status page, and agents db-1 and db-2."""
    s = scheduler_factory(
        extra_args=[*FAST, "--tokens", str(write_tokens(tmp_path / "tokens.toml")), "--http-listen", "127.0.0.1:0"]
    )
    hosts = {h: agents(h, s.address, ["--token", AGENT_TOKEN]) for h in ("db-1", "db-2")}
    return s, page_url(s), hosts


def screenshot(driver: webdriver.Chrome, name: str, tmp_path: Path) -> Path:
    """Into tmp_path; with KVMAINT_SCREENSHOTS=DIR (how docs/ is refreshed) into DIR as well."""
    path = tmp_path / f"{name}.png"
    driver.save_screenshot(str(path))
    target = os.environ.get("KVMAINT_SCREENSHOTS")
    if target:
        shutil.copy(path, Path(target) / f"{name}.png")
    return path
