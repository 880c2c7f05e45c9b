from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views import csrf as csrf_views
from django.views import defaults

from annotate.broker import broker_ping
from annotate.catalog.selectors import campaign_list_for_user
from annotate.errors import error_body


@login_required
def home(request: HttpRequest) -> HttpResponse:
    campaigns = campaign_list_for_user(user=request.user)
    return render(request, "home.html", {"campaigns": campaigns})


def healthz(request: HttpRequest) -> JsonResponse:
    """Database and broker checked separately, for load balancers and compose health checks.

    Each check is bounded (the database connect timeout, ``REDIS_TIMEOUT_S`` for the broker), so the
    answer comes within about two seconds; 503 when either is down, with the reason per component.
    """
    checks = {"database": _check(_database_ping), "broker": _check(_broker_ping)}
    healthy = all(check["status"] == "ok" for check in checks.values())
    return JsonResponse({"status": "ok" if healthy else "unavailable", **checks}, status=200 if healthy else 503)


def _check(probe: Callable[[], None]) -> dict[str, object]:
    started = time.monotonic()
    try:
        probe()
    except Exception as exc:  # any failure of a dependency is a "down", never a 500
        result: dict[str, object] = {"status": "down", "error": type(exc).__name__}
    else:
        result = {"status": "ok"}
    result["ms"] = round((time.monotonic() - started) * 1000, 1)
    return result


def _database_ping() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _broker_ping() -> None:
    broker_ping(timeout=settings.REDIS_TIMEOUT_S)


# --- Errors on API paths: the one JSON shape (annotate/errors.py), never an HTML page -----------------------


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def _api_error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code=code, message=message), status=status)


def api_not_found(request: HttpRequest, rest: str = "") -> JsonResponse:
    """The catch-all under /api/: an unknown API path is a JSON 404 (also with DEBUG on)."""
    return _api_error(404, "not_found", f"No API endpoint at {request.path}.")


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return _api_error(400, "bad_request", "The request could not be read.")
    return defaults.bad_request(request, exception)  # type: ignore[arg-type]


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return _api_error(403, "permission_denied", str(exception or "") or "You may not do this.")
    return defaults.permission_denied(request, exception)  # type: ignore[arg-type]


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return _api_error(404, "not_found", "Not found.")
    return defaults.page_not_found(request, exception)  # type: ignore[arg-type]


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return _api_error(500, "server_error", "An unexpected server error; it has been logged.")
    return defaults.server_error(request)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """``CSRF_FAILURE_VIEW``: JSON on API paths, Django's page elsewhere."""
    if _is_api(request):
        return _api_error(403, "csrf_failed", f"CSRF check failed: {reason}" if reason else "CSRF check failed.")
    return csrf_views.csrf_failure(request, reason)
