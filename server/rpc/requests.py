"""Retried writes answer once: the server half of the CLI's request ids (server/domain/requests.py).

`RequestInterceptor` sits inside the token check and the error mapping and outside the relay
(`ForwardInterceptor` replaces a relayed RPC's handler on a non-leader, so the leader alone records what
it serves). For a write of `RECORDED` that carries `kvmaint-request-id`:

- a known id whose answer is stored: that answer again, byte for byte, and nothing runs;
- a known id without an answer (the write committed, the replica stopped before storing the answer):
  a moment for the answer to arrive (the first attempt may still be finishing), else the write is run
  again as a replay: the services that create something answer with what the committed attempt created
  (`replaying()`), those that are idempotent (a window, the maintenance mode) simply run again, and the
  rest, which could do their work twice, refuse with ABORTED (`REQUEST_UNANSWERED`) saying so;
- an unknown id: the write runs with the mark set, its transactions record the mark as they commit, and
  the answer is stored once it exists;
- an id sent before for another method: INVALID_ARGUMENT.

Marks older than a day are pruned by the leader's notification loop (server/notify/sender.py).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from kvmaint.channel import REQUEST_ID
from kvmaint.clock import Clock
from kvmaint.errors import Aborted, ErrorReason, InvalidArgument
from server.domain import requests
from server.domain.requests import Mark, StoredRequest
from server.storage import Store

log = logging.getLogger(__name__)

# How long a retry that found a mark without an answer waits for the first attempt's answer.
ANSWER_WAIT_SECONDS = 2.0
ANSWER_POLL_SECONDS = 0.1

_FLEET = "/kvmaint.v1.FleetService/"
_MAINT = "/kvmaint.v1.MaintenanceService/"
_CAMPAIGN = "/kvmaint.v1.CampaignService/"

# The writes whose retries are answered from the record. A replay after a lost answer is safe for these
# (each creates what it creates once, through `replaying()`, or is idempotent by itself).
REPLAYABLE = frozenset(
    {
        _FLEET + "CreateApp",
        _FLEET + "CreateAddon",
        _FLEET + "DeleteApp",
        _FLEET + "SetMaintenanceMode",
        _FLEET + "RequireMaintenance",  # its request_id files only what is missing
        _MAINT + "UpdateWindow",
    }
)
RECORDED = REPLAYABLE | frozenset(
    {
        _FLEET + "CreateWebhook",
        _FLEET + "DeleteWebhook",
        _MAINT + "ScheduleMaintenance",
        _MAINT + "RunMaintenance",
        _MAINT + "CreateFreeze",
        _MAINT + "DeleteFreeze",
        _CAMPAIGN + "CreateCampaign",
        _CAMPAIGN + "ResumeCampaign",
        _CAMPAIGN + "CancelCampaign",
    }
)


def request_id(metadata: Any) -> str:
    value = next((v for k, v in (metadata or ()) if k == REQUEST_ID), "")
    return value if isinstance(value, str) else value.decode(errors="replace")


class RequestInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        method: str = details.method
        if handler is None or method not in RECORDED or not handler.unary_unary:
            return handler
        rid = request_id(details.invocation_metadata)
        if not rid:
            return handler
        inner = handler.unary_unary
        serialize = handler.response_serializer

        async def run(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if len(rid) > 200:
                raise InvalidArgument.field(REQUEST_ID, "A request id has at most 200 characters.")
            stored = await self._stored(rid, method)
            if stored is not None and stored.response is None:
                stored = await self._answer_of(rid, method)
            if stored is not None and stored.response is not None:
                log.info("request %s (%s) answered again from its record", rid, method.rsplit("/", 1)[-1])
                return stored.response  # bytes: the serializer below passes them through
            if stored is not None and method not in REPLAYABLE:
                raise Aborted(
                    f"This request ({rid}) was carried out by a scheduler replica that stopped before it "
                    "could answer; it is not run again (it could do its work twice). Look at the result "
                    "(list it) before trying again.",
                    reason=ErrorReason.REQUEST_UNANSWERED,
                )
            mark = Mark(rid, method, self.clock.now(), replay_key=stored.key if stored is not None else None)
            if stored is not None:
                log.info("request %s (%s) committed unanswered: replaying it", rid, method.rsplit("/", 1)[-1])
            token = requests.current.set(mark)
            try:
                response = await inner(request, context)
            finally:
                mark.open = False
                requests.current.reset(token)
            if mark.recorded or stored is not None:
                data = response if isinstance(response, bytes) else serialize(response)
                async with self.store.transaction() as tx:
                    await tx.answer_request(rid, data)
            return response

        def passthrough(response: Any) -> bytes:
            return response if isinstance(response, bytes) else serialize(response)

        return grpc.unary_unary_rpc_method_handler(run, handler.request_deserializer, passthrough)

    async def _stored(self, rid: str, method: str) -> StoredRequest | None:
        async with self.store.read() as tx:
            stored = await tx.get_request(rid)
        if stored is not None and stored.method != method:
            raise InvalidArgument.field(
                REQUEST_ID, f"Request id {rid} was sent before with another call ({stored.method})."
            )
        return stored

    async def _answer_of(self, rid: str, method: str) -> StoredRequest | None:
        """The mark once its answer is stored, or as it is after ANSWER_WAIT_SECONDS."""
        until = self.clock.monotonic() + ANSWER_WAIT_SECONDS
        while True:
            stored = await self._stored(rid, method)
            if stored is None or stored.response is not None or self.clock.monotonic() >= until:
                return stored
            await self.clock.sleep(ANSWER_POLL_SECONDS)
