"""What a person sees on the status page, in a real chromium: the calendar shows a scheduled maintenance
on its day, a running maintenance's step changes on the page while it runs, and an app token does not
see another app. The scheduler, agents and redis-servers are real processes."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime, timedelta

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By

from kvmaint.v1 import fleet_pb2 as fpb
from kvmaint.v1 import maintenance_pb2 as mpb
from kvmaint.v1 import resources_pb2 as rpb
from tests.conftest import AGENT_TOKEN, APP_TOKENS, OPERATOR_TOKEN
from tests.support.eventually import eventually
from tests.support.rpc import api
from tests.web.conftest import screenshot

APP, OTHER = "example-app", "other-app"


def ts(t: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(t)
    return out


def create(a, app: str, plan: str) -> rpb.Addon:
    try:
        a.CreateApp(fpb.CreateAppRequest(name=app, owner_email=f"owner@{app}.example"))
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    return a.CreateAddon(fpb.CreateAddonRequest(app=app, plan=plan, attachments=["REDIS_URL"]), timeout=60).addon


def wait_agents(a) -> None:
    def connected() -> bool:
        return {"db-1", "db-2"} <= {x.host_id for x in a.ListAgents(fpb.ListAgentsRequest()).agents if x.connected}

    return eventually(connected, timeout=20, message="agents connected")


async def login(driver, url: str, token: str, path: str = "/") -> None:
    driver.get(url.rstrip("/") + path)
    assert driver.find_element(By.TAG_NAME, "h1").text == "Log in"  # redirected to the form
    form = driver.find_element(By.TAG_NAME, "form")
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.ID, "login").click()

    def answered() -> bool:  # the click navigates: wait until the form page is gone
        try:
            form.is_displayed()
        except StaleElementReferenceException:
            return True
        return False

    await eventually(answered, timeout=15, message="the login form answered")


def text_of(driver, css: str) -> str:
    return " ".join(el.text for el in driver.find_elements(By.CSS_SELECTOR, css))


async def test_the_calendar_shows_a_scheduled_maintenance_on_its_day(web_fleet, browser, tmp_path) -> None:
    scheduler, url, _ = web_fleet
    now = datetime.now(UTC)
    with api(scheduler.address, OPERATOR_TOKEN) as a:
        await wait_agents(a)
        addon = create(a, APP, "premium-0")
        window_day = (now + timedelta(days=3)).strftime("%A")
        a.UpdateWindow(mpb.UpdateWindowRequest(app=APP, addon=addon.name, day=window_day, time="14:00"))
        a.RequireMaintenance(
            fpb.RequireMaintenanceRequest(
                addons=fpb.AddonNames(names=[addon.name]),
                reason=rpb.MAINTENANCE_REASON_SECURITY_PATCH,
                required_by=ts(now + timedelta(days=10)),
            )
        )
        a.CreateFreeze(
            mpb.CreateFreezeRequest(
                app=APP, start_time=ts(now + timedelta(days=5)), end_time=ts(now + timedelta(days=6)),
                reason="<b>launch</b> week",
            )
        )
        info = a.GetMaintenanceInfo(mpb.GetMaintenanceInfoRequest(app=APP, addon=addon.name)).info
    day = info.scheduled_for.ToDatetime(tzinfo=UTC).date()
    assert day.strftime("%A") == window_day

    await login(browser, url, OPERATOR_TOKEN)
    row = f'tr[data-addon="{addon.name}"]'
    assert browser.find_element(By.TAG_NAME, "h1").text == "Fleet calendar"
    cell = browser.find_element(By.CSS_SELECTOR, f'{row} td[data-day="{day.isoformat()}"]')
    assert "maintenance 14:00" in cell.text and "window 14:00 to 18:00" in cell.text
    # Only on that day; today is marked; the deadline and the freeze are on theirs, its reason as text.
    days = browser.find_elements(By.CSS_SELECTOR, f"{row} td")
    assert len(days) == 14 and sum("maintenance" in d.text for d in days) == 1
    assert "today" in browser.find_element(By.CSS_SELECTOR, "th.today").text
    deadline = (now + timedelta(days=10)).date().isoformat()
    assert "deadline" in browser.find_element(By.CSS_SELECTOR, f'{row} td[data-day="{deadline}"]').text
    freeze = browser.find_element(By.CSS_SELECTOR, f'{row} td[data-day="{(now + timedelta(days=5)).date()}"]')
    assert "freeze <b>launch</b> week" in freeze.text  # escaped: shown, not interpreted
    screenshot(browser, "status-calendar", tmp_path)

    browser.find_element(By.LINK_TEXT, addon.name).click()
    assert browser.find_element(By.ID, "window").text == f"{window_day}s 14:00 to 18:00 UTC"
    servers = browser.find_element(By.ID, "servers").text
    assert "primary" in servers and "standby" in servers and "up" in servers
    browser.find_element(By.LINK_TEXT, "Agents").click()
    agents_text = browser.find_element(By.ID, "agents").text
    assert "db-1" in agents_text and "db-2" in agents_text and "connected" in agents_text
    screenshot(browser, "status-agents", tmp_path)


async def test_a_running_maintenance_changes_step_on_the_page_without_a_reload(web_fleet, browser, tmp_path) -> None:
    scheduler, url, hosts = web_fleet
    with api(scheduler.address, OPERATOR_TOKEN) as a:
        await wait_agents(a)
        addon = create(a, APP, "premium-0")
        standby = next(s for s in addon.servers if s.role == rpb.SERVER_ROLE_STANDBY)
        standby_port = int(standby.endpoint.rsplit(":", 1)[1])
        pid = next(p for h in hosts.values() if (p := h.server_pid(standby_port)))
        await login(browser, url, OPERATOR_TOKEN, "/running")
        await eventually(lambda: "live" in browser.find_element(By.ID, "live").text, timeout=10)
        assert "Nothing running." in browser.find_element(By.ID, "running").text
        browser.execute_script("window.kvmaintNoReload = true")
        # A standby that stops answering holds the maintenance at catch_up, long enough to watch.
        os.kill(pid, signal.SIGSTOP)
        try:
            a.RequireMaintenance(
                fpb.RequireMaintenanceRequest(
                    addons=fpb.AddonNames(names=[addon.name]), reason=rpb.MAINTENANCE_REASON_SECURITY_PATCH
                )
            )
            a.RunMaintenance(mpb.RunMaintenanceRequest(app=APP, addon=addon.name, confirm=APP))
            row = 'tr[data-maintenance] '
            await eventually(lambda: text_of(browser, row + "td.step") == "catch_up", timeout=20, message="catch_up shown")
            assert text_of(browser, row + "th") == addon.name
            screenshot(browser, "status-running", tmp_path)
        finally:
            os.kill(pid, signal.SIGCONT)
        seen: set[str] = set()

        def moved_on() -> bool:
            step = text_of(browser, row + "td.step")
            seen.add(step)
            return step not in ("", "catch_up") or "Nothing running." in browser.find_element(By.ID, "running").text

        await eventually(moved_on, timeout=30, interval=0.01, message="the step moved on")
        assert browser.execute_script("return window.kvmaintNoReload") is True  # the same page, updated live
        info = a.GetMaintenanceInfo(mpb.GetMaintenanceInfoRequest(app=APP, addon=addon.name)).info
        await eventually(
            lambda: a.GetMaintenanceInfo(mpb.GetMaintenanceInfoRequest(app=APP, addon=addon.name)).info.status
            == "completed",
            timeout=30,
        )
        await eventually(lambda: "Nothing running." in browser.find_element(By.ID, "running").text, timeout=10)
        assert info.addon_name == addon.name

        browser.get(url.rstrip("/") + f"/addons/{addon.name}")
        history = browser.find_element(By.ID, "history").text
        assert "completed" in history and " ms" in history  # with its duration and write pause
        screenshot(browser, "status-addon", tmp_path)


async def test_an_app_token_does_not_see_another_app(web_fleet, browser, tmp_path) -> None:
    scheduler, url, _ = web_fleet
    with api(scheduler.address, OPERATOR_TOKEN) as a:
        await wait_agents(a)
        mine = create(a, APP, "mini")
        theirs = create(a, OTHER, "mini")
    await login(browser, url, APP_TOKENS[APP])
    calendar = browser.find_element(By.ID, "calendar").text
    assert mine.name in calendar and theirs.name not in calendar and OTHER not in calendar
    assert f"app {APP}" in browser.find_element(By.TAG_NAME, "header").text
    browser.get(url.rstrip("/") + f"/addons/{theirs.name}")
    assert "No add-on" in browser.find_element(By.CSS_SELECTOR, "[role=alert]").text
    assert OTHER not in browser.page_source
    browser.get(url.rstrip("/") + f"/?app={OTHER}")  # an app token cannot widen its scope
    assert theirs.name not in browser.find_element(By.ID, "calendar").text
    browser.get(url.rstrip("/") + "/agents")
    assert "Only an operator" in browser.find_element(By.CSS_SELECTOR, "[role=alert]").text
    # The token lives in an HttpOnly cookie: page scripts cannot read it.
    assert APP_TOKENS[APP] not in browser.execute_script("return document.cookie")
    # A wrong token is refused at the form, with the reason.
    browser.delete_all_cookies()
    await login(browser, url, "not-a-token")
    assert "not valid" in browser.find_element(By.CSS_SELECTOR, "[role=alert]").text
    await login(browser, url, AGENT_TOKEN)
    assert "An agent token cannot" in browser.find_element(By.CSS_SELECTOR, "[role=alert]").text
