from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from annotate.catalog.models import Campaign, CampaignImport, Clip, ClipRendition, Comparison, Instruction


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "status",
        "overlap_target",
        "assignment_strategy",
        "min_listen_seconds",
        "min_listen_fraction",
        "feedback_required",
        "comparison_count",
        "created_at",
    )
    list_filter = ("status", "feedback_required", "assignment_strategy")
    search_fields = ("name", "description")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Campaign]:
        return super().get_queryset(request).annotate(_comparisons=Count("comparisons"))

    @admin.display(ordering="_comparisons", description="comparisons")
    def comparison_count(self, obj: Campaign) -> int:
        return obj._comparisons  # type: ignore[attr-defined]


@admin.register(Clip)
class ClipAdmin(admin.ModelAdmin):
    """Read-mostly: clips are created only by the import (``campaign_import``), which probes, hashes and stores
    the audio; an admin form can't, so "add" is not offered (it answered 500 and left an orphan file)."""

    list_display = ("short_sha", "is_vocal", "format", "duration_s", "sample_rate", "channels", "created_at")
    list_filter = ("is_vocal", "format", "sample_rate", "channels")
    search_fields = ("sha256", "original_name")
    readonly_fields = ("sha256", "format", "duration_s", "sample_rate", "channels", "original_name", "created_at")

    @admin.display(description="sha256")
    def short_sha(self, obj: Clip) -> str:
        return obj.sha256[:12]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Clip | None = None) -> tuple[str, ...]:
        # The stored file is named by its hash; replacing it here would break that.
        return (*self.readonly_fields, "file")


@admin.register(ClipRendition)
class ClipRenditionAdmin(admin.ModelAdmin):
    """Read-only: renditions are made by the import and ``manage.py make_renditions``."""

    list_display = ("clip", "profile", "target_lufs", "loudness_lufs", "true_peak_dbtp", "limited", "size_bytes")
    list_filter = ("profile", "target_lufs", "limited")
    search_fields = ("clip__sha256", "sha256")
    list_select_related = ("clip",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ClipRendition | None = None) -> bool:
        return False


@admin.register(CampaignImport)
class CampaignImportAdmin(admin.ModelAdmin):
    """Read-only: imports are started from the campaign's import page or the API."""

    list_display = ("id", "campaign", "status", "progress", "manifest_name", "archive_name", "created_at")
    list_filter = ("status",)
    list_select_related = ("campaign",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: CampaignImport | None = None) -> bool:
        return False


@admin.register(Instruction)
class InstructionAdmin(admin.ModelAdmin):
    list_display = ("prompt_id", "short_text", "modality", "created_at")
    list_filter = ("modality",)
    search_fields = ("prompt_id", "text", "lyrics")
    readonly_fields = ("modality", "content_hash")
    raw_id_fields = ("reference_clip",)

    @admin.display(description="text")
    def short_text(self, obj: Instruction) -> str:
        return obj.text[:80]


@admin.register(Comparison)
class ComparisonAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "campaign",
        "modality",
        "system_a",
        "system_b",
        "gold_alignment",
        "gold_musicality",
        "is_attention_check",
    )
    list_filter = (
        "campaign",
        "campaign__status",
        "instruction__modality",
        "system_a",
        "system_b",
        "is_attention_check",
    )
    search_fields = ("instruction__text", "instruction__prompt_id", "system_a", "system_b")
    raw_id_fields = ("instruction", "clip_a", "clip_b")
    list_select_related = ("campaign", "instruction", "clip_a", "clip_b")

    @admin.display(ordering="instruction__modality", description="modality")
    def modality(self, obj: Comparison) -> str:
        return obj.instruction.modality
