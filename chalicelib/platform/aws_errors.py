"""The one classifier of AWS errors: what a failed call means for whoever made it.

The API answers an outage with 503 and Retry-After, a task retries a transient fault with backoff
and fails at once on a permanent one, a transaction tells a busy table from a failed condition,
and the mailer falls back when an emulator lacks SendBulkEmail. They all ask this module, so a
code learnt once (a new throttling name) counts everywhere.
"""

from __future__ import annotations

from enum import StrEnum

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException


class Fault(StrEnum):
    """What kind of failure an AWS error is."""

    #: Throttled, over capacity, or the service failed: the same call may succeed later.
    TRANSIENT = "transient"
    #: Refused for good (credentials, permissions, a bad parameter, a missing resource).
    PERMANENT = "permanent"
    #: The service (or the emulator) does not offer this operation.
    UNSUPPORTED = "unsupported"
    #: Anything else: a condition that failed, a conflict the caller must read.
    OTHER = "other"


_CODES: dict[str, Fault] = {
    # Throttling and capacity, by service.
    "ThrottlingException": Fault.TRANSIENT,
    "Throttling": Fault.TRANSIENT,
    "ProvisionedThroughputExceededException": Fault.TRANSIENT,
    "RequestLimitExceeded": Fault.TRANSIENT,
    "SlowDown": Fault.TRANSIENT,  # S3
    "RequestThrottled": Fault.TRANSIENT,  # SQS
    "TooManyRequestsException": Fault.TRANSIENT,  # Lambda, SES v2
    # The service failed or timed out.
    "ServiceUnavailable": Fault.TRANSIENT,
    "ServiceUnavailableException": Fault.TRANSIENT,
    "InternalError": Fault.TRANSIENT,
    "InternalServerError": Fault.TRANSIENT,
    "InternalServiceError": Fault.TRANSIENT,  # Secrets Manager (the signing secret)
    "InternalFailure": Fault.TRANSIENT,
    "RequestTimeout": Fault.TRANSIENT,
    # A transaction's cancellation reasons (CancellationReasons[].Code) that mean "busy", not "no".
    "ThrottlingError": Fault.TRANSIENT,
    "ProvisionedThroughputExceeded": Fault.TRANSIENT,
    "TransactionConflict": Fault.TRANSIENT,
    # Retrying cannot help.
    "AccessDenied": Fault.PERMANENT,
    "AccessDeniedException": Fault.PERMANENT,
    "InvalidClientTokenId": Fault.PERMANENT,
    "UnrecognizedClientException": Fault.PERMANENT,
    "SignatureDoesNotMatch": Fault.PERMANENT,
    "MessageRejected": Fault.PERMANENT,  # SES
    "MailFromDomainNotVerifiedException": Fault.PERMANENT,
    "ConfigurationSetDoesNotExist": Fault.PERMANENT,
    "InvalidParameterValue": Fault.PERMANENT,
    "ValidationException": Fault.PERMANENT,
    "NoSuchBucket": Fault.PERMANENT,
    "NoSuchKey": Fault.PERMANENT,
    # Operations an emulator may not have.
    "UnknownOperationException": Fault.UNSUPPORTED,
    "InvalidAction": Fault.UNSUPPORTED,
    "NotImplemented": Fault.UNSUPPORTED,
    "NotImplementedException": Fault.UNSUPPORTED,
}


def code_of(exc: BaseException) -> str:
    """The AWS error code of `exc` ("" when it carries none)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    if isinstance(exc, PynamoDBException):
        return str(exc.cause_response_code or "")
    return ""


def classify_code(code: str | None) -> Fault:
    """The kind of failure an error code (or a transaction's cancellation reason) names."""
    return _CODES.get(code or "", Fault.OTHER)


def classify(exc: BaseException) -> Fault:
    """The kind of failure `exc` is; a connection failure or a 5xx without a known code is transient."""
    if isinstance(exc, BotoCoreError):
        return Fault.TRANSIENT  # no answer at all: endpoint down, timeout, connection reset
    fault = classify_code(code_of(exc))
    if fault is not Fault.OTHER:
        return fault
    if isinstance(exc, ClientError):
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return Fault.TRANSIENT if status >= 500 else Fault.OTHER
    if isinstance(exc, PynamoDBException) and isinstance(exc.cause, BotoCoreError | ClientError):
        return classify(exc.cause)
    return Fault.OTHER


def is_transient(exc: BaseException) -> bool:
    """True when the same call may succeed later (an outage, throttling)."""
    return classify(exc) is Fault.TRANSIENT
