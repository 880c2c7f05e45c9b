from __future__ import annotations

import io
import tarfile
import time

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from annotate.celery import app
from annotate.exports.models import Export
from tests import factories
from tests.exports.conftest import build_dataset


def test_it_routes_the_export_task_to_the_default_queue() -> None:
    assert app.amqp.router.route({}, "annotate.exports.tasks.export_run_task")["queue"].name == "default"


@pytest.mark.django_db(transaction=True)
def test_it_runs_an_api_export_on_the_real_celery_worker(celery_worker_process) -> None:  # type: ignore[no-untyped-def]
    staff: User = factories.make_annotator("export-admin", is_staff=True)
    data = build_dataset(per_cell=1, voters=2, seed=21)
    client = APIClient()
    client.force_login(staff)
    created = client.post(f"/api/v1/campaigns/{data.campaign.pk}/exports", {"test_size": 4}, format="json")
    assert created.status_code == 202, created.json()
    seen_statuses = set()
    deadline = time.monotonic() + 90
    while True:
        detail = client.get(created.json()["detail_url"]).json()
        seen_statuses.add(detail["status"])
        if detail["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert detail["status"] == "succeeded", detail
    assert detail["progress"] == 1.0 and detail["summary"]["comparisons"]["test"] == 4
    export = Export.objects.get(pk=detail["id"])
    assert export.started_at is not None and export.finished_at is not None
    download = client.get(detail["download_url"])
    with tarfile.open(fileobj=io.BytesIO(download.getvalue()), mode="r:gz") as tar:
        votes = tar.extractfile(f"export-{export.pk}/votes.jsonl").read()  # type: ignore[union-attr]
    assert len(votes.splitlines()) == 16
