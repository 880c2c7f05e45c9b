"""Failing the work of dead rm workers."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from rm_service import services
from rm_service.models import JobStatus, TrainingRun
from tests.rm_service.services.conftest import create_run


@pytest.mark.django_db
def test_it_fails_runs_whose_worker_stopped_beating(synthetic_data: Path) -> None:
    run = create_run(synthetic_data)
    services.training_run_claim(run_id=run.pk, worker="dead@host")
    TrainingRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=10))
    fresh = create_run(synthetic_data)
    services.training_run_claim(run_id=fresh.pk, worker="alive@host")
    assert services.stale_work_reap(stale_after_s=120) == 1
    run.refresh_from_db()
    fresh.refresh_from_db()
    assert run.status == JobStatus.FAILED and "dead@host stopped" in run.error and not run.resumable
    assert fresh.status == JobStatus.RUNNING
