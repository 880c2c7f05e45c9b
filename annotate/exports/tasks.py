"""Celery interface of exports: thin, takes an id, calls the service (which claims the row first)."""

from __future__ import annotations

from celery import shared_task

from annotate.exports.services import export_run


@shared_task(name="annotate.exports.tasks.export_run_task", ignore_result=True)
def export_run_task(export_id: int) -> None:
    # A redelivered message finds the row already claimed and does nothing.
    export_run(export_id=export_id)
