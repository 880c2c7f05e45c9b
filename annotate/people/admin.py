from django.contrib import admin

from annotate.people.models import ApiToken, CampaignMembership, Invitation, ServiceAccount


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Read-only here: tokens are issued and revoked on the Tokens page, which shows a key once."""

    list_display = ("user", "scope", "name", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = ("scope",)
    readonly_fields = [f.name for f in ApiToken._meta.fields]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False


@admin.register(ServiceAccount)
class ServiceAccountAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("user", "description", "created_at")


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("user", "created_at", "expires_at", "accepted_at")
    readonly_fields = ("token_sha256",)


@admin.register(CampaignMembership)
class CampaignMembershipAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("campaign", "user", "created_at")
