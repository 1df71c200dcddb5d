"""The calendar grid, as a table of cases: windows, the planned maintenance, deadlines and freezes land
on their days, and the page escapes what it shows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server.domain.freezes import Freeze
from server.domain.models import Addon, Maintenance, Method, Reason, Status
from server.domain.windows import Window
from server.web import calendar, pages

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # a Tuesday


FRIDAYS_14 = Window(4, 14 * 60)


def addon(name: str = "redis-a", app: str = "app", window: Window | None = FRIDAYS_14) -> Addon:
    return Addon(name, app, "premium-0", "redis", "", ("REDIS_URL",), NOW, (), window)


def maint(status: Status = Status.PENDING, **kw) -> Maintenance:
    base = dict(
        id="m-1", addon="redis-a", app="app", reason=Reason.SECURITY_PATCH, method=Method.FAILOVER,
        status=status, required_by=NOW + timedelta(days=9, hours=3), created_at=NOW,
        scheduled_for=NOW.replace(day=4, hour=14),
    )
    return Maintenance(**{**base, **kw})


def texts(cal: calendar.Calendar, row: int = 0) -> dict[str, list[str]]:
    return {d.isoformat(): [m.text for m in ms] for d, ms in zip(cal.days, cal.rows[row].cells, strict=True) if ms}


def test_windows_maintenance_and_deadline_fall_on_their_days() -> None:
    cal = calendar.build(NOW, [addon()], [maint()], [])
    assert cal.today.isoformat() == "2026-12-01" and len(cal.days) == 14
    assert texts(cal) == {
        "2026-12-04": ["window 14:00 to 18:00", "maintenance 14:00"],
        "2026-12-10": ["deadline 12:00"],
        "2026-12-11": ["window 14:00 to 18:00"],
    }


def test_a_window_crossing_midnight_shows_on_the_day_it_starts_and_a_running_one_on_its_start() -> None:
    late = addon(window=Window(1, 22 * 60))  # Tuesdays 22:00 to 02:00
    running = maint(Status.RUNNING, started_at=NOW, scheduled_for=NOW - timedelta(days=1))
    got = texts(calendar.build(NOW, [late], [running], []))
    assert got["2026-12-01"] == ["window 22:00 to 02:00", "running 09:00"]
    assert "2026-12-02" not in got and got["2026-12-08"] == ["window 22:00 to 02:00"]


def test_freezes_own_app_per_row_and_fleet_wide_apart() -> None:
    own = Freeze("f1", "app", NOW + timedelta(days=2), NOW + timedelta(days=2, hours=1), "launch", NOW)
    other = Freeze("f2", "other", NOW + timedelta(days=3), NOW + timedelta(days=4), "theirs", NOW)
    fleet = Freeze("f3", "", NOW + timedelta(days=5), NOW + timedelta(days=5, hours=2), "", NOW)
    cal = calendar.build(NOW, [addon(window=None)], [], [own, other, fleet])
    assert texts(cal) == {"2026-12-03": ["freeze launch"]}
    assert [[m.text for m in ms] for ms in cal.fleet_freezes if ms] == [["freeze"]]


def test_the_page_escapes_every_value() -> None:
    own = Freeze("f1", "app", NOW, NOW + timedelta(hours=1), '<script>alert("x")</script>', NOW)
    html = pages.calendar(calendar.build(NOW, [addon('a"b')], [], [own]), who="<op>")
    assert "<script>alert" not in html and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert 'data-addon="a&quot;b"' in html and 'href="/addons/a%22b"' in html and "&lt;op&gt;" in html


def test_a_campaigns_wave_shows_on_the_day_of_its_planned_window() -> None:
    from server.domain.campaigns import Campaign, CampaignStatus, Member, Spec

    spec = Spec("valkey-8.1", "redis_upgrade", NOW + timedelta(days=30))
    c = Campaign("c-1", spec, "all", "8.1.8", False, CampaignStatus.HALTED, 0, 3, NOW, has_canary=True)
    later = Member("redis-a", "app", 1, NOW.replace(day=11, hour=14), FRIDAYS_14, True)
    got = texts(calendar.build(NOW, [addon()], [], [], campaigns={"redis-a": (c, later)}))
    assert got["2026-12-11"] == ["window 14:00 to 18:00", "wave 1 14:00, halted"]
    assert got["2026-12-04"] == ["window 14:00 to 18:00"]
    html = pages.calendar(calendar.build(NOW, [addon()], [], [], campaigns={"redis-a": (c, later)}), "op")
    assert 'class="mark campaign"' in html and "campaign c-1 to valkey-8.1 8.1.8" in html
