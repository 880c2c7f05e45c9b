from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.contrib.auth.models import User
from django.forms import Form
from django.http import HttpRequest

from annotate.people.models import ApiToken, CampaignMembership, Invitation, ServiceAccount
from annotate.people.services import password_change_require


class StaffSetPasswordForm(AdminPasswordChangeForm):
    """The admin's "change password" form: a password staff set for an annotator must be changed at first login."""

    def save(self, commit: bool = True) -> Any:
        user = super().save(commit=commit)
        if commit:
            password_change_require(user=user)  # staff accounts (your own included) are left alone
        return user


admin.site.unregister(User)


@admin.register(User)
class PeopleUserAdmin(UserAdmin):  # type: ignore[type-arg]
    """Django's user admin, except that a password chosen here for an annotator must be changed at first login."""

    change_password_form = StaffSetPasswordForm

    def save_model(self, request: HttpRequest, obj: User, form: Form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:  # "Add user" sets a password; later edits of the user don't touch it
            password_change_require(user=obj)


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
