from __future__ import annotations

from django.contrib import admin

from annotate.exports.models import Export


@admin.register(Export)
class ExportAdmin(admin.ModelAdmin):
    """Read-only: exports are made from the campaign's export page, the API or the command."""

    list_display = ("id", "campaign", "status", "progress", "requested_by", "created_at", "finished_at")
    list_filter = ("status", "campaign")
    readonly_fields = (
        "campaign",
        "requested_by",
        "status",
        "parameters",
        "progress",
        "progress_message",
        "result_path",
        "archive_path",
        "summary",
        "error",
        "created_at",
        "started_at",
        "finished_at",
    )

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False
