"""Server-rendered HTML for the status page. Every value passes through `e()` (HTML escaping) or
`q()` (URL quoting); the only script is the small live updater of the running page, which writes text
with textContent, never HTML."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from urllib.parse import quote

from server.domain.models import Addon, Maintenance
from server.web.calendar import Calendar, Mark


def e(value: object) -> str:
    return html.escape(str(value), quote=True)


def q(value: str) -> str:
    return quote(value, safe="")


def when(t: datetime | None) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if t else "—"


def layout(title: str, body: str, who: str, nav: bool = True) -> str:
    links = (
        '<a href="/">Calendar</a><a href="/running">Running</a><a href="/agents">Agents</a>' if nav else ""
    )
    logout = (
        '<form method="post" action="/logout" style="margin:0"><button>Log out</button></form>' if who else ""
    )
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{e(title)} · kvmaint</title>'
        '<link rel="stylesheet" href="/static/style.css"></head>'
        f"<body><header><strong>kvmaint</strong>{links}"
        f'<span class="who">{e(who)}</span>{logout}</header>'
        f"<main><h1>{e(title)}</h1>{body}</main></body></html>"
    )


def login(error: str = "", next_path: str = "/") -> str:
    err = f'<p class="error" role="alert">{e(error)}</p>' if error else ""
    body = (
        f'{err}<form class="login" method="post" action="/login">'
        f'<input type="hidden" name="next" value="{e(next_path)}">'
        '<label>Token <input type="password" name="token" id="token" autocomplete="current-password" '
        'size="40" autofocus></label> <button type="submit" id="login">Log in</button></form>'
        '<p class="muted">An operator token sees the whole fleet; an app token sees its app only.</p>'
    )
    return layout("Log in", body, "", nav=False)


def _marks(marks: Iterable[Mark]) -> str:
    return "".join(f'<span class="mark {e(m.kind)}" title="{e(m.title)}">{e(m.text)}</span>' for m in marks)


def calendar(cal: Calendar, who: str, truncated: int = 0) -> str:
    head = "".join(
        f'<th class="{"today" if d == cal.today else ""}" data-day="{d.isoformat()}">'
        f"{d.strftime('%a')}<br>{d.strftime('%b %d')}{'<br>today' if d == cal.today else ''}</th>"
        for d in cal.days
    )
    rows = []
    if any(cal.fleet_freezes):
        cells = "".join(
            f'<td class="{"today" if d == cal.today else ""}">{_marks(ms)}</td>'
            for d, ms in zip(cal.days, cal.fleet_freezes, strict=True)
        )
        rows.append(f'<tr class="fleet"><th>whole fleet</th>{cells}</tr>')
    for r in cal.rows:
        cells = "".join(
            f'<td class="{"today" if d == cal.today else ""}" data-day="{d.isoformat()}">{_marks(ms)}</td>'
            for d, ms in zip(cal.days, r.cells, strict=True)
        )
        rows.append(
            f'<tr data-addon="{e(r.addon)}"><th><a href="/addons/{q(r.addon)}">{e(r.addon)}</a>'
            f'<br><span class="muted">{e(r.app)}</span></th>{cells}</tr>'
        )
    more = (
        f'<p class="muted">{truncated} more add-ons not shown: filter with ?app=NAME.</p>'
        if truncated
        else ""
    )
    empty = "" if cal.rows else '<p class="muted">No add-ons.</p>'
    body = (
        f'<p class="muted">The next {len(cal.days)} days (UTC): windows, planned maintenances, deadlines, '
        f'freezes.</p><table class="cal" id="calendar"><tr><th>add-on</th>{head}</tr>{"".join(rows)}'
        f"</table>{empty}{more}"
    )
    return layout("Fleet calendar", body, who)


def running(rows: Sequence[dict[str, str]], who: str) -> str:
    """`rows` as `running_rows` makes them; the page then follows the event stream."""
    trs = (
        "".join(
            f'<tr data-maintenance="{e(r["id"])}">'
            f'<th><a href="/addons/{q(r["addon"])}">{e(r["addon"])}</a></th><td>{e(r["app"])}</td>'
            f'<td class="status">{e(r["status"])}</td><td class="step">{e(r["step"])}</td>'
            f'<td class="lag">{e(r["lag"])}</td><td class="elapsed">{e(r["elapsed"])}</td>'
            f'<td class="note">{e(r["note"])}</td></tr>'
            for r in rows
        )
        or '<tr><td colspan="7" class="muted">Nothing running.</td></tr>'
    )
    body = (
        '<p id="live" class="muted">connecting…</p><table id="running"><thead><tr><th>add-on</th><th>app</th>'
        "<th>status</th><th>step</th><th>standby lag</th><th>elapsed</th><th>note</th></tr></thead>"
        f'<tbody id="running-body">{trs}</tbody></table><script src="/static/running.js"></script>'
    )
    return layout("Running maintenances", body, who)


def addon_page(
    addon: Addon,
    servers: Sequence[tuple[str, str, str, str]],
    history: Sequence[Maintenance],
    active: Maintenance | None,
    who: str,
) -> str:
    """`servers`: (endpoint, role, build, state) as the agents last reported them."""
    srv = "".join(
        f"<tr><td>{e(ep)}</td><td>{e(role)}</td><td>{e(build)}</td><td>{e(state)}</td></tr>"
        for ep, role, build, state in servers
    )
    hist = (
        "".join(
            f"<tr><td>{e(when(m.started_at or m.created_at))}</td><td>{e(m.reason.value)}</td>"
            f'<td class="{_status_class(m)}">'
            f"{e(m.status.value)}</td><td>{e(f'{m.duration_seconds} s' if m.completed_at else '—')}</td>"
            f"<td>{e(f'{m.write_pause_ms} ms' if m.write_pause_ms >= 0 else '—')}</td>"
            f"<td>{e(m.failure_reason)}</td></tr>"
            for m in history
        )
        or '<tr><td colspan="6" class="muted">No maintenance yet.</td></tr>'
    )
    pending = (
        f"<p>Next: <strong>{e(active.status.value)}</strong> {e(active.reason.value)} maintenance, "
        f"scheduled for {e(when(active.scheduled_for))}, required by {e(when(active.required_by))}.</p>"
        if active
        else ""
    )
    body = (
        f"<p>App <strong>{e(addon.app)}</strong> · plan {e(addon.plan)} · "
        f"attached as {e(', '.join(addon.attachments))}</p>"
        f'<p>Maintenance window: <strong id="window">{e(addon.window.describe() if addon.window else "none")}'
        f'</strong></p>{pending}<h2>Servers</h2><table id="servers"><tr><th>server</th><th>role</th>'
        f'<th>build</th><th>state</th></tr>{srv}</table><h2>History</h2><table id="history"><tr><th>started'
        f"</th><th>reason</th><th>status</th><th>duration</th><th>write pause</th><th>failure</th></tr>{hist}"
        "</table>"
    )
    return layout(f"Add-on {addon.name}", body, who)


def _status_class(m: Maintenance) -> str:
    return {"completed": "ok", "failed": "bad"}.get(m.status.value, "")


def agents(rows: Sequence[tuple[str, str, str, bool, Sequence[tuple[int, str, str, bool]]]], who: str) -> str:
    """(host, address, agent version, connected, [(port, role, version, reachable)])."""
    trs = []
    for host, address, version, connected, servers in rows:
        srv = ", ".join(
            f"{port} {role} {ver}" + ("" if reachable else " (unreachable)")
            for port, role, ver, reachable in servers
        )
        state = '<span class="ok">connected</span>' if connected else '<span class="bad">disconnected</span>'
        trs.append(
            f'<tr data-host="{e(host)}"><th>{e(host)}</th><td>{e(address)}</td><td>{state}</td>'
            f"<td>{e(version or '—')}</td><td>{e(srv or '—')}</td></tr>"
        )
    body = (
        '<table id="agents"><tr><th>host</th><th>address</th><th>connection</th><th>agent version</th>'
        f"<th>servers (port, role, version)</th></tr>{''.join(trs)}</table>"
    )
    return layout("Agents", body, who)


def message(title: str, text: str, who: str) -> str:
    return layout(title, f'<p class="error" role="alert">{e(text)}</p>', who)
