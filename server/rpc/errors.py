"""The one place where kvmaint errors become gRPC statuses, with AIP-193 details: ErrorInfo always,
BadRequest, ResourceInfo and PreconditionFailure when the error has them."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2

from kvmaint import errors

_CODES: dict[type[errors.KvmaintError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.Aborted: grpc.StatusCode.ABORTED,
    errors.Internal: grpc.StatusCode.INTERNAL,
}


def status_code(err: errors.KvmaintError) -> grpc.StatusCode:
    for cls in type(err).__mro__:
        if cls in _CODES:
            return _CODES[cls]
    return grpc.StatusCode.INTERNAL


def details(err: errors.KvmaintError) -> list[Message]:
    """The google.rpc detail messages for `err`, ErrorInfo first."""
    out: list[Message] = [
        error_details_pb2.ErrorInfo(reason=err.reason, domain=errors.DOMAIN, metadata=err.metadata)
    ]
    if err.violations:
        out.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                    for v in err.violations
                ]
            )
        )
    if err.resource is not None:
        out.append(
            error_details_pb2.ResourceInfo(
                resource_type=err.resource.resource_type,
                resource_name=err.resource.name,
                owner=err.resource.owner,
                description=err.message,
            )
        )
    if err.preconditions:
        out.append(
            error_details_pb2.PreconditionFailure(
                violations=[
                    error_details_pb2.PreconditionFailure.Violation(
                        type=p.type, subject=p.subject, description=p.description
                    )
                    for p in err.preconditions
                ]
            )
        )
    return out


def trailing_metadata(err: errors.KvmaintError) -> tuple[tuple[str, bytes], ...]:
    """A google.rpc.Status with the details, as grpcio-status clients (and grpcurl) read it."""
    code = status_code(err)
    status = status_pb2.Status(code=code.value[0], message=err.message)
    for message in details(err):
        packed = any_pb2.Any()
        packed.Pack(message)
        status.details.append(packed)
    assert status.code != code_pb2.OK
    return (("grpc-status-details-bin", status.SerializeToString()),)


async def abort(context: grpc.aio.ServicerContext, err: errors.KvmaintError) -> None:
    await context.abort(status_code(err), err.message, trailing_metadata(err))
