"""Counts every gRPC request by method and final status code (kvmaint_grpc_requests_total).

Outermost interceptor: it sees the code the inner one set when it mapped an error (`context.code()`),
OK when the handler returned, CANCELLED when the client went away, UNKNOWN for anything else.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from server.metrics import SchedulerMetrics

_KINDS = (
    ("unary_unary", grpc.unary_unary_rpc_method_handler, False),
    ("unary_stream", grpc.unary_stream_rpc_method_handler, True),
    ("stream_unary", grpc.stream_unary_rpc_method_handler, False),
    ("stream_stream", grpc.stream_stream_rpc_method_handler, True),
)


def _code(context: grpc.aio.ServicerContext, err: BaseException | None) -> str:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    if isinstance(err, asyncio.CancelledError):
        return "CANCELLED"
    return "UNKNOWN" if err is not None else "OK"


class MeteringInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, metrics: SchedulerMetrics) -> None:
        self.metrics = metrics

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:
            return handler
        method: str = details.method
        count = self.metrics.grpc_requests

        for kind, make, streaming in _KINDS:
            inner = getattr(handler, kind)
            if inner is None:
                continue
            # A streaming handler may be a coroutine writing with context.write (grpc_health's Watch):
            # it stays a coroutine, or gRPC would iterate a coroutine.
            if streaming and inspect.isasyncgenfunction(inner):

                async def stream(
                    request: Any, context: grpc.aio.ServicerContext, _f: Any = inner
                ) -> AsyncIterator[Any]:
                    err: BaseException | None = None
                    try:
                        async for item in _f(request, context):
                            yield item
                    except BaseException as e:
                        err = e
                        raise
                    finally:
                        count.labels(method, _code(context, err)).inc()

                return make(stream, handler.request_deserializer, handler.response_serializer)

            async def unary(request: Any, context: grpc.aio.ServicerContext, _f: Any = inner) -> Any:
                err: BaseException | None = None
                try:
                    return await _f(request, context)
                except BaseException as e:
                    err = e
                    raise
                finally:
                    count.labels(method, _code(context, err)).inc()

            return make(unary, handler.request_deserializer, handler.response_serializer)
        return handler
