"""Reads for exports: the permission-checked fetches, the filtered votes and per-comparison facts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connections
from django.db.models import BooleanField, Case, CharField, Count, F, Func, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce, Concat

from annotate.catalog.models import Campaign, Comparison
from annotate.errors import NotFoundError, PermissionDeniedError
from annotate.exports.models import Export
from annotate.exports.rows import VOTE_FIELDS, VoteValues, iso_time
from annotate.exports.splits import SplitItem
from annotate.labeling.models import Vote
from annotate.onboarding.selectors import campaign_counted_votes
from annotate.permissions import user_is_staff

if TYPE_CHECKING:
    from annotate.exports.params import ExportParameters

User = AbstractBaseUser | AnonymousUser


def export_dir_for(export: Export) -> Path:
    """Where a finished export's directory is (it exists only once ``export.status`` is succeeded).

    Layout: votes.jsonl, train.jsonl, validation.jsonl, test.jsonl, comparisons.jsonl,
    audio/<sha256>.<ext>, manifest.json, README.md. Paths inside the JSONL are relative to it.
    """
    return Path(settings.EXPORT_ROOT) / f"export-{export.pk}"


def _require_staff(user: User) -> None:
    if not user_is_staff(user):
        raise PermissionDeniedError("Only staff may export data.")


def export_get_for_user(*, user: User, export_id: int) -> Export:
    """The one way a view gets an Export: staff only (403 before 404, so annotators learn nothing)."""
    _require_staff(user)
    export = Export.objects.select_related("campaign", "requested_by").filter(pk=export_id).first()
    if export is None:
        raise NotFoundError(f"No export {export_id}.")
    return export


def export_list_for_campaign(*, user: User, campaign: Campaign | None) -> QuerySet[Export]:
    """A campaign's exports, newest first; every campaign's when ``campaign`` is None (staff only)."""
    _require_staff(user)
    exports = Export.objects.all() if campaign is None else Export.objects.filter(campaign=campaign)
    return exports.select_related("requested_by").order_by("-created_at", "-pk")


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def export_votes(*, campaign: Campaign, params: ExportParameters, flagged_annotator_ids: set[int]) -> QuerySet[Vote]:
    """The votes an export writes: vote filters first, then comparisons with too few remaining votes go."""
    votes = campaign_counted_votes(campaign_id=campaign.pk)
    if params.exclude_gold:
        votes = votes.exclude(~Q(comparison__gold_alignment="") | ~Q(comparison__gold_musicality=""))
    if params.exclude_attention_checks:
        votes = votes.exclude(comparison__is_attention_check=True)
    if params.min_confidence > 1:
        votes = votes.filter(
            alignment_confidence__gte=params.min_confidence, musicality_confidence__gte=params.min_confidence
        )
    if params.date_from is not None:
        votes = votes.filter(created_at__gte=_day_start(params.date_from))
    if params.date_to is not None:
        # date_to is inclusive: everything before the start of the next day (UTC).
        votes = votes.filter(created_at__lt=_day_start(params.date_to + dt.timedelta(days=1)))
    if flagged_annotator_ids:
        votes = votes.exclude(annotator_id__in=sorted(flagged_annotator_ids))
    if params.min_votes_per_comparison > 1:
        enough = (
            votes.order_by()
            .values("comparison_id")
            .annotate(n=Count("id"))
            .filter(n__gte=params.min_votes_per_comparison)
            .values("comparison_id")
        )
        votes = votes.filter(comparison_id__in=enough)
    return votes


class ComparisonFacts(NamedTuple):
    """What the export needs to know about one comparison, read once (one row per comparison).

    A named tuple: one is built per comparison of an export (a frozen dataclass cost a second per 200k)."""

    comparison_id: int
    prompt_id: str
    instruction_hash: str
    prompt: str
    lyrics: str
    modality: str
    reference_sha: str
    reference_file: str
    clip_a_sha: str
    clip_a_file: str
    clip_a_system: str
    clip_a_vocal: bool | None
    clip_b_sha: str
    clip_b_file: str
    clip_b_system: str
    clip_b_vocal: bool | None
    gold_alignment: str
    gold_musicality: str
    is_attention_check: bool

    @property
    def prompt_key(self) -> str:
        # Instructions without a prompt id are their own prompt.
        return self.prompt_id or f"instruction:{self.instruction_hash}"

    @property
    def vocal(self) -> bool | None:
        """Vocal when either clip is; instrumental when both are known instrumental; else unknown."""
        flags = (self.clip_a_vocal, self.clip_b_vocal)
        if True in flags:
            return True
        return None if None in flags else False


_FACT_FIELDS = (
    "id",
    "instruction__prompt_id",
    "instruction__content_hash",
    "instruction__text",
    "instruction__lyrics",
    "instruction__modality",
    "reference_sha",  # the two reference annotations of export_comparison_facts
    "reference_file",
    "clip_a__sha256",
    "clip_a__file",
    "system_a",
    "clip_a__is_vocal",
    "clip_b__sha256",
    "clip_b__file",
    "system_b",
    "clip_b__is_vocal",
    "gold_alignment",
    "gold_musicality",
    "is_attention_check",
)


_CHUNK = 5000  # rows per fetch from a server-side cursor: memory stays flat whatever the campaign's size


def _voted(votes: QuerySet[Vote]) -> QuerySet[Comparison]:
    return Comparison.objects.filter(pk__in=votes.order_by().values("comparison_id"))


def export_comparison_facts(*, votes: QuerySet[Vote]) -> Iterator[ComparisonFacts]:
    """Facts for every comparison that has at least one of ``votes``, in id order, streamed from the database."""
    facts = _voted(votes).annotate(
        # No reference clip: "" rather than None, like the other text fields.
        reference_sha=Coalesce(F("instruction__reference_clip__sha256"), Value(""), output_field=CharField()),
        reference_file=Coalesce(F("instruction__reference_clip__file"), Value(""), output_field=CharField()),
    )
    return map(ComparisonFacts._make, facts.order_by("pk").values_list(*_FACT_FIELDS).iterator(chunk_size=_CHUNK))


def export_split_items(*, votes: QuerySet[Vote]) -> list[SplitItem]:
    """The split planner's compact table: comparisons with at least one of ``votes`` counted per prompt key,
    reference clip, modality and vocal flag (``ComparisonFacts.prompt_key`` and ``.vocal``, computed in SQL)."""
    clip_a, clip_b = Q(clip_a__is_vocal=True), Q(clip_b__is_vocal=True)
    rows = (
        _voted(votes)
        .order_by()
        .annotate(
            prompt_key=Case(
                When(instruction__prompt_id="", then=Concat(Value("instruction:"), F("instruction__content_hash"))),
                default=F("instruction__prompt_id"),
                output_field=CharField(),
            ),
            reference_key=Coalesce(F("instruction__reference_clip__sha256"), Value("")),
            vocal=Case(
                When(clip_a | clip_b, then=Value(True)),
                When(Q(clip_a__is_vocal=False, clip_b__is_vocal=False), then=Value(False)),
                default=Value(None),
                output_field=BooleanField(null=True),
            ),
        )
        .values_list("prompt_key", "reference_key", "instruction__modality", "vocal")
        .annotate(n=Count("id"))
    )
    references: dict[str, str] = {}  # one string per reference clip, not one per row (memory at 1M votes)
    return [
        SplitItem(prompt_key, references.setdefault(reference_key, reference_key), modality, vocal, count)
        for prompt_key, reference_key, modality, vocal, count in rows.iterator(chunk_size=_CHUNK)
    ]


class _IsoTime(Func):
    """``rows.iso_time`` in SQL: UTC, microseconds only when there are any (as ``isoformat``), then "Z"."""

    template = (
        """replace(to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), '.000000Z', 'Z')"""
    )
    output_field = CharField()


def export_vote_values(*, votes: QuerySet[Vote]) -> Iterator[VoteValues]:
    """The votes' exported columns, grouped by comparison, in a stable order (so the JSONL is reproducible)."""
    ordered = votes.order_by("comparison_id", "id")
    if connections[votes.db].vendor == "postgresql":
        timed = ordered.annotate(vote_time=_IsoTime("created_at")).values_list(*VOTE_FIELDS, "vote_time")
        return map(VoteValues._make, timed.iterator(chunk_size=_CHUNK))
    rows = ordered.values_list(*VOTE_FIELDS, "created_at").iterator(chunk_size=_CHUNK)
    return (VoteValues._make((*row[:-1], iso_time(row[-1]))) for row in rows)
