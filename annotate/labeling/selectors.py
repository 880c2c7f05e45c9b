"""Reads for labeling. ``assignment_get_for_annotator`` is the only way a view gets an assignment."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db import connection
from django.db.models import Sum
from django.urls import reverse

from annotate import joins
from annotate.catalog.audio import PRESENTATION_PROFILE, AudioError, probe_audio
from annotate.catalog.models import Campaign, Clip, ClipRendition, Comparison, Instruction
from annotate.errors import NotFoundError
from annotate.labeling.models import Adjudication, Assignment, CampaignCounter, Vote
from annotate.permissions import user_is_staff


class AssignmentNotFound(NotFoundError):
    """Unknown id, or someone else's assignment: both look the same, so ids can't be probed."""

    def __init__(self) -> None:
        super().__init__("No such assignment for you.")


def assignment_public_id(*, annotator: User | AnonymousUser, assignment_id: UUID | str) -> Any:
    """``assignment_id`` as the database takes ``Assignment.public_id``, for a signed-in account.

    Raises:
        AssignmentNotFound: an anonymous caller or a malformed id (both look like an unknown assignment).
    """
    if not isinstance(annotator, User) or not annotator.is_authenticated:
        raise AssignmentNotFound()
    try:
        public_id = assignment_id if isinstance(assignment_id, UUID) else UUID(str(assignment_id))
    except ValueError:
        raise AssignmentNotFound() from None
    return joins.param(Assignment, "public_id", public_id)


def assignment_get_for_annotator(
    *, annotator: User | AnonymousUser, assignment_id: UUID | str, allow_staff: bool = False
) -> Assignment:
    """The annotator's own assignment by public id; with ``allow_staff``, staff may read anyone's.

    Raises:
        AssignmentNotFound: the id is malformed or unknown, or the assignment belongs to someone else.
    """
    public_id = assignment_public_id(annotator=annotator, assignment_id=assignment_id)
    staff = bool(allow_staff and user_is_staff(annotator))
    found = _assignments_with_related(
        "a.public_id = %(public_id)s AND (a.annotator_id = %(user)s OR %(staff)s)",
        {"public_id": public_id, "user": annotator.pk, "staff": staff},
    )
    if found is None:
        raise AssignmentNotFound()
    return found


_RELATED_TABLES = (
    joins.Table(Assignment, "a"),
    joins.Table(Comparison, "c"),
    joins.Table(Campaign, "p"),
    joins.Table(Instruction, "i"),
    joins.Table(Clip, "cr"),
    joins.Table(Clip, "ca"),
    joins.Table(Clip, "cb"),
)
_RELATED_SQL = f"""
SELECT {joins.select_list(*_RELATED_TABLES)}
FROM labeling_assignment a
JOIN catalog_comparison c ON c.id = a.comparison_id
JOIN catalog_campaign p ON p.id = c.campaign_id
JOIN catalog_instruction i ON i.id = c.instruction_id
LEFT JOIN catalog_clip cr ON cr.id = i.reference_clip_id
JOIN catalog_clip ca ON ca.id = c.clip_a_id
JOIN catalog_clip cb ON cb.id = c.clip_b_id
WHERE """


def _assignments_with_related(where: str, params: dict[str, Any]) -> Assignment | None:
    """The assignment matching ``where`` with everything a page or payload shows (comparison, campaign,
    instruction, reference and both clips) cached: ``select_related`` of all five, written once."""
    found = joins.first(_RELATED_SQL + where, params, *_RELATED_TABLES)
    if found is None:
        return None
    (assignment, comparison, campaign, instruction, reference, clip_a, clip_b), _ = found
    assert isinstance(assignment, Assignment) and comparison is not None and instruction is not None
    joins.link(instruction, "reference_clip", reference)
    for name, related in (("campaign", campaign), ("instruction", instruction), ("clip_a", clip_a), ("clip_b", clip_b)):
        joins.link(comparison, name, related)
    joins.link(assignment, "comparison", comparison)
    return assignment


def assignment_with_related(pk: int) -> Assignment:
    """An assignment by primary key with everything its payload shows, in one query."""
    found = _assignments_with_related("a.id = %(pk)s", {"pk": pk})
    if found is None:
        raise Assignment.DoesNotExist(f"No assignment {pk}.")
    return found


_AUDIO_TABLES = (
    joins.Table(Assignment, "a", ("annotator", "comparison", "swapped", "status", "expires_at")),
    joins.Table(Comparison, "c", ("campaign", "instruction", "clip_a", "clip_b")),
    joins.Table(Campaign, "p", ("presentation_loudness_lufs", "presentation_true_peak_dbtp")),
    joins.Table(Instruction, "i", ("reference_clip",)),
    joins.Table(ClipRendition, "r"),
)
# The clip shown as the requested side, and its presentation rendition for the campaign (if made yet).
_AUDIO_SQL = f"""
SELECT {joins.select_list(*_AUDIO_TABLES)},
       CASE %(side)s WHEN 'R' THEN i.reference_clip_id
                     WHEN 'A' THEN CASE WHEN a.swapped THEN c.clip_b_id ELSE c.clip_a_id END
                     ELSE CASE WHEN a.swapped THEN c.clip_a_id ELSE c.clip_b_id END END
FROM labeling_assignment a
JOIN catalog_comparison c ON c.id = a.comparison_id
JOIN catalog_campaign p ON p.id = c.campaign_id
JOIN catalog_instruction i ON i.id = c.instruction_id
LEFT JOIN catalog_cliprendition r
       ON r.clip_id = CASE %(side)s WHEN 'R' THEN i.reference_clip_id
                                    WHEN 'A' THEN CASE WHEN a.swapped THEN c.clip_b_id ELSE c.clip_a_id END
                                    ELSE CASE WHEN a.swapped THEN c.clip_a_id ELSE c.clip_b_id END END
      AND r.profile = %(profile)s AND r.target_lufs = p.presentation_loudness_lufs
      AND r.ceiling_dbtp = p.presentation_true_peak_dbtp
WHERE a.public_id = %(public_id)s AND (a.annotator_id = %(user)s OR %(staff)s)
"""


@dataclass(frozen=True)
class AudioSource:
    """What serving one side of an assignment needs: the assignment (with comparison, campaign, instruction
    cached; clips and text not loaded), the id of the clip shown as that side (None: no such clip) and its
    presentation rendition (None: not made yet)."""

    assignment: Assignment
    clip_id: int | None
    rendition: ClipRendition | None


def assignment_audio_source(
    *, annotator: User | AnonymousUser, assignment_id: UUID | str, side: str, allow_staff: bool = False
) -> AudioSource:
    """One query for the audio view: ``assignment_get_for_annotator``'s rules, plus the side's clip and rendition.

    ``side`` is "A" (left), "B" (right) or "R" (the reference); any other value gives no clip.

    Raises:
        AssignmentNotFound: the id is malformed or unknown, or the assignment belongs to someone else.
    """
    public_id = assignment_public_id(annotator=annotator, assignment_id=assignment_id)
    params = {
        "side": side,
        "profile": PRESENTATION_PROFILE,
        "public_id": public_id,
        "user": annotator.pk,
        "staff": bool(allow_staff and user_is_staff(annotator)),
    }
    found = joins.first(_AUDIO_SQL, params, *_AUDIO_TABLES, extra=1)
    if found is None:
        raise AssignmentNotFound()
    (assignment, comparison, campaign, instruction, rendition), (clip_id,) = found
    assert isinstance(assignment, Assignment) and comparison is not None
    joins.link(comparison, "campaign", campaign)
    joins.link(comparison, "instruction", instruction)
    joins.link(assignment, "comparison", comparison)
    return AudioSource(
        assignment=assignment,
        clip_id=clip_id if side in ("A", "B", "R") else None,
        rendition=rendition,  # type: ignore[arg-type]
    )


def slots_taken(*, comparison_id: int, now: datetime, annotator: User | None = None) -> int:
    """Votes plus unexpired live reservations, optionally not counting ``annotator``'s own reservations."""
    votes = Vote.objects.filter(comparison_id=comparison_id).count()
    live = Assignment.objects.filter(comparison_id=comparison_id, status=Assignment.Status.LIVE, expires_at__gt=now)
    if annotator is not None:
        live = live.exclude(annotator=annotator)
    return votes + live.count()


def assignment_lapsed_without_room(*, assignment: Assignment, now: datetime) -> bool:
    """True when the reservation lapsed and others have since filled the comparison: a vote can't count."""
    if assignment.status == Assignment.Status.LIVE and assignment.expires_at > now:
        return False
    taken = slots_taken(comparison_id=assignment.comparison_id, now=now, annotator=assignment.annotator)
    return taken >= assignment.comparison.campaign.overlap_target


@dataclass(frozen=True)
class Progress:
    done: int  # votes this annotator cast in the campaign
    skipped: int
    remaining: int  # comparisons still open to this annotator (not done, not skipped, below the overlap target)
    total: int  # comparisons in the campaign
    campaign_votes: int
    campaign_votes_target: int  # total × overlap target

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def assignment_current(*, annotator: User, campaign: Campaign, now: datetime) -> Assignment | None:
    """The annotator's live, unexpired reservation in ``campaign`` that still awaits an answer, if any."""
    return (
        Assignment.objects.filter(
            annotator=annotator, comparison__campaign=campaign, status=Assignment.Status.LIVE, expires_at__gt=now
        )
        .exclude(comparison__votes__annotator=annotator)
        .exclude(comparison__skips__annotator=annotator)
        .select_related(
            "comparison__campaign",
            "comparison__instruction__reference_clip",
            "comparison__clip_a",
            "comparison__clip_b",
        )
        .order_by("created_at")
        .first()
    )


# Raw SQL (portable: PostgreSQL and SQLite): this runs with every hand-out, and compiling the equivalent ORM
# query (seven subqueries) cost several times its execution.
_PROGRESS_SQL = """
SELECT counters.total, counters.votes, counters.open, mine.done, mine.done_open, skipped.n, skipped.n_open
FROM (SELECT COALESCE(SUM(c.comparisons), 0) AS total, COALESCE(SUM(c.votes), 0) AS votes,
             COALESCE(SUM(c.open_comparisons), 0) AS open
      FROM labeling_campaigncounter c WHERE c.campaign_id = %(campaign)s) counters
CROSS JOIN
     (SELECT COUNT(*) AS done, COALESCE(SUM(CASE WHEN s.votes < %(target)s THEN 1 ELSE 0 END), 0) AS done_open
      FROM labeling_vote v JOIN labeling_comparisonslot s ON s.comparison_id = v.comparison_id
      WHERE v.annotator_id = %(me)s AND s.campaign_id = %(campaign)s) mine
CROSS JOIN
     (SELECT COUNT(*) AS n, COALESCE(SUM(CASE WHEN s.votes < %(target)s AND NOT EXISTS (
                 SELECT 1 FROM labeling_vote v WHERE v.annotator_id = k.annotator_id
                 AND v.comparison_id = k.comparison_id) THEN 1 ELSE 0 END), 0) AS n_open
      FROM labeling_skip k JOIN labeling_comparisonslot s ON s.comparison_id = k.comparison_id
      WHERE k.annotator_id = %(me)s AND s.campaign_id = %(campaign)s) skipped
"""


def annotator_progress(*, annotator: User, campaign: Campaign) -> Progress:
    """One query whatever the campaign's size: the campaign's counters plus the annotator's own rows (one pass
    over their votes and one over their skips, each joined to the slots).

    ``remaining`` is the campaign's open comparisons (fewer votes than the target, a counter) less those the
    annotator voted on or skipped (the annotator's rows, joined to their slots).
    """
    with connection.cursor() as cursor:
        cursor.execute(_PROGRESS_SQL, {"me": annotator.pk, "campaign": campaign.pk, "target": campaign.overlap_target})
        total, campaign_votes, open_comparisons, done, done_open, skipped, skipped_open = cursor.fetchone()
    return Progress(
        done=done,
        skipped=skipped,
        remaining=max(0, open_comparisons - done_open - skipped_open),
        total=total,
        campaign_votes=campaign_votes,
        campaign_votes_target=total * campaign.overlap_target,
    )


def campaign_vote_total(*, campaign_id: int) -> int:
    """Every vote of the campaign, from the maintained counters (no scan of the votes)."""
    total = CampaignCounter.objects.filter(campaign_id=campaign_id).aggregate(n=Sum("votes"))["n"]
    return int(total or 0)


def assignment_clip(*, assignment: Assignment, side: str) -> Clip | None:
    """The clip shown as ``side``: "A" (left), "B" (right) or "R" (the instruction's reference)."""
    comparison = assignment.comparison
    if side == "R":
        return comparison.instruction.reference_clip
    if side not in ("A", "B"):
        return None
    first, second = (
        (comparison.clip_b, comparison.clip_a) if assignment.swapped else (comparison.clip_a, comparison.clip_b)
    )
    return first if side == "A" else second


def clip_peaks(*, clip: Clip) -> list[float]:
    """Waveform peaks, computed from the file and cached on the row when the import didn't store them.

    Stored rounded (``PEAK_DECIMALS``; catalog migration 0007 rounded older rows), so they are served as they are.
    """
    if clip.peaks is None:
        try:
            clip.peaks = probe_audio(Path(settings.MEDIA_ROOT) / str(clip.file.name)).peaks
        except (AudioError, OSError):
            return []
        Clip.objects.filter(pk=clip.pk, peaks__isnull=True).update(peaks=clip.peaks)
    return clip.peaks


def assignment_payload(*, assignment: Assignment) -> dict[str, Any]:
    """Everything the annotator may see about an assignment: no system, file name or clip id."""
    comparison = assignment.comparison
    campaign = comparison.campaign
    instruction = comparison.instruction
    clips: dict[str, Any] = {}
    for side in ("A", "B"):
        clip = assignment_clip(assignment=assignment, side=side)
        assert clip is not None
        clips[side] = {
            "audio_url": reverse("labeling:audio", args=[assignment.public_id, side]),
            "duration_s": round(clip.duration_s, 3),
            "required_listen_s": round(campaign.required_listen_seconds(clip.duration_s), 3),
            "peaks": clip_peaks(clip=clip),
        }
    reference = None
    if instruction.reference_clip is not None:
        reference = {
            "audio_url": reverse("labeling:audio", args=[assignment.public_id, "R"]),
            "duration_s": round(instruction.reference_clip.duration_s, 3),
            "peaks": clip_peaks(clip=instruction.reference_clip),
        }
    return {
        "id": str(assignment.public_id),
        "status": assignment.status,
        "expires_at": assignment.expires_at.isoformat(),
        "campaign": {"id": campaign.pk, "name": campaign.name, "feedback_required": campaign.feedback_required},
        "instruction": {"prompt": instruction.text, "lyrics": instruction.lyrics, "reference": reference},
        "clips": clips,
        "vote_url": reverse("labeling:api-vote", args=[assignment.public_id]),
        "skip_url": reverse("labeling:api-skip", args=[assignment.public_id]),
        "next_url": reverse("labeling:campaign-next", args=[campaign.pk]),
    }


def assignment_audio_allowed(*, user: User, assignment: Assignment) -> bool:
    """Staff always; the annotator while the assignment is open (live, or lapsed but not yet voted or skipped)."""
    if user_is_staff(user):
        return True
    return assignment.annotator_id == user.pk and assignment.status in (
        Assignment.Status.LIVE,
        Assignment.Status.EXPIRED,
    )


# --- Adjudication (staff) -------------------------------------------------------------


def _adjudication_dict(adjudication: Adjudication | None) -> dict[str, Any] | None:
    if adjudication is None:
        return None
    return {
        "alignment": adjudication.alignment_choice,
        "musicality": adjudication.musicality_choice,
        "note": adjudication.note,
        "decided_by": adjudication.decided_by.get_username() if adjudication.decided_by else None,
        "decided_at": adjudication.decided_at.isoformat(),
    }


def adjudication_get(*, comparison: Comparison) -> dict[str, Any] | None:
    """The stored resolution of ``comparison`` (canonical choices), or None."""
    return _adjudication_dict(Adjudication.objects.select_related("decided_by").filter(comparison=comparison).first())


def comparison_dispute(*, comparison: Comparison) -> dict[str, Any]:
    """What staff need to resolve a dispute: the instruction, each clip's staff audio URL, every vote, the resolution.

    ``comparison`` comes from ``catalog.selectors.comparison_get_for_staff``. Choices are canonical ("a" is clip_a).
    """
    instruction = comparison.instruction

    def clip(c: Clip | None, system: str = "") -> dict[str, Any] | None:
        if c is None:
            return None
        url = reverse("rm_service:clip-audio", args=[c.pk])
        return {"id": c.pk, "audio_url": url, "duration_s": round(c.duration_s, 3), "system": system}

    votes = (
        Vote.objects.filter(comparison=comparison)
        .select_related("annotator")
        .order_by("created_at", "pk")
        .values_list(
            "pk",
            "annotator__username",
            "alignment_choice",
            "alignment_confidence",
            "musicality_choice",
            "musicality_confidence",
            "feedback",
            "presented_swapped",
            "time_on_task_s",
            "created_at",
        )
    )
    keys = ("id", "annotator", "alignment", "alignment_confidence", "musicality", "musicality_confidence")
    rows = [
        {
            **dict(zip(keys, row[:6], strict=True)),
            "feedback": row[6],
            "presented_swapped": row[7],
            "time_on_task_s": row[8],
            "created_at": row[9].isoformat(),
        }
        for row in votes
    ]
    return {
        "comparison": comparison.pk,
        "campaign": {"id": comparison.campaign_id, "name": comparison.campaign.name},
        "instruction": {
            "prompt_id": instruction.prompt_id,
            "prompt": instruction.text,
            "lyrics": instruction.lyrics,
            "modality": instruction.modality,
        },
        "clips": {
            "a": clip(comparison.clip_a, comparison.system_a),
            "b": clip(comparison.clip_b, comparison.system_b),
            "reference": clip(instruction.reference_clip),
        },
        "votes": rows,
        "tally": {
            q: {c: sum(1 for r in rows if r[q] == c) for c in ("a", "b", "t")} for q in ("alignment", "musicality")
        },
        "adjudication": adjudication_get(comparison=comparison),
    }


def adjudicated_labels(
    *, comparison_ids: Iterable[int] | None = None, campaign: Campaign | None = None
) -> dict[int, dict[str, str]]:
    """Staff resolutions by comparison id: ``{"alignment": "a"|"b"|"t", "musicality": ...}``."""
    rows = Adjudication.objects.all()
    if campaign is not None:
        rows = rows.filter(comparison__campaign=campaign)
    if comparison_ids is not None:
        rows = rows.filter(comparison_id__in=list(comparison_ids))
    return {
        cid: {"alignment": al, "musicality": mu}
        for cid, al, mu in rows.values_list("comparison_id", "alignment_choice", "musicality_choice")
    }
