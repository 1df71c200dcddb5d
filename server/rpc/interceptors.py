"""One server interceptor for authentication and for mapping errors to statuses on every RPC."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from kvmaint.errors import KvmaintError
from server.auth import Principal, TokenTable, current_principal
from server.rpc.errors import abort

log = logging.getLogger(__name__)

# Agents authenticate with their certificates; health and reflection are open, as tools expect.
_NO_TOKEN_PREFIXES = ("/grpc.health.", "/grpc.reflection.", "/kvmaint.v1.AgentService/")


class ServiceInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, tokens: TokenTable) -> None:
        self.tokens = tokens

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:
            return handler
        method: str = details.method
        principal: Principal | KvmaintError
        if method.startswith(_NO_TOKEN_PREFIXES):
            principal = Principal("agent") if "AgentService" in method else Principal("operator")
        else:
            header = next((v for k, v in (details.invocation_metadata or ()) if k == "authorization"), None)
            try:
                principal = self.tokens.authenticate(header if isinstance(header, str) else None)
            except KvmaintError as err:
                principal = err
        return _wrap(handler, principal, method)


def _wrap(handler: grpc.RpcMethodHandler, principal: Principal | KvmaintError, method: str) -> Any:
    def enter() -> None:
        if isinstance(principal, KvmaintError):
            raise principal
        current_principal.set(principal)

    if handler.unary_unary:
        inner_uu = handler.unary_unary

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                enter()
                return await inner_uu(request, context)
            except KvmaintError as err:
                await abort(context, err)

        return grpc.unary_unary_rpc_method_handler(
            unary_unary, handler.request_deserializer, handler.response_serializer
        )
    if handler.unary_stream:
        inner_us = handler.unary_stream

        async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            try:
                enter()
                async for item in inner_us(request, context):
                    yield item
            except KvmaintError as err:
                await abort(context, err)

        return grpc.unary_stream_rpc_method_handler(
            unary_stream, handler.request_deserializer, handler.response_serializer
        )
    if handler.stream_stream:
        inner_ss = handler.stream_stream

        async def stream_stream(requests: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            try:
                enter()
                async for item in inner_ss(requests, context):
                    yield item
            except KvmaintError as err:
                await abort(context, err)

        return grpc.stream_stream_rpc_method_handler(
            stream_stream, handler.request_deserializer, handler.response_serializer
        )
    return handler
