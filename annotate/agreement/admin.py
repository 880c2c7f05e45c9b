from django.contrib import admin

from annotate.agreement.models import AgreementSnapshot


@admin.register(AgreementSnapshot)
class AgreementSnapshotAdmin(admin.ModelAdmin):
    list_display = ("campaign", "vote_count", "computed_at", "compute_seconds", "refresh_requested_at")
    readonly_fields = ("campaign", "report", "vote_count", "computed_at", "compute_seconds", "refresh_requested_at")
