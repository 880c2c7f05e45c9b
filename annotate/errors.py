"""The one error model of the platform.

Services and selectors raise ``ApplicationError`` (or a subclass); ``exception_handler`` turns it,
and every error DRF raises itself (validation, authentication, permission, not found, throttling,
parse errors), into one JSON body::

    {"error": {"code": "duplicate_vote", "message": "You already voted on this comparison.",
               "field": null, "details": {}}}

- ``code`` is stable and machine-readable; ``message`` is for people and may change.
- ``field`` names the input field at fault (the top-level name), or is null.
- ``details`` carries facts that belong to the code. For ``invalid`` (bad input) it maps each
  field path (``listened.A.0``; ``non_field_errors`` for the whole body) to its list of messages.

The status code comes from the error; the body never varies by endpoint. ``ERROR_RESPONSE`` is the
schema component every API names for its error responses, so the shape is documented once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

INVALID = "invalid"


class ApplicationError(Exception):
    """An error a client can act on: HTTP status, stable code, message, optional field and details.

    Subclasses set ``status`` and ``code`` as class attributes so call sites pass only the message.
    """

    status: int = 400
    code: str = INVALID

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        field: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.field = field
        self.details: dict[str, Any] = dict(details or {})
        if self.code == INVALID and field is not None and not self.details:
            self.details = {field: [message]}  # so every `invalid` error lists its fields the same way

    def as_body(self) -> dict[str, Any]:
        return error_body(code=self.code, message=self.message, field=self.field, details=self.details)


class NotFoundError(ApplicationError, Http404):
    """404. Also an ``Http404``, so a plain Django page that lets it through renders its 404 page."""

    status = 404
    code = "not_found"


class PermissionDeniedError(ApplicationError, DjangoPermissionDenied):
    """403. Also Django's ``PermissionDenied``, so pages answer 403 too."""

    status = 403
    code = "permission_denied"


def error_body(*, code: str, message: str, field: str | None = None, details: Mapping[str, Any] | None = None) -> dict:
    return {"error": {"code": code, "message": message, "field": field, "details": dict(details or {})}}


def field_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested validation detail flattened to ``{"a.b.0": ["message", ...]}``."""
    if isinstance(detail, Mapping):
        flat: dict[str, list[str]] = {}
        for key, value in detail.items():
            flat.update(field_errors(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(detail, list) and any(isinstance(item, Mapping | list) for item in detail):
        flat = {}
        for index, value in enumerate(detail):
            if value:  # DRF puts an empty dict or list at every valid position of a list field
                flat.update(field_errors(value, f"{prefix}.{index}" if prefix else str(index)))
        return flat
    messages = [str(item) for item in detail] if isinstance(detail, list) else [str(detail)]
    return {prefix or "non_field_errors": messages}


def validation_error(fields: Mapping[str, list[str]], *, message: str | None = None) -> ApplicationError:
    """A 400 ``invalid`` error naming the first bad field; ``fields`` as ``field_errors`` returns it."""
    first = next(iter(fields), None)
    field = None if first in (None, "non_field_errors") else first.split(".")[0]
    if message is None:
        reason = fields[first][0] if first is not None and fields[first] else "Invalid input."
        message = reason if field is None else f"{first}: {reason}"
    return ApplicationError(message, code=INVALID, field=field, details=fields)


def _from_drf(exc: exceptions.APIException) -> ApplicationError:
    if isinstance(exc, exceptions.ValidationError):
        return validation_error(field_errors(exc.detail))
    codes = exc.get_codes()
    code = codes if isinstance(codes, str) else exc.default_code
    detail = exc.detail
    message = str(detail if not isinstance(detail, list | dict) else next(iter(field_errors(detail).values()))[0])
    details: dict[str, Any] = {}
    wait = getattr(exc, "wait", None)  # Throttled sets it; the stubs don't declare it
    if isinstance(exc, exceptions.Throttled) and wait is not None:
        details["wait_s"] = wait
    return ApplicationError(message, code=str(code), status=exc.status_code, details=details)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """``REST_FRAMEWORK["EXCEPTION_HANDLER"]``: every handled error in the one shape; others stay 500s."""
    if isinstance(exc, ApplicationError):
        set_rollback()  # as DRF does for its own errors: an atomic request must not commit half a write
        return Response(exc.as_body(), status=exc.status)
    # DRF maps Django's Http404 and PermissionDenied and sets WWW-Authenticate / Retry-After headers.
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or None)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, exceptions.APIException):
        response.data = _from_drf(exc).as_body()
    return response


ERROR_SERIALIZER = inline_serializer(
    "Error",
    {
        "error": inline_serializer(
            "ErrorBody",
            {
                "code": serializers.CharField(help_text="Stable, machine-readable; e.g. invalid, not_found."),
                "message": serializers.CharField(help_text="For people; names the problem."),
                "field": serializers.CharField(allow_null=True, help_text="The input field at fault, or null."),
                "details": serializers.DictField(
                    help_text="Facts for the code; for `invalid`, field path -> list of messages."
                ),
            },
        )
    },
)


def error_response(description: str = "An error; see the Error component.") -> OpenApiResponse:
    """The schema entry for an error status: every API uses this, so the shape is documented once."""
    return OpenApiResponse(ERROR_SERIALIZER, description=description)


# Request bodies that refuse unknown fields (a typo in an export parameter must not be ignored).
CLOSED_REQUEST_BODIES = ("ExportParameters",)

# Statuses any API operation can answer, beside those it documents itself: the one Error shape for all.
_STANDARD_ERRORS = {
    "400": "Invalid input (`invalid`, with per-field details) or a request the operation refuses.",
    "401": "No or bad credentials (`not_authenticated`, `authentication_failed`).",
    "403": (
        "Not allowed for this account (`permission_denied`), or a missing CSRF token on a session request; "
        "`password_change_required` until the account's owner replaces a password staff set."
    ),
    "404": "No such object, or not one this account may see (`not_found`).",
    "405": "Method not allowed on this path (`method_not_allowed`).",
    "406": "The Accept header asks for a type this operation does not produce (`not_acceptable`).",
    "429": "Too many requests (`throttled`; details: wait_s).",
    "500": "An unexpected server error (`server_error`); the same JSON shape, never HTML.",
}
_BODY_ERRORS = {
    "413": "The request body is too large (`request_too_large`).",
    "415": "The request body's media type is not accepted (`unsupported_media_type`).",
}


def document_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: every operation lists every error status, each the ``Error`` shape.

    Operations keep their own descriptions where they document a status themselves.
    """
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    _no_nul_characters(result)
    for name in CLOSED_REQUEST_BODIES:  # bodies whose unknown fields are a 400, not ignored
        if name in result.get("components", {}).get("schemas", {}):
            result["components"]["schemas"][name]["additionalProperties"] = False
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in ("get", "put", "patch", "post", "delete"):
                continue
            responses = operation.setdefault("responses", {})
            statuses = dict(_STANDARD_ERRORS)
            if "requestBody" in operation:
                statuses.update(_BODY_ERRORS)
            for code, description in statuses.items():
                responses.setdefault(code, {"content": error, "description": description})
    return result


# DRF refuses NUL in every CharField (and PostgreSQL can't store it): the schema says so on every free string.
_NO_NUL = "^[^\\u0000]*$"


def _no_nul_characters(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("type") == "string" and not ({"enum", "format", "pattern", "$ref"} & node.keys()):
            node["pattern"] = _NO_NUL
        for value in node.values():
            _no_nul_characters(value)
    elif isinstance(node, list):
        for value in node:
            _no_nul_characters(value)
