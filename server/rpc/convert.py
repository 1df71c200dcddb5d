"""Domain values to protos and back. Nothing else in the scheduler touches *_pb2."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from kvmaint.clock import iso, utc
from kvmaint.errors import InvalidArgument
from kvmaint.v1 import campaigns_pb2 as cpb
from kvmaint.v1 import fleet_pb2 as fpb
from kvmaint.v1 import maintenance_pb2 as mpb
from kvmaint.v1 import resources_pb2 as pb
from server.domain.builds import HostBuild
from server.domain.campaigns import Campaign, CampaignStatus, MemberState, Plan, WaveCounts
from server.domain.freezes import Freeze
from server.domain.models import (
    Addon,
    App,
    Event,
    Maintenance,
    Method,
    Reason,
    Role,
    ServerRef,
    Status,
)
from server.domain.planning import duration_approximate
from server.domain.windows import WINDOW_HOURS, Window
from server.notify.models import Webhook
from server.service.fleet import Placement
from server.service.maintenance import WindowState


def ts(dt: datetime | None) -> Timestamp | None:
    if dt is None:
        return None
    out = Timestamp()
    out.FromDatetime(utc(dt))
    return out


def from_ts(value: Timestamp, field: str) -> datetime:
    try:
        return value.ToDatetime(tzinfo=utc(datetime(2000, 1, 1)).tzinfo)
    except (ValueError, OverflowError):
        raise InvalidArgument.field(field, f"{field} is not a valid timestamp.") from None


def window(w: Window | None) -> pb.Window | None:
    if w is None:
        return None
    return pb.Window(
        day=w.day_name, start_time=w.start_time, duration_hours=WINDOW_HOURS, description=w.describe()
    )


def app(a: App) -> pb.App:
    return pb.App(
        name=a.name,
        owner_email=a.owner_email,
        maintenance_mode=a.maintenance_mode,
        create_time=ts(a.created_at),
    )


_ROLE = {
    Role.PRIMARY: pb.SERVER_ROLE_PRIMARY,
    Role.STANDBY: pb.SERVER_ROLE_STANDBY,
    Role.HIDDEN_STANDBY: pb.SERVER_ROLE_HIDDEN_STANDBY,
}


def addon(a: Addon, placement: Placement) -> pb.Addon:
    def server(s: ServerRef) -> pb.Server:
        running = placement.running(s)
        return pb.Server(
            address=pb.ServerAddress(host=s.host, port=s.port),
            role=_ROLE[s.role],
            endpoint=placement.endpoint(s),
            build=running.build if running else "",
            version=running.version if running else "",
        )

    return pb.Addon(
        name=a.name,
        app=a.app,
        plan=a.plan,
        kind=a.kind,
        description=a.description,
        attachments=list(a.attachments),
        server_create_time=ts(a.created_at),
        servers=[server(s) for s in a.servers],
        window=window(a.window),
    )


# Proto constructors take enum values by name.
def status(s: Status) -> str:
    return f"MAINTENANCE_STATUS_{s.name}"


def reason_pb(r: Reason) -> str:
    return f"MAINTENANCE_REASON_{r.name}"


def method_pb(m: Method) -> str:
    return f"MAINTENANCE_METHOD_{m.name}"


def reason_from(value: int) -> Reason:
    if value == pb.MAINTENANCE_REASON_UNSPECIFIED:
        raise InvalidArgument.field(
            "reason", "A reason is required: " + ", ".join(r.value for r in Reason) + "."
        )
    try:
        name = pb.MaintenanceReason.Name(value).removeprefix("MAINTENANCE_REASON_")
        return Reason[name]
    except (ValueError, KeyError):
        raise InvalidArgument.field("reason", f"{value} is not a known maintenance reason.") from None


def method_from(value: int) -> Method:
    if value == pb.MAINTENANCE_METHOD_UNSPECIFIED:
        return Method.FAILOVER
    try:
        name = pb.MaintenanceMethod.Name(value).removeprefix("MAINTENANCE_METHOD_")
        return Method[name]
    except (ValueError, KeyError):
        raise InvalidArgument.field("method", f"{value} is not a known maintenance method.") from None


def maintenance(m: Maintenance) -> pb.Maintenance:
    return pb.Maintenance(
        id=m.id,
        addon=m.addon,
        app=m.app,
        reason=reason_pb(m.reason),
        method=method_pb(m.method),
        status=status(m.status),
        required_by=ts(m.required_by),
        scheduled_for=ts(m.scheduled_for),
        previously_scheduled_for=ts(m.previously_scheduled_for),
        started_at=ts(m.started_at),
        completed_at=ts(m.completed_at),
        duration_seconds=m.duration_seconds,
        window=window(m.window),
        current_step=m.current_step,
        failure_reason=m.failure_reason,
        write_pause_ms=m.write_pause_ms,
        redirect_ms=m.redirect_ms if m.redirect_ms >= 0 else None,
        create_time=ts(m.created_at),
        attempts=m.attempts,
        last_failure_reason=m.last_failure_reason,
        needs_operator=m.needs_operator,
        target_build=m.target_build,
        target_version=m.target_version,
        allow_downgrade=m.allow_downgrade,
        history=[
            pb.MaintenanceHistoryEntry(
                time=ts(h.time), status=status(h.status), step=h.step, message=h.message
            )
            for h in m.history
        ],
    )


def maintenance_info(a: Addon, m: Maintenance | None) -> mpb.MaintenanceInfo:
    """The seed's data:maintenances:info block; `status: none` when nothing was ever required."""
    win = a.window.describe() if a.window else ""
    info = mpb.MaintenanceInfo(
        addon_attachments=", ".join(a.attachments),
        addon_description=a.description,
        addon_kind=a.kind,
        addon_name=a.name,
        addon_plan=a.plan,
        addon_window=win,
        app_name=a.app,
        server_created_at=ts(a.created_at),
        window=win,
        status=Status.NONE.value,
        write_pause_ms=-1,
    )
    if m is None:
        return info
    info.status = m.status.value
    info.method = m.method.value
    info.reason = m.reason.value
    info.id = m.id
    info.duration_seconds = m.duration_seconds
    info.duration_approximate = duration_approximate(m.duration_seconds, m.completed_at is not None)
    info.write_pause_ms = m.write_pause_ms
    if m.redirect_ms >= 0:
        info.redirect_ms = m.redirect_ms
    info.failure_reason = m.failure_reason
    info.current_step = m.current_step
    info.attempts = m.attempts
    info.last_failure_reason = m.last_failure_reason
    info.needs_operator = m.needs_operator
    info.target_build = m.target_build
    info.target_version = m.target_version
    for name in ("completed_at", "required_by", "scheduled_for", "started_at", "previously_scheduled_for"):
        value = ts(getattr(m, name))
        if value is not None:
            getattr(info, name).CopyFrom(value)
    return info


def server_build(b: HostBuild, is_default: bool) -> pb.ServerBuild:
    return pb.ServerBuild(name=b.name, version=b.version, kind=b.kind, is_default=is_default)


def window_state(s: WindowState) -> mpb.WindowState:
    return mpb.WindowState(
        window=window(s.window),
        previous_window=window(s.previous_window),
        scheduled_for=ts(s.scheduled_for),
        previously_scheduled_for=ts(s.previously_scheduled_for),
    )


def event(e: Event) -> pb.Event:
    return pb.Event(
        sequence=e.sequence,
        type=f"EVENT_TYPE_{e.type.name}",
        time=ts(e.time),
        app=e.app,
        addon=e.addon,
        maintenance_id=e.maintenance_id,
        message=e.message,
        attributes=e.attributes,
    )


def freeze(f: Freeze) -> pb.Freeze:
    return pb.Freeze(
        id=f.id,
        app=f.app,
        start_time=ts(f.starts_at),
        end_time=ts(f.ends_at),
        reason=f.reason,
        create_time=ts(f.created_at),
    )


def webhook(h: Webhook) -> fpb.Webhook:
    """Never the secret."""
    return fpb.Webhook(id=h.id, app=h.app, url=h.url, create_time=ts(h.created_at))


def required_by_text(dt: datetime | None, overdue: bool = False) -> str:
    """redis:info's "required by 2016-02-01 00:00:00 +0000" (", overdue" once past it) or "not required"."""
    if dt is None:
        return "not required"
    return "required by " + utc(dt).strftime("%Y-%m-%d %H:%M:%S +0000") + (", overdue" if overdue else "")


__all__ = ["iso"]


# campaigns


def _fast_ts(dt: datetime) -> Timestamp:
    """A Timestamp without FromDatetime's checks: a 100,000-add-on plan converts in a fraction of a second."""
    return Timestamp(seconds=int(dt.timestamp()), nanos=dt.microsecond * 1000)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def campaign_status(s: CampaignStatus) -> str:
    return f"CAMPAIGN_STATUS_{s.name}"


def campaign_plan(p: Plan) -> cpb.CampaignPlan:
    e = p.entries
    return cpb.CampaignPlan(
        addons=[x.addon for x in e],
        apps=[x.app for x in e],
        waves=[x.wave for x in e],
        window_starts_ms=[(x.at - _EPOCH) // _MS for x in e],
        meets_deadline=[x.meets_deadline for x in e],
        has_window=[x.window is not None for x in e],
        window_hours=WINDOW_HOURS,
        per_day=[cpb.DayCount(day=d.isoformat(), count=n) for d, n in p.per_day],
        wave_starts=[_fast_ts(t) for t in p.wave_starts],
    )


def _duration(seconds: float) -> Duration:
    out = Duration()
    out.FromTimedelta(timedelta(seconds=seconds))
    return out


def campaign(c: Campaign, waves: tuple[WaveCounts, ...], planned: dict[int, datetime]) -> cpb.Campaign:
    s = c.spec
    return cpb.Campaign(
        id=c.id,
        build=s.build,
        target_version=c.target_version,
        reason=reason_pb(Reason(s.reason)),
        required_by=ts(s.required_by),
        target=c.target,
        canary=s.canary,
        waves=list(s.waves),
        soak=_duration(s.soak.total_seconds()),
        halt_on_failures=s.halt_on_failures,
        halt_on_pause_ms=s.halt_on_pause_ms,
        status=campaign_status(c.status),
        current_wave=c.wave,
        halt_reason=c.halt_reason,
        created_at=ts(c.created_at),
        ended_at=ts(c.ended_at),
        addons=sum(w.size for w in waves),
        wave_summaries=[
            cpb.WaveSummary(
                wave=i,
                label=c.wave_label(i),
                size=w.size,
                pending=w.pending,
                running=w.running,
                completed=w.completed,
                failed=w.failed,
                skipped=w.skipped,
                ended_at=ts(w.ended_at),
                soaked_at=ts(w.ended_at + s.soak) if w.ended_at else None,
                planned_start=ts(planned.get(i)),
            )
            for i, w in enumerate(waves)
        ],
    )


def campaign_member(m: MemberState) -> cpb.CampaignMember:
    return cpb.CampaignMember(
        addon=m.member.addon,
        app=m.member.app,
        wave=m.member.wave,
        planned_window_start=ts(m.member.planned_at),
        meets_deadline=m.member.meets_deadline,
        maintenance_id=m.member.maintenance_id,
        status=status(Status(m.status)) if m.status else "MAINTENANCE_STATUS_UNSPECIFIED",
        scheduled_for=ts(m.scheduled_for),
        attempts=m.attempts,
        note=m.member.note,
        write_pause_ms=m.write_pause_ms,
    )
