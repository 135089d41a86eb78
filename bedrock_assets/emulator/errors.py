"""AWS error shapes on the wire (docs/bedrock-facts.md §1.5, §1.6): `x-amzn-ErrorType` header + `{"message"}` body."""

from __future__ import annotations

# HTTP status per modelled exception. Conflict and ServiceQuotaExceeded are 400, not 409/402.
ERROR_STATUS = {
    "ValidationException": 400,
    "ConflictException": 400,
    "ServiceQuotaExceededException": 400,
    "ThrottlingException": 429,
    "ResourceNotFoundException": 404,
    "AccessDeniedException": 403,
    "InternalServerException": 500,
    "ModelErrorException": 424,
    "ServiceUnavailableException": 503,
}


class ApiError(Exception):
    """An error answered to the client as a modelled AWS exception."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        return ERROR_STATUS.get(self.code, 400)


def validation(message: str) -> ApiError:
    return ApiError("ValidationException", message)


def not_found(message: str) -> ApiError:
    return ApiError("ResourceNotFoundException", message)


def conflict(message: str) -> ApiError:
    return ApiError("ConflictException", message)


def quota_exceeded(message: str) -> ApiError:
    return ApiError("ServiceQuotaExceededException", message)


def throttled(message: str = "Too many requests, please wait before trying again.") -> ApiError:
    return ApiError("ThrottlingException", message)
