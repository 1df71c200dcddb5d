"""One server interceptor for authentication and for mapping errors to statuses on every RPC."""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from kvmaint.errors import InvalidArgument, KvmaintError, PermissionDenied
from server.auth import NO_TOKEN, Principal, TokenTable, current_principal
from server.rpc.errors import abort

log = logging.getLogger(__name__)

# Health and reflection are open, as tools expect. Agents authenticate by certificate or agent token.
_NO_TOKEN_PREFIXES = ("/grpc.health.", "/grpc.reflection.")
_AGENT_PREFIX = "/kvmaint.v1.AgentService/"


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
        header = next((v for k, v in (details.invocation_metadata or ()) if k == "authorization"), None)
        token = header if isinstance(header, str) else None
        try:
            if method.startswith(_AGENT_PREFIX):
                # A certificate or an agent token; the hub decides which it needs (agents/hub.py).
                principal = self.tokens.authenticate(token) if token and self.tokens.enabled else NO_TOKEN
            elif method.startswith(_NO_TOKEN_PREFIXES):
                principal = Principal("operator")
            else:
                principal = self.tokens.authenticate(token)
                if principal.is_agent:
                    raise PermissionDenied("An agent token may only open the agent stream.")
        except KvmaintError as err:
            principal = err
        return _wrap(handler, principal, method)


class _Undecodable:
    """Stands in for a request whose bytes did not decode, so the handler answers INVALID_ARGUMENT
    (grpc would answer UNKNOWN "Unexpected DecodeError" for an exception raised in the deserializer)."""

    def __init__(self, error: Exception) -> None:
        self.error = InvalidArgument(f"The request is not a valid protobuf message: {error}")


def _decoding(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None
    decode = deserializer

    def deserialize(data: bytes) -> Any:
        try:
            return decode(data)
        except DecodeError as err:
            return _Undecodable(err)

    return deserialize


def _decoded(request: Any) -> Any:
    if isinstance(request, _Undecodable):
        raise request.error
    return request


async def _decoded_stream(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for request in requests:
        yield _decoded(request)


def _wrap(handler: grpc.RpcMethodHandler, principal: Principal | KvmaintError, method: str) -> Any:
    """The same handler, authenticated, with undecodable requests refused and kvmaint errors mapped. A
    streaming handler may be an async generator or a coroutine that writes with `context.write()`
    (grpc_health's Watch): each keeps its own shape, since gRPC tells them apart by kind."""

    def enter() -> None:
        if isinstance(principal, KvmaintError):
            raise principal
        current_principal.set(principal)

    streaming_requests = bool(handler.stream_unary or handler.stream_stream)

    def decoded(request: Any) -> Any:
        return _decoded_stream(request) if streaming_requests else _decoded(request)

    def coroutine(inner: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                enter()
                return await inner(decoded(request), context)
            except KvmaintError as err:
                await abort(context, err)

        return call

    def generator(inner: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
        async def call(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            try:
                enter()
                async for item in inner(decoded(request), context):
                    yield item
            except KvmaintError as err:
                await abort(context, err)

        return call

    def wrapped(inner: Any) -> Any:
        return generator(inner) if inspect.isasyncgenfunction(inner) else coroutine(inner)

    deserializer = _decoding(handler.request_deserializer)
    kinds = (
        (handler.unary_unary, grpc.unary_unary_rpc_method_handler),
        (handler.unary_stream, grpc.unary_stream_rpc_method_handler),
        (handler.stream_unary, grpc.stream_unary_rpc_method_handler),
        (handler.stream_stream, grpc.stream_stream_rpc_method_handler),
    )
    for inner, make in kinds:
        if inner:
            return make(wrapped(inner), deserializer, handler.response_serializer)
    return handler
