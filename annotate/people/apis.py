"""REST for people (staff only): scoped tokens, service accounts, invitations, accounts, campaign members, progress."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.catalog.selectors import campaign_get_for_staff
from annotate.errors import error_response
from annotate.people import selectors, services
from annotate.people.models import Scope
from annotate.permissions import IsStaff, request_user

_ERROR = error_response()
_CONFLICT = error_response("`username_taken`, or `not_allowed_for_account` (e.g. a scoring token for an annotator).")
USERNAME_PATTERN = r"^[\w.@+-]+$"


class ApiTokenSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    user = serializers.CharField(source="user.username")
    user_id = serializers.IntegerField()
    scope = serializers.ChoiceField(choices=Scope.choices)
    name = serializers.CharField()
    prefix = serializers.CharField(help_text="The key's first characters.")
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)


class ApiTokenListCreateApi(APIView):
    """List every scoped token (GET), or issue one (POST): its key is in the answer once, never again."""

    permission_classes = [IsStaff]

    @extend_schema_serializer(component_name="ApiTokenCreateInput")
    class InputSerializer(serializers.Serializer):
        user = serializers.IntegerField(help_text="Account id: a service account (scoring) or an annotator.")
        scope = serializers.ChoiceField(choices=Scope.choices)
        name = serializers.CharField(allow_blank=True, default="", max_length=200)

    @extend_schema_serializer(component_name="ApiTokenCreated")
    class CreatedSerializer(ApiTokenSerializer):
        key = serializers.CharField(help_text="Send as `Authorization: Token <key>`. Shown only now.")

    @extend_schema(operation_id="api_token_list", responses={200: ApiTokenSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return Response(ApiTokenSerializer(selectors.api_token_list(), many=True).data)

    @extend_schema(
        operation_id="api_token_create",
        request=InputSerializer,
        responses={201: CreatedSerializer, 404: _ERROR, 409: _CONFLICT},
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        staff = request_user(request)
        user = selectors.user_get_for_staff(staff=staff, user_id=data.validated_data["user"])
        token, key = services.api_token_create(
            user=user, scope=data.validated_data["scope"], name=data.validated_data["name"], created_by=staff
        )
        token.key = key  # type: ignore[attr-defined]  # the one time the key is known: in this answer
        return Response(self.CreatedSerializer(token).data, status=status.HTTP_201_CREATED)


class ApiTokenRevokeApi(APIView):
    """Revoke a token at once (DELETE); it authenticates nothing afterwards. The row stays, marked revoked."""

    permission_classes = [IsStaff]

    @extend_schema(operation_id="api_token_revoke", responses={200: ApiTokenSerializer, 404: _ERROR})
    def delete(self, request: Request, token_id: int) -> Response:
        token = selectors.api_token_get_for_staff(staff=request_user(request), token_id=token_id)
        return Response(ApiTokenSerializer(services.api_token_revoke(token=token)).data)


class ServiceAccountCreateApi(APIView):
    """Create a service account for a pipeline: never staff, never an annotator, no password; give it a token."""

    permission_classes = [IsStaff]

    @extend_schema_serializer(component_name="ServiceAccountCreateInput")
    class InputSerializer(serializers.Serializer):
        username = serializers.RegexField(USERNAME_PATTERN, max_length=150, trim_whitespace=False)
        description = serializers.CharField(allow_blank=True, default="", max_length=300)

    @extend_schema_serializer(component_name="ServiceAccount")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField(source="user_id", help_text="The account id, for POST /api/v1/tokens.")
        username = serializers.CharField(source="user.username")
        description = serializers.CharField()
        created_at = serializers.DateTimeField()

    @extend_schema(
        operation_id="service_account_create",
        request=InputSerializer,
        responses={201: OutputSerializer, 409: _CONFLICT},
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        account = services.service_account_create(**data.validated_data, created_by=request_user(request))
        return Response(self.OutputSerializer(account).data, status=status.HTTP_201_CREATED)


class InvitationCreateApi(APIView):
    """Invite an annotator: an inactive account and a one-time link (in the answer once) to set a password."""

    permission_classes = [IsStaff]

    @extend_schema_serializer(component_name="InvitationCreateInput")
    class InputSerializer(serializers.Serializer):
        username = serializers.RegexField(USERNAME_PATTERN, max_length=150, trim_whitespace=False)
        email = serializers.EmailField(allow_blank=True, default="")

    @extend_schema_serializer(component_name="Invitation")
    class OutputSerializer(serializers.Serializer):
        user_id = serializers.IntegerField()
        username = serializers.CharField()
        url = serializers.CharField(help_text="The one-time link; shown only now.")
        expires_at = serializers.DateTimeField()

    @extend_schema(
        operation_id="invitation_create",
        request=InputSerializer,
        responses={201: OutputSerializer, 409: _CONFLICT},
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        invitation, token = services.invitation_create(**data.validated_data, created_by=request_user(request))
        body = {
            "user_id": invitation.user_id,
            "username": invitation.user.username,
            "url": request.build_absolute_uri(reverse("people:invitation", args=[token])),
            "expires_at": invitation.expires_at,
        }
        return Response(self.OutputSerializer(body).data, status=status.HTTP_201_CREATED)


class UserSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    is_active = serializers.BooleanField()


class UserUpdateApi(APIView):
    """Deactivate (``is_active: false``) or reactivate an account. A deactivated account can't log in or use a token."""

    permission_classes = [IsStaff]

    @extend_schema_serializer(component_name="UserUpdateInput")
    class InputSerializer(serializers.Serializer):
        is_active = serializers.BooleanField(required=False, help_text="Absent: no change.")

    @extend_schema(
        operation_id="user_update",
        request=InputSerializer,
        responses={200: UserSerializer, 404: _ERROR, 409: _CONFLICT},
    )
    def patch(self, request: Request, user_id: int) -> Response:
        user = selectors.user_get_for_staff(staff=request_user(request), user_id=user_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if "is_active" in data.validated_data:
            user = services.annotator_set_active(
                user=user, active=data.validated_data["is_active"], by=request_user(request)
            )
        return Response(UserSerializer(user).data)


class CampaignMemberListAddApi(APIView):
    """A campaign's members (GET) or add one (POST). A campaign with members is visible and handed out to them only."""

    permission_classes = [IsStaff]

    @extend_schema_serializer(component_name="CampaignMemberInput")
    class InputSerializer(serializers.Serializer):
        user = serializers.IntegerField()

    @extend_schema(operation_id="campaign_member_list", responses={200: UserSerializer(many=True), 404: _ERROR})
    def get(self, request: Request, campaign_id: int) -> Response:
        campaign = campaign_get_for_staff(user=request.user, campaign_id=campaign_id)
        return Response(UserSerializer(selectors.campaign_members(campaign=campaign), many=True).data)

    @extend_schema(
        operation_id="campaign_member_add",
        request=InputSerializer,
        responses={201: UserSerializer, 404: _ERROR, 409: _CONFLICT},
    )
    def post(self, request: Request, campaign_id: int) -> Response:
        campaign = campaign_get_for_staff(user=request.user, campaign_id=campaign_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        staff = request_user(request)
        user = selectors.user_get_for_staff(staff=staff, user_id=data.validated_data["user"])
        services.campaign_member_add(campaign=campaign, user=user, added_by=staff)
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)


class CampaignMemberRemoveApi(APIView):
    permission_classes = [IsStaff]

    @extend_schema(operation_id="campaign_member_remove", responses={204: None, 404: _ERROR})
    def delete(self, request: Request, campaign_id: int, user_id: int) -> Response:
        campaign = campaign_get_for_staff(user=request.user, campaign_id=campaign_id)
        user = selectors.user_get_for_staff(staff=request_user(request), user_id=user_id)
        services.campaign_member_remove(campaign=campaign, user=user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class _AnnotatorProgressSerializer(serializers.Serializer):
    user_id = serializers.IntegerField(source="user.pk")
    username = serializers.CharField(source="user.username")
    is_active = serializers.BooleanField(source="user.is_active")
    member = serializers.BooleanField()
    votes = serializers.IntegerField()
    skips = serializers.IntegerField()
    median_time_s = serializers.FloatField(allow_null=True)
    flags = serializers.ListField(child=serializers.CharField())
    last_active = serializers.DateTimeField(allow_null=True)


class CampaignProgressApi(APIView):
    """Progress toward the overlap target with an ETA at the recent vote rate, and each annotator's progress."""

    permission_classes = [IsStaff]

    @extend_schema_serializer(component_name="CampaignProgressDetail")
    class OutputSerializer(serializers.Serializer):
        comparisons = serializers.IntegerField()
        overlap_target = serializers.IntegerField()
        votes_needed = serializers.IntegerField()
        votes_toward_target = serializers.IntegerField()
        votes_total = serializers.IntegerField()
        comparisons_complete = serializers.IntegerField()
        fraction = serializers.FloatField(allow_null=True)
        votes_per_hour = serializers.FloatField(help_text="Over the last 7 days (or since the first vote).")
        rate_window_start = serializers.DateTimeField()
        remaining = serializers.IntegerField()
        eta = serializers.DateTimeField(allow_null=True, help_text="null when done or with no recent votes.")
        done = serializers.BooleanField()
        annotators = _AnnotatorProgressSerializer(many=True)

    @extend_schema(operation_id="campaign_progress", responses={200: OutputSerializer, 404: _ERROR})
    def get(self, request: Request, campaign_id: int) -> Response:
        campaign = campaign_get_for_staff(user=request.user, campaign_id=campaign_id)
        body = {
            **selectors.campaign_progress(campaign=campaign),
            "annotators": selectors.campaign_annotator_progress(campaign=campaign),
        }
        return Response(self.OutputSerializer(body).data)
