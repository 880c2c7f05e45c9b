from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from annotate.labeling.services import LabelingError
from annotate.onboarding.models import (
    CampaignOnboarding,
    ConsentRecord,
    HeadphoneCheck,
    InstructionsRead,
    PracticeAttempt,
    PracticeItem,
    Withdrawal,
)
from annotate.onboarding.services import withdrawal_restore


@admin.register(CampaignOnboarding)
class CampaignOnboardingAdmin(admin.ModelAdmin):
    list_display = (
        "campaign",
        "consent_required",
        "consent_version",
        "instructions_required",
        "headphone_check_required",
        "practice_required",
    )


@admin.register(PracticeItem)
class PracticeItemAdmin(admin.ModelAdmin):
    list_display = ("id", "campaign", "position", "prompt", "alignment_answer", "musicality_answer")
    list_filter = ("campaign",)
    raw_id_fields = ("clip_a", "clip_b")


@admin.register(ConsentRecord)
class ConsentRecordAdmin(admin.ModelAdmin):
    list_display = ("annotator", "campaign", "version", "accepted_at")
    list_filter = ("campaign", "version")
    readonly_fields = ("annotator", "campaign", "version", "text_sha256", "accepted_at")


@admin.register(InstructionsRead)
class InstructionsReadAdmin(admin.ModelAdmin):
    list_display = ("annotator", "campaign", "read_at")


@admin.register(PracticeAttempt)
class PracticeAttemptAdmin(admin.ModelAdmin):
    list_display = ("annotator", "campaign", "correct", "total", "passed", "created_at")
    list_filter = ("campaign", "passed")


@admin.register(HeadphoneCheck)
class HeadphoneCheckAdmin(admin.ModelAdmin):
    list_display = ("public_id", "annotator", "campaign", "score", "passed", "created_at", "completed_at")
    list_filter = ("campaign", "passed")


@admin.register(Withdrawal)
class WithdrawalAdmin(admin.ModelAdmin):
    list_display = ("annotator", "campaign", "withdrawn_at", "restored_at", "restored_by")
    list_filter = ("campaign", "restored_at")
    readonly_fields = ("annotator", "campaign", "reason", "withdrawn_at", "restored_at", "restored_by")
    actions = ["restore"]

    @admin.action(description="Restore: count these annotators' votes again")
    def restore(self, request: HttpRequest, queryset: QuerySet[Withdrawal]) -> None:
        restored = 0
        for withdrawal in queryset:
            try:
                withdrawal_restore(withdrawal_id=withdrawal.pk, staff=request.user, note="restored in the admin")  # type: ignore[arg-type]
                restored += 1
            except LabelingError as exc:
                self.message_user(request, f"{withdrawal}: {exc.message}", level=messages.WARNING)
        self.message_user(request, f"Restored {restored} withdrawal(s).")
