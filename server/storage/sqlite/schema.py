"""The schema: migrations, applied in order; index i means the same change in the other store."""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: the control plane.
    """
    CREATE TABLE apps (
        name TEXT PRIMARY KEY,
        owner_email TEXT NOT NULL,
        maintenance_mode INTEGER NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE config_vars (
        app TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (app, key)
    );
    CREATE TABLE addons (
        name TEXT PRIMARY KEY,
        app TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
        plan TEXT NOT NULL,
        kind TEXT NOT NULL,
        description TEXT NOT NULL,
        attachments TEXT NOT NULL,
        created_at TEXT NOT NULL,
        servers TEXT NOT NULL,
        window_day INTEGER,
        window_minute INTEGER,
        prev_window_day INTEGER,
        prev_window_minute INTEGER
    );
    CREATE INDEX addons_app ON addons(app, name);
    CREATE TABLE maintenances (
        id TEXT PRIMARY KEY,
        addon TEXT NOT NULL,
        app TEXT NOT NULL,
        reason TEXT NOT NULL,
        method TEXT NOT NULL,
        status TEXT NOT NULL,
        required_by TEXT NOT NULL,
        created_at TEXT NOT NULL,
        scheduled_for TEXT,
        previously_scheduled_for TEXT,
        started_at TEXT,
        completed_at TEXT,
        window_day INTEGER,
        window_minute INTEGER,
        current_step TEXT NOT NULL DEFAULT '',
        failure_reason TEXT NOT NULL DEFAULT '',
        write_pause_ms INTEGER NOT NULL DEFAULT -1,
        state TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX maintenances_addon ON maintenances(addon, created_at);
    CREATE INDEX maintenances_app ON maintenances(app, created_at);
    CREATE INDEX maintenances_status ON maintenances(status, scheduled_for);
    CREATE TABLE maintenance_history (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        maintenance_id TEXT NOT NULL REFERENCES maintenances(id) ON DELETE CASCADE,
        time TEXT NOT NULL,
        status TEXT NOT NULL,
        step TEXT NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX history_maintenance ON maintenance_history(maintenance_id, id);
    CREATE TABLE events (
        sequence INTEGER PRIMARY KEY AUTOINCREMENT,
        type TEXT NOT NULL,
        time TEXT NOT NULL,
        app TEXT NOT NULL,
        addon TEXT NOT NULL,
        maintenance_id TEXT NOT NULL,
        message TEXT NOT NULL,
        attributes TEXT NOT NULL
    );
    CREATE INDEX events_app ON events(app, sequence);
    """,
    # 2: agents' advertised hosts, so config vars keep naming servers correctly across restarts.
    """
    CREATE TABLE agents (
        host_id TEXT PRIMARY KEY,
        advertise_host TEXT NOT NULL,
        agent_version TEXT NOT NULL,
        last_seen TEXT NOT NULL
    );
    """,
    # 3: notifications. The outbox is written in the same transaction as the event that causes it and
    # drained by server/notify/sender.py (dedupe_key makes enqueueing idempotent); apps' webhook
    # endpoints; the 24-hour reminders already given, once per (maintenance, scheduled_for).
    """
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        dedupe_key TEXT NOT NULL UNIQUE,
        app TEXT NOT NULL,
        recipient TEXT NOT NULL,
        webhook_id TEXT NOT NULL DEFAULT '',
        subject TEXT NOT NULL,
        body TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        sent_at TEXT,
        dropped_at TEXT,
        last_error TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL
    );
    CREATE INDEX outbox_due ON outbox(next_attempt_at) WHERE sent_at IS NULL AND dropped_at IS NULL;
    CREATE TABLE webhooks (
        id TEXT PRIMARY KEY,
        app TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
        url TEXT NOT NULL,
        secret TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX webhooks_app ON webhooks(app, created_at);
    CREATE TABLE reminders (
        maintenance_id TEXT NOT NULL,
        scheduled_for TEXT NOT NULL,
        PRIMARY KEY (maintenance_id, scheduled_for)
    );
    """,
    # 4: freezes (deny periods) of an app, or of the whole fleet (app = '').
    """
    CREATE TABLE freezes (
        id TEXT PRIMARY KEY,
        app TEXT NOT NULL,
        starts_at TEXT NOT NULL,
        ends_at TEXT NOT NULL,
        reason TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX freezes_app ON freezes(app, ends_at);
    """,
    # 5: failed attempts of a maintenance that went back to pending (server/domain/lifecycle.py).
    """
    ALTER TABLE maintenances ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE maintenances ADD COLUMN last_failure_reason TEXT NOT NULL DEFAULT '';
    ALTER TABLE maintenances ADD COLUMN needs_operator INTEGER NOT NULL DEFAULT 0;
    """,
    # 6: the build a maintenance installs (server/domain/builds.py).
    """
    ALTER TABLE maintenances ADD COLUMN target_build TEXT NOT NULL DEFAULT '';
    ALTER TABLE maintenances ADD COLUMN target_version TEXT NOT NULL DEFAULT '';
    ALTER TABLE maintenances ADD COLUMN allow_downgrade INTEGER NOT NULL DEFAULT 0;
    """,
    # 7: what applications saw of a failover (redirect_ms), and the week the owner scheduled into.
    """
    ALTER TABLE maintenances ADD COLUMN redirect_ms INTEGER NOT NULL DEFAULT -1;
    ALTER TABLE maintenances ADD COLUMN not_before TEXT;
    """,
    # 8: the Redis users of add-ons whose servers kvmaint placed (server/domain/credentials.py).
    """
    CREATE TABLE addon_credentials (
        addon TEXT PRIMARY KEY,
        app_user TEXT NOT NULL,
        app_password TEXT NOT NULL,
        agent_user TEXT NOT NULL,
        agent_password TEXT NOT NULL,
        tls INTEGER NOT NULL DEFAULT 0
    );
    """,
    # 9: campaigns (server/domain/campaigns.py): a build rolled out in waves; each member's planned
    # wave and window, and its maintenance once its wave is released.
    """
    CREATE TABLE campaigns (
        id TEXT PRIMARY KEY,
        build TEXT NOT NULL,
        target_version TEXT NOT NULL,
        allow_downgrade INTEGER NOT NULL,
        reason TEXT NOT NULL,
        required_by TEXT NOT NULL,
        target TEXT NOT NULL,
        canary INTEGER NOT NULL,
        waves TEXT NOT NULL,
        soak_seconds REAL NOT NULL,
        halt_on_failures INTEGER NOT NULL,
        halt_on_pause_ms INTEGER NOT NULL,
        status TEXT NOT NULL,
        wave INTEGER NOT NULL,
        wave_count INTEGER NOT NULL,
        has_canary INTEGER NOT NULL,
        halt_reason TEXT NOT NULL DEFAULT '',
        failure_baseline INTEGER NOT NULL DEFAULT 0,
        resumed_at TEXT,
        ended_at TEXT,
        created_at TEXT NOT NULL
    );
    CREATE INDEX campaigns_status ON campaigns(status, created_at);
    CREATE TABLE campaign_members (
        campaign_id TEXT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
        addon TEXT NOT NULL,
        app TEXT NOT NULL,
        wave INTEGER NOT NULL,
        planned_at TEXT NOT NULL,
        window_day INTEGER,
        window_minute INTEGER,
        meets_deadline INTEGER NOT NULL,
        maintenance_id TEXT NOT NULL DEFAULT '',
        note TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (campaign_id, addon)
    );
    CREATE INDEX campaign_members_wave ON campaign_members(campaign_id, wave);
    CREATE INDEX campaign_members_maintenance ON campaign_members(maintenance_id) WHERE maintenance_id != '';
    """,
    # 10: each add-on's last maintenance (its latest completed one, else its creation), indexed, so the
    # planner's 90-day pass reads only the add-ons nearing the mark instead of the whole fleet.
    """
    ALTER TABLE addons ADD COLUMN maintained_at TEXT;
    UPDATE addons SET maintained_at = COALESCE((SELECT MAX(m.completed_at) FROM maintenances AS m
        WHERE m.addon = addons.name AND m.status = 'completed'), created_at);
    CREATE INDEX addons_maintained ON addons(maintained_at);
    CREATE TABLE addon_servers (
        host TEXT NOT NULL,
        port INTEGER NOT NULL,
        addon TEXT NOT NULL REFERENCES addons(name) ON DELETE CASCADE
    );
    CREATE INDEX addon_servers_key ON addon_servers(host, port);
    CREATE INDEX addon_servers_addon ON addon_servers(addon);
    INSERT INTO addon_servers (host, port, addon) SELECT json_extract(s.value, '$.host'),
        json_extract(s.value, '$.port'), a.name FROM addons AS a, json_each(a.servers) AS s
    """,
    # 11: when each pending maintenance's 24-hour reminder falls due (scheduled_for - 1 day, the
    # REMIND_BEFORE of server/notify/policy.py), NULL once given or when not pending, kept by triggers
    # so every write path keeps it; indexed, so the reminder pass reads only the reminders due. The
    # format is SQLite's strftime('%Y-%m-%dT%H:%M:%f') in UTC (`_remind_ts`), compared as text.
    """
    ALTER TABLE maintenances ADD COLUMN remind_at TEXT;
    UPDATE maintenances SET remind_at = CASE WHEN status = 'pending' AND scheduled_for IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM reminders AS r WHERE r.maintenance_id = maintenances.id
        AND r.scheduled_for = maintenances.scheduled_for)
        THEN strftime('%Y-%m-%dT%H:%M:%f', scheduled_for, '-1 day') END;
    CREATE INDEX maintenances_remind ON maintenances(remind_at) WHERE remind_at IS NOT NULL;
    CREATE TRIGGER maintenances_remind_insert AFTER INSERT ON maintenances BEGIN
        UPDATE maintenances SET remind_at = CASE WHEN NEW.status = 'pending' AND NEW.scheduled_for IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM reminders AS r WHERE r.maintenance_id = NEW.id
            AND r.scheduled_for = NEW.scheduled_for)
            THEN strftime('%Y-%m-%dT%H:%M:%f', NEW.scheduled_for, '-1 day') END WHERE id = NEW.id;
    END;
    CREATE TRIGGER maintenances_remind_update AFTER UPDATE OF status, scheduled_for ON maintenances BEGIN
        UPDATE maintenances SET remind_at = CASE WHEN NEW.status = 'pending' AND NEW.scheduled_for IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM reminders AS r WHERE r.maintenance_id = NEW.id
            AND r.scheduled_for = NEW.scheduled_for)
            THEN strftime('%Y-%m-%dT%H:%M:%f', NEW.scheduled_for, '-1 day') END WHERE id = NEW.id;
    END;
    CREATE TRIGGER reminders_given AFTER INSERT ON reminders BEGIN
        UPDATE maintenances SET remind_at = NULL
            WHERE id = NEW.maintenance_id AND scheduled_for = NEW.scheduled_for;
    END
    """,
    # 12: scheduler replicas: the leader's lease (a term that only grows) and each replica's heartbeat.
    # One process per SQLite file, so it is always the leader, but its term is kept for agents' fencing.
    """
    CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        term INTEGER NOT NULL,
        address TEXT NOT NULL,
        agent_address TEXT NOT NULL,
        expires_at TEXT NOT NULL
    );
    CREATE TABLE schedulers (
        id TEXT PRIMARY KEY,
        address TEXT NOT NULL,
        agent_address TEXT NOT NULL,
        started_at TEXT NOT NULL,
        seen_at TEXT NOT NULL,
        version TEXT NOT NULL
    )
    """,
    # 13: the fleet-wide request (RequireMaintenance for all or a plan) that filed a maintenance, so
    # its reply can stay small and page through what it filed instead of carrying every maintenance.
    """
    ALTER TABLE maintenances ADD COLUMN filing TEXT NOT NULL DEFAULT '';
    CREATE INDEX maintenances_filing ON maintenances(filing, id) WHERE filing != ''
    """,
    # 14: durable positions in the event stream of the leader's followers (the maintenance notices), so
    # a new leader resumes where the last one had sent up to instead of at the end of the stream.
    """
    CREATE TABLE cursors (
        name TEXT PRIMARY KEY,
        position INTEGER NOT NULL
    )
    """,
    # 15: writes retried under one request id (the CLI resends a write to the next replica after a
    # transport failure): marked in the write's own transaction, answered again from `response`.
    """
    CREATE TABLE requests (
        id TEXT PRIMARY KEY,
        method TEXT NOT NULL,
        result_key TEXT NOT NULL DEFAULT '',
        response BLOB,
        created_at TEXT NOT NULL
    );
    CREATE INDEX requests_created ON requests(created_at)
    """,
]
