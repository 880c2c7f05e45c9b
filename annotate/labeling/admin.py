from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from annotate.labeling.models import AnnotatorProfile, Assignment, AudioDelivery, ExternalAnnotator, Skip, Vote
from annotate.onboarding.selectors import vote_withdrawn


@admin.register(AnnotatorProfile)
class AnnotatorProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "pseudonym", "created_at")
    search_fields = ("user__username", "pseudonym")


@admin.register(ExternalAnnotator)
class ExternalAnnotatorAdmin(admin.ModelAdmin):
    """Accounts of imported labels: read-only here, made only by the import."""

    list_display = ("external_id", "source", "user", "created_at")
    list_filter = ("source",)
    search_fields = ("external_id", "user__username")
    readonly_fields = ("user", "source", "external_id", "created_at")


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ("public_id", "annotator", "comparison", "status", "swapped", "created_at", "expires_at")
    list_filter = ("status", "comparison__campaign")
    raw_id_fields = ("comparison",)


class WithdrawnFilter(admin.SimpleListFilter):
    title = "annotator withdrawn"
    parameter_name = "withdrawn"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "Withdrawn (not counted)"), ("no", "Counted")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Vote]) -> QuerySet[Vote]:
        if self.value() == "yes":
            return queryset.filter(vote_withdrawn())
        if self.value() == "no":
            return queryset.exclude(vote_withdrawn())
        return queryset


@admin.register(Vote)
class VoteAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "withdrawn",
        "annotator",
        "comparison",
        "alignment_choice",
        "alignment_confidence",
        "musicality_choice",
        "musicality_confidence",
        "presented_swapped",
        "time_on_task_s",
        "client_time_on_task_s",
        "created_at",
    )
    list_filter = (
        WithdrawnFilter,
        "comparison__campaign",
        "comparison__instruction__modality",
        "alignment_confidence",
        "musicality_confidence",
        "presented_swapped",
    )
    raw_id_fields = ("comparison", "assignment")
    search_fields = ("feedback", "annotator__username")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Vote]:
        # Votes of withdrawn annotators are kept but marked: statistics, exports and model comparisons skip them.
        return super().get_queryset(request).annotate(is_withdrawn=vote_withdrawn())

    @admin.display(boolean=True, description="withdrawn", ordering="is_withdrawn")
    def withdrawn(self, vote: Vote) -> bool:
        return bool(getattr(vote, "is_withdrawn", False))


@admin.register(Skip)
class SkipAdmin(admin.ModelAdmin):
    list_display = ("id", "annotator", "comparison", "reason", "created_at")
    list_filter = ("reason", "comparison__campaign")
    raw_id_fields = ("comparison", "assignment")


@admin.register(AudioDelivery)
class AudioDeliveryAdmin(admin.ModelAdmin):
    """Read-only listening evidence: what the audio view delivered, per assignment and side."""

    list_display = ("assignment", "side", "start_s", "end_s", "bytes_delivered", "via_accel_redirect", "created_at")
    list_filter = ("side", "via_accel_redirect")
    search_fields = ("assignment__public_id",)
    list_select_related = ("assignment",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AudioDelivery | None = None) -> bool:
        return False
