"""REST for onboarding: the caller's onboarding state, accepting consent, and withdrawing."""

from __future__ import annotations

from django.contrib.auth.models import User
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.catalog.selectors import campaign_get_for_annotator
from annotate.errors import error_response
from annotate.onboarding.selectors import campaign_get_for_withdrawal, onboarding_status
from annotate.onboarding.services import consent_accept, withdrawal_create

_ERROR = error_response()


def _caller(request: Request) -> User:
    # IsAuthenticated (the project default) has run: the caller is a real user.
    assert isinstance(request.user, User)
    return request.user


class _StepSerializer(serializers.Serializer):
    name = serializers.CharField()
    title = serializers.CharField()
    done = serializers.BooleanField()
    url = serializers.CharField(help_text="The page that completes this step.")
    detail = serializers.CharField()


class OnboardingStatusApi(APIView):
    """The campaign's required onboarding steps and which the caller has done."""

    @extend_schema_serializer(component_name="OnboardingStatusOutput")
    class OutputSerializer(serializers.Serializer):
        withdrawn = serializers.BooleanField()
        complete = serializers.BooleanField()
        missing_step = serializers.CharField(allow_null=True)
        steps = _StepSerializer(many=True)

    @extend_schema(operation_id="onboarding_status", responses={200: OutputSerializer, 404: _ERROR})
    def get(self, request: Request, campaign_id: int) -> Response:
        campaign = campaign_get_for_annotator(user=request.user, campaign_id=campaign_id)
        return Response(onboarding_status(annotator=_caller(request), campaign=campaign).as_dict())


class ConsentAcceptApi(APIView):
    """Accept the campaign's consent text; ``version`` must be the version the caller read."""

    @extend_schema_serializer(component_name="ConsentAcceptInput")
    class InputSerializer(serializers.Serializer):
        # Not trimmed: the version is compared as the caller sent it (a mismatch is a 409, not a 400).
        version = serializers.CharField(min_length=1, max_length=40, trim_whitespace=False)

    @extend_schema_serializer(component_name="ConsentAcceptOutput")
    class OutputSerializer(serializers.Serializer):
        version = serializers.CharField()
        accepted_at = serializers.DateTimeField()

    @extend_schema(
        operation_id="consent_accept",
        request=InputSerializer,
        responses={201: OutputSerializer, 404: _ERROR, 409: _ERROR},
    )
    def post(self, request: Request, campaign_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        campaign = campaign_get_for_annotator(user=request.user, campaign_id=campaign_id)
        record = consent_accept(annotator=_caller(request), campaign=campaign, **serializer.validated_data)
        return Response(self.OutputSerializer(record).data, status=status.HTTP_201_CREATED)


class WithdrawalCreateApi(APIView):
    """Withdraw from a campaign: no more work is handed out and the caller's votes stop counting."""

    @extend_schema_serializer(component_name="WithdrawalCreateInput")
    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(allow_blank=True, default="", max_length=2000)

    @extend_schema_serializer(component_name="WithdrawalCreateOutput")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        withdrawn_at = serializers.DateTimeField()

    @extend_schema(
        operation_id="withdrawal_create",
        request=InputSerializer,
        responses={201: OutputSerializer, 404: _ERROR, 409: _ERROR},
    )
    def post(self, request: Request, campaign_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        campaign = campaign_get_for_withdrawal(user=request.user, campaign_id=campaign_id)
        withdrawal = withdrawal_create(annotator=_caller(request), campaign=campaign, **serializer.validated_data)
        return Response(self.OutputSerializer(withdrawal).data, status=status.HTTP_201_CREATED)
