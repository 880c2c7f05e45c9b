"""The migration that makes time on task the server's: client figures move aside, the server's are computed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from tests import factories

BEFORE = [("labeling", "0001_initial")]
AFTER = [("labeling", "0002_listening_evidence_server_time")]


@pytest.fixture(autouse=True)
def _back_to_the_latest_schema():  # type: ignore[no-untyped-def]
    """Later transactional tests (run after this one) need every table and trigger back."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_it_keeps_the_client_time_and_recomputes_the_servers_from_the_reservation(bob) -> None:
    comparison = factories.make_comparison(factories.make_campaign())
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    handed_out = timezone.now() - timedelta(minutes=5)
    assignment = old.get_model("labeling", "Assignment").objects.create(
        annotator_id=bob.pk, comparison_id=comparison.pk, swapped=False, expires_at=handed_out + timedelta(minutes=20)
    )
    old.get_model("labeling", "Assignment").objects.filter(pk=assignment.pk).update(created_at=handed_out)
    fields = dict(
        alignment_choice="a",
        alignment_confidence=3,
        musicality_choice="b",
        musicality_confidence=3,
        presented_swapped=False,
        comparison_id=comparison.pk,
    )
    votes = old.get_model("labeling", "Vote").objects
    # As a client could send them before: an absurd duration and a start in 2099.
    voted = votes.create(
        annotator_id=bob.pk,
        assignment_id=assignment.pk,
        time_on_task_s=1e300,
        started_at=handed_out.replace(year=2099),
        **fields,
    )
    votes.filter(pk=voted.pk).update(created_at=handed_out + timedelta(seconds=90))
    seeded = votes.create(annotator_id=factories.make_annotator().pk, time_on_task_s=33.0, **fields)

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps.get_model("labeling", "Vote").objects
    migrated = new.get(pk=voted.pk)
    assert migrated.client_time_on_task_s == 1e300
    assert migrated.time_on_task_s == pytest.approx(90.0)
    assert migrated.started_at == handed_out
    untouched = new.get(pk=seeded.pk)  # no reservation to measure from: written by seed_votes, not a client
    assert (untouched.time_on_task_s, untouched.client_time_on_task_s) == (33.0, None)
