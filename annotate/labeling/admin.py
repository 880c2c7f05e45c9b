from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from annotate.labeling.models import AnnotatorProfile, Assignment, AudioDelivery, Skip, Vote


@admin.register(AnnotatorProfile)
class AnnotatorProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "pseudonym", "created_at")
    search_fields = ("user__username", "pseudonym")


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ("public_id", "annotator", "comparison", "status", "swapped", "created_at", "expires_at")
    list_filter = ("status", "comparison__campaign")
    raw_id_fields = ("comparison",)


@admin.register(Vote)
class VoteAdmin(admin.ModelAdmin):
    list_display = (
        "id",
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
        "comparison__campaign",
        "comparison__instruction__modality",
        "alignment_confidence",
        "musicality_confidence",
        "presented_swapped",
    )
    raw_id_fields = ("comparison", "assignment")
    search_fields = ("feedback", "annotator__username")


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
