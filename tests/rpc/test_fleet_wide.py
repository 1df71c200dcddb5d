"""Fleet-wide RequireMaintenance over real gRPC against a scheduler process, with a default client (whose
receive limit is gRPC's 4 MB): on a fleet whose maintenances, listed in one reply as before, would pass
4 MB, every reply stays below it, the counts say what happened, and the page token lists all of it."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from kvmaint.v1 import fleet_pb2 as fpb
from kvmaint.v1 import maintenance_pb2 as mpb
from kvmaint.v1 import resources_pb2 as rpb
from server.storage.select import store_for
from tests.support.rpc import api, error_of
from tests.support.stores import on_both_stores

LIMIT = 4 * 1024 * 1024  # gRPC's default max receive message length
FLEET = 12_000  # ~370 B per maintenance: ~4.4 MB listed in one reply, more than a default client takes


def seed(db: Path | str, n: int) -> None:
    from bench.fleet_scale import seed as bulk_seed

    async def go() -> None:
        store = store_for(db)
        await store.open()
        try:
            await bulk_seed(store, n, random.Random(7))
        finally:
            await store.close()

    asyncio.run(go())


def test_a_fleet_wide_require_answers_in_counts_below_4_mb_and_pages_what_it_filed(
    state_db: Path | str, scheduler_factory
) -> None:
    seed(state_db, FLEET)
    scheduler = scheduler_factory()
    with api(scheduler.address) as a:  # grpc.insecure_channel with no options: 4 MB receive limit
        request = fpb.RequireMaintenanceRequest(all=True, reason=rpb.MAINTENANCE_REASON_SECURITY_PATCH)
        resp = a.RequireMaintenance(request, timeout=600)
        assert resp.ByteSize() < 64 * 1024
        assert (resp.filed_count, resp.already_pending_count) == (FLEET, 0) and resp.batches >= FLEET // 500
        assert resp.lists_omitted and not resp.maintenances and not resp.already_pending
        assert resp.filing and resp.maintenances_page_token

        seen: dict[str, str] = {}
        listed_bytes = 0
        token = resp.maintenances_page_token
        while token:
            page = a.ListMaintenances(mpb.ListMaintenancesRequest(page_size=1000, page_token=token))
            assert page.ByteSize() < LIMIT
            listed_bytes += sum(m.ByteSize() for m in page.maintenances)
            for m in page.maintenances:
                assert m.status == rpb.MAINTENANCE_STATUS_PENDING and m.id not in seen
                seen[m.id] = m.addon
            token = page.next_page_token
        assert sorted(seen.values()) == [f"redis-{i:06d}" for i in range(FLEET)]
        assert listed_bytes > LIMIT  # the old reply (every maintenance in it) would have been refused

        by_field = a.ListMaintenances(
            mpb.ListMaintenancesRequest(filing=resp.filing, page_size=5, app="app-00003")
        )
        assert [m.app for m in by_field.maintenances] == ["app-00003"] * 5 and by_field.next_page_token

        # Sent again: nothing more is filed; every add-on is counted as already pending, none listed.
        again = a.RequireMaintenance(request, timeout=600)
        assert (again.filed_count, again.already_pending_count) == (0, FLEET)
        assert again.lists_omitted and not again.already_pending and not again.maintenances_page_token
        assert again.ByteSize() < 64 * 1024

        # The other fleet-wide lists page already: their largest page stays below the limit too.
        addons = a.ListAddons(fpb.ListAddonsRequest(page_size=100_000))
        assert len(addons.addons) == 1000 and addons.next_page_token and addons.ByteSize() < LIMIT
        apps = a.ListApps(fpb.ListAppsRequest(page_size=100_000))
        assert len(apps.apps) == FLEET // 100 and apps.ByteSize() < LIMIT


@on_both_stores
def test_small_requests_keep_their_lists_and_a_retry_files_only_what_is_missing(
    state_db: Path | str, scheduler_factory
) -> None:
    seed(state_db, 1200)
    scheduler = scheduler_factory()
    with api(scheduler.address) as a:
        named = [f"redis-{i:06d}" for i in (3, 5, 5)]
        resp = a.RequireMaintenance(
            fpb.RequireMaintenanceRequest(
                addons=fpb.AddonNames(names=named), reason=rpb.MAINTENANCE_REASON_SECURITY_PATCH
            )
        )
        # As before for a small request: every maintenance and every already pending add-on listed.
        assert [m.addon for m in resp.maintenances] == ["redis-000003", "redis-000005"]
        assert list(resp.already_pending) == ["redis-000005"]  # named twice
        assert (resp.filed_count, resp.already_pending_count, resp.lists_omitted) == (2, 1, False)

        # A missing name refuses the whole request before anything is filed, as it always did.
        err = error_of(
            lambda: a.RequireMaintenance(
                fpb.RequireMaintenanceRequest(
                    addons=fpb.AddonNames(names=["redis-000007", "nope"]),
                    reason=rpb.MAINTENANCE_REASON_SECURITY_PATCH,
                )
            )
        )
        assert err.code().name == "NOT_FOUND" and "nope" in err.details()

        # A plan-wide request with an idempotency key: the two filed above count as already pending.
        keyed = fpb.RequireMaintenanceRequest(
            plan="premium-0", reason=rpb.MAINTENANCE_REASON_SECURITY_PATCH, request_id="rollout-1"
        )
        first = a.RequireMaintenance(keyed, timeout=300)
        assert (first.filed_count, first.already_pending_count) == (1198, 2) and first.batches >= 3
        assert first.filing == "rollout-1" and first.lists_omitted
        again = a.RequireMaintenance(keyed, timeout=300)
        assert (again.filed_count, again.already_pending_count) == (0, 1200)
        listed = a.ListMaintenances(mpb.ListMaintenancesRequest(filing="rollout-1", page_size=1000))
        rest = a.ListMaintenances(
            mpb.ListMaintenancesRequest(page_token=listed.next_page_token, page_size=1000)
        )
        assert len(listed.maintenances) + len(rest.maintenances) == 1198 and not rest.next_page_token

        progress = a.GetFiling(fpb.GetFilingRequest(filing="rollout-1"))
        assert (progress.done, progress.targeted, progress.filed_count, progress.already_pending_count) == (
            True,
            1200,
            0,
            1200,
        )  # the latest attempt under that id
        assert error_of(lambda: a.GetFiling(fpb.GetFilingRequest(filing="nope"))).code().name == "NOT_FOUND"
        assert error_of(lambda: a.GetFiling(fpb.GetFilingRequest())).code().name == "INVALID_ARGUMENT"

        bad = error_of(
            lambda: a.RequireMaintenance(
                fpb.RequireMaintenanceRequest(all=True, reason=1, request_id="no spaces allowed")
            )
        )
        assert bad.code().name == "INVALID_ARGUMENT" and "request_id" in bad.details()
