"""What every service module of the reward-model app shares: its errors, the clock, enqueueing after commit."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from celery import Task
from django.db import transaction
from django.utils import timezone

from annotate.broker import BrokerUnavailable, task_publish
from annotate.errors import ApplicationError


class RmServiceError(ApplicationError, ValueError):
    """A request the service refuses; the message says why (the API answers 400 with it)."""


class RmUnavailable(ApplicationError, RuntimeError):
    """The broker or the reward-model workers are down (the API answers 503 with the message)."""

    status = 503
    code = "rm_unavailable"


def without_paths(message: str) -> str:
    """``message`` with every file path replaced: clients never learn where the server keeps files."""
    return re.sub(r"(?:[A-Za-z]:)?/[^\s:'\"]+", "<file>", message)


def now() -> datetime:
    return timezone.now()


def enqueue(
    task: Task,
    *,
    args: list[Any],
    on_failure: Callable[[str], None],
    queue: str,
    task_id: str | None = None,
) -> None:
    """Send a Celery message after the surrounding transaction commits (immediately in autocommit).

    Publishing is bounded in time (annotate.broker). If the broker refuses or doesn't answer,
    ``on_failure`` marks the row failed (it would otherwise wait forever) and RmUnavailable reaches the
    caller, which answers 503.
    """

    def send_or_fail() -> None:
        try:
            task_publish(task, args=args, queue=queue, task_id=task_id)
        except BrokerUnavailable as exc:
            reason = f"The reward-model service is unavailable: the task broker refused the job ({exc.message})"
            on_failure(reason)
            raise RmUnavailable(reason) from exc

    transaction.on_commit(send_or_fail)
