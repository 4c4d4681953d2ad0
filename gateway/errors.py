"""The gateway's exception hierarchy: every error that becomes an HTTP problem carries its status and a slug.

Details are written for the person reading the response: what is wrong and what to do. They never contain request
values, row values or secrets.
"""

from __future__ import annotations

__all__ = [
    "AuditUnavailableError",
    "AuthError",
    "AuthThrottledError",
    "ConfigError",
    "ConflictError",
    "EgressBlockedError",
    "ForbiddenError",
    "GatewayError",
    "MalformedRequestError",
    "NotAcceptableError",
    "NotFoundError",
    "NotImplementedByGatewayError",
    "PayloadTooLargeError",
    "RateLimitedError",
    "RegistryTimeoutError",
    "RegistryUnavailableError",
    "RequestTimeoutError",
    "TooManyExtractsError",
    "UnsupportedMediaTypeError",
    "ValidationError",
]


class GatewayError(Exception):
    status = 500
    code = "internal-error"
    title = "Internal error"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


class ValidationError(GatewayError):
    status = 422
    code = "invalid-request"
    title = "The request is not valid under the agreement"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        if code is not None:
            self.code = code


class MalformedRequestError(GatewayError):
    status = 400
    code = "malformed-request"
    title = "The request body is not valid JSON"


class AuthError(GatewayError):
    status = 401
    code = "unauthenticated"
    title = "Authentication required"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="dx-gateway"'})


class AuthThrottledError(GatewayError):
    """Too many failed authentications from this client address or naming this key id (gateway.throttle)."""

    status = 429
    code = "too-many-failed-authentications"
    title = "Too many failed authentications"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"too many failed authentications from this address or for this key; try again in {retry_after} s",
            headers={"Retry-After": str(max(1, retry_after))},
        )


class ForbiddenError(GatewayError):
    status = 403
    code = "forbidden"
    title = "Not allowed"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        if code is not None:
            self.code = code


class NotFoundError(GatewayError):
    status = 404
    code = "not-found"
    title = "Not found"


class PayloadTooLargeError(GatewayError):
    status = 413
    code = "payload-too-large"
    title = "Request body too large"


class UnsupportedMediaTypeError(GatewayError):
    status = 415
    code = "unsupported-media-type"
    title = "Unsupported media type"


class NotAcceptableError(GatewayError):
    """None of the media types the ``Accept`` header names is one the resource is offered in (RFC 9110 15.5.7)."""

    status = 406
    code = "not-acceptable"
    title = "Not acceptable"


class RateLimitedError(GatewayError):
    status = 429
    code = "rate-limited"
    title = "Limit of the agreement reached"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})


class NotImplementedByGatewayError(GatewayError):
    status = 501
    code = "control-not-enforced"
    title = "The agreement requires a control this gateway does not enforce"


class AuditUnavailableError(GatewayError):
    """The disclosure log cannot be written: nothing is released (fail closed)."""

    status = 503
    code = "audit-unavailable"
    title = "Disclosure log unavailable"


class RegistryUnavailableError(GatewayError):
    status = 502
    code = "registry-unavailable"
    title = "The registry could not be read"


class RegistryTimeoutError(GatewayError):
    status = 504
    code = "registry-timeout"
    title = "The registry did not answer in time"


class EgressBlockedError(GatewayError):
    """The egress scan found an identifier in a released value under ``egress.on_finding: block``.

    409: the request conflicts with the agreement's own release rules (not the requester's fault, not a server
    fault); the detail names entity types and columns, never a value.
    """

    status = 409
    code = "egress-blocked"
    title = "An identifier was found in the data to be released"


class ConflictError(GatewayError):
    """409: the request conflicts with the current state (an alert already acknowledged, an identifier that names
    more than one child)."""

    status = 409
    code = "conflict"
    title = "The request conflicts with the current state"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        if code is not None:
            self.code = code


class ConfigError(Exception):
    """Configuration is wrong: raised at start, with the file, the key and the reason."""


class RequestTimeoutError(GatewayError):
    """The request body did not arrive in full within ``body_timeout_s`` (a slow or stalled sender): nothing was
    done; the connection is closed."""

    status = 408
    code = "request-timeout"
    title = "The request body did not arrive in time"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Connection": "close"})


class TooManyExtractsError(GatewayError):
    """The principal already has ``max_concurrent_extracts`` extracts running in this process."""

    status = 429
    code = "too-many-concurrent-extracts"
    title = "Too many extracts running at once"

    def __init__(self, limit: int, retry_after: int) -> None:
        super().__init__(
            f"this API key already has {limit} extract(s) running; wait for one to finish, then retry",
            headers={"Retry-After": str(max(1, retry_after))},
        )
