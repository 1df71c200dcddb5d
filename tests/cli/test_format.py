"""The formatters on hand-built messages: the seed's layouts, key order and value forms."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from kvmaint.cli import format as fmt
from kvmaint.cli.maintenance import ending_sentence
from kvmaint.v1 import fleet_pb2, maintenance_pb2, resources_pb2


def ts(text: str) -> Timestamp:
    t = Timestamp()
    t.FromDatetime(datetime.fromisoformat(text))
    return t


def seed_info() -> maintenance_pb2.MaintenanceInfo:
    """The seed's example, field for field."""
    return maintenance_pb2.MaintenanceInfo(
        addon_attachments="REDIS_URL", addon_description="premium HA", addon_kind="heroku-redis",
        addon_name="redis-lively-12345", addon_plan="premium-0", addon_window="Fridays 18:00 to 22:00 UTC",
        app_name="example-app", completed_at=ts("2023-04-28T18:04:21.141+00:00"),
        duration_approximate="~ 3 minutes", duration_seconds=186, method="failover",
        reason="routine_maintenance", required_by=ts("2023-05-03T08:54:02.518+00:00"),
        scheduled_for=ts("2023-04-28T18:00:00+00:00"), server_created_at=ts("2022-12-26T08:30:37.872+00:00"),
        started_at=ts("2023-04-28T18:01:14.191+00:00"), status="completed",
        window="Fridays 18:00 to 22:00 UTC", id="m-1", write_pause_ms=-1,
    )


SEED_BLOCK = """\
addon_attachments:        REDIS_URL
addon_description:        premium HA
addon_kind:               heroku-redis
addon_name:               redis-lively-12345
addon_plan:               premium-0
addon_window:             Fridays 18:00 to 22:00 UTC
app_name:                 example-app
completed_at:             2023-04-28T18:04:21.141+00:00
duration_approximate:     ~ 3 minutes
duration_seconds:         186
method:                   failover
reason:                   routine_maintenance
required_by:              2023-05-03T08:54:02.518+00:00
scheduled_for:            2023-04-28T18:00:00.000+00:00
server_created_at:        2022-12-26T08:30:37.872+00:00
started_at:               2023-04-28T18:01:14.191+00:00
status:                   completed
window:                   Fridays 18:00 to 22:00 UTC
id:                       m-1
previously_scheduled_for:
current_step:
failure_reason:
write_pause_ms:
redirect_ms:
attempts:                 0
last_failure_reason:
needs_operator:           off
target_build:
target_version:"""


def test_info_block_reproduces_the_seed_in_its_key_order() -> None:
    block = fmt.info_block(fmt.maintenance_info_view(seed_info()))
    assert block == SEED_BLOCK
    keys = [line.split(":", 1)[0] for line in block.splitlines()]
    assert keys[:18] == sorted(keys[:18])  # the seed's block is alphabetical
    assert keys[18:] == ["id", "previously_scheduled_for", "current_step", "failure_reason", "write_pause_ms",
                         "redirect_ms",
                         "attempts", "last_failure_reason", "needs_operator", "target_build", "target_version"]


def test_info_view_leaves_unset_values_empty() -> None:
    view = fmt.maintenance_info_view(maintenance_pb2.MaintenanceInfo(addon_name="r", status="pending"))
    assert list(view) == list(fmt.INFO_KEYS)
    assert view["completed_at"] is None and view["duration_seconds"] is None
    assert view["write_pause_ms"] is None
    assert "completed_at:\n" in fmt.info_block(view) + "\n"


def test_write_pause_shows_once_measured() -> None:
    info = seed_info()
    info.write_pause_ms = 0
    assert fmt.maintenance_info_view(info)["write_pause_ms"] == 0
    info.write_pause_ms = 840
    assert fmt.maintenance_info_view(info)["write_pause_ms"] == 840


def test_enum_labels_drop_the_prefix_and_lowercase() -> None:
    assert fmt.enum_label(resources_pb2.MaintenanceStatus,
                          resources_pb2.MAINTENANCE_STATUS_COMPLETED) == "completed"
    assert fmt.enum_label(resources_pb2.MaintenanceReason,
                          resources_pb2.MAINTENANCE_REASON_ROUTINE_MAINTENANCE) == "routine_maintenance"
    assert fmt.enum_label(resources_pb2.EventType, resources_pb2.EVENT_TYPE_MAINTENANCE_STARTED) \
        == "maintenance_started"
    assert fmt.enum_label(resources_pb2.MaintenanceStatus, 0) == ""
    assert fmt.enum_label(resources_pb2.MaintenanceStatus, 99) == "99"
    assert fmt.enum_labels(resources_pb2.MaintenanceMethod) == ["failover", "restart"]


def test_times_print_in_iso_with_milliseconds_and_heroku_form() -> None:
    assert fmt.ts_iso(ts("2023-04-28T18:00:00+00:00")) == "2023-04-28T18:00:00.000+00:00"
    assert fmt.ts_iso(Timestamp()) is None
    assert fmt.heroku_time(datetime(2016, 2, 1, tzinfo=UTC)) == "2016-02-01 00:00:00 +0000"


def premium_addon() -> resources_pb2.Addon:
    return resources_pb2.Addon(
        name="redis-softly-4514", app="example-app", plan="premium-7", kind="heroku-redis",
        attachments=["REDIS_URL", "CACHE_URL"], server_create_time=ts("2022-12-26T08:30:37.872+00:00"),
        servers=[
            resources_pb2.Server(address=resources_pb2.ServerAddress(host="db-1", port=7001),
                                 role=resources_pb2.SERVER_ROLE_PRIMARY, endpoint="10.0.0.1:7001"),
            resources_pb2.Server(address=resources_pb2.ServerAddress(host="db-2", port=7002),
                                 role=resources_pb2.SERVER_ROLE_STANDBY),
        ],
        window=resources_pb2.Window(day="Friday", start_time="18:00", duration_hours=4,
                                    description="Fridays 18:00 to 22:00 UTC"),
    )


def test_redis_info_block_when_maintenance_is_required() -> None:
    resp = maintenance_pb2.GetAddonInfoResponse(addon=premium_addon(), status="available",
                                                maintenance_required_by=ts("2016-02-01T00:00:00+00:00"),
                                                maintenance="required by 2016-02-01T00:00:00Z")
    assert fmt.addon_info_block(fmt.addon_info_view(resp)) == """\
=== redis-softly-4514 (REDIS_URL, CACHE_URL)
Plan:               Premium 7
Status:             available
Created:            2022-12-26T08:30:37.872+00:00
Maintenance:        required by 2016-02-01 00:00:00 +0000
Maintenance window: Fridays 18:00 to 22:00 UTC
Primary:            db-1:7001
Standby:            db-2:7002"""


def test_redis_info_says_not_required_without_a_deadline() -> None:
    resp = maintenance_pb2.GetAddonInfoResponse(addon=resources_pb2.Addon(name="r", plan="mini",
                                                                          attachments=["REDIS_URL"]),
                                                status="available")
    view = fmt.addon_info_view(resp)
    assert view["maintenance"] == "not required"
    assert view["maintenance_window"] == ""
    assert "Maintenance:        not required" in fmt.addon_info_block(view)


def test_window_text_is_built_when_the_server_sends_no_description() -> None:
    window = resources_pb2.Window(day="Sunday", start_time="22:30", duration_hours=4)
    assert fmt.window_text(window) == "Sundays 22:30 to 02:30 UTC"
    assert fmt.window_text(resources_pb2.Window()) == ""


def test_table_aligns_columns_and_prints_unset_as_empty() -> None:
    rows: list[fmt.View] = [{"a": "x", "b": None}, {"a": "longer", "b": True}]
    assert fmt.render_table(rows, [("A", "a"), ("B", "b")]) == "A       B\nx\nlonger  on"


def test_addon_view_splits_servers_by_role() -> None:
    view = fmt.addon_view(premium_addon())
    assert (view["primary"], view["standby"], view["hidden_standby"]) == ("db-1:7001", "db-2:7002", "")
    assert view["window"] == "Fridays 18:00 to 22:00 UTC"
    assert fmt.cell(view["attachments"]) == "REDIS_URL, CACHE_URL"


def test_event_line_has_sequence_time_type_app_addon_message() -> None:
    event = resources_pb2.Event(sequence=42, type=resources_pb2.EVENT_TYPE_MAINTENANCE_STARTED,
                                time=ts("2026-01-05T12:00:00+00:00"), app="example-app",
                                addon="redis-softly-4514", message="maintenance started",
                                attributes={"step": "catch_up"})
    view = fmt.event_view(event)
    assert view["attributes"] == {"step": "catch_up"}
    line = fmt.event_line(view)
    assert line.split() == ["42", "2026-01-05T12:00:00.000+00:00", "maintenance_started", "example-app",
                            "redis-softly-4514", "maintenance", "started"]
    assert line.startswith("    42  ")


def test_maintenance_view_and_progress_line() -> None:
    m = resources_pb2.Maintenance(id="m-9", addon="r", app="a",
                                  status=resources_pb2.MAINTENANCE_STATUS_RUNNING,
                                  reason=resources_pb2.MAINTENANCE_REASON_SECURITY_PATCH,
                                  method=resources_pb2.MAINTENANCE_METHOD_FAILOVER, current_step="catch_up",
                                  write_pause_ms=-1)
    view = fmt.maintenance_view(m)
    assert (view["status"], view["reason"], view["method"]) == ("running", "security_patch", "failover")
    assert view["duration_seconds"] is None and view["write_pause_ms"] is None
    resp = maintenance_pb2.WaitMaintenanceResponse(maintenance=m, standby_lag_bytes=2048,
                                                   elapsed_seconds=12.34, message="waiting for the standby")
    assert fmt.progress_line(fmt.progress_view(resp)) == (
        "[   12.3s]  running  step catch_up  standby lag 2048 bytes  waiting for the standby")


def test_config_block_sorts_and_aligns() -> None:
    assert fmt.config_block("example-app", {"REDIS_URL": "redis://h:1", "CACHE_URL": "redis://h:2"}) == (
        "=== example-app Config Vars\nCACHE_URL: redis://h:2\nREDIS_URL: redis://h:1")


def test_progress_line_leaves_out_an_unmeasured_lag() -> None:
    resp = maintenance_pb2.WaitMaintenanceResponse(
        maintenance=resources_pb2.Maintenance(status=resources_pb2.MAINTENANCE_STATUS_PREPARING),
        standby_lag_bytes=-1, elapsed_seconds=4.25, message="Started manually: preparing")
    assert fmt.progress_line(fmt.progress_view(resp)) == "[    4.2s]  preparing  Started manually: preparing"


def test_agent_servers_text() -> None:
    agent = fleet_pb2.AgentInfo(host_id="db-1", connected=True, servers=[
        fleet_pb2.AgentServer(port=7001, role="master", reachable=True, lag_bytes=-1),
        fleet_pb2.AgentServer(port=7002, role="slave", reachable=True, lag_bytes=512),
        fleet_pb2.AgentServer(port=7003, reachable=False, lag_bytes=-1),
    ])
    view = fmt.agent_view(agent)
    assert view["status"] == "connected"
    assert fmt.agent_servers_text(view) == "7001 master, 7002 slave (lag 512 B), 7003 unreachable"


def test_ending_sentence_has_one_full_stop() -> None:
    assert ending_sentence("r", "failed", "catch_up: too slow (agent db-2 did not answer.)") == (
        "Maintenance of r failed: catch_up: too slow (agent db-2 did not answer.)")
    assert ending_sentence("r", "failed", "standby lost.") == "Maintenance of r failed: standby lost."
    assert ending_sentence("r", "failed", "standby lost") == "Maintenance of r failed: standby lost."
    assert ending_sentence("r", "canceled", "") == "Maintenance of r canceled."


def test_builds_table_groups_hosts_by_build_and_version() -> None:
    def agent(host: str, connected: bool, *builds: tuple[str, str, str]) -> dict[str, object]:
        return {"host_id": host, "connected": connected,
                "builds": [{"name": n, "version": v, "kind": k, "default": i == 0} for i, (n, v, k) in enumerate(builds)]}

    rows = fmt.builds_rows([
        agent("db-1", True, ("redis-7.0", "7.0.15", "redis"), ("valkey-8.1", "8.1.8", "valkey")),
        agent("db-2", True, ("redis-7.0", "7.0.15", "redis")),
        agent("db-3", False, ("valkey-8.1", "8.1.8", "valkey")),  # not connected: not counted
    ])
    assert fmt.render_table(rows, fmt.BUILD_COLUMNS).splitlines() == [
        "NAME        VERSION  HOSTS",
        "redis-7.0   7.0.15   db-1, db-2",
        "valkey-8.1  8.1.8    db-1",
    ]


def test_redis_info_shows_what_each_server_runs() -> None:
    assert fmt.running_text({"address": "db-1:7001", "build": "valkey-8.1", "version": "8.1.8"}) == (
        "db-1:7001 (valkey-8.1, version 8.1.8)")
    assert fmt.running_text({"address": "db-1:7001", "build": "", "version": "7.0.15"}) == "db-1:7001 (version 7.0.15)"
    assert fmt.running_text({"address": "db-1:7001", "build": "", "version": ""}) == "db-1:7001"


def test_agent_servers_text_says_what_the_keeper_does_with_a_down_server() -> None:
    agent = fleet_pb2.AgentInfo(host_id="db-2", connected=True, servers=[
        fleet_pb2.AgentServer(port=7002, reachable=False, supervision="crash_looping", restarts=5),
        fleet_pb2.AgentServer(port=7003, reachable=False, supervision="restarting", restarts=1),
        fleet_pb2.AgentServer(port=7004, reachable=False, supervision="held"),
        fleet_pb2.AgentServer(port=7005, reachable=False, supervision="no_role"),
        fleet_pb2.AgentServer(port=7006, reachable=True, role="master", supervision="kept"),
    ])
    assert fmt.agent_servers_text(fmt.agent_view(agent)) == (
        "7002 unreachable (crash-looping after 5 starts), 7003 unreachable (restarting after 1 start), "
        "7004 unreachable (held by a maintenance), 7005 unreachable (no role in the record: left down), "
        "7006 master"
    )


def test_redis_info_status_carries_its_reason_unless_available() -> None:
    resp = maintenance_pb2.GetAddonInfoResponse(addon=premium_addon(), status="degraded",
                                                status_reason="the standby db-2:7002 is down (Connection refused)")
    assert "Status:             degraded: the standby db-2:7002 is down (Connection refused)\n" in (
        fmt.addon_info_block(fmt.addon_info_view(resp)))
    assert fmt.addon_info_view(resp)["status_reason"] == "the standby db-2:7002 is down (Connection refused)"
