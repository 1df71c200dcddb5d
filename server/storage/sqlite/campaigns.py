"""Campaigns and their members."""

from __future__ import annotations

import json
from typing import Any

from server.domain.campaigns import Campaign, CampaignStatus, Candidate, Member, MemberState
from server.domain.windows import Window
from server.storage.sqlite.base import TxBase, _rows
from server.storage.sqlite.rows import (
    _CAMPAIGN_COLS,
    _CAMPAIGN_N,
    _campaign,
    _campaign_params,
    _dt,
    _req,
    _ts,
    _window,
)


class CampaignsTx(TxBase):
    # campaigns
    async def insert_campaign(self, c: Campaign, members: list[Member]) -> None:
        await self._db.execute(
            f"INSERT INTO campaigns ({_CAMPAIGN_COLS}) VALUES ({', '.join('?' * _CAMPAIGN_N)})",
            _campaign_params(c),
        )
        await self._db.executemany(
            "INSERT INTO campaign_members (campaign_id, addon, app, wave, planned_at, window_day, "
            "window_minute, meets_deadline, maintenance_id, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    c.id,
                    m.addon,
                    m.app,
                    m.wave,
                    _ts(m.planned_at),
                    m.window.day if m.window else None,
                    m.window.start_minute if m.window else None,
                    int(m.meets_deadline),
                    m.maintenance_id,
                    m.note,
                )
                for m in members
            ],
        )

    async def update_campaign(self, c: Campaign) -> None:
        cols = [x.strip() for x in _CAMPAIGN_COLS.split(",")][1:]
        params = _campaign_params(c)
        await self._db.execute(
            f"UPDATE campaigns SET {', '.join(f'{x} = ?' for x in cols)} WHERE id = ?",
            (*params[1:], params[0]),
        )

    async def get_campaign(self, id: str) -> Campaign | None:
        row = await self._one(f"SELECT {_CAMPAIGN_COLS} FROM campaigns WHERE id = ?", id)
        return _campaign(row) if row else None

    async def list_campaigns(self, status: CampaignStatus | None = None) -> list[Campaign]:
        if status is None:
            rows = await self._all(f"SELECT {_CAMPAIGN_COLS} FROM campaigns ORDER BY created_at, id")
        else:
            rows = await self._all(
                f"SELECT {_CAMPAIGN_COLS} FROM campaigns WHERE status = ? ORDER BY created_at, id",
                status.value,
            )
        return [_campaign(r) for r in rows]

    async def campaign_members(self, campaign_id: str, wave: int | None = None) -> list[MemberState]:
        """Members (of one wave, or all), each with its maintenance as it stands, in planned order."""
        sql = (
            "SELECT cm.*, m.status AS m_status, m.attempts AS m_attempts, m.write_pause_ms AS m_pause, "
            "m.completed_at AS m_completed, m.scheduled_for AS m_scheduled FROM campaign_members AS cm "
            "LEFT JOIN maintenances AS m ON m.id = cm.maintenance_id AND cm.maintenance_id != '' "
            "WHERE cm.campaign_id = ?"
        )
        params: list[Any] = [campaign_id]
        if wave is not None:
            sql += " AND cm.wave = ?"
            params.append(wave)
        rows = await self._all(sql + " ORDER BY cm.wave, cm.planned_at, cm.addon", *params)
        return [
            MemberState(
                Member(
                    r["addon"],
                    r["app"],
                    r["wave"],
                    _req(r["planned_at"]),
                    _window(r["window_day"], r["window_minute"]),
                    bool(r["meets_deadline"]),
                    r["maintenance_id"],
                    r["note"],
                ),
                r["m_status"],
                r["m_attempts"] or 0,
                r["m_pause"] if r["m_pause"] is not None else -1,
                _dt(r["m_completed"]),
                _dt(r["m_scheduled"]),
            )
            for r in rows
        ]

    async def campaign_candidates(
        self, plan: str | None, apps: list[str] | None, with_servers: bool = False
    ) -> list[tuple[Candidate, tuple[str, ...]]]:
        """Add-ons as a campaign plans them (name, app, window), with their servers' host:port only when
        asked: only the columns planning reads, so 100,000 add-ons load in a fraction of a second."""
        sql = "SELECT name, app, window_day, window_minute" + (", servers" if with_servers else "")
        sql += " FROM addons"
        params: list[Any] = []
        if plan:
            sql += " WHERE plan = ?"
            params.append(plan)
        elif apps is not None:
            sql += f" WHERE app IN ({', '.join('?' * len(apps))})"
            params.extend(apps)
        rows = await _rows(self._db, sql + " ORDER BY name", params)
        windows: dict[tuple[int, int], Window] = {}

        def window(day: int | None, minute: int | None) -> Window | None:
            if day is None or minute is None:
                return None
            w = windows.get((day, minute))
            if w is None:
                w = windows[(day, minute)] = Window(day, minute)
            return w

        return [
            (
                Candidate(r[0], r[1], window(r[2], r[3])),
                tuple(f"{s['host']}:{s['port']}" for s in json.loads(r[4])) if with_servers else (),
            )
            for r in rows
        ]

    async def campaign_memberships(self, addons: list[str]) -> list[tuple[Campaign, Member]]:
        """The running or halted campaigns these add-ons belong to, with each one's member row."""
        if not addons:
            return []
        rows = await self._all(
            f"SELECT {', '.join('c.' + x.strip() for x in _CAMPAIGN_COLS.split(','))}, cm.addon AS m_addon, "
            "cm.app AS m_app, cm.wave AS m_wave, cm.planned_at AS m_planned, cm.window_day AS m_day, "
            "cm.window_minute AS m_minute, cm.meets_deadline AS m_meets, cm.maintenance_id AS m_mid, "
            "cm.note AS m_note FROM campaign_members AS cm JOIN campaigns AS c ON c.id = cm.campaign_id "
            f"WHERE c.status IN ('running', 'halted') AND cm.addon IN ({', '.join('?' * len(addons))}) "
            "ORDER BY c.created_at, c.id",
            *addons,
        )
        return [
            (
                _campaign(r),
                Member(
                    r["m_addon"],
                    r["m_app"],
                    r["m_wave"],
                    _req(r["m_planned"]),
                    _window(r["m_day"], r["m_minute"]),
                    bool(r["m_meets"]),
                    r["m_mid"],
                    r["m_note"],
                ),
            )
            for r in rows
        ]

    async def set_campaign_member(self, campaign_id: str, addon: str, maintenance_id: str, note: str) -> None:
        await self._db.execute(
            "UPDATE campaign_members SET maintenance_id = ?, note = ? WHERE campaign_id = ? AND addon = ?",
            (maintenance_id, note, campaign_id, addon),
        )
