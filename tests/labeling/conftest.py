"""Fixtures for labeling tests: campaigns with short clips and small listening requirements."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone

from annotate.catalog.models import Campaign, Comparison
from annotate.labeling.models import Assignment
from annotate.labeling.services import assignment_next
from tests import factories


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:  # type: ignore[no-untyped-def]
    # These tests create dozens of users; PBKDF2 would cost most of their run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def small_campaign(db: None) -> Campaign:
    """Active, overlap 2, 1 s of listening per clip (clips are 2 s), feedback required."""
    return factories.make_campaign(name="Small", overlap_target=2, min_listen_seconds=1.0, min_listen_fraction=None)


def full_listen(assignment: Assignment) -> dict[str, list[tuple[float, float]]]:
    """Intervals covering both displayed clips entirely."""
    comparison = assignment.comparison
    return {"A": [(0.0, comparison.clip_a.duration_s)], "B": [(0.0, comparison.clip_b.duration_s)]}


def vote_kwargs(assignment: Assignment, **overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = dict(
        annotator=assignment.annotator,
        assignment_id=assignment.public_id,
        alignment="A",
        alignment_confidence=4,
        musicality="B",
        musicality_confidence=2,
        feedback="A follows the prompt; B is cleaner.",
        listened=full_listen(assignment),
        time_on_task_s=42.0,
    )
    kwargs.update(overrides)
    return kwargs


def make_assignment(
    comparison: Comparison, annotator: User, *, swapped: bool = False, delivered: bool = True, **fields: Any
) -> Assignment:
    """A live reservation handed out a minute ago, so honest listening intervals are plausible.

    With ``delivered`` (the default) the server has delivered both clips in full, as after an honest page load.
    """
    fields.setdefault("expires_at", timezone.now() + timedelta(minutes=20))
    assignment = Assignment.objects.create(comparison=comparison, annotator=annotator, swapped=swapped, **fields)
    Assignment.objects.filter(pk=assignment.pk).update(created_at=timezone.now() - timedelta(minutes=1))
    assignment.refresh_from_db()
    if delivered:
        factories.deliver_audio(assignment)
    return assignment


def ask_at_once(
    campaign: Campaign, annotators: list[User], *, timeout_s: float = 30
) -> tuple[list[Assignment | None], list[BaseException]]:
    """Every annotator asks for their next assignment at the same moment, each on its own connection."""
    barrier = threading.Barrier(len(annotators))
    results: list[Assignment | None] = []
    errors: list[BaseException] = []

    def ask(annotator: User) -> None:
        try:
            barrier.wait()
            results.append(assignment_next(annotator=annotator, campaign=campaign))
        except BaseException as exc:  # noqa: BLE001 - surfaced by the caller
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=ask, args=(a,)) for a in annotators]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout_s)
    return results, errors
