"""The export lifecycle: create (validate, record a queued Export), run (claim the row, build the files
in a temporary directory, publish by rename), reap exports whose worker died.

Parameters are parsed in ``params``, rows are built in ``rows`` (the benchmark schema), files,
hashes and archives are written by ``bundle``; this module decides what goes in and when it counts.

Every export path (staff page, REST API, ``manage.py export_campaign``, the Celery task)
goes through ``export_create`` (validate, record a queued Export) and ``export_run``
(claim the row, build the files in a temporary directory, publish by rename).

Layout of a finished export, ``export_dir_for(export)`` = ``EXPORT_ROOT/export-<id>/``::

    votes.jsonl          one row per vote, every split, with a "split" field
    train.jsonl          the same rows, one file per split (same schema, same order)
    validation.jsonl
    test.jsonl
    comparisons.jsonl    one row per comparison: aggregated label (majority, soft label, counts, mean confidence)
    audio/<sha256>.<ext> every clip and reference clip, named by content hash
    manifest.json        parameters and seed, counts per split x modality x vocal, agreement, sha256 of every file
    README.md            data card: fields, splits, licence, counts

Audio paths inside the JSONL (``audio-path``, ``audio2``, ``ref-audio-path``) are relative to
the export directory. Rows are sorted by comparison, then vote, so the same data and
parameters give byte-identical JSONL. With ``archive`` set, ``EXPORT_ROOT/export-<id>.tar.gz``
(or ``.zip``) holds the directory, built reproducibly (sorted members, fixed times).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Q, QuerySet
from django.utils import timezone

from annotate.agreement.selectors import agreement_summary_of_splits, flagged_annotator_ids
from annotate.broker import task_publish_on_commit
from annotate.catalog.models import Campaign
from annotate.exports import bundle, datacard, rows
from annotate.exports.bundle import Counts, ExportError, FileDigests
from annotate.exports.models import Export
from annotate.exports.params import ExportParameterError, ExportParameters
from annotate.exports.selectors import (
    export_comparison_facts,
    export_dir_for,
    export_split_items,
    export_vote_values,
    export_votes,
)
from annotate.exports.splits import SPLITS, SplitItem, SplitPlan, assign_splits
from annotate.labeling.models import AnnotatorProfile, Vote
from annotate.labeling.selectors import adjudicated_labels
from annotate.onboarding.selectors import withdrawn_votes_summary

logger = logging.getLogger(__name__)

_PROGRESS_EVERY_S = 0.5


# --- Planning: which votes, which comparisons, which split -------------------------------


@dataclass
class _Plan:
    params: ExportParameters
    votes: QuerySet[Vote]
    flagged: set[int]


def _plan(campaign: Campaign, params: ExportParameters, flagged: set[int] | None = None) -> _Plan:
    """``flagged``: the annotators to leave out, when already decided (at the request); else quality control's now."""
    if flagged is None:
        flagged = flagged_annotator_ids(campaign_id=campaign.pk) if params.exclude_flagged_annotators else set()
    votes = export_votes(campaign=campaign, params=params, flagged_annotator_ids=flagged)
    return _Plan(params, votes, flagged)


def _targets(params: ExportParameters, comparison_count: int) -> tuple[int, int]:
    test = params.test_size if params.test_size is not None else round(params.test_fraction * comparison_count)
    return test, round(params.validation_fraction * comparison_count)


def _check_feasible(plan: _Plan) -> None:
    """Reasons a valid-looking request can't be met by this campaign's data (a 400, not a failed job)."""
    comparison_count = plan.votes.order_by().values("comparison_id").distinct().count()
    if comparison_count == 0:
        raise ExportParameterError({"filters": "no vote matches the filters"})
    test, validation = _targets(plan.params, comparison_count)
    if test > comparison_count:
        raise ExportParameterError(
            {"test_size": f"{test} comparisons requested but only {comparison_count} match the filters"}
        )
    if test + validation > comparison_count:
        raise ExportParameterError(
            {
                "validation_fraction": f"test ({test}) + validation ({validation}) exceed the {comparison_count} "
                "comparisons that match the filters"
            }
        )


def export_create(
    *,
    campaign: Campaign,
    requested_by: User | None,
    parameters: Mapping[str, Any],
    enqueue: bool = True,
) -> Export:
    """Validate the parameters against the campaign's data and record a queued export.

    With ``enqueue`` the Celery task (``default`` queue) is sent once the transaction commits;
    without it the caller runs ``export_run`` itself (the management command does).

    Raises:
        ExportParameterError: bad or impossible parameters, with the reason per parameter.
        BrokerUnavailable: the task queue can't be reached; the export is recorded as failed, never left queued.
    """
    params = ExportParameters.from_dict(parameters)
    plan = _plan(campaign, params)
    _check_feasible(plan)
    export_stale_reap(stale_after_s=settings.EXPORT_STALE_AFTER_S)
    export = Export.objects.create(
        campaign=campaign,
        requested_by=requested_by,
        parameters=params.to_dict(),
        # Quality control's flags as checked now: the build leaves out this set, not one computed minutes later.
        excluded_annotator_ids=sorted(plan.flagged),
    )
    if enqueue:
        from annotate.exports.tasks import export_run_task  # the task module imports this one

        def fail(reason: str) -> None:
            Export.objects.filter(pk=export.pk, status=Export.Status.QUEUED).update(
                status=Export.Status.FAILED, error=reason, progress_message="failed", finished_at=timezone.now()
            )

        task_publish_on_commit(export_run_task, args=[export.pk], on_failure=fail)
    return export


# --- Running ----------------------------------------------------------------------------


def export_stale_reap(*, stale_after_s: float) -> int:
    """Fail running exports whose worker died (no progress for ``stale_after_s``) and drop their temp files.

    Nothing of such an export was published (files are renamed into place only at the end), so
    failing it loses nothing; staff start a new one. Returns the number of exports failed.
    """
    cutoff = timezone.now() - dt.timedelta(seconds=stale_after_s)
    stale = Export.objects.filter(status=Export.Status.RUNNING).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    )
    failed = 0
    for export in stale:
        failed += Export.objects.filter(
            pk=export.pk, status=Export.Status.RUNNING, heartbeat_at=export.heartbeat_at
        ).update(
            status=Export.Status.FAILED,
            progress_message="failed",
            finished_at=timezone.now(),
            error=f"the worker stopped while building this export (no progress since {export.heartbeat_at}); "
            "start a new export",
        )
        for leftover in Path(settings.EXPORT_ROOT).glob(f".tmp-export-{export.pk}-*"):
            shutil.rmtree(leftover, ignore_errors=True)
    return failed


def export_run(*, export_id: int) -> Export:
    """Claim a queued export and build it; idempotent (a second call on a claimed row does nothing).

    Files are written under a temporary directory inside EXPORT_ROOT and renamed into place
    only when complete, and the row is marked succeeded only after that; any failure marks
    it failed with the reason and leaves no export directory or archive behind.
    """
    export, claimed = _claim(export_id)
    if not claimed:
        return export
    root = Path(settings.EXPORT_ROOT)
    root.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=f".tmp-export-{export.pk}-", dir=root))
    published: list[Path] = []
    try:
        summary, archive_name = _build(export, workdir)
        published = _publish(export, workdir, archive_name)
        _mark_succeeded(export, summary, archive_name)
    except Exception as exc:
        logger.exception("export %s failed", export.pk)
        _mark_failed(export, exc, published)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    export.refresh_from_db()
    return export


def _claim(export_id: int) -> tuple[Export, bool]:
    """The conditional queued -> running update: only one caller ever builds an export."""
    now = timezone.now()
    claimed = Export.objects.filter(pk=export_id, status=Export.Status.QUEUED).update(
        status=Export.Status.RUNNING, started_at=now, heartbeat_at=now, progress=0.0, progress_message="starting"
    )
    return Export.objects.select_related("campaign").get(pk=export_id), bool(claimed)


def _mark_succeeded(export: Export, summary: dict[str, Any], archive_name: str) -> None:
    done = Export.objects.filter(pk=export.pk, status=Export.Status.RUNNING).update(
        status=Export.Status.SUCCEEDED,
        progress=1.0,
        progress_message="done",
        summary=summary,
        result_path=export_dir_for(export).name,
        archive_path=archive_name,
        finished_at=timezone.now(),
    )
    if done != 1:
        raise ExportError("the export row changed while it was running")


def _mark_failed(export: Export, exc: Exception, published: list[Path]) -> None:
    for path in published:
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    Export.objects.filter(pk=export.pk).exclude(status=Export.Status.SUCCEEDED).update(
        status=Export.Status.FAILED,
        error=f"{type(exc).__name__}: {exc}"[:2000],
        progress_message="failed",
        finished_at=timezone.now(),
    )


def _publish(export: Export, workdir: Path, archive_name: str) -> list[Path]:
    """Rename the finished files into place (same filesystem, so each rename is atomic)."""
    final_dir = export_dir_for(export)
    if final_dir.exists():
        raise ExportError(f"{final_dir} already exists; refusing to overwrite another export")
    os.rename(workdir / final_dir.name, final_dir)
    published = [final_dir]
    if archive_name:
        destination = final_dir.parent / archive_name
        os.replace(workdir / archive_name, destination)
        published.append(destination)
    return published


class _Progress:
    """Throttled progress updates, so a 100k-vote export does not write the row 100k times."""

    def __init__(self, export_id: int):
        self.export_id = export_id
        self.last = 0.0

    def __call__(self, fraction: float, message: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last >= _PROGRESS_EVERY_S:
            self.last = now
            Export.objects.filter(pk=self.export_id, status=Export.Status.RUNNING).update(
                progress=min(max(fraction, 0.0), 1.0), progress_message=message[:200], heartbeat_at=timezone.now()
            )


def _build(export: Export, workdir: Path) -> tuple[dict[str, Any], str]:
    progress = _Progress(export.pk)
    params = ExportParameters.from_dict(export.parameters)
    excluded = export.excluded_annotator_ids
    plan = _plan(export.campaign, params, None if excluded is None else set(excluded))
    progress(0.01, "selecting comparisons", force=True)
    split_plan = _split(params, export_split_items(votes=plan.votes))
    if not split_plan.split_of_prompt:
        raise ExportError("no vote matches the filters any more")
    out = workdir / export_dir_for(export).name
    out.mkdir()
    # A tar.gz is compressed on another thread while the rows are written; leaving this block, on
    # success or failure, stops that thread and removes its temporary files.
    with bundle.archive_pipeline(workdir, params.archive) as pipeline:
        summary = _write_files(export, params, plan, split_plan, out, progress, pipeline)
        progress(0.96, "writing archive", force=True)
        return summary, bundle.write_archive(workdir, out, params.archive, pipeline=pipeline)


def _write_files(
    export: Export,
    params: ExportParameters,
    plan: _Plan,
    split_plan: SplitPlan,
    out: Path,
    progress: _Progress,
    pipeline: bundle.TarGzPipeline | None,
) -> dict[str, Any]:
    """Write the export directory (rows, audio, data card, manifest); returns the summary."""
    files: FileDigests = {}
    pseudonyms = _pseudonyms(plan.votes)  # one per annotator of the exported votes
    written = bundle.write_rows(
        out,
        comparisons=export_comparison_facts(votes=plan.votes),
        votes=export_vote_values(votes=plan.votes),
        split_of_prompt=split_plan.split_of_prompt,
        pseudonyms=pseudonyms,
        adjudicated=adjudicated_labels(campaign=export.campaign),
        total=plan.votes.count(),
        files=files,
        progress=progress,
        pipeline=pipeline,
    )
    progress(0.8, "copying audio", force=True)
    bundle.write_audio(out, written.audio, mode=params.audio, files=files, progress=progress)
    progress(0.95, "writing manifest", force=True)
    summary = _summary(params, split_plan, written.votes, written.comparisons, len(plan.flagged))
    agreement = agreement_summary_of_splits(splits=written.splits, annotator_count=len(pseudonyms))
    manifest = _manifest(export, params, summary, agreement, files)
    bundle.write_text(out / "README.md", datacard.render(export.campaign, manifest), files, "README.md")
    manifest["files"] = dict(sorted(files.items()))
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return summary


def _split(params: ExportParameters, items: list[SplitItem]) -> SplitPlan:
    test_target, validation_target = _targets(params, sum(item.count for item in items))
    return assign_splits(
        items,
        seed=params.seed,
        test_target=test_target,
        validation_target=validation_target,
        balance_test=params.balance_test,
        group_by_reference=params.group_by_reference,
    )


def _pseudonyms(votes: QuerySet[Vote]) -> dict[int, str]:
    """Pseudonymous ids for every voter; profiles are created for voters who have none yet."""
    user_ids = set(votes.order_by().values_list("annotator_id", flat=True).distinct())
    known = dict(AnnotatorProfile.objects.filter(user_id__in=user_ids).values_list("user_id", "pseudonym"))
    for user_id in sorted(user_ids - known.keys()):
        known[user_id] = AnnotatorProfile.objects.get_or_create(user_id=user_id)[0].pseudonym
    return known


# --- Manifest -----------------------------------------------------------------------------


def _nested_counts(counts: Counts) -> dict[str, dict[str, dict[str, int]]]:
    nested: dict[str, dict[str, dict[str, int]]] = {}
    for (split, modality, vocal), n in sorted(counts.items()):
        nested.setdefault(split, {}).setdefault(modality, {})[vocal] = n
    return nested


def _summary(
    params: ExportParameters,
    split_plan: SplitPlan,
    vote_counts: Counts,
    comparison_counts: Counts,
    flagged_count: int,
) -> dict[str, Any]:
    def per_split(counts: Counts) -> dict[str, int]:
        return {name: sum(n for (s, _, _), n in counts.items() if s == name) for name in SPLITS}

    return {
        "votes": per_split(vote_counts),
        "comparisons": per_split(comparison_counts),
        "votes_by_split_modality_vocal": _nested_counts(vote_counts),
        "comparisons_by_split_modality_vocal": _nested_counts(comparison_counts),
        "test_split": {
            "requested": split_plan.test_requested,
            "selected": per_split(comparison_counts)["test"],
            "balanced": params.balance_test,
            "shortfall": split_plan.shortfall,
        },
        "validation_split": {
            "requested": split_plan.validation_requested,
            "selected": per_split(comparison_counts)["validation"],
        },
        "excluded_flagged_annotators": flagged_count,
    }


def _manifest(
    export: Export,
    params: ExportParameters,
    summary: dict[str, Any],
    agreement: dict[str, Any],
    files: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    campaign = export.campaign
    return {
        "format": "cmi-arena-export/1",
        "export_id": export.pk,
        "campaign": {"id": campaign.pk, "name": campaign.name, "license": campaign.license},
        "created_at": timezone.now().astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "code_version": bundle.code_version(),
        "source": rows.SOURCE,
        "parameters": params.to_dict(),
        "seed": params.seed,
        "counts": summary,
        "excluded": {"withdrawn": withdrawn_votes_summary(campaign_id=campaign.pk)},
        "agreement": agreement,
        "layout": {
            "votes": "votes.jsonl",
            "splits": {name: f"{name}.jsonl" for name in SPLITS},
            "comparisons": "comparisons.jsonl",
            "audio_dir": "audio",
        },
        # README.md is added by the caller once written; manifest.json cannot hash itself.
        "files": files,
    }
