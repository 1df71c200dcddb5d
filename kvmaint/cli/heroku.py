"""The `--json` shapes of the commands Heroku's CLI has (heroku/cli `src/commands/data/maintenances/`):
its Data API objects, built from kvmaint's flat views, with kvmaint's own fields as extra keys.

- `data:maintenances:info`, `data:maintenances`, `data:maintenances:history`: the Maintenance object,
  `{addon: {attachments[], kind, name, plan, window}, app: {name}, completed_at, duration_seconds, method,
  previously_scheduled_for, reason, required_by, scheduled_for, server_created_at, started_at, status,
  window}`.
- `data:maintenances:window` and `window:update`: the Window object, `{window, previous_window,
  scheduled_at, previously_scheduled_at}`.

Pure functions of views (dicts), so they are tested without a scheduler; unset values are null.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kvmaint.cli.format import Value, View

# Heroku's Maintenance keys after `addon` and `app`, in its order.
MAINTENANCE_KEYS = ("completed_at", "duration_seconds", "method", "previously_scheduled_for", "reason",
                    "required_by", "scheduled_for", "server_created_at", "started_at", "status", "window")
# kvmaint's additions to data:maintenances:info, after Heroku's keys.
INFO_EXTRA_KEYS = ("id", "duration_approximate", "current_step", "failure_reason", "write_pause_ms",
                   "attempts", "last_failure_reason", "needs_operator", "target_build", "target_version")
# kvmaint's additions to the list and history items (a Maintenance message carries its steps).
ITEM_EXTRA_KEYS = ("id", "current_step", "failure_reason", "write_pause_ms", "attempts",
                   "last_failure_reason", "needs_operator", "target_build", "target_version", "created_at",
                   "history")
WINDOW_KEYS = ("window", "previous_window", "scheduled_at", "previously_scheduled_at")


def _text_or_null(value: Value) -> Value:
    """Heroku sends null where kvmaint's views hold an empty string (no window, nothing scheduled)."""
    return None if value == "" else value


def attachments(value: Value) -> list[str]:
    """A view's attachments, a list or the "REDIS_URL, CACHE_URL" of MaintenanceInfo (config var names
    hold no comma or space, so the split is exact)."""
    if isinstance(value, list):
        return [str(v) for v in value]
    return [part for part in str(value or "").split(", ") if part]


def addon_object(name: Value, attached: Value, kind: Value, plan: Value, window: Value,
                 description: Value) -> dict[str, Any]:
    """Heroku's nested `addon`; `description` is kvmaint's (the seed's addon_description)."""
    return {"attachments": attachments(attached), "kind": kind, "name": name, "plan": plan,
            "window": _text_or_null(window), "description": description}


def maintenance_info_object(info: Mapping[str, Value]) -> dict[str, Any]:
    """data:maintenances:info --json from the flat info view (format.maintenance_info_view)."""
    obj: dict[str, Any] = {
        "addon": addon_object(info.get("addon_name"), info.get("addon_attachments"),
                              info.get("addon_kind"), info.get("addon_plan"), info.get("addon_window"),
                              info.get("addon_description")),
        "app": {"name": info.get("app_name")},
    }
    obj.update({key: _text_or_null(info.get(key)) for key in MAINTENANCE_KEYS})
    obj.update({key: info.get(key) for key in INFO_EXTRA_KEYS})
    return obj


def maintenance_item_object(m: Mapping[str, Value], addon: Mapping[str, Value] | None) -> dict[str, Any]:
    """One item of data:maintenances / history --json, from a maintenance view and its add-on's view
    (format.addon_view; None when the add-on is gone, leaving only its name)."""
    a: Mapping[str, Value] = addon or {}
    obj: dict[str, Any] = {
        "addon": addon_object(m.get("addon"), a.get("attachments", []), a.get("kind", ""), a.get("plan", ""),
                              a.get("window", ""), a.get("description", "")),
        "app": {"name": m.get("app")},
    }
    fields: View = {**m, "server_created_at": a.get("created_at")}
    obj.update({key: _text_or_null(fields.get(key)) for key in MAINTENANCE_KEYS})
    obj.update({key: m.get(key) for key in ITEM_EXTRA_KEYS})
    return obj


def window_object(view: Mapping[str, Value]) -> dict[str, Any]:
    """data:maintenances:window (and window:update) --json from format.window_state_view."""
    return {
        "window": _text_or_null(view.get("window")),
        "previous_window": _text_or_null(view.get("previous_window")),
        "scheduled_at": view.get("scheduled_for"),
        "previously_scheduled_at": view.get("previously_scheduled_for"),
    }
