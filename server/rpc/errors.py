"""The one place where kvmaint errors become gRPC statuses."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
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
}


def status_code(err: errors.KvmaintError) -> grpc.StatusCode:
    for cls in type(err).__mro__:
        if cls in _CODES:
            return _CODES[cls]
    return grpc.StatusCode.INTERNAL


def trailing_metadata(err: errors.KvmaintError) -> tuple[tuple[str, bytes], ...]:
    """A google.rpc.Status with BadRequest field violations, as grpcio-status clients read it."""
    code = status_code(err)
    status = status_pb2.Status(code=code.value[0], message=err.message)
    if isinstance(err, errors.InvalidArgument) and err.violations:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                for v in err.violations
            ]
        )
        detail = any_pb2.Any()
        detail.Pack(bad)
        status.details.append(detail)
    assert status.code != code_pb2.OK
    return (("grpc-status-details-bin", status.SerializeToString()),)


async def abort(context: grpc.aio.ServicerContext, err: errors.KvmaintError) -> None:
    await context.abort(status_code(err), err.message, trailing_metadata(err))
