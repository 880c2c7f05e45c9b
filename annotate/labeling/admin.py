from __future__ import annotations

from django.contrib import admin

from annotate.labeling.models import AnnotatorProfile, Assignment, Skip, Vote


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
