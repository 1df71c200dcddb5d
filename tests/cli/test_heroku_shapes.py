"""The pure parts: Heroku's JSON shapes from kvmaint's views, and "did you mean"."""

from __future__ import annotations

from kvmaint.cli.heroku import maintenance_info_object, maintenance_item_object, window_object
from kvmaint.cli.suggest import closest, did_you_mean

COMMANDS = ["data:maintenances", "data:maintenances:info", "data:maintenances:run", "data:maintenances:wait",
            "data:maintenances:window", "data:maintenances:window:update", "data:maintenances:history",
            "redis:info", "maintenance", "maintenance:on", "maintenance:off", "apps:create"]


def test_info_object_nests_addon_and_app_and_keeps_kvmaints_fields() -> None:
    flat = {"addon_attachments": "REDIS_URL, CACHE_URL", "addon_description": "premium HA",
            "addon_kind": "heroku-redis", "addon_name": "redis-lively-12345", "addon_plan": "premium-0",
            "addon_window": "", "app_name": "example-app", "completed_at": None, "duration_approximate": "",
            "duration_seconds": None, "method": "failover", "reason": "routine_maintenance",
            "required_by": "2023-05-03T08:54:02.518+00:00", "scheduled_for": None,
            "server_created_at": "2022-12-26T08:30:37.872+00:00", "started_at": None, "status": "pending",
            "window": "", "id": "m-1", "previously_scheduled_for": None, "current_step": "",
            "failure_reason": "", "write_pause_ms": None, "attempts": 0, "last_failure_reason": "",
            "needs_operator": False, "target_build": "", "target_version": ""}
    obj = maintenance_info_object(flat)
    assert obj["addon"] == {"attachments": ["REDIS_URL", "CACHE_URL"], "kind": "heroku-redis",
                            "name": "redis-lively-12345", "plan": "premium-0", "window": None,
                            "description": "premium HA"}
    assert obj["app"] == {"name": "example-app"}
    assert obj["window"] is None and obj["required_by"] == "2023-05-03T08:54:02.518+00:00"
    assert (obj["id"], obj["attempts"], obj["needs_operator"]) == ("m-1", 0, False)
    assert not any(key.startswith(("addon_", "app_")) for key in obj)


def test_item_object_without_its_addon_keeps_the_name() -> None:
    obj = maintenance_item_object({"addon": "redis-gone-1", "app": "example-app", "status": "canceled"}, None)
    assert obj["addon"] == {"attachments": [], "kind": "", "name": "redis-gone-1", "plan": "", "window": None,
                            "description": ""}
    assert obj["server_created_at"] is None and obj["status"] == "canceled"


def test_window_object_renames_to_herokus_keys() -> None:
    view = {"window": "Sundays 14:30 to 18:30 UTC", "previous_window": "",
            "scheduled_for": "2026-12-06T14:30:00.000+00:00", "previously_scheduled_for": None}
    assert window_object(view) == {"window": "Sundays 14:30 to 18:30 UTC", "previous_window": None,
                                   "scheduled_at": "2026-12-06T14:30:00.000+00:00",
                                   "previously_scheduled_at": None}


def test_did_you_mean() -> None:
    assert closest("data:maintenance:info", COMMANDS) == ["data:maintenances:info"]
    assert closest("maintenace:on", COMMANDS) == ["maintenance:on"]
    assert closest("histroy", COMMANDS) == ["data:maintenances:history"]
    assert did_you_mean("info", COMMANDS) == " Did you mean data:maintenances:info or redis:info?"
    assert did_you_mean("frobnicate", COMMANDS) == ""
    assert did_you_mean("--wiat", ["--wait", "--confirm", "--json", "--app"]) == " Did you mean --wait?"
