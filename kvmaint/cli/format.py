"""Pure conversions from scheduler messages to what the CLI prints.

Each `*_view` turns a proto into a plain dict: that dict is what `--json` prints, and the human
renderers below only lay the same dict out as text. Protos stop here; nothing past this module
reads a message field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from kvmaint.clock import iso
from kvmaint.v1 import resources_pb2

# A value in a view: what JSON can carry and the human renderers know how to print.
Value = str | int | float | bool | None | list[Any] | dict[str, Any]
View = dict[str, Value]

# The seed's data:maintenances:info keys in the seed's order, then kvmaint's additions.
SEED_INFO_KEYS = (
    "addon_attachments", "addon_description", "addon_kind", "addon_name", "addon_plan", "addon_window",
    "app_name", "completed_at", "duration_approximate", "duration_seconds", "method", "reason",
    "required_by", "scheduled_for", "server_created_at", "started_at", "status", "window",
)
EXTRA_INFO_KEYS = ("id", "previously_scheduled_for", "current_step", "failure_reason", "write_pause_ms",
                   "redirect_ms", "attempts", "last_failure_reason", "needs_operator", "target_build",
                   "target_version")
INFO_KEYS = SEED_INFO_KEYS + EXTRA_INFO_KEYS


# --- scalars -------------------------------------------------------------------------------------

def ts_datetime(ts: Timestamp | None) -> datetime | None:
    """None for an unset timestamp (proto3 reads it as the epoch, which never means a real time here)."""
    if ts is None or (ts.seconds == 0 and ts.nanos == 0):
        return None
    return ts.ToDatetime(tzinfo=UTC)


def ts_iso(ts: Timestamp | None) -> str | None:
    """ISO 8601 UTC with milliseconds, the seed's "2023-04-28T18:04:21.141+00:00"."""
    dt = ts_datetime(ts)
    return iso(dt) if dt else None


def heroku_time(dt: datetime) -> str:
    """The redis:info form of the seed: "2016-02-01 00:00:00 +0000"."""
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S %z")


def enum_label(enum: Any, value: int) -> str:
    """MAINTENANCE_STATUS_COMPLETED -> "completed"; the unspecified value -> ""; unknown numbers as digits."""
    if value == 0:
        return ""
    try:
        name: str = enum.Name(value)
    except ValueError:
        return str(value)
    prefix = enum.Name(0).removesuffix("UNSPECIFIED")
    return name.removeprefix(prefix).lower()


def enum_labels(enum: Any) -> list[str]:
    """Every label of an enum but the unspecified one, in declaration order."""
    return [enum_label(enum, v) for v in enum.values() if v != 0]


def plan_title(plan: str) -> str:
    """"premium-7" -> "Premium 7", as the seed's redis:info shows plans."""
    return " ".join(part.capitalize() for part in plan.split("-")) if plan else ""


def window_text(window: resources_pb2.Window | None) -> str:
    """The server's description, or the same sentence built from day and time when it sent none."""
    if window is None or not (window.day or window.description):
        return ""
    if window.description:
        return str(window.description)
    hours = window.duration_hours or 4
    try:
        start = datetime.strptime(window.start_time, "%H:%M")
    except ValueError:
        return f"{window.day}s {window.start_time} UTC"
    end = start + timedelta(hours=hours)
    return f"{window.day}s {start:%H:%M} to {end:%H:%M} UTC"


def server_address(server: resources_pb2.Server) -> str:
    return f"{server.address.host}:{server.address.port}" if server.address.host else ""


def _servers_by_role(servers: Iterable[resources_pb2.Server]) -> dict[str, str]:
    by_role: dict[str, str] = {}
    for server in servers:
        role = enum_label(resources_pb2.ServerRole, server.role)
        by_role.setdefault(role, server_address(server))
    return by_role


# --- views -----------------------------------------------------------------------------------------

def app_view(app: resources_pb2.App) -> View:
    return {
        "name": app.name,
        "owner_email": app.owner_email,
        "maintenance_mode": app.maintenance_mode,
        "created_at": ts_iso(app.create_time),
    }


def addon_view(addon: resources_pb2.Addon) -> View:
    roles = _servers_by_role(addon.servers)
    return {
        "name": addon.name,
        "app": addon.app,
        "plan": addon.plan,
        "kind": addon.kind,
        "description": addon.description,
        "attachments": list(addon.attachments),
        "window": window_text(addon.window) if addon.HasField("window") else "",
        "primary": roles.get("primary", ""),
        "standby": roles.get("standby", ""),
        "hidden_standby": roles.get("hidden_standby", ""),
        "created_at": ts_iso(addon.server_create_time),
        "servers": [
            {"role": enum_label(resources_pb2.ServerRole, s.role), "address": server_address(s),
             "endpoint": s.endpoint, "build": s.build, "version": s.version}
            for s in addon.servers
        ],
    }


def running_text(server: Mapping[str, Value]) -> str:
    """"db-1:7001 (valkey-8.1, version 8.1.8)", or the bare address when no agent reported it."""
    address = str(server.get("address") or "")
    if not server.get("version"):
        return address
    build = f"{server['build']}, " if server.get("build") else ""
    return f"{address} ({build}version {server['version']})"


def addon_info_view(resp: Any) -> View:
    """GetAddonInfoResponse -> the redis:info fields."""
    addon = addon_view(resp.addon)
    required_by = ts_datetime(resp.maintenance_required_by)
    if required_by is not None:
        maintenance = f"required by {heroku_time(required_by)}" + (", overdue" if resp.overdue else "")
    else:
        maintenance = resp.maintenance or "not required"
    return {
        "name": addon["name"],
        "app": addon["app"],
        "attachments": addon["attachments"],
        "plan": addon["plan"],
        "status": resp.status,
        "status_reason": resp.status_reason,
        "created_at": addon["created_at"],
        "maintenance": maintenance,
        "maintenance_required_by": iso(required_by) if required_by else None,
        "overdue": bool(resp.overdue),
        "maintenance_window": addon["window"],
        "primary": addon["primary"],
        "standby": addon["standby"],
        "hidden_standby": addon["hidden_standby"],
        "servers": addon["servers"],
    }


def maintenance_info_view(info: Any) -> View:
    """MaintenanceInfo -> INFO_KEYS in order. Unset times are None; counts are None until meaningful."""
    completed = ts_iso(info.completed_at)
    view: View = {
        "addon_attachments": info.addon_attachments,
        "addon_description": info.addon_description,
        "addon_kind": info.addon_kind,
        "addon_name": info.addon_name,
        "addon_plan": info.addon_plan,
        "addon_window": info.addon_window,
        "app_name": info.app_name,
        "completed_at": completed,
        "duration_approximate": info.duration_approximate,
        "duration_seconds": int(info.duration_seconds) if completed or info.duration_seconds else None,
        "method": info.method,
        "reason": info.reason,
        "required_by": ts_iso(info.required_by),
        "scheduled_for": ts_iso(info.scheduled_for),
        "server_created_at": ts_iso(info.server_created_at),
        "started_at": ts_iso(info.started_at),
        "status": info.status,
        "window": info.window,
        "id": info.id,
        "previously_scheduled_for": ts_iso(info.previously_scheduled_for),
        "current_step": info.current_step,
        "failure_reason": info.failure_reason,
        "write_pause_ms": _write_pause(int(info.write_pause_ms), completed is not None),
        "redirect_ms": int(info.redirect_ms) if info.HasField("redirect_ms") else None,
        "attempts": int(info.attempts),
        "last_failure_reason": info.last_failure_reason,
        "needs_operator": bool(info.needs_operator),
        "target_build": info.target_build,
        "target_version": info.target_version,
    }
    return view


def _write_pause(ms: int, completed: bool) -> int | None:
    """-1 means not measured; 0 is only a measurement once the maintenance completed."""
    if ms < 0 or (ms == 0 and not completed):
        return None
    return ms


def history_entry_view(entry: Any) -> View:
    return {
        "time": ts_iso(entry.time),
        "status": enum_label(resources_pb2.MaintenanceStatus, entry.status),
        "step": entry.step,
        "message": entry.message,
    }


def maintenance_view(m: resources_pb2.Maintenance) -> View:
    completed = ts_iso(m.completed_at)
    return {
        "id": m.id,
        "addon": m.addon,
        "app": m.app,
        "status": enum_label(resources_pb2.MaintenanceStatus, m.status),
        "reason": enum_label(resources_pb2.MaintenanceReason, m.reason),
        "method": enum_label(resources_pb2.MaintenanceMethod, m.method),
        "required_by": ts_iso(m.required_by),
        "scheduled_for": ts_iso(m.scheduled_for),
        "previously_scheduled_for": ts_iso(m.previously_scheduled_for),
        "started_at": ts_iso(m.started_at),
        "completed_at": completed,
        "duration_seconds": int(m.duration_seconds) if completed or m.duration_seconds else None,
        "window": window_text(m.window) if m.HasField("window") else "",
        "current_step": m.current_step,
        "failure_reason": m.failure_reason,
        "write_pause_ms": _write_pause(int(m.write_pause_ms), completed is not None),
        "redirect_ms": int(m.redirect_ms) if m.HasField("redirect_ms") else None,
        "attempts": int(m.attempts),
        "last_failure_reason": m.last_failure_reason,
        "needs_operator": bool(m.needs_operator),
        "target_build": m.target_build,
        "target_version": m.target_version,
        "created_at": ts_iso(m.create_time),
        "history": [history_entry_view(e) for e in m.history],
    }


def agent_view(agent: Any) -> View:
    """AgentInfo (ListAgents): a database host's agent and the servers it last reported."""
    return {
        "host_id": agent.host_id,
        "advertise_host": agent.advertise_host,
        "agent_version": agent.agent_version,
        "connected": bool(agent.connected),
        "status": "connected" if agent.connected else "disconnected",
        "servers": [
            {"port": int(s.port), "role": s.role, "reachable": bool(s.reachable),
             "lag_bytes": int(s.lag_bytes) if s.lag_bytes >= 0 else None, "managed": bool(s.managed),
             "build": s.build, "version": s.version, "supervision": s.supervision,
             "restarts": int(s.restarts), "supervision_detail": s.supervision_detail}
            for s in agent.servers
        ],
        "builds": [{"name": b.name, "version": b.version, "kind": b.kind, "default": bool(b.is_default)}
                   for b in agent.builds],
    }


def builds_rows(agents: Sequence[Mapping[str, Value]]) -> list[View]:
    """`kvmaint builds`: one row per (name, version) across connected hosts, with the hosts that have it."""
    hosts: dict[tuple[str, str], list[str]] = {}
    kinds: dict[tuple[str, str], str] = {}
    for agent in agents:
        builds = agent.get("builds")
        for b in builds if isinstance(builds, list) and agent.get("connected") else []:
            key = (str(b["name"]), str(b["version"]))
            hosts.setdefault(key, []).append(str(agent["host_id"]))
            kinds[key] = str(b["kind"])
    return [{"name": name, "version": version, "kind": kinds[key], "hosts": hosts[key]}
            for key in sorted(hosts) for name, version in [key]]


def agent_servers_text(view: Mapping[str, Value]) -> str:
    """"7001 master, 7002 slave (lag 0 B), 7003 unreachable" for the agents table."""
    servers = view.get("servers")
    parts = []
    for server in servers if isinstance(servers, list) else []:
        if not server["reachable"]:
            parts.append(f"{server['port']} unreachable{_keeper_note(server)}")
            continue
        text = f"{server['port']} {server['role'] or '?'}"
        if server["lag_bytes"] is not None and server["role"] == "slave":
            text += f" (lag {server['lag_bytes']} B)"
        if server.get("version"):
            text += f" [{server['build'] + ' ' if server.get('build') else ''}{server['version']}]"
        parts.append(text)
    return ", ".join(parts)


_KEEPER_NOTES = {
    "crash_looping": "crash-looping",
    "restarting": "restarting",
    "no_role": "no role in the record: left down",
    "held": "held by a maintenance",
}


def _keeper_note(server: Mapping[str, Any]) -> str:
    """" (crash-looping after 5 starts)" for a down server the agent's keeper reports on."""
    note = _KEEPER_NOTES.get(str(server.get("supervision") or ""))
    if note is None:
        return ""
    starts = int(server.get("restarts") or 0)
    if starts and server.get("supervision") in ("crash_looping", "restarting"):
        note += f" after {starts} start{'s' if starts > 1 else ''}"
    return f" ({note})"


def window_state_view(state: Any) -> View:
    return {
        "window": window_text(state.window) if state.HasField("window") else "",
        "previous_window": window_text(state.previous_window) if state.HasField("previous_window") else "",
        "scheduled_for": ts_iso(state.scheduled_for),
        "previously_scheduled_for": ts_iso(state.previously_scheduled_for),
    }


def schedule_view(resp: Any) -> View:
    m = resp.maintenance
    return {
        "scheduled_for": ts_iso(m.scheduled_for),
        "previously_scheduled_for": ts_iso(m.previously_scheduled_for),
        "explanation": resp.explanation,
        "required_by": ts_iso(m.required_by),
        "window": window_text(m.window) if m.HasField("window") else "",
        "id": m.id,
        "addon": m.addon,
        "app": m.app,
        "status": enum_label(resources_pb2.MaintenanceStatus, m.status),
    }


def event_view(event: resources_pb2.Event) -> View:
    return {
        "sequence": int(event.sequence),
        "time": ts_iso(event.time),
        "type": enum_label(resources_pb2.EventType, event.type),
        "app": event.app,
        "addon": event.addon,
        "maintenance_id": event.maintenance_id,
        "message": event.message,
        "attributes": dict(sorted(event.attributes.items())),
    }


def progress_view(resp: Any) -> View:
    """One WaitMaintenanceResponse: where the maintenance is and the agents' live figures."""
    m = resp.maintenance
    return {
        "id": m.id,
        "addon": m.addon,
        "status": enum_label(resources_pb2.MaintenanceStatus, m.status),
        "step": m.current_step,
        "standby_lag_bytes": int(resp.standby_lag_bytes),
        "elapsed_seconds": round(float(resp.elapsed_seconds), 1),
        "message": resp.message,
    }


# --- human layout ----------------------------------------------------------------------------------

def cell(value: Value) -> str:
    """How one view value reads in a table or block: unset is empty, lists are comma-joined."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return ", ".join(cell(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={cell(v)}" for k, v in value.items())
    return str(value)


def render_block(pairs: Sequence[tuple[str, Value]]) -> str:
    """Aligned `key: value` lines, values starting in one column; empty values leave just `key:`."""
    if not pairs:
        return ""
    width = max(len(key) for key, _ in pairs) + 1
    return "\n".join(f"{key + ':':<{width}} {cell(value)}".rstrip() for key, value in pairs)


def render_view(view: Mapping[str, Value], keys: Sequence[str]) -> str:
    return render_block([(key, view.get(key)) for key in keys])


Column = tuple[str, str]  # (header, view key)


def render_table(rows: Sequence[Mapping[str, Value]], columns: Sequence[Column]) -> str:
    """A header and rows in columns two spaces apart, padded to the widest cell; no colour."""
    cells = [[header for header, _ in columns]]
    cells += [[cell(row.get(key)) for _, key in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = ("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in cells)
    return "\n".join(line.rstrip() for line in lines)


def info_block(view: Mapping[str, Value]) -> str:
    """The data:maintenances:info block."""
    return render_view(view, INFO_KEYS)


def addon_info_block(view: Mapping[str, Value]) -> str:
    """The redis:info section of one add-on: a `===` heading, then aligned labels."""
    attachments = cell(view.get("attachments"))
    heading = f"=== {view['name']} ({attachments})" if attachments else f"=== {view['name']}"
    pairs: list[tuple[str, Value]] = [
        ("Plan", plan_title(str(view.get("plan") or ""))),
        ("Status", _status_text(view)),
        ("Created", view.get("created_at")),
        ("Maintenance", view.get("maintenance")),
        ("Maintenance window", view.get("maintenance_window")),
    ]
    servers = view.get("servers")
    by_role = {s["role"]: running_text(s) for s in servers} if isinstance(servers, list) else {}
    pairs += [("Primary", by_role.get("primary", view.get("primary"))),
              ("Standby", by_role.get("standby", view.get("standby")))]
    if view.get("hidden_standby"):
        pairs.append(("Hidden standby", by_role.get("hidden_standby", view["hidden_standby"])))
    return f"{heading}\n{render_block(pairs)}"


def _status_text(view: Mapping[str, Value]) -> Value:
    """"available", or "degraded: the standby db-2:7002 is down (...)" with the reason."""
    reason = view.get("status_reason")
    status = view.get("status")
    return f"{status}: {reason}" if reason and status not in ("available", "maintenance") else status


def config_block(app: str, config_vars: Mapping[str, str]) -> str:
    pairs: list[tuple[str, Value]] = [(k, v) for k, v in sorted(config_vars.items())]
    body = render_block(pairs)
    return f"=== {app} Config Vars" + (f"\n{body}" if body else "")


# Event lines stream, so their columns cannot be measured first: fixed minimum widths keep them aligned.
_EVENT_WIDTHS = (("sequence", 6, True), ("time", 29, False), ("type", 24, False),
                 ("app", 14, False), ("addon", 20, False))


def event_line(view: Mapping[str, Value]) -> str:
    parts = []
    for key, width, right in _EVENT_WIDTHS:
        text = cell(view.get(key))
        parts.append(text.rjust(width) if right else text.ljust(width))
    parts.append(cell(view.get("message")))
    return "  ".join(parts).rstrip()


def progress_line(view: Mapping[str, Value]) -> str:
    """One live progress line of WaitMaintenance: elapsed, status, step, standby lag (when measured),
    message."""
    elapsed = float(view.get("elapsed_seconds") or 0.0)  # type: ignore[arg-type]
    parts = [f"[{elapsed:7.1f}s]", cell(view.get("status")) or "-"]
    if view.get("step"):
        parts.append(f"step {cell(view['step'])}")
    lag = view.get("standby_lag_bytes")
    if isinstance(lag, int) and lag >= 0:  # the server sends -1 while no agent has measured it
        parts.append(f"standby lag {lag} bytes")
    if view.get("message"):
        parts.append(cell(view["message"]))
    return "  ".join(parts)


APP_COLUMNS: list[Column] = [("NAME", "name"), ("OWNER", "owner_email"),
                             ("MAINTENANCE MODE", "maintenance_mode"), ("CREATED", "created_at")]
ADDON_COLUMNS: list[Column] = [("NAME", "name"), ("APP", "app"), ("PLAN", "plan"),
                               ("ATTACHMENTS", "attachments"), ("WINDOW", "window"),
                               ("PRIMARY", "primary"), ("STANDBY", "standby")]
MAINTENANCE_COLUMNS: list[Column] = [("ID", "id"), ("ADDON", "addon"), ("STATUS", "status"),
                                     ("REASON", "reason"), ("METHOD", "method"),
                                     ("REQUIRED BY", "required_by"), ("SCHEDULED FOR", "scheduled_for")]
HISTORY_COLUMNS: list[Column] = [("ID", "id"), ("STATUS", "status"), ("REASON", "reason"),
                                 ("METHOD", "method"), ("SCHEDULED FOR", "scheduled_for"),
                                 ("STARTED AT", "started_at"), ("COMPLETED AT", "completed_at"),
                                 ("DURATION (S)", "duration_seconds")]
REQUIRED_COLUMNS: list[Column] = [("ADDON", "addon"), ("APP", "app"), ("ID", "id"),
                                  ("REASON", "reason"), ("METHOD", "method"),
                                  ("REQUIRED BY", "required_by"), ("SCHEDULED FOR", "scheduled_for")]
BUILD_COLUMNS: list[Column] = [("NAME", "name"), ("VERSION", "version"), ("HOSTS", "hosts")]
AGENT_COLUMNS: list[Column] = [("HOST", "host_id"), ("ADVERTISED AS", "advertise_host"), ("STATUS", "status"),
                               ("VERSION", "agent_version"), ("SERVERS", "servers_text")]
WINDOW_KEYS = ("window", "previous_window", "scheduled_for", "previously_scheduled_for")
SCHEDULE_KEYS = ("scheduled_for", "previously_scheduled_for", "explanation")
