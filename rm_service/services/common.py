"""What every service module of the reward-model app shares: its errors, the clock, enqueueing after commit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone


class RmServiceError(ValueError):
    """A request the service refuses; the message says why (the API answers 400 with it)."""


class RmUnavailable(RuntimeError):
    """The broker or the reward-model workers are down (the API answers 503 with the message)."""


def now() -> datetime:
    return timezone.now()


def enqueue(send: Callable[[], Any], *, on_failure: Callable[[str], None]) -> None:
    """Send a Celery message after the surrounding transaction commits (immediately in autocommit).

    If the broker refuses it, ``on_failure`` marks the row failed (it would otherwise wait forever) and
    RmUnavailable reaches the caller, which answers 503.
    """

    def send_or_fail() -> None:
        try:
            send()
        except Exception as exc:
            reason = f"The reward-model service is unavailable: the task broker refused the job ({exc})."
            on_failure(reason)
            raise RmUnavailable(reason) from exc

    transaction.on_commit(send_or_fail)
