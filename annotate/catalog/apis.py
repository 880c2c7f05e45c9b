"""REST API of the catalog for staff (session or token): campaigns, imports, gold items. Annotators get 403."""

from __future__ import annotations

from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.urls import reverse
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.catalog.models import AssignmentStrategy, Campaign, CampaignImport, Comparison
from annotate.catalog.selectors import (
    CampaignProgress,
    campaign_get_for_staff,
    campaign_import_get_for_staff,
    campaign_list_for_user,
    campaign_progress,
    comparison_get_for_staff,
    comparison_list_for_campaign,
)
from annotate.catalog.services import (
    campaign_create,
    campaign_import_create,
    campaign_status_set,
    campaign_update,
    comparison_gold_set,
)
from annotate.errors import error_response
from annotate.onboarding.models import CampaignOnboarding
from annotate.onboarding.services import ONBOARDING_STEPS, campaign_onboarding_update
from annotate.parsers import BoundedJSONParser
from annotate.permissions import IsStaff, request_user

_ERROR = error_response()
# A gold answer: the canonical side that is right ("" for none).
GOLD_CHOICES = ["", "a", "b"]
# Text with at least one character that is neither blank (as str.strip() sees it) nor NUL, so the schema
# promises exactly what the serializer accepts.
_BLANK = r"\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NOT_BLANK = rf"^[^\x00]*[^{_BLANK}][^\x00]*$"


def _text(**kwargs: Any) -> serializers.RegexField:
    return serializers.RegexField(NOT_BLANK, **kwargs)


class UploadField(serializers.FileField):
    """A file part; a part sent without a file name (which Django reads as text) counts as the file's content."""

    def __init__(self, **kwargs: Any) -> None:
        # An empty manifest is reported by the import ("no rows"), an empty archive by the unpacking.
        super().__init__(allow_empty_file=True, **kwargs)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str):
            data = SimpleUploadedFile(self.field_name or "upload", data.encode("utf-8", "surrogateescape"))
        return super().to_internal_value(data)


class OnboardingStepsSerializer(serializers.Serializer):
    """Which onboarding steps the campaign requires (all false: the campaign asks for nothing)."""

    consent_required = serializers.BooleanField(required=False)
    instructions_required = serializers.BooleanField(required=False)
    headphone_check_required = serializers.BooleanField(required=False)
    practice_required = serializers.BooleanField(required=False)


class CampaignProgressSerializer(serializers.Serializer):
    comparisons = serializers.IntegerField()
    votes = serializers.IntegerField()
    complete = serializers.IntegerField(help_text="Comparisons that have reached the overlap target.")
    fraction = serializers.FloatField(help_text="Votes toward the overlap target / votes the target asks for.")


class CampaignSerializer(serializers.ModelSerializer):
    onboarding = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()

    class Meta:
        model = Campaign
        fields = (
            "id",
            "name",
            "description",
            "status",
            "overlap_target",
            "min_listen_seconds",
            "min_listen_fraction",
            "feedback_required",
            "allow_no_preference",
            "assignment_strategy",
            "license",
            "presentation_loudness_lufs",
            "presentation_true_peak_dbtp",
            "onboarding",
            "progress",
            "created_at",
        )

    @extend_schema_field(OnboardingStepsSerializer)
    def get_onboarding(self, campaign: Campaign) -> dict[str, bool]:
        config = CampaignOnboarding.objects.filter(campaign=campaign).first()
        return {name: bool(config and getattr(config, name)) for name in ONBOARDING_STEPS}

    @extend_schema_field(CampaignProgressSerializer)
    def get_progress(self, campaign: Campaign) -> dict[str, Any]:
        known: dict[int, CampaignProgress] = self.context.get("progress") or campaign_progress(campaigns=[campaign])
        progress = known[campaign.pk]
        return {
            "comparisons": progress.comparisons,
            "votes": progress.votes,
            "complete": progress.complete,
            "fraction": round(progress.fraction, 4),
        }


class CampaignSettingsInput(serializers.Serializer):
    """The settings both creating and editing a campaign accept (each optional)."""

    description = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    overlap_target = serializers.IntegerField(required=False, min_value=1, max_value=1000)
    min_listen_seconds = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=3600)
    min_listen_fraction = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=1)
    feedback_required = serializers.BooleanField(required=False)
    allow_no_preference = serializers.BooleanField(required=False)
    assignment_strategy = serializers.ChoiceField(
        choices=AssignmentStrategy.choices, required=False, help_text="Which comparison a hand-out prefers."
    )
    license = _text(required=False, max_length=100)
    onboarding = OnboardingStepsSerializer(required=False)


class CampaignListApi(APIView):
    """Every campaign with its settings and progress (GET); create a draft campaign (POST)."""

    permission_classes = [IsStaff]
    OutputSerializer = CampaignSerializer

    @extend_schema_serializer(component_name="CampaignCreateInput")
    class InputSerializer(CampaignSettingsInput):
        name = _text(max_length=200)
        presentation_loudness_lufs = serializers.FloatField(required=False, min_value=-40, max_value=-8)
        presentation_true_peak_dbtp = serializers.FloatField(required=False, min_value=-12, max_value=0)

    @extend_schema(operation_id="campaign_list", responses={200: CampaignSerializer(many=True)})
    def get(self, request: Request) -> Response:
        campaigns = list(campaign_list_for_user(user=request.user))
        context = {"progress": campaign_progress(campaigns=campaigns)}
        return Response(self.OutputSerializer(campaigns, many=True, context=context).data)

    @extend_schema(
        operation_id="campaign_create",
        request=InputSerializer,
        responses={201: CampaignSerializer, 400: _ERROR, 403: _ERROR, 409: _ERROR},
        description="409 when the name is taken.",
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        steps = data.pop("onboarding", None)
        with transaction.atomic():
            campaign = campaign_create(**data)
            if steps:
                campaign_onboarding_update(campaign=campaign, steps=steps)
        return Response(self.OutputSerializer(campaign).data, status=status.HTTP_201_CREATED)


class CampaignDetailApi(APIView):
    """One campaign (GET); change its settings, onboarding steps or status (PATCH; only the fields given)."""

    permission_classes = [IsStaff]
    OutputSerializer = CampaignSerializer

    @extend_schema_serializer(component_name="CampaignUpdateInput")
    class InputSerializer(CampaignSettingsInput):
        name = _text(required=False, max_length=200)
        status = serializers.ChoiceField(
            choices=Campaign.Status.choices,
            required=False,
            help_text="draft -> active (needs comparisons), active -> closed or draft, closed -> active.",
        )

    @extend_schema(operation_id="campaign_detail", responses={200: CampaignSerializer, 403: _ERROR, 404: _ERROR})
    def get(self, request: Request, campaign_id: int) -> Response:
        campaign = campaign_get_for_staff(user=request.user, campaign_id=campaign_id)
        return Response(self.OutputSerializer(campaign).data)

    @extend_schema(
        operation_id="campaign_update",
        request=InputSerializer,
        responses={200: CampaignSerializer, 400: _ERROR, 403: _ERROR, 404: _ERROR, 409: _ERROR},
    )
    def patch(self, request: Request, campaign_id: int) -> Response:
        campaign = campaign_get_for_staff(user=request.user, campaign_id=campaign_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        steps, new_status = changes.pop("onboarding", None), changes.pop("status", None)
        with transaction.atomic():
            campaign_update(campaign=campaign, changes=changes)
            if steps:
                campaign_onboarding_update(campaign=campaign, steps=steps)
            if new_status is not None:
                campaign_status_set(campaign=campaign, status=new_status)
        return Response(self.OutputSerializer(campaign).data)


class ImportProblemSerializer(serializers.Serializer):
    line = serializers.IntegerField(help_text="Line of the manifest (0: the manifest as a whole).")
    message = serializers.CharField()


class ImportReportSerializer(serializers.Serializer):
    """Counts of a successful import; empty while it runs or when it failed."""

    rows = serializers.IntegerField(required=False)
    comparisons_created = serializers.IntegerField(required=False)
    comparisons_existing = serializers.IntegerField(required=False)
    clips_created = serializers.IntegerField(required=False)
    clips_existing = serializers.IntegerField(required=False)
    renditions_created = serializers.IntegerField(required=False)
    votes_created = serializers.IntegerField(required=False)
    votes_existing = serializers.IntegerField(required=False)
    labels_ignored = serializers.IntegerField(required=False, help_text="Rows whose labels made no vote.")
    by_modality = serializers.DictField(
        child=serializers.IntegerField(), required=False, help_text="New comparisons per modality (T, L, A, C)."
    )
    total_audio_s = serializers.FloatField(required=False, help_text="Seconds of audio in the new comparisons.")


class CampaignImportSerializer(serializers.ModelSerializer):
    campaign = serializers.IntegerField(source="campaign_id")
    problems = ImportProblemSerializer(many=True)
    report = ImportReportSerializer()
    detail_url = serializers.SerializerMethodField()

    class Meta:
        model = CampaignImport
        fields = (
            "id",
            "campaign",
            "status",
            "progress",
            "progress_message",
            "manifest_name",
            "archive_name",
            "server_folder",
            "problems",
            "report",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "detail_url",
        )

    def get_detail_url(self, row: CampaignImport) -> str:
        return reverse("catalog:api-import-detail", args=[row.pk])


class CampaignImportCreateApi(APIView):
    """Upload a manifest plus a zip/tar of its audio; a worker imports it, all or nothing. Poll ``detail_url``:
    a failed import lists every problem with its manifest line. An unsafe archive (path traversal, links, a zip
    bomb, over the limits) is refused at once: 400 ``archive_rejected``; an upload over its size limit is a 413."""

    permission_classes = [IsStaff]
    parser_classes = [MultiPartParser]
    OutputSerializer = CampaignImportSerializer

    @extend_schema_serializer(component_name="CampaignImportCreateInput")
    class InputSerializer(serializers.Serializer):
        manifest = UploadField(help_text="JSONL, one comparison per line.")
        archive = UploadField(
            help_text="zip or tar(.gz/.bz2/.xz) of the audio; the manifest's audio paths are relative to its root."
        )

    @extend_schema(
        operation_id="campaign_import_create",
        request={"multipart/form-data": InputSerializer},
        responses={202: CampaignImportSerializer, 400: _ERROR, 403: _ERROR, 404: _ERROR, 413: _ERROR},
    )
    def post(self, request: Request, campaign_id: int) -> Response:
        campaign = campaign_get_for_staff(user=request.user, campaign_id=campaign_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        row = campaign_import_create(campaign=campaign, requested_by=request_user(request), **serializer.validated_data)
        return Response(self.OutputSerializer(row).data, status=status.HTTP_202_ACCEPTED)


class CampaignServerImportCreateApi(APIView):
    """Import a folder already on the server (its ``manifest.jsonl`` and the audio beside it), under one of the
    allowed import roots (``IMPORT_SERVER_ROOTS``); any other path is a 404. Poll ``detail_url``."""

    permission_classes = [IsStaff]
    parser_classes = [BoundedJSONParser]
    OutputSerializer = CampaignImportSerializer

    @extend_schema_serializer(component_name="CampaignServerImportCreateInput")
    class InputSerializer(serializers.Serializer):
        server_folder = _text(max_length=1000, help_text="Absolute path of the folder.")

    @extend_schema(
        operation_id="campaign_server_import_create",
        request=InputSerializer,
        responses={202: CampaignImportSerializer, 400: _ERROR, 403: _ERROR, 404: _ERROR},
    )
    def post(self, request: Request, campaign_id: int) -> Response:
        campaign = campaign_get_for_staff(user=request.user, campaign_id=campaign_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        row = campaign_import_create(
            campaign=campaign,
            requested_by=request_user(request),
            server_folder=serializer.validated_data["server_folder"],
        )
        return Response(self.OutputSerializer(row).data, status=status.HTTP_202_ACCEPTED)


class CampaignImportDetailApi(APIView):
    """Status, progress, problems (with manifest line numbers) and counts of one import."""

    permission_classes = [IsStaff]
    OutputSerializer = CampaignImportSerializer

    @extend_schema(
        operation_id="campaign_import_detail", responses={200: CampaignImportSerializer, 403: _ERROR, 404: _ERROR}
    )
    def get(self, request: Request, campaign_import_id: int) -> Response:
        row = campaign_import_get_for_staff(user=request.user, campaign_import_id=campaign_import_id)
        return Response(self.OutputSerializer(row).data)


class ComparisonSerializer(serializers.ModelSerializer):
    campaign = serializers.IntegerField(source="campaign_id")
    prompt_id = serializers.CharField(source="instruction.prompt_id")
    modality = serializers.CharField(source="instruction.modality")
    gold_alignment = serializers.ChoiceField(choices=GOLD_CHOICES)
    gold_musicality = serializers.ChoiceField(choices=GOLD_CHOICES)

    class Meta:
        model = Comparison
        fields = (
            "id",
            "campaign",
            "prompt_id",
            "modality",
            "system_a",
            "system_b",
            "gold_alignment",
            "gold_musicality",
            "is_attention_check",
        )


class ComparisonUpdateApi(APIView):
    """Mark a comparison gold (right answers per question, canonical sides a/b; "" for none) or an attention
    check. Fields not given stay as they are."""

    permission_classes = [IsStaff]
    parser_classes = [BoundedJSONParser]
    OutputSerializer = ComparisonSerializer

    @extend_schema_serializer(component_name="ComparisonUpdateInput")
    class InputSerializer(serializers.Serializer):
        gold_alignment = serializers.ChoiceField(choices=GOLD_CHOICES, required=False)
        gold_musicality = serializers.ChoiceField(choices=GOLD_CHOICES, required=False)
        is_attention_check = serializers.BooleanField(required=False)

    @extend_schema(
        operation_id="comparison_update",
        request=InputSerializer,
        responses={200: ComparisonSerializer, 400: _ERROR, 403: _ERROR, 404: _ERROR},
    )
    def patch(self, request: Request, comparison_id: int) -> Response:
        comparison = comparison_get_for_staff(user=request.user, comparison_id=comparison_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        given = serializer.validated_data
        comparison_gold_set(
            comparison=comparison,
            gold_alignment=given.get("gold_alignment", comparison.gold_alignment),
            gold_musicality=given.get("gold_musicality", comparison.gold_musicality),
            is_attention_check=given.get("is_attention_check", comparison.is_attention_check),
        )
        return Response(self.OutputSerializer(comparison).data)


class ComparisonListApi(APIView):
    """A campaign's comparisons in id order, a page at a time (``offset``, ``limit`` up to 1000)."""

    permission_classes = [IsStaff]
    OutputSerializer = ComparisonSerializer

    class FilterSerializer(serializers.Serializer):
        offset = serializers.IntegerField(required=False, default=0, min_value=0, max_value=10**9)
        limit = serializers.IntegerField(required=False, default=100, min_value=1, max_value=1000)
        gold = serializers.BooleanField(required=False, help_text="Only gold items (true) or only the others (false).")

    @extend_schema(
        operation_id="comparison_list",
        parameters=[FilterSerializer],
        responses={200: ComparisonSerializer(many=True), 400: _ERROR, 403: _ERROR, 404: _ERROR},
    )
    def get(self, request: Request, campaign_id: int) -> Response:
        campaign = campaign_get_for_staff(user=request.user, campaign_id=campaign_id)
        query = self.FilterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        offset, limit = query.validated_data["offset"], query.validated_data["limit"]
        comparisons = comparison_list_for_campaign(campaign=campaign, gold=query.validated_data.get("gold"))
        return Response(self.OutputSerializer(comparisons[offset : offset + limit], many=True).data)
