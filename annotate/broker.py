"""Publishing Celery tasks from a request without ever hanging on the broker.

Workers keep Celery's own connection settings. A request that hands work to a worker publishes
through a connection with short socket timeouts and no retries, so a broker that is down or frozen
costs a bounded time (about ``REDIS_TIMEOUT_S`` per round trip) and surfaces as ``BrokerUnavailable``,
which the API answers with 503. Callers that created a row for the task mark it failed
(``on_failure``), so nothing waits in ``queued`` for a message that was never sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import Task
from django.conf import settings
from django.db import transaction

from annotate.celery import app
from annotate.errors import ApplicationError

log = logging.getLogger(__name__)


class BrokerUnavailable(ApplicationError):
    """The task broker refused or did not answer in time; the work was not queued (503)."""

    status = 503
    code = "broker_unavailable"


def task_publish(
    task: Task,
    *,
    args: list[Any] | tuple[Any, ...] = (),
    queue: str | None = None,
    task_id: str | None = None,
    countdown: float | None = None,
) -> None:
    """Send one task message with bounded timeouts; raise BrokerUnavailable if it can't be sent."""
    options: dict[str, Any] = {}
    if settings.REDIS_URL:
        timeout = settings.REDIS_TIMEOUT_S
        options = {
            "connect_timeout": timeout,
            "transport_options": {
                **settings.CELERY_BROKER_TRANSPORT_OPTIONS,
                "socket_timeout": timeout,
                "socket_connect_timeout": timeout,
                # kombu retries a refused connection with back-off by default; a request can't wait.
                "max_retries": 0,
                "interval_start": 0,
            },
        }
    try:
        with app.connection_for_write(settings.CELERY_BROKER_URL, **options) as connection:
            task.apply_async(
                args=list(args), queue=queue, task_id=task_id, countdown=countdown, connection=connection, retry=False
            )
    except Exception as exc:  # kombu's OperationalError, redis' TimeoutError/ConnectionError, OSError
        log.warning("could not publish %s: %s", task.name, exc)
        raise BrokerUnavailable(
            f"The task queue is unavailable right now ({type(exc).__name__}); try again later."
        ) from exc


def task_publish_on_commit(
    task: Task,
    *,
    args: list[Any] | tuple[Any, ...] = (),
    on_failure: Callable[[str], None],
    queue: str | None = None,
    task_id: str | None = None,
) -> None:
    """Publish after the surrounding transaction commits (at once in autocommit).

    If the broker refuses, ``on_failure(reason)`` marks the row failed and BrokerUnavailable reaches
    the caller; the row's own write is already committed, so nothing is half-done.
    """

    def send() -> None:
        try:
            task_publish(task, args=args, queue=queue, task_id=task_id)
        except BrokerUnavailable as exc:
            on_failure(str(exc))
            raise

    transaction.on_commit(send)


def broker_ping(*, timeout: float) -> None:
    """Raise if the broker doesn't answer a round trip within ``timeout`` seconds."""
    if settings.REDIS_URL:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            client.ping()
        finally:
            client.close()
        return
    with app.connection_for_write(settings.CELERY_BROKER_URL) as connection:
        connection.ensure_connection(max_retries=1, timeout=timeout)
